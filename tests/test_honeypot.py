"""The honeypot: a field in the comment form people never see. A robot that fills in every field
fills it in too, and its comment is dropped with the answer a held comment gets, so it learns
nothing — through the no-JS form, the JSON API and the page's own JavaScript (a real chromium)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, Event
from app.moderation.models import Ban, BanKind
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer
from tests.test_admin_helpers import make_user, sign_in_admin
from tests.test_article import PERMALINK
from tests.test_comments import API, FORM, GUEST, ORIGIN, api_post, configure, csrf_token, stored

TRAP = "ak_hp_textarea"
ROOT = Path(__file__).resolve().parent.parent
HELD_LINK = re.compile(rf"^{re.escape(PERMALINK)}\?unapproved=(\d+)&moderation-hash=([\w-]+)"
                       r"#comment-(\d+)$")


def api_answer_shape(response, text):
    """What the poster of a JSON comment can see of the answer, with what differs between two
    comments (the id, the text, the time) taken out."""
    body = response.json
    comment = body["comment"]
    masked = re.sub(rf'(?<=[-="]){comment["id"]}(?=["&#])', "ID", comment["html"].replace(
        text, "TEXT"))
    masked = re.sub(r'<time datetime="[^"]*">[^<]*</time>', "<time>WHEN</time>", masked)
    return {
        "status": response.status_code,
        "headers": sorted(h for h in response.headers.keys() if h not in ("Date",
                                                                          "Content-Length")),
        "cookies": cookie_shape(response),
        "held": body["held"],
        "keys": sorted(body),
        "editable": body["editable_until"] is not None,
        "comment": {k: type(v).__name__ for k, v in comment.items()},
        "status_field": comment["status"],
        "html": masked,
    }


def cookie_shape(response):
    """Each cookie set: its name and attributes (its signed value and expiry date differ for
    every comment)."""
    cookies = []
    for header in response.headers.getlist("Set-Cookie"):
        name, *attributes = (part.strip() for part in header.split(";"))
        cookies.append((name.split("=", 1)[0],
                        sorted(a for a in attributes if not a.startswith("Expires="))))
    return sorted(cookies)


def event_count(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Event.id)))


class _Form(HTMLParser):
    """The comment form's elements, with their attributes and the attributes of their parents."""

    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.elements: list[tuple[str, dict, list[dict]]] = []
        self.labels: dict[str, str] = {}
        self._label: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs, list(self.stack)))
        if tag == "label":
            self._label = attrs.get("for")
            self.labels[self._label] = ""
        if tag not in ("input", "img", "br", "meta", "link"):
            self.stack.append(attrs)

    def handle_endtag(self, tag):
        if tag == "label":
            self._label = None
        if self.stack and tag not in ("input", "img", "br", "meta", "link"):
            self.stack.pop()

    def handle_data(self, data):
        if self._label is not None:
            self.labels[self._label] += data


# --- the trap on the page ------------------------------------------------------------------------

def test_the_form_has_a_trap_people_never_see(client):
    html = client.get(PERMALINK).get_data(as_text=True)
    form = _Form()
    form.feed(html)
    [(tag, attrs, parents)] = [e for e in form.elements if e[1].get("name") == TRAP]
    assert tag == "textarea"  # browsers' autofill leaves a textarea alone
    assert attrs["tabindex"] == "-1" and attrs["autocomplete"] == "off"
    holder = parents[-1]
    assert holder["class"] == "comment-form-hp" and holder["aria-hidden"] == "true"
    assert "Leave this field empty" in form.labels[attrs["id"]]
    # hidden by the stylesheet: the Content-Security-Policy forbids inline styles
    assert not any("style" in a for _, a, _ in form.elements)
    css = (ROOT / "static" / "css" / "parley.css").read_text()
    assert re.search(r"\.comment-form-hp\s*\{\s*display:\s*none", css)
    assert "'unsafe-inline'" not in client.get(PERMALINK).headers["Content-Security-Policy"]


