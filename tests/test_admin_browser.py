"""A moderator in one browser approves a held comment; a reader in another sees it arrive live."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.settings import set_setting
from tests.conftest import make_app, reset_database
from tests.servers import LiveServer
from tests.test_admin_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin

pytestmark = pytest.mark.browser
PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


@pytest.fixture
def site(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'admin-browser.db'}", LIVE_HEARTBEAT_SECONDS=2,
                   ADMIN_LIVE_POLL_SECONDS=0.3)
    reset_database(app)
    from app.commands import seed_article

    with app.app_context():
        seed_article()
        set_setting("comment_moderation", "everyone")
        set_setting("comment_flood_seconds", 0)
        db.session.commit()
    make_admin(app)
    with LiveServer(app) as server:
        yield app, server
    with app.app_context():
        db.engine.dispose()


def test_a_moderator_approves_a_held_comment_and_a_reader_sees_it_live(browser, site):
    app, server = site
    errors: list[str] = []

    moderator = browser.new_context().new_page()
    moderator.on("pageerror", lambda exc: errors.append(str(exc)))
    moderator.goto(server.url + "/admin/?status=pending")
    assert "/admin/login" in moderator.url  # anonymous: sent to sign in
    moderator.fill("#email", ADMIN_EMAIL)
    moderator.fill("#password", ADMIN_PASSWORD)
    moderator.click("#wp-submit")
    moderator.wait_for_selector("#the-comment-list-table[data-view=pending]")
    assert moderator.text_content('#status-views [data-count="pending"]') == "0"

    reader = browser.new_context().new_page()
    reader.on("pageerror", lambda exc: errors.append(str(exc)))
    reader.goto(server.url + PERMALINK)
    reader.wait_for_selector("#comments[data-live=open]")
    reader_url = reader.url

    commenter = browser.new_context().new_page()
    commenter.goto(server.url + PERMALINK)
    commenter.wait_for_selector("#comments[data-live=open]")
    commenter.fill("#comment", "Held until a moderator says yes.")
    commenter.fill("#author", "Sana")
    commenter.fill("#email", "sana@example.com")
    commenter.click("#submit")
    commenter.wait_for_selector("li.comment-held")

    # the held comment arrives in the open queue without a reload, and the counts move
    row = moderator.wait_for_selector("tr.comment-row:has-text('Held until a moderator says yes.')",
                                      timeout=5000)
    assert "every comment is held" in row.text_content()
    assert "sana@example.com" in row.text_content()
    moderator.wait_for_function(
        "document.querySelector('#status-views [data-count=\"pending\"]').textContent === '1'")
    assert reader.locator("text=Held until a moderator says yes.").count() == 0

    # WordPress's shortcuts: j selects the first row, a approves it
    moderator.keyboard.press("j")
    moderator.wait_for_selector("tr.comment-row.kb-selected")
    moderator.keyboard.press("a")
    moderator.wait_for_selector("tr.comment-row", state="detached", timeout=5000)
    moderator.wait_for_function(
        "document.querySelector('#status-views [data-count=\"pending\"]').textContent === '0'")
    assert "approved" in moderator.text_content("#notices")

    # ...and the reader, who never reloaded, sees it arrive in the thread
    reader.wait_for_selector("#commentlist >> text=Held until a moderator says yes.", timeout=5000)
    assert reader.url == reader_url
    assert reader.text_content(".comment-count") == "2 comments"
    assert errors == []


def test_row_actions_work_by_mouse_and_reply_without_a_reload(browser, site):
    app, server = site
    from tests.test_admin_helpers import add_comment

    comment_id = add_comment(app, content="Please answer me.", hold_reasons=["first comment"])
    page = browser.new_context().new_page()
    page.goto(server.url + "/admin/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#wp-submit")
    page.wait_for_selector(f"#comment-{comment_id}")
    start_url = page.url
    page.click(f"#comment-{comment_id} summary[data-action=reply]")
    page.fill(f"#reply-{comment_id}", "Thank you, answered.")
    page.click(f"#comment-{comment_id} details.reply button[type=submit]")
    page.wait_for_selector("#notices >> text=Reply posted")
    assert page.url == start_url
    assert page.text_content(f"#comment-{comment_id} .status-label") == "Approved"
