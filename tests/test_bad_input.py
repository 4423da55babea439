"""Bad input (issue 7, point 8): naughty strings in every field, oversized and malformed bodies,
`next` addresses, and no script ever running in a real browser (the fuzzer on the JSON API is in
tests/test_openapi.py).

Every case must be answered without a 5xx; a rejected case must leave what is stored exactly as
it was (accepted ones are fine: naughty text is still text).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post, Subscription
from tests.conftest import make_app, reset_database
from tests.test_comments import API, FORM, GUEST, configure, csrf_token

DATA = Path(__file__).resolve().parent / "data"
BLNS: list[str] = json.loads((DATA / "blns.json").read_text("utf-8"))
SLUG = "pakistan-russia-agree-to-bury-the-hatchet"
PERMALINK = f"/2011/01/25/{SLUG}/"
LIVE = f"/api/posts/{SLUG}/live"
ORIGIN = {"Origin": "http://localhost"}

# Payloads that would set a sentinel (or open a dialog) if any of them ever ran in the page.
XSS: list[str] = [
    '<img src=x onerror="window.__xss=1">',
    "<img src=x onerror=window.__xss=1>",
    '"><img src=x onerror="window.__xss=1">',
    "'><img src=x onerror='window.__xss=1'>",
    "<script>window.__xss=1</script>",
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "<body onload=window.__xss=1>",
    "<details open ontoggle=window.__xss=1>",
    "<iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "<noscript><p title=\"</noscript><img src=x onerror=window.__xss=1>\">",
    "<a href=\"javascript:window.__xss=1\" id=xss>click</a>",
    "<a href=\"jav&#x09;ascript:window.__xss=1\">tab</a>",
    "<b onmouseover=window.__xss=1 style=\"display:block;width:9999px;height:9999px\">hover</b>",
    "<input autofocus onfocus=window.__xss=1>",
    "<video><source onerror=window.__xss=1></video>",
    "<object data=\"javascript:window.__xss=1\"></object>",
    "<embed src=\"javascript:window.__xss=1\">",
    "<base href=\"javascript:window.__xss=1//\">",
    "<meta http-equiv=refresh content=\"0;url=javascript:window.__xss=1\">",
    "<form><button formaction=javascript:window.__xss=1>x</button></form>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "http://example.com/\"onmouseover=\"window.__xss=1",
    "https://example.com/'><img src=x onerror=window.__xss=1>",
    "<<script>script>window.__xss=1<</script>/script>",
    "<scr<script>ipt>window.__xss=1</scr</script>ipt>",
    "\u003cimg src=x onerror=window.__xss=1\u003e",
    "<img src=`x` onerror=window.__xss=1>",
]
# What the Big List leaves out: a NUL (PostgreSQL refuses it), numbers that overflow an id.
EXTRA: list[str] = ["\x00", "comment\x00with a NUL", "99999999999999999999999999", "2147483648",
                    "-2147483649", "1e400", "Infinity", "NaN", "0x10", "\u0661\u0662", "٣"]
NAUGHTY: list[str] = BLNS + XSS + EXTRA

FORM_FIELDS = ("comment", "author", "email", "url", "comment_parent",
               "wp-comment-cookies-consent", "subscribe_comments", "subscribe_blog")
JSON_FIELDS = ("comment", "author", "email", "url", "comment_parent", "parent_id",
               "subscribe_comments", "subscribe_blog", "notify", "remember")


# --- what is stored, and checking that a rejected case changed none of it -------------------

def fingerprint() -> tuple:
    """A cheap per-case view of everything a comment submission can write (one query)."""
    def scalar(*columns):
        return sa.select(*columns).scalar_subquery()

    row = db.session.execute(sa.select(
        scalar(sa.func.count(Comment.id)), scalar(sa.func.max(Comment.id)),
        # (not updated_at: after the commit, subscriber mail marks a new comment `notified_at`)
        scalar(sa.func.max(Comment.edited_at)),
        scalar(sa.func.sum(sa.func.length(Comment.content) + sa.func.length(Comment.author_name))),
        scalar(sa.func.count(Event.id)), scalar(sa.func.max(Event.id)),
        scalar(sa.func.count(Subscription.id)), scalar(sa.func.max(Subscription.id)),
        scalar(sa.func.max(Post.updated_at)),
    )).one()
    db.session.rollback()
    return tuple(row)


def rows(after_id: int = 0) -> dict[int, tuple]:
    result = {
        row.id: (row.post_id, row.parent_id, row.author_name, row.author_email, row.author_url,
                 row.content, row.content_html, row.status.value, row.notify, row.edited_at)
        for row in db.session.scalars(sa.select(Comment).where(Comment.id > after_id))
    }
    db.session.rollback()
    return result


class Ledger:
    """The comments table as it must be: a snapshot plus every accepted comment, as accepted."""

    def __init__(self, app) -> None:
        self.app = app
        with app.app_context():
            self.expected = rows()
            self.fingerprint = fingerprint()
        self.failures: list[str] = []
        self.accepted = 0

    def check(self, label: str, response, accepted_statuses=(201, 303)) -> None:
        status = response.status_code
        with self.app.app_context():
            if status >= 500:
                self.failures.append(f"{label}: {status} {response.get_data(as_text=True)[:200]}")
            if status in accepted_statuses:
                self.accepted += 1
                self.expected.update(rows(max(self.expected, default=0)))
                self.fingerprint = fingerprint()
            else:
                now = fingerprint()
                if now != self.fingerprint:
                    self.failures.append(f"{label}: rejected with {status} but stored data changed")
                    self.expected = rows()
                    self.fingerprint = now

    def finish(self) -> None:
        with self.app.app_context():
            actual = rows()
        if actual != self.expected:
            changed = [i for i in set(actual) | set(self.expected)
                       if actual.get(i) != self.expected.get(i)]
            self.failures.append(f"stored comments differ from what was accepted: ids {changed[:20]}"
                                 f" e.g. {self.expected.get(changed[0])} -> {actual.get(changed[0])}")
        assert not self.failures, f"{len(self.failures)} bad answers:\n" + "\n".join(
            self.failures[:40])


@pytest.fixture
def naughty_app(database_url):
    """Flood and rate limits off; nothing mailed to moderators while thousands of cases run."""
    app = make_app(database_url, RATELIMIT_ENABLED=False)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash must show as the 500 a reader gets
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_flood_seconds=0, moderation_notify=False, comment_moderation="nobody")
    yield app
    dispose(app)


def dispose(app) -> None:
    """Let the mail thread finish (accepted comments queue subscriber mail), then close the pool."""
    from app.mail import get_mailer

    get_mailer(app).join()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _baseline(i: int) -> dict[str, str]:
    return {"comment": f"Baseline comment number {i}.", "author": f"Tester {i}",
            "email": f"tester{i}@example.com", "url": ""}


# Each sweep feeds every naughty string to the fields it names, the others staying valid. The
# text fields a reader sees share one sweep, so most of its cases are stored; a field that
# rejects most strings gets its own (the JSON API's checkboxes take only true and false).
JSON_SWEEPS = {
    "text": ("comment", "author"),
    "checkboxes": ("subscribe_comments", "subscribe_blog", "notify", "remember"),
    # (validation looks at every field, so a reply-to that is checked alongside an email that is
    # refused is still checked; `parent_id` is read only when `comment_parent` is absent)
    "email+comment_parent": ("email", "comment_parent"),
    "url": ("url",),
    "parent_id": ("parent_id",),
}
FORM_SWEEPS = {
    "text+checkboxes": ("comment", "author", "wp-comment-cookies-consent", "subscribe_comments",
                        "subscribe_blog"),
    "every field at once": FORM_FIELDS,
}
# Not strings at all, where JSON lets a client send them.
WRONG_TYPES = (None, 1.5, -1, 10**30, 1e308, [], ["x"], {"a": "b"}, True, False)


def test_the_sweeps_cover_every_field():
    assert {f for fields in JSON_SWEEPS.values() for f in fields} == set(JSON_FIELDS)
    assert {f for fields in FORM_SWEEPS.values() for f in fields} == set(FORM_FIELDS)


@pytest.mark.parametrize("sweep", JSON_SWEEPS)
def test_every_json_field_survives_the_naughty_strings(naughty_app, sweep):
    client = naughty_app.test_client()
    headers = {"X-CSRFToken": csrf_token(client)}
    ledger = Ledger(naughty_app)
    fields = JSON_SWEEPS[sweep]
    for i, value in enumerate([*NAUGHTY, *WRONG_TYPES]):
        payload = {**_baseline(i), **dict.fromkeys(fields, value)}
        ledger.check(f"{sweep}={value!r}", client.post(API, json=payload, headers=headers))
    ledger.finish()
    if sweep == "text":
        assert ledger.accepted > 300  # the sweep reached the storing code, not only validation
    if sweep == "checkboxes":
        assert ledger.accepted == 2  # true and false, as the OpenAPI document says


@pytest.fixture
def naughty_form_app(tmp_path):
    """The form shares the JSON API's validation and storage (swept on both databases above);
    what is its own — form parsing and the error re-render — does not depend on the database."""
    app = make_app(f"sqlite:///{tmp_path / 'form.db'}", RATELIMIT_ENABLED=False)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    # Held, so that the error re-renders of the page stay small however many are accepted.
    configure(app, comment_flood_seconds=0, moderation_notify=False, comment_moderation="everyone")
    yield app
    dispose(app)


@pytest.mark.parametrize("sweep", FORM_SWEEPS)
def test_every_form_field_survives_the_naughty_strings(naughty_form_app, sweep):
    client = naughty_form_app.test_client()
    ledger = Ledger(naughty_form_app)
    fields = FORM_SWEEPS[sweep]
    for i, value in enumerate(NAUGHTY):
        data = {**_baseline(i), **dict.fromkeys(fields, value)}
        response = client.post(FORM, data=data, headers=ORIGIN)
        ledger.check(f"{sweep}={value!r}", response)
        if response.status_code == 400 and "\x00" not in value and value.strip():
            # the form keeps every character typed (HTML-escaped) when it shows the errors
            from markupsafe import escape

            page = response.get_data(as_text=True)
            if fields is FORM_FIELDS and str(escape(value.strip())) not in page:
                ledger.failures.append(f"{sweep}={value!r}: the draft was not kept")
    ledger.finish()


# --- oversized, malformed and unauthenticated bodies ------------------------------------------

def test_oversized_bodies_are_refused_with_413(naughty_app):
    client = naughty_app.test_client()
    ledger = Ledger(naughty_app)
    big = "a" * (256 * 1024 + 1)
    response = client.post(API, data=json.dumps({**GUEST, "comment": big}),
                            content_type="application/json",
                            headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 413
    assert response.is_json and set(response.json) == {"error", "message", "fields"}
    ledger.check("json 413", response)
    response = client.post(FORM, data={**GUEST, "comment": big}, headers=ORIGIN)
    assert response.status_code == 413 and response.mimetype == "text/html"
    ledger.check("form 413", response)
    # the largest comment WordPress allows still fits
    response = client.post(API, json={**GUEST, "comment": "b" * 65525},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 201
    ledger.check("largest comment", response)
    ledger.finish()


MALFORMED = [b"{not json", b"", b"null", b"[]", b'"a string"', b"42", b"\xff\xfe\x00{",
             b'{"comment": "unterminated', b"[" * 100_000, b'{"a":' * 50_000,
             b'{"comment": "x", "comment": ', b"\xef\xbb\xbf{}"]


@pytest.mark.parametrize("body", MALFORMED, ids=lambda b: repr(b[:16]))
def test_malformed_json_is_a_400_with_the_error_shape(naughty_app, body):
    client = naughty_app.test_client()
    ledger = Ledger(naughty_app)
    response = client.post(API, data=body, content_type="application/json",
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert set(response.json) == {"error", "message", "fields"}
    ledger.check("malformed", response)
    ledger.finish()


def test_json_sent_with_another_content_type_is_a_400(naughty_app):
    client = naughty_app.test_client()
    response = client.post(API, data=json.dumps({**GUEST, "comment": "hi"}),
                           content_type="text/plain", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400 and set(response.json) == {"error", "message", "fields"}


@pytest.mark.parametrize("token", [None, "", "forged", "\x00", "a" * 5000])
def test_the_json_api_without_a_valid_csrf_token_is_a_400(naughty_app, token):
    client = naughty_app.test_client()
    client.get("/api/session")  # a session of its own, so only the token is missing or wrong
    ledger = Ledger(naughty_app)
    headers = {} if token is None else {"X-CSRFToken": token}
    response = client.post(API, json={**GUEST, "comment": "no token"}, headers=headers)
    assert response.status_code == 400
    assert response.json["error"] == "csrf_failed" and set(response.json) == {
        "error", "message", "fields"}
    ledger.check("csrf", response)
    ledger.finish()


@pytest.mark.parametrize("query", ["after=99999999999999999999", "after=-1", "after=1e3",
                                   "after=%00", "after=" + "9" * 5000])
def test_bad_after_is_a_400(naughty_app, query):
    response = naughty_app.test_client().get(f"{API}?{query}")
    assert response.status_code == 400 and response.json["fields"] == {
        "after": "Must be a whole number."}


@pytest.mark.parametrize("path", ["/api/posts/%00/comments", "/api/posts/a%00b/live",
                                  "/2011/01/25/a%00b/", "/api/session?post=%00",
                                  "/api/comments/99999999999999999999"])
def test_nul_bytes_and_huge_ids_in_the_address_are_not_a_500(naughty_app, path):
    client = naughty_app.test_client()
    method = client.delete if path.startswith("/api/comments/") else client.get
    assert method(path).status_code in (200, 400, 403, 404)


def _first_chunks(response, count: int) -> list[bytes]:
    chunks, stream = [], iter(response.response)
    for _ in range(count):
        chunks.append(next(stream))
    response.close()
    return chunks


@pytest.mark.parametrize("value", ["99999999999999999999", "-5", "1000000", "2147483648"])
def test_a_last_event_id_from_the_future_does_not_silence_the_post_for_others(tmp_path, value):
    """One reader's Last-Event-ID beyond the log's end once set the worker's position for the post
    there, so no reader of the post on that worker heard of anything new. (SQLite only: this is
    the hub's logic, and its thread outlives the test, polling whatever database it was given.)"""
    from tests.servers import LiveServer, SSEReader
    from tests.test_live import post_comment

    app = make_app(f"sqlite:///{tmp_path / 'future.db'}", LIVE_HEARTBEAT_SECONDS=0.5)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_flood_seconds=0, moderation_notify=False, comment_moderation="nobody")
    with LiveServer(app) as server:
        odd = SSEReader(server.url + LIVE, last_event_id=value)
        assert odd.status == 200
        reader = SSEReader(server.url + LIVE)
        try:
            time.sleep(0.3)
            assert post_comment(server.url, f"heard by all {value}").status_code == 201
            for r in (odd, reader):
                events = r.wait_for(2, timeout=5)
                assert [e.event for e in events] == ["comment.created", "count"], value
        finally:
            odd.close()
            reader.close()
    dispose(app)


