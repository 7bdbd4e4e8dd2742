"""The console end to end in Chromium, on SQLite and PostgreSQL (see conftest.py), attacks
included. Each test makes its own people, so they can share one server per backend."""

import datetime
import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BODY_TIMEOUT_SECS, PASSWORD, REAUTH_WINDOW_SECS, call, log_in

AXE = os.environ.get("AXE_CORE_JS", "")


def fail_on_dialogs(page):
    """Any alert, confirm or prompt means injected script ran."""
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: dialog {dialog.message!r}"))


def tomorrow():
    return (datetime.date.today() + datetime.timedelta(days=2)).isoformat()


def test_an_admin_finds_a_user_suspends_them_and_the_api_refuses_their_writes(site, context):
    boss, spammer = site.unique("boss"), site.unique("spammer")
    site.register(boss)
    site.promote(boss)
    token = site.register(spammer)
    page = context.new_page()
    fail_on_dialogs(page)
    log_in(page, site, boss)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name or email starts with").fill(spammer[:-2].upper())
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=spammer).click()
    assert page.get_by_role("heading", level=1).inner_text() == spammer
    page.get_by_label("Suspend until").fill(tomorrow())
    page.get_by_label("Reason (the user is told)").fill("spam links")
    page.get_by_label("Your password", exact=False).first.fill(PASSWORD)
    page.get_by_role("button", name="Suspend").click()
    assert "suspended until" in page.locator("#state").inner_text()
    status, body = call(site.base, "POST", "/api/articles",
                        {"article": {"title": "more spam", "description": "d", "body": "b"}}, token)
    assert status == 403, body
    assert "spam links" in str(body)
    # The log has it, with the actor.
    page.get_by_role("link", name="Moderation log").click()
    row = page.locator("tbody tr").first
    assert boss in row.inner_text() and "suspend" in row.inner_text()


def test_a_moderator_answers_a_report_by_hiding_the_article_and_markup_stays_text(site, context):
    mod, author, reader = site.unique("mod"), site.unique("author"), site.unique("reader")
    site.register(mod)
    site.promote(mod, "moderator")
    author_token = site.register(author)
    reader_token = site.register(reader)
    title = "<script>alert('title')</script> offer"
    status, body = call(site.base, "POST", "/api/articles",
                        {"article": {"title": title, "description": "d", "body": "b"}}, author_token)
    assert status == 201, body
    slug = body["article"]["slug"]
    details = "<img src=x onerror=alert('details')> look"
    status, body = call(site.base, "POST", f"/api/articles/{slug}/report",
                        {"report": {"reason": "spam", "details": details}}, reader_token)
    assert status == 201, body
    page = context.new_page()
    fail_on_dialogs(page)
    log_in(page, site, mod)
    page.get_by_role("link", name="Reports").click()
    entry = page.locator("article.entry", has_text=slug)
    assert details in entry.inner_text(), "the reporter's markup is shown as text"
    assert page.locator("img[src=x]").count() == 0
    entry.get_by_label("Action").select_option("hide")
    entry.get_by_label("Reason").fill("spam")
    entry.get_by_label("Your password (if needed)").fill(PASSWORD)
    entry.get_by_role("button", name="Answer").click()
    page.wait_for_url(site.base + "/admin/reports")
    assert page.locator("article.entry", has_text=slug).count() == 0, "answered, it leaves the queue"
    assert call(site.base, "GET", f"/api/articles/{slug}")[0] == 404, "hidden from everyone"
    page.goto(f"{site.base}/admin/articles/{slug}")
    history = page.locator("section", has=page.get_by_role("heading", name="Moderation history"))
    assert f"{mod} hide (spam)" in history.inner_text(), "the article's page shows what was done to it"


