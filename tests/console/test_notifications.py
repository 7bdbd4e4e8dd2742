"""Notifications as a browser reads them: Chromium's own `EventSource` on
`/api/notifications/stream`, signed in by the session cookie, on both backends (the `site`
fixture of conftest.py). The basic flow; a reconnect after the instance the stream was on
stopped and came back (the browser sends `Last-Event-ID` by itself and gets exactly what it
missed); and a page of another origin that tries to read someone's stream with their cookie.
"""

import subprocess
import time

from conftest import BIN, PASSWORD, call, free_port, wait_ready


def start_instance(site, port):
    """Another `conduit serve` on the site's database, at `port`."""
    server = subprocess.Popen([BIN, "serve", "--bind", f"127.0.0.1:{port}"], env=site.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, server)
    return server, base


LISTEN = """
([name, password]) => new Promise(async (resolve, reject) => {
  const login = await fetch('/api/session', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({user: {email: name + '@example.com', password}})});
  if (login.status !== 200) { reject('login ' + login.status); return; }
  window.got = []; window.readies = []; window.errors = 0;
  const stream = new EventSource('/api/notifications/stream');
  stream.addEventListener('notification', e => window.got.push({id: e.lastEventId, data: JSON.parse(e.data)}));
  stream.addEventListener('ready', e => { window.readies.push({id: e.lastEventId, data: JSON.parse(e.data)});
                                          resolve(JSON.parse(e.data)); });
  stream.addEventListener('error', () => { window.errors += 1; });
  window.stream = stream;
})
"""


def wait_for(page, expression, within=15):
    page.wait_for_function(expression, timeout=within * 1000)


def test_the_browser_stream_delivers_live_and_resumes_after_its_instance_comes_back(site, browser):
    anna, bob = site.unique("anna"), site.unique("bob")
    site.register(anna)
    bob_token = site.register(bob)
    # anna's article, written with her own token.
    _, login = call(site.base, "POST", "/api/users/login", {"user": {"email": f"{anna}@example.com", "password": PASSWORD}})
    status, article = call(site.base, "POST", "/api/articles",
                           {"article": {"title": f"Post {anna}", "description": "d", "body": "b"}},
                           token=login["user"]["token"])
    assert status == 201, article
    slug = article["article"]["slug"]

    port = free_port()
    server, base = start_instance(site, port)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base + "/api/tags")
        ready = page.evaluate(LISTEN, [anna, PASSWORD])
        assert ready == {"unreadCount": 0}

        # Live: a follow made through the other instance arrives by itself.
        status, _ = call(site.base, "POST", f"/api/profiles/{anna}/follow", {}, token=bob_token)
        assert status == 200
        wait_for(page, "window.got.length === 1")
        first = page.evaluate("window.got[0]")
        assert first["data"]["kind"] == "follow" and first["data"]["actor"]["username"] == bob
        assert int(first["id"]) == first["data"]["id"]

        # The instance stops (its streams end at SIGTERM); two comments are written meanwhile.
        server.terminate()
        server.wait(timeout=30)
        wait_for(page, "window.errors >= 1")
        for body in ["while you were away", "and again"]:
            status, _ = call(site.base, "POST", f"/api/articles/{slug}/comments", {"comment": {"body": body}},
                             token=bob_token)
            assert status == 201
        # It comes back on the same address; EventSource reconnects by itself with Last-Event-ID.
        server, base = start_instance(site, port)
        wait_for(page, "window.got.length >= 3 && window.readies.length >= 2", within=30)
        got = page.evaluate("window.got")
        excerpts = [g["data"].get("comment", {}).get("excerpt") for g in got]
        assert excerpts == [None, "while you were away", "and again"], got
        ids = [int(g["id"]) for g in got]
        assert ids == sorted(set(ids)), f"in order, none twice: {ids}"
        assert page.evaluate("window.readies[1].data") == {"unreadCount": 3}
        time.sleep(0.5)
        assert len(page.evaluate("window.got")) == 3, "nothing more arrived"
    finally:
        context.close()
        server.terminate()
        server.wait(timeout=30)


def test_a_page_of_another_origin_cannot_read_someones_stream(site, browser):
    """The attack: a page elsewhere opens the stream with the visitor's cookie. The cookie goes
    along (same host, another port: same site), but the answer names no other origin as allowed,
    so the browser gives the page nothing."""
    anna = site.unique("anna")
    site.register(anna)
    port = free_port()
    server, elsewhere = start_instance(site, port)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.base + "/api/tags")
        assert page.evaluate(LISTEN, [anna, PASSWORD]) == {"unreadCount": 0}, "signed in, and her own page reads it"
        page.goto(elsewhere + "/api/tags")
        outcome = page.evaluate(
            """(target) => new Promise((resolve) => {
                 const s = new EventSource(target + '/api/notifications/stream', {withCredentials: true});
                 s.addEventListener('ready', e => resolve('read: ' + e.data));
                 s.addEventListener('notification', e => resolve('read: ' + e.data));
                 s.onerror = () => { s.close(); resolve('refused'); };
               })""",
            site.base,
        )
        assert outcome == "refused"
    finally:
        context.close()
        server.terminate()
        server.wait(timeout=30)