def test_a_bad_last_event_id_is_a_400(naughty_app):
    client = naughty_app.test_client()
    for value in ("x", "1.5", "9" * 5000):
        response = client.get(LIVE, headers={"Last-Event-ID": value})
        assert response.status_code == 400 and response.is_json


# --- `next`: a plain same-site path, decided before anything is done --------------------------

BAD_NEXT = ["/admin/\r\nX-Injected: 1", "/admin/\nX-Injected: 1", "/admin/\x00", "/admin/\x7f",
            "/admin/\x85", "https://evil.example/admin/", "//evil.example/admin/",
            "/\\evil.example/admin/", "/admin/%2e%2e/%2e%2e/evil", "/admin/../login/google",
            "/blog/", "javascript:alert(1)", "/admin/" + "x" * 5000]


def _admin_client(app):
    from tests.test_admin_helpers import make_admin

    make_admin(app)
    return app.test_client()


@pytest.mark.parametrize("next_url", BAD_NEXT, ids=lambda v: repr(v)[:40])
def test_admin_sign_in_with_a_bad_next_lands_on_the_queue(naughty_app, next_url):
    """`GET /admin/login?next=/admin/%0D%0AX-Injected:%201`, then signing in, was a 500."""
    from tests.test_admin_helpers import login

    client = _admin_client(naughty_app)
    page = client.get("/admin/login", query_string={"next": next_url})
    assert page.status_code == 200
    assert 'name="next" type="hidden" value=""' in page.get_data(as_text=True)
    response = login(client, next=next_url)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    assert "X-Injected" not in response.headers
    assert client.get("/admin/").status_code == 200  # signed in