def test_a_moderator_cannot_use_what_is_for_admins(site, context):
    mod, other = site.unique("mod"), site.unique("other")
    site.register(mod)
    site.promote(mod, "moderator")
    site.register(other)
    page = context.new_page()
    log_in(page, site, mod)
    page.goto(f"{site.base}/admin/users/{other}")
    assert page.get_by_role("button", name="Change the role").count() == 0, "the form is not offered"
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = context.request.post(f"{site.base}/admin/users/{mod}/account",
                                    form={"csrf": csrf, "role": "admin", "password": PASSWORD},
                                    headers={"Origin": site.base})
    assert response.status == 403
    page.goto(f"{site.base}/admin/users/{mod}")
    assert page.locator("#role").inner_text() == "moderator", "posting it anyway changes nothing"


def admin_and_victim(site, context):
    """A logged-in admin's page and the name of an ordinary user."""
    boss, victim = site.unique("boss"), site.unique("victim")
    site.register(boss)
    site.promote(boss)
    site.register(victim)
    page = context.new_page()
    log_in(page, site, boss)
    return page, victim


def test_a_form_without_its_csrf_token_is_refused(site, context):
    page, victim = admin_and_victim(site, context)
    form = {"kind": "suspend", "profile": victim, "until": tomorrow(), "reason": "no", "password": PASSWORD}
    response = context.request.post(f"{site.base}/admin/actions", form=form, headers={"Origin": site.base})
    assert response.status == 422
    assert "csrf" in response.text()
    response = context.request.post(f"{site.base}/admin/actions", form={**form, "csrf": "0" * 32},
                                    headers={"Origin": site.base})
    assert response.status == 422, "a wrong token is no better"
    page.goto(f"{site.base}/admin/users/{victim}")
    assert page.locator("#state").inner_text() == "active"


def test_a_form_posted_from_another_origin_is_refused_even_with_the_token(site, context):
    page, victim = admin_and_victim(site, context)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    evil = (f'<!doctype html><title>win a prize</title><form method="post" action="{site.base}/admin/actions">'
            f'<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="kind" value="purge">'
            f'<input type="hidden" name="profile" value="{victim}"><input type="hidden" name="reason" value="x">'
            f'<input type="hidden" name="password" value="{PASSWORD}">'
            '<button>Claim</button></form>').encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args):
            pass

    # Another port is another origin (though the same site, so SameSite alone would not stop it).
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.get_by_role("button", name="Claim").click()
        page.wait_for_load_state()
        assert "403" in page.title()
    finally:
        server.shutdown()
    assert call(site.base, "GET", f"/api/profiles/{victim}")[0] == 200, "not purged"


def test_a_session_is_dead_after_logout_even_replayed(site, browser):
    boss = site.unique("boss")
    site.register(boss)
    site.promote(boss)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, site, boss)
    cookie = next(c for c in context.cookies() if c["name"] == "conduit_admin")
    assert cookie["sameSite"] == "Strict" and cookie["httpOnly"] and cookie["path"] == "/admin"
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(site.base + "/admin/login")
    context.close()
    replay = browser.new_context()
    replay.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    page = replay.new_page()
    page.goto(site.base + "/admin/users")
    assert page.url == site.base + "/admin/login", "the old cookie opens nothing"
    replay.close()


