"""Takes the README's console screenshots (docs/console/*.png) from a throwaway SQLite server
with a few people and a report on it:

    python tests/console/screenshots.py        # needs target/debug/conduit and playwright
"""

import os
import pathlib
import subprocess
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

from conftest import BIN, CHROMIUM, Site, call, free_port, log_in

OUT = pathlib.Path(__file__).resolve().parents[2] / "docs" / "console"


def main():
    work = tempfile.mkdtemp(prefix="conduit-shots-")
    env = {**os.environ, "DATABASE_URL": f"sqlite://{work}/conduit.db", "CONDUIT_REGISTRATIONS_PER_HOUR": "1000"}
    port = free_port()
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    site = Site(f"http://127.0.0.1:{port}", env, "sqlite")
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(site.base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        site.register("admin")
        site.promote("admin")
        tokens = {name: site.register(name) for name in ["jake", "anna", "spammer", "maria"]}
        status, body = call(site.base, "POST", "/api/articles",
                            {"article": {"title": "Cheap watches", "description": "d", "body": "buy"}},
                            tokens["spammer"])
        slug = body["article"]["slug"]
        for reader in ["jake", "anna", "maria"]:
            call(site.base, "POST", f"/api/articles/{slug}/report",
                 {"report": {"reason": "spam", "details": "the same post everywhere"}}, tokens[reader])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            log_in(page, site, "admin")
            page.screenshot(path=OUT / "dashboard.png")
            page.goto(site.base + "/admin/users/spammer")
            page.screenshot(path=OUT / "user.png", full_page=True)
            page.goto(site.base + "/admin/reports")
            page.screenshot(path=OUT / "reports.png")
            browser.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    main()