@pytest.mark.parametrize("next_url", BAD_NEXT, ids=lambda v: repr(v)[:40])
def test_an_admin_action_with_a_bad_next_is_done_and_goes_back_to_the_queue(naughty_app,
                                                                            next_url):
    """The moderation action used to be committed and then answered with a 500."""
    from tests.test_admin_helpers import add_comment, csrf_token, login, status_of

    client = _admin_client(naughty_app)
    login(client)
    token = csrf_token(client, "/admin/")
    held = add_comment(naughty_app)
    response = client.post(f"/admin/comments/{held}/approve",
                           data={"csrf_token": token, "next": next_url})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    assert status_of(naughty_app, held) is CommentStatus.APPROVED
    # the page's script gets the row back, its forms pointing back at the queue
    other = add_comment(naughty_app)
    answer = client.post(f"/admin/comments/{other}/spam", data={"csrf_token": token,
                                                                "next": next_url},
                         headers={"Accept": "application/json"})
    assert answer.status_code == 200 and 'name="next" value=""' in answer.json["html"]
    for path, data in ((f"/admin/comments/{held}/reply", {"content": "Thanks!"}),
                       ("/admin/comments/bulk", {"action": "trash", "ids": str(other)}),
                       ("/admin/comments/empty/trash", {}),
                       ("/admin/bans", {"kind": "email", "value": "spam@example.com",
                                        "expires": ""})):
        response = client.post(path, data={"csrf_token": token, "next": next_url, **data})
        assert response.status_code == 303, (path, response.get_data(as_text=True)[:300])
        assert response.headers["Location"] in ("/admin/", "/admin/bans"), path