def test_a_user_who_is_not_staff_gets_no_session(site, context):
    someone = site.unique("someone")
    site.register(someone)
    page = context.new_page()
    page.goto(site.base + "/admin/login")
    page.get_by_label("Email").fill(f"{someone}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert "for admins and moderators" in page.get_by_role("alert").inner_text()
    assert not [c for c in context.cookies() if c["name"] == "conduit_admin" and c["value"]] or \
        page.goto(site.base + "/admin").url.endswith("/admin/login")


def test_markup_in_an_email_is_shown_as_text_on_the_users_page(site, context):
    boss, odd = site.unique("boss"), site.unique("odd")
    site.register(boss)
    site.promote(boss)
    site.register(odd, email=f"<svg/onload=alert(1)>{odd}@example.com")
    page = context.new_page()
    fail_on_dialogs(page)
    log_in(page, site, boss)
    page.goto(f"{site.base}/admin/users/{odd}")
    assert "<svg/onload=alert(1)>" in page.locator("main dl").inner_text()
    assert page.locator("main svg").count() == 0


@pytest.mark.skipif(not AXE, reason="AXE_CORE_JS is not set (scripts/test sets it)")
def test_every_page_passes_axe_with_no_serious_or_critical_violation(site, browser):
    boss, reader = site.unique("boss"), site.unique("reader")
    site.register(boss)
    site.promote(boss)
    token = site.register(reader)
    call(site.base, "POST", f"/api/profiles/{boss}/report", {"report": {"reason": "other", "details": "a test"}}, token)
    # axe is a script: this context lets it in despite the console's CSP (which allows none).
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    checked = []
    page.goto(site.base + "/admin/login")
    page.add_script_tag(path=AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert not [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")], "login"
    log_in(page, site, boss)
    pages = ["/admin", "/admin/users", f"/admin/users/{reader}", "/admin/reports", "/admin/log", "/admin/articles",
             "/admin/mail", "/admin/backups"]
    for path in pages:
        page.goto(site.base + path)
        page.add_script_tag(path=AXE)
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
        assert not bad, f"{path}: {bad}"
        checked.append(path)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site.base + "/admin/users")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "fits a phone's width"
    context.close()
    assert len(checked) == len(pages)


def eventually(check, seconds=20, page=None):
    """Polls `check` (reloading `page` between tries) until it is true or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
        if page is not None:
            page.reload()


def test_a_destructive_action_past_the_window_needs_the_password_again(site, context):
    page, victim = admin_and_victim(site, context)
    time.sleep(REAUTH_WINDOW_SECS + 1)
    page.goto(f"{site.base}/admin/users/{victim}")
    page.get_by_label("Suspend until").fill(tomorrow())
    page.get_by_label("Reason (the user is told)").fill("late")
    page.get_by_role("button", name="Suspend").click()
    assert "password is needed" in page.get_by_role("alert").inner_text()
    page.go_back()
    page.get_by_label("Suspend until").fill(tomorrow())
    page.get_by_label("Reason (the user is told)").fill("late")
    page.get_by_label("Your password", exact=False).first.fill("not the password")
    page.get_by_role("button", name="Suspend").click()
    assert "403" in page.title(), "a wrong password is refused"
    page.goto(f"{site.base}/admin/users/{victim}")
    assert page.locator("#state").inner_text() == "active"
    page.get_by_label("Suspend until").fill(tomorrow())
    page.get_by_label("Reason (the user is told)").fill("late")
    page.get_by_label("Your password", exact=False).first.fill(PASSWORD)
    page.get_by_role("button", name="Suspend").click()
    assert "suspended until" in page.locator("#state").inner_text()


def test_a_dead_mail_is_requeued_and_delivered(site, context):
    boss, bounced = site.unique("boss"), site.unique("bounced")
    boss_token = site.register(boss)
    site.promote(boss)
    site.register(bounced)
    address = f"{bounced}@example.com"
    # A suspension's notice carries no token, so it keeps its text when it dies (a dead mail
    # with a link forgets it, and cannot be requeued: the person asks for a new link).
    assert eventually(lambda: address in site.mailbox.delivered), "its verification link went out"
    site.mailbox.refused.add(address)
    until = f"{tomorrow()}T00:00:00Z"
    status, body = call(site.base, "POST", "/api/moderation/actions", {"action": {
        "kind": "suspend", "profile": bounced, "until": until, "reason": "cool off"}}, boss_token)
    assert status == 200, body
    page = context.new_page()
    log_in(page, site, boss)
    page.goto(site.base + "/admin/mail?state=dead")
    row = page.locator("tbody tr", has_text=address)
    assert eventually(lambda: row.count() == 1, page=page), "the refused notice shows as dead"
    assert "550" in row.inner_text(), "with the server's answer"
    page.goto(site.base + "/admin")
    assert int(page.locator("#mail-dead").inner_text()) >= 1, "the dashboard counts it"
    page.goto(site.base + "/admin/mail?state=dead")
    site.mailbox.refused.discard(address)
    row.get_by_role("button", name="Requeue").click()
    assert eventually(lambda: address in site.mailbox.delivered), "delivered once requeued"
    assert_logged(page, site, boss, "requeue", "mail #")


def assert_logged(page, site, actor, action, target):
    """The moderation log's newest entry of `action` names `actor` and `target`."""
    page.goto(site.base + "/admin/log")
    cells = page.locator("tbody tr", has_text=target).filter(has=page.get_by_role("cell", name=action, exact=True))
    assert cells.count() >= 1, f"{action} {target} is in the log"
    assert actor in cells.first.inner_text(), cells.first.inner_text()


def test_a_moderator_cannot_open_the_admins_pages(site, context):
    mod = site.unique("mod")
    site.register(mod)
    site.promote(mod, "moderator")
    page = context.new_page()
    log_in(page, site, mod)
    for path in ["/admin/mail", "/admin/backups"]:
        response = page.goto(site.base + path)
        assert response.status == 403, path
    assert page.get_by_role("link", name="Backups").count() == 0, "not offered in the menu"


def test_backups_are_listed_taken_verified_and_downloaded(site, context):
    boss = site.unique("boss")
    site.register(boss)
    site.promote(boss)
    page = context.new_page()
    log_in(page, site, boss)
    page.get_by_role("link", name="Backups").click()
    rows = page.locator("tbody tr")
    assert eventually(lambda: rows.count() >= 1, page=page), "the start-up backup is listed"
    before = rows.count()
    page.get_by_role("button", name="Take a backup now").click()
    assert eventually(lambda: rows.count() == before + 1, seconds=60, page=page), "a new one is listed"
    name = rows.first.locator("td").first.inner_text()
    rows.first.get_by_role("button", name="Verify").click()
    assert eventually(lambda: "restores" in rows.first.inner_text(), seconds=60, page=page), rows.first.inner_text()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    form = {"csrf": csrf, "name": name, "password": PASSWORD}
    response = context.request.post(site.base + "/admin/backups/download", form=form, headers={"Origin": site.base})
    assert response.status == 200
    assert "attachment" in response.headers["content-disposition"]
    assert response.body() == (site.backups / name).read_bytes()
    for other in ["../conduit.db", "conduit.db", f"../backups/{name}"]:
        response = context.request.post(site.base + "/admin/backups/download", form={**form, "name": other},
                                        headers={"Origin": site.base})
        assert response.status == 404, f"{other}: nothing outside the backups is served"
    for action, target in [("backup", "backup (a new one)"), ("verify", f"backup {name}"),
                           ("download", f"backup {name}")]:
        assert_logged(page, site, boss, action, target)


def test_articles_are_found_and_a_comment_is_hidden(site, context):
    boss, author, troll = site.unique("boss"), site.unique("author"), site.unique("troll")
    site.register(boss)
    site.promote(boss)
    author_token, troll_token = site.register(author), site.register(troll)
    title = f"<b>bold</b> {author} title"
    status, body = call(site.base, "POST", "/api/articles",
                        {"article": {"title": title, "description": "d", "body": "b"}}, author_token)
    slug = body["article"]["slug"]
    call(site.base, "POST", f"/api/articles/{slug}/comments", {"comment": {"body": "rude words"}}, troll_token)
    page = context.new_page()
    fail_on_dialogs(page)
    log_in(page, site, boss)
    page.get_by_role("link", name="Articles").click()
    page.get_by_label("Search").fill(author)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=title).click()
    assert page.get_by_role("heading", level=1).inner_text() == title, "markup in a title is text"
    comment = page.locator("li.comment", has_text="rude words")
    comment.get_by_label("Action").select_option("hide")
    comment.get_by_label("Reason").fill("rude")
    comment.get_by_label("Your password (if needed)").fill(PASSWORD)
    comment.get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    status, thread = call(site.base, "GET", f"/api/articles/{slug}/comments")
    assert status == 200 and thread["comments"] == [], "hidden from readers"


def test_a_verification_link_is_sent_again_from_a_users_page(site, context):
    page, victim = admin_and_victim(site, context)
    address = f"{victim}@example.com"
    assert eventually(lambda: address in site.mailbox.delivered), "the registration's own link"
    before = site.mailbox.delivered.count(address)
    page.goto(f"{site.base}/admin/users/{victim}")
    page.get_by_role("button", name="Resend the verification link").click()
    assert eventually(lambda: site.mailbox.delivered.count(address) == before + 1), "one more link"


def test_the_dashboard_charts_count_todays_sign_ups_and_articles(site, context):
    boss = site.unique("boss")
    site.register(boss)
    site.promote(boss)
    page = context.new_page()
    log_in(page, site, boss)
    signups, posts = (int(page.locator(f"#{id}-total").inner_text()) for id in ("signups", "posts"))
    token = site.register(site.unique("newcomer"))
    call(site.base, "POST", "/api/articles", {"article": {"title": "Day one", "description": "d", "body": "b"}}, token)
    page.reload()
    assert int(page.locator("#signups-total").inner_text()) == signups + 1
    assert int(page.locator("#posts-total").inner_text()) == posts + 1
    bars = page.locator("svg[aria-labelledby='posts-title'] rect")
    assert bars.count() == 30
    assert int(bars.last.get_attribute("height")) > 0, "today's bar is drawn"


def test_a_console_session_holds_on_every_instance_and_ends_on_all(site, context):
    boss = site.unique("boss")
    site.register(boss)
    site.promote(boss)
    page = context.new_page()
    log_in(page, site, boss)
    with site.another_instance() as other:
        # Cookies belong to a host, not a port: the browser sends the console's to both.
        page.goto(other + "/admin/users")
        assert page.url == other + "/admin/users", "logged in there too"
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(other + "/admin/login")
    page.goto(site.base + "/admin")
    assert page.url == site.base + "/admin/login", "the logout on one ended it on the other"


def test_a_role_change_lands_in_the_log_with_the_admin(site, context):
    page, victim = admin_and_victim(site, context)
    page.goto(f"{site.base}/admin/users/{victim}")
    page.get_by_label("Role").select_option("moderator")
    page.get_by_label("Your password", exact=False).last.fill(PASSWORD)
    page.get_by_role("button", name="Change the role").click()
    assert page.locator("#role").inner_text() == "moderator"
    assert "role: moderator" in page.locator("#history").locator("xpath=..").inner_text(), "on their page"
    page.get_by_role("link", name="Moderation log").click()
    row = page.locator("tbody tr").first
    assert victim in row.inner_text() and "role" in row.inner_text()


def slow_post(base, path, cookie=None, seconds=6):
    """Posts a form's headers, then its body a byte a second; the status line answered, and
    how long it took."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=seconds + 5) as conn:
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {base}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        conn.sendall((head + "\r\n").encode())
        answer = b""
        for _ in range(seconds):
            try:
                conn.sendall(b"a")
            except OSError:
                break  # the server closed it
            conn.settimeout(1)
            try:
                answer += conn.recv(4096)
            except socket.timeout:
                continue
            if answer:
                break
        return answer.split(b"\r\n", 1)[0].decode(), time.monotonic() - started


def test_a_body_sent_a_byte_a_second_is_cut_off_and_others_are_served(site, context):
    page, _ = admin_and_victim(site, context)
    cookie = next(f"{c['name']}={c['value']}" for c in context.cookies() if c["name"] == "conduit_admin")
    for path, with_cookie in [("/admin/login", None), ("/admin/actions", cookie)]:
        status, took = slow_post(site.base, path, with_cookie)
        assert " 408 " in status, f"{path}: {status!r}"
        assert took < BODY_TIMEOUT_SECS + 3, f"{path}: cut off after {took:.1f} s"
    page.goto(site.base + "/admin")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard", "the console still answers"


def test_a_login_flood_at_the_console_meets_the_apis_limit(site, context):
    boss = site.unique("boss")
    site.register(boss)
    site.promote(boss)

    def attempt(password):
        body = urllib.parse.urlencode({"email": f"{boss}@example.com", "password": password}).encode()
        request = urllib.request.Request(site.base + "/admin/login", data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    statuses = [attempt(f"guess {i}") for i in range(12)]
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[10:] == [429, 429], statuses
    assert attempt(PASSWORD) == 429, "the right password waits too, as at the API"
