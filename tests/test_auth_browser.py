"""A real chromium signs in through a local provider (oauth2-mock-server playing Google), finds
its draft still in the box, and posts a comment under the provider identity."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import Comment, User
from tests.oauth.servers import NodeServer, serve_parley

pytestmark = [pytest.mark.browser, pytest.mark.node]

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
DRAFT = "Both countries have good reasons —\nand this is my draft, kept across the sign-in."


@pytest.fixture(scope="module")
def google():
    server = NodeServer("mock-provider.mjs", "google", "browser-client", "browser-secret")
    yield server
    server.stop()


@pytest.fixture
def site(google, tmp_path):
    yield from serve_parley(
        tmp_path, GOOGLE_CLIENT_ID="browser-client", GOOGLE_CLIENT_SECRET="browser-secret",
        GOOGLE_SERVER_METADATA_URL=f"{google.url}/.well-known/openid-configuration")


@pytest.fixture
def page(browser):
    """A fresh context of the suite's one chromium (tests/conftest.py; Playwright's sync API
    allows one running instance per thread)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_sign_in_keeps_the_draft_and_posts_under_the_google_identity(site, page):
    page.goto(f"{site.url}{PERMALINK}")
    page.fill("#comment", DRAFT)
    page.click("#postas-google")
    page.wait_for_url(f"{site.url}{PERMALINK}#respond")
    identity = page.locator("#comment-form-identity")
    assert "You are commenting using your Google account." in identity.inner_text()
    assert "Ayesha Khan" in identity.inner_text()
    assert page.locator("#author").count() == 0  # no name or email fields for a signed-in reader
    assert page.input_value("#comment") == DRAFT

    page.click("#submit")
    posted = page.locator("#commentlist li.comment", has_text="this is my draft")
    posted.wait_for()
    assert "Ayesha Khan" in posted.inner_text()
    with site.app.app_context():
        comment = db.session.scalar(sa.select(Comment).where(Comment.user_id.is_not(None)))
        assert comment.content == DRAFT
        assert comment.author_name == "Ayesha Khan"
        assert comment.user.accounts[0].provider == "google"


def test_a_cancelled_sign_in_lands_on_the_article_with_the_draft(site, google, page):
    google.post_next(authorize={"error": "access_denied"})
    page.goto(f"{site.url}{PERMALINK}")
    page.fill("#comment", DRAFT)
    page.click("#postas-google")
    page.locator("#signin-error").wait_for()
    assert page.inner_text("#signin-error") == "Sign-in with Google was cancelled."
    # the message is in the HTML; the draft comes back when the page's script has run
    expect(page.locator("#comment")).to_have_value(DRAFT)
    # the address is the article's again, not the callback's
    page.wait_for_url(f"{site.url}{PERMALINK}#respond")
    with site.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0


def test_change_shows_the_icons_and_log_out_posts(site, page):
    page.goto(f"{site.url}{PERMALINK}")
    page.click("#postas-google")
    page.wait_for_url(f"{site.url}{PERMALINK}#respond")
    assert page.is_hidden("#comment-form-nascar")
    page.click("#comment-form-change")
    assert page.is_visible("#comment-form-nascar")
    page.fill("#comment", "kept across a log out too")
    page.click("#comment-form-logout")
    page.locator("#email").wait_for()  # the guest form is back
    assert "Fill in your details below" in page.inner_text("#comment-form-identity")
    expect(page.locator("#comment")).to_have_value("kept across a log out too")


def test_a_reply_in_progress_comes_back_under_its_comment(site, page):
    page.goto(f"{site.url}{PERMALINK}")
    page.click("#li-comment-1 .comment-reply-link")
    page.fill("#comment", "A reply typed before signing in.")
    page.click("#postas-google")
    page.wait_for_url(f"{site.url}{PERMALINK}#respond")
    assert page.input_value("#comment") == "A reply typed before signing in."
    assert page.input_value("#comment_parent") == "1"
    assert page.locator("#li-comment-1 #respond").count() == 1  # the form sits under the comment