def test_the_page_with_its_trap_is_the_same_bytes_for_every_anonymous_reader(app, client):
    first = client.get(PERMALINK).data
    other = app.test_client()
    other.get("/api/session")
    assert other.get(PERMALINK).data == first and TRAP.encode() in first


# --- what a robot gets -----------------------------------------------------------------------------

def test_a_filled_trap_in_the_form_is_dropped_with_a_held_comments_redirect(app):
    configure(app, comment_flood_seconds=0, comment_moderation="everyone")
    held = app.test_client().post(FORM, data={**GUEST, "comment": "Held, honestly.", TRAP: ""},
                                  headers=ORIGIN)
    before, events = stored(app), event_count(app)

    dropped = app.test_client().post(FORM, data={**GUEST, "comment": "Buy followers",
                                                 TRAP: "I fill in every box"}, headers=ORIGIN)

    assert stored(app) == before and event_count(app) == events  # nothing stored, nothing announced
    assert held.status_code == dropped.status_code == 303
    kept, gone = HELD_LINK.match(held.location), HELD_LINK.match(dropped.location)
    assert kept and gone, (held.location, dropped.location)
    assert len(kept.group(2)) == len(gone.group(2))  # a moderation-hash like any other
    assert gone.group(1) == gone.group(3) == str(before[-1][0] + 1)  # the id it would have had
    assert cookie_shape(dropped) == cookie_shape(held)


def test_a_filled_trap_through_the_api_gets_a_held_comments_answer(app):
    configure(app, comment_flood_seconds=0, comment_moderation="everyone")
    held = api_post(app.test_client(), {**GUEST, "comment": "Held, honestly.", TRAP: ""})
    before, events = stored(app), event_count(app)

    dropped = api_post(app.test_client(), {**GUEST, "comment": "Buy followers", TRAP: "filled"})

    assert stored(app) == before and event_count(app) == events
    assert api_answer_shape(dropped, "Buy followers") == api_answer_shape(held, "Held, honestly.")


@pytest.mark.parametrize("value", ["x", " spam ", 42, ["a"], {"a": 1}, True])
def test_anything_in_the_trap_is_telling(app, client, value):
    configure(app, comment_flood_seconds=0, comment_moderation="nobody")
    response = api_post(client, {**GUEST, "comment": "Hello", TRAP: value})
    assert response.status_code == 201 and response.json["held"] is True
    assert len(stored(app)) == 1  # only the article's own comment


@pytest.mark.parametrize("value", ["", "   ", None])
def test_people_leave_it_empty_and_are_not_troubled(app, client, value):
    configure(app, comment_flood_seconds=0, comment_moderation="nobody")
    response = api_post(client, {**GUEST, "comment": "Hello", TRAP: value})
    assert response.status_code == 201 and response.json["held"] is False
    form = client.post(FORM, data={**GUEST, "comment": "Hello again", TRAP: value or ""},
                       headers=ORIGIN)
    assert form.status_code == 303 and "unapproved=" not in form.location
    assert [row[3] for row in stored(app)][-2:] == ["Hello", "Hello again"]