@pytest.mark.parametrize("next_url", ["/admin/?status=pending&s=caf%C3%A9", "/admin/bans",
                                      "/admin/?s=a%0D%0Ab"])  # encoded: harmless in a URL
def test_an_admin_action_goes_back_to_a_good_next(naughty_app, next_url):
    from tests.test_admin_helpers import add_comment, csrf_token, login

    client = _admin_client(naughty_app)
    login(client)
    held = add_comment(naughty_app)
    response = client.post(f"/admin/comments/{held}/approve",
                           data={"csrf_token": csrf_token(client, "/admin/"), "next": next_url})
    assert response.status_code == 303 and response.headers["Location"] == next_url


# --- no script ever runs: the naughty comments in a real browser ------------------------------

@pytest.mark.browser
def test_no_naughty_comment_runs_script_in_the_browser(browser, tmp_path):
    from tests.servers import LiveServer

    app = make_app(f"sqlite:///{tmp_path / 'xss.db'}", RATELIMIT_ENABLED=False,
                   LIVE_HEARTBEAT_SECONDS=2)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_flood_seconds=0, moderation_notify=False, comment_moderation="nobody",
              comment_max_links=0)
    client = app.test_client()
    headers = {"X-CSRFToken": csrf_token(client)}

    def store(values: list[str], offset: int) -> int:
        accepted = 0
        for i, value in enumerate(values, start=offset):
            for payload in ({"comment": value, "author": value, "email": f"x{i}@example.com"},
                            {"comment": f"website {i}", "author": f"Site {i}",
                             "email": f"u{i}@example.com", "url": value}):
                status = client.post(API, json=payload, headers=headers).status_code
                assert status < 500
                accepted += status == 201
        return accepted

    # Most of them are stored before the page is opened (server-rendered) ...
    assert store(NAUGHTY, 0) > 300
    with LiveServer(app) as server:
        context = browser.new_context(bypass_csp=True)  # test the escaping, not only the CSP
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(server.url + PERMALINK)
        page.wait_for_selector("#comments[data-live=open]")
        before = page.locator("#commentlist li.comment").count()
        # ... and the XSS payloads once more while it is open, so they arrive live (innerHTML)
        live = store([f"{x} (live)" for x in XSS], 100_000)
        page.wait_for_function(f"document.querySelectorAll('#commentlist li.comment').length"
                               f" >= {before + live}", timeout=20_000)
        page.mouse.move(10, 10)
        page.mouse.move(400, 400)
        page.wait_for_timeout(500)  # let any onerror / onload / ontoggle fire
        assert page.evaluate("window.__xss") is None
        assert dialogs == []
        context.close()
    dispose(app)
