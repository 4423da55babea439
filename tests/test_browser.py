"""The article page in a real browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import time

import pytest

from app.extensions import db
from app.live import get_hub
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer
from tests.test_comments import configure

pytestmark = pytest.mark.browser
PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


@pytest.fixture
def site(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'browser.db'}", LIVE_HEARTBEAT_SECONDS=2)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    with LiveServer(app) as server:
        yield app, server
    with app.app_context():
        db.engine.dispose()


def fill_guest(page, text, name="Bilal", email="bilal@example.com"):
    page.fill("#comment", text)
    page.fill("#author", name)
    page.fill("#email", email)


def test_a_comment_posted_in_one_page_appears_live_in_another(browser, site):
    app, server = site
    writer = browser.new_context().new_page()
    reader = browser.new_context().new_page()
    errors: list[str] = []
    for page in (writer, reader):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + PERMALINK)
    reader.wait_for_selector("#comments[data-live=open]")
    reader_url = reader.url

    fill_guest(writer, "Seen live, without a reload.")
    started = time.monotonic()
    writer.click("#submit")
    # the writer sees their comment in place at once, the form cleared for the next one
    writer.wait_for_selector("text=Seen live, without a reload.")
    # (the live event may show it a moment before the POST's answer clears the box)
    writer.wait_for_function("document.getElementById('comment').value === ''", timeout=3000)
    reader.wait_for_selector("text=Seen live, without a reload.", timeout=3000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"took {elapsed:.2f}s"
    assert reader.url == reader_url  # no reload, no navigation
    assert reader.text_content(".comment-count") == "2 comments"
    assert reader.locator("#commentlist > li.comment").count() == 2
    reader.wait_for_function(
        "document.getElementById('live-announcer').textContent === 'New comment from Bilal'")
    assert errors == []


def test_reply_link_moves_the_form_and_the_reply_nests(browser, site):
    app, server = site
    page = browser.new_context().new_page()
    page.goto(server.url + PERMALINK)
    page.click(".comment-reply-link")
    # the form now sits under the comment, and Cancel reply brings it back
    assert page.locator("#li-comment-1 #respond").count() == 1
    page.click("#cancel-comment-reply-link")
    assert page.locator("#li-comment-1 #respond").count() == 0
    page.click(".comment-reply-link")
    fill_guest(page, "A threaded reply.")
    page.click("#submit")
    reply = page.wait_for_selector("#li-comment-1 ol.children li.comment.depth-2")
    assert "A threaded reply." in reply.text_content()


def test_errors_show_next_to_fields_and_keep_the_draft(browser, site):
    app, server = site
    page = browser.new_context().new_page()
    page.goto(server.url + PERMALINK)
    page.wait_for_function("document.querySelector('#comments')")
    page.fill("#comment", "My careful draft — “quoted”")
    page.fill("#email", "not an email")
    page.click("#submit")
    page.wait_for_selector("#author-error:not([hidden])")
    assert page.text_content("#author-error") == "Please fill in your name."
    assert page.text_content("#email-error") == "Please enter a valid email address."
    assert page.input_value("#comment") == "My careful draft — “quoted”"


def test_a_held_comment_shows_to_its_author_and_flips_live_when_approved(browser, site):
    app, server = site
    configure(app, comment_moderation="everyone")
    page = browser.new_context().new_page()
    page.goto(server.url + PERMALINK)
    page.wait_for_selector("#comments[data-live=open]")
    fill_guest(page, "Please approve me.")
    page.click("#submit")
    held = page.wait_for_selector("li.comment-held")
    assert "Your comment is awaiting moderation." in held.text_content()
    # after a reload it is still there for its author (cookie), not for anyone else
    page.reload()
    page.wait_for_selector("li.comment-held")
    other = browser.new_context().new_page()
    other.goto(server.url + PERMALINK)
    other.wait_for_selector("#comments[data-live=open]")
    assert other.locator("text=Please approve me.").count() == 0
    page.wait_for_selector("#comments[data-live=open]")

    from app.comments import service
    from app.models import Comment, CommentStatus

    with app.app_context():
        comment = db.session.scalar(db.select(Comment).where(Comment.content == "Please approve me."))
        service.set_status(comment, CommentStatus.APPROVED)
        db.session.commit()
    page.wait_for_selector("li.comment-held", state="detached", timeout=5000)
    assert page.locator("text=Please approve me.").count() == 1
    assert "Your comment is awaiting moderation." not in page.text_content("#commentlist")
    other.wait_for_selector("text=Please approve me.", timeout=5000)


def test_the_page_works_without_javascript(browser, site):
    app, server = site
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + PERMALINK)
    fill_guest(page, "No script needed.")
    page.click("#submit")
    page.wait_for_load_state()
    assert "#comment-" in page.url
    assert page.locator("text=No script needed.").count() == 1


def test_phone_layout_has_no_horizontal_scroll(browser, site):
    app, server = site
    page = browser.new_context(viewport={"width": 375, "height": 740}).new_page()
    page.goto(server.url + PERMALINK)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375


def test_an_offline_avatar_falls_back_without_breaking_the_layout(browser, site):
    app, server = site
    context = browser.new_context()
    context.route("**/*gravatar.com/**", lambda route: route.abort())  # as if offline
    page = context.new_page()
    page.goto(server.url + PERMALINK)
    avatar = page.locator("#li-comment-1 img.avatar")
    page.wait_for_function(
        "document.querySelector('#li-comment-1 img.avatar').src.endsWith('/static/img/avatar.svg')")
    box = avatar.bounding_box()
    assert box is not None and round(box["width"]) == 48 and round(box["height"]) == 48


def test_a_comment_landing_above_the_reader_keeps_their_place_and_shows_a_notice(browser, site):
    app, server = site
    page = browser.new_context(viewport={"width": 1000, "height": 400}).new_page()
    page.goto(server.url + PERMALINK)
    page.wait_for_selector("#comments[data-live=open]")
    page.evaluate("document.getElementById('submit').scrollIntoView({block: 'center'})")
    before = page.evaluate("document.getElementById('submit').getBoundingClientRect().top")

    from tests.test_live import post_comment

    assert post_comment(server.url, "A reply far above you.", comment_parent=1).status_code == 201
    page.wait_for_selector("#li-comment-1 ol.children li.comment")
    notice = page.wait_for_selector("#new-comments-notice:not([hidden])")
    assert notice.text_content().strip() == "1 new comment"
    after = page.evaluate("document.getElementById('submit').getBoundingClientRect().top")
    assert abs(after - before) < 2, (before, after)  # what the reader was reading did not move
    notice.click()
    page.wait_for_selector("#new-comments-notice", state="hidden")


def test_the_author_edits_their_comment_in_place(browser, site):
    app, server = site
    page = browser.new_context().new_page()
    page.goto(server.url + PERMALINK)
    page.wait_for_selector("#comments[data-live=open]")
    fill_guest(page, "Teh typo")
    page.click("#submit")
    page.locator("li.comment:has-text('Teh typo') .comment-edit-link").click()
    page.fill(".comment-editor textarea", "The typo, fixed")
    page.click(".comment-editor button[type=submit]")
    page.wait_for_selector("li.comment:has-text('The typo, fixed') .comment-edited")
    # a reload still offers the controls to this browser, and only to it
    page.reload()
    page.wait_for_selector("li.comment:has-text('The typo, fixed') .comment-edit-link")
    other = browser.new_context().new_page()
    other.goto(server.url + PERMALINK)
    other.wait_for_selector("#comments[data-live=open]")
    assert other.locator(".comment-edit-link").count() == 0


def test_a_page_refused_a_stream_tries_again_and_misses_nothing(browser, tmp_path):
    """Over LIVE_MAX_STREAMS_PER_IP the stream is refused (429) and the browser's EventSource
    gives up for good: the page starts a new stream 30 s later, from the last event it saw."""
    app = make_app(f"sqlite:///{tmp_path / 'cap.db'}", LIVE_HEARTBEAT_SECONDS=2,
                   LIVE_MAX_STREAMS_PER_IP=1)
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    with LiveServer(app) as server:
        first = browser.new_context().new_page()
        first.goto(server.url + PERMALINK)
        first.wait_for_selector("#comments[data-live=open]")
        second = browser.new_context().new_page()
        second.clock.install()
        second.goto(server.url + PERMALINK)
        second.wait_for_selector("#comments[data-live=retrying]")
        first.close()  # its slot is free again once the server sees the stream end
        deadline = time.monotonic() + 10  # (at its next write: a heartbeat, every 2 s)
        while get_hub(app).count() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        writer = app.test_client()
        token = writer.get("/api/session").json["csrf_token"]
        assert writer.post("/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments",
                           json={"comment": "Posted while the page waited.", "author": "Hina",
                                 "email": "hina@example.com"},
                           headers={"X-CSRFToken": token}).status_code == 201
        second.clock.fast_forward(31_000)
        second.wait_for_selector("#comments[data-live=open]", timeout=5000)
        second.wait_for_selector("text=Posted while the page waited.", timeout=5000)
    with app.app_context():
        db.engine.dispose()