def test_a_dropped_answer_grants_nothing_over_the_comment_that_takes_its_id(app):
    """The robot's cookie and link are made for an id no comment has: on SQLite the next real
    comment does take the id the robot was shown."""
    configure(app, comment_flood_seconds=0, comment_moderation="everyone")
    robot = app.test_client()
    answer = api_post(robot, {**GUEST, "comment": "Buy followers", TRAP: "filled"})
    shown = answer.json["comment"]["id"]
    link = robot.post(FORM, data={**GUEST, "comment": "Buy likes", TRAP: "filled"},
                      headers=ORIGIN).location

    person = app.test_client()
    real = api_post(person, {"author": "Sana", "email": "sana@example.com",
                             "comment": "My own held comment."}).json["comment"]["id"]
    assert stored(app)[-1][3] == "My own held comment."

    session = robot.get("/api/session?post=pakistan-russia-agree-to-bury-the-hatchet").json
    assert session["held"] == [] and session["mine"] == []
    edit = robot.put(f"/api/comments/{real}", json={"comment": "Hijacked"},
                     headers={"X-CSRFToken": csrf_token(robot)})
    assert edit.status_code == 403
    assert robot.delete(f"/api/comments/{real}",
                        headers={"X-CSRFToken": csrf_token(robot)}).status_code == 403
    for url in (link.split("#")[0], f"{PERMALINK}?unapproved={shown}&moderation-hash="
                + HELD_LINK.match(link).group(2)):
        assert "My own held comment." not in robot.get(url).get_data(as_text=True)
    assert stored(app)[-1][3] == "My own held comment."


# --- where it sits among the checks -----------------------------------------------------------------

def test_bans_and_disallowed_keywords_come_first(app, client):
    configure(app, comment_flood_seconds=0, comment_moderation="nobody", ban_action="refuse",
              disallowed_keys=["casino"])
    with app.app_context():
        db.session.add(Ban(kind=BanKind.EMAIL, value="banned@example.com"))
        db.session.commit()
    banned = api_post(client, {**GUEST, "email": "banned@example.com", "comment": "Hi",
                               TRAP: "filled"})
    assert banned.status_code == 403  # refused politely, as any banned author is
    trashed = api_post(client, {**GUEST, "comment": "casino", TRAP: "filled"})
    assert trashed.status_code == 201
    with app.app_context():
        assert db.session.get(Comment, trashed.json["comment"]["id"]).status.value == "trash"


def test_an_admin_is_never_checked(app, client):
    configure(app, comment_flood_seconds=0, comment_moderation="nobody")
    sign_in_admin(client, make_user(app, "moderator@example.com", admin=True))
    response = client.post(API, json={"comment": "From the desk.", TRAP: "autofilled"},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 201 and response.json["held"] is False
    assert stored(app)[-1][3] == "From the desk."


# --- in a real browser ---------------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'browser.db'}")
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    with LiveServer(app) as server:
        yield app, server
    with app.app_context():
        db.engine.dispose()


def _fill(page, text):
    page.fill("#comment", text)
    page.fill("#author", "Bilal")
    page.fill("#email", "bilal@example.com")


@pytest.mark.browser
def test_in_a_browser_people_never_meet_the_trap_and_robots_are_dropped(browser, site):
    app, server = site
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + PERMALINK)
    assert not page.is_visible(f"[name={TRAP}]")
    assert page.eval_on_selector(f"[name={TRAP}]", "e => e.getBoundingClientRect().height") == 0
    # Tab from the comment box goes on to the next field a person fills in, never to the trap
    page.focus("#comment")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") != TRAP

    _fill(page, "A person's comment.")
    page.click("#submit")
    page.wait_for_selector("text=A person's comment.")
    assert stored(app)[-1][3] == "A person's comment."

    # a robot driving the page fills in every field, the hidden one too (parley.js sends it)
    _fill(page, "A robot's comment.")
    page.eval_on_selector(f"[name={TRAP}]", "e => { e.value = 'filled by a robot'; }")
    page.click("#submit")
    page.wait_for_selector("text=A robot's comment.")  # shown to it as a held comment is
    assert "awaiting moderation" in page.text_content(".comment-held")
    assert "A robot's comment." not in [row[3] for row in stored(app)]
    assert errors == []


@pytest.mark.browser
def test_without_javascript_a_person_posts_through_the_trap(browser, site):
    app, server = site
    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(server.url + PERMALINK)
    _fill(page, "No script here.")
    page.click("#submit")
    page.wait_for_selector("text=No script here.")
    assert "#comment-" in page.url and "unapproved" not in page.url
    assert stored(app)[-1][3] == "No script here."
