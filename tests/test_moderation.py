"""The rules a new comment meets: each Discussion setting, keywords, links, bans and their expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.comments import service
from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, CommentStatus, OAuthAccount, Post, User, utcnow
from app.moderation import bans
from app.moderation.models import Ban, BanKind
from app.settings import get_setting, set_setting
from tests.test_admin_helpers import add_comment, csrf_token, make_user, sign_in_admin

GUEST = {"comment": "A thoughtful remark.", "author": "Ayesha", "email": "ayesha@example.com",
         "url": ""}


@pytest.fixture(autouse=True)
def _drain_mail(app):
    """Let the mail thread finish (moderator and subscriber mail use the database) before the
    app's engine is disposed, so no connection is left open behind a test."""
    yield
    get_mailer(app).join()


def submit(data=None, *, user=None, ip="198.51.100.7", ua="Mozilla/5.0 (X11; Linux) Firefox"):
    post = db.session.scalar(sa.select(Post))
    comment = service.submit(post, {**GUEST, **(data or {})}, user=user, ip=ip,
                             user_agent=ua).comment
    db.session.commit()
    return comment


def settings(**values):
    for key, value in values.items():
        set_setting(key, value)
    db.session.commit()


@pytest.fixture
def ctx(app):
    with app.app_context():
        settings(comment_flood_seconds=0)  # these tests post in quick succession on purpose
        yield app


# --- approval -------------------------------------------------------------------------------

def test_default_holds_a_first_comment_and_says_why(ctx):
    comment = submit()
    assert comment.status is CommentStatus.PENDING
    assert comment.hold_reasons == ["first comment"]


def test_default_approves_an_author_with_a_previously_approved_comment(ctx):
    add_comment(ctx, CommentStatus.APPROVED, author_name="Ayesha", author_email="ayesha@example.com")
    comment = submit()
    assert comment.status is CommentStatus.APPROVED
    assert comment.hold_reasons is None


def test_previously_approved_needs_the_same_name_and_email(ctx):
    add_comment(ctx, CommentStatus.APPROVED, author_name="Someone Else",
                author_email="ayesha@example.com")
    assert submit().status is CommentStatus.PENDING


def test_nobody_needs_approval(ctx):
    settings(comment_moderation="nobody")
    assert submit().status is CommentStatus.APPROVED


def test_everyone_needs_approval(ctx):
    settings(comment_moderation="everyone")
    add_comment(ctx, CommentStatus.APPROVED, author_name="Ayesha", author_email="ayesha@example.com")
    comment = submit()
    assert comment.status is CommentStatus.PENDING
    assert comment.hold_reasons == ["every comment is held"]


def test_an_admin_is_never_held(ctx):
    settings(comment_moderation="everyone", moderation_keys=["remark"])
    admin = User(name="Admin", email="admin@example.com", email_verified=True, is_admin=True)
    db.session.add(admin)
    db.session.commit()
    assert submit(user=admin).status is CommentStatus.APPROVED


# --- links ----------------------------------------------------------------------------------

def test_two_links_hold_by_default_one_does_not(ctx):
    settings(comment_moderation="nobody")
    assert submit({"comment": "see https://a.example"}).status is CommentStatus.APPROVED
    comment = submit({"comment": 'see https://b.example and <a href="https://c.example">c</a>'})
    assert comment.status is CommentStatus.PENDING
    assert comment.hold_reasons == ["2 links"]


def test_link_limit_is_a_setting_and_zero_turns_it_off(ctx):
    settings(comment_moderation="nobody", comment_max_links=3)
    links = " ".join(f"https://{n}.example" for n in range(3))
    assert submit({"comment": links}).hold_reasons == ["3 links"]
    settings(comment_max_links=0)
    assert submit({"comment": links + " again"}).status is CommentStatus.APPROVED


# --- keywords -------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "ip", "ua", "where"), [
    ({"comment": "Buy CHEAP watches"}, "198.51.100.7", "Firefox", "comment"),
    ({"author": "cheap watches"}, "198.51.100.7", "Firefox", "name"),
    ({"email": "cheap@example.com"}, "198.51.100.7", "Firefox", "email"),
    ({"url": "https://cheap.example"}, "198.51.100.7", "Firefox", "website"),
    ({}, "198.51.100.7", "CheapBot/1.0", "user agent"),
])
def test_moderation_keywords_hold_matching_any_field(ctx, data, ip, ua, where):
    settings(comment_moderation="nobody", moderation_keys=["cheap"])
    comment = submit(data, ip=ip, ua=ua)
    assert comment.status is CommentStatus.PENDING
    assert comment.hold_reasons == [f"keyword “cheap” in {where}"]


def test_a_keyword_matches_an_ip_and_inside_words_as_wordpress_does(ctx):
    settings(comment_moderation="nobody", moderation_keys=["198.51.100.", "press"])
    comment = submit({"comment": "I love WordPress"})
    assert comment.hold_reasons == ["keyword “198.51.100.” in IP", "keyword “press” in comment"]


def test_disallowed_keywords_go_to_the_trash(ctx):
    settings(comment_moderation="nobody", disallowed_keys=["casino"])
    comment = submit({"comment": "Visit my CASINO"})
    assert comment.status is CommentStatus.TRASH
    assert comment.hold_reasons == ["disallowed keyword “casino” in comment"]


def test_markup_cannot_split_a_disallowed_word(ctx):
    settings(comment_moderation="nobody", disallowed_keys=["casino"])
    assert submit({"comment": "cas<b></b>ino night"}).status is CommentStatus.TRASH


def test_disallowed_wins_over_held(ctx):
    settings(moderation_keys=["night"], disallowed_keys=["casino"])
    assert submit({"comment": "casino night"}).status is CommentStatus.TRASH


def test_all_the_reasons_are_recorded(ctx):
    settings(comment_moderation="unknown", moderation_keys=["watch"])
    comment = submit({"comment": "watch https://a.example https://b.example"})
    assert comment.hold_reasons == ["2 links", "keyword “watch” in comment", "first comment"]


# --- name and email, threading, closing -------------------------------------------------------

def test_guests_may_be_allowed_without_name_and_email(ctx):
    settings(require_name_email=False, comment_moderation="nobody")
    comment = submit({"author": "", "email": ""})
    assert comment.status is CommentStatus.APPROVED


def test_guests_must_give_name_and_email_by_default(ctx):
    with pytest.raises(service.CommentRejected) as rejected:
        submit({"author": "", "email": ""})
    assert set(rejected.value.fields) == {"author", "email"}


def test_comments_close_on_old_posts_when_asked(ctx, client, post):
    settings(close_comments_for_old_posts=True, close_comments_days_old=14)
    with pytest.raises(service.CommentRejected) as rejected:
        submit()
    assert (rejected.value.status, rejected.value.error) == (403, "closed")
    assert "Comments are closed." in client.get(post["url"]).get_data(as_text=True)
    settings(close_comments_days_old=100_000)  # the 2011 post is younger than that
    assert submit().status is CommentStatus.PENDING
    assert 'id="commentform"' in client.get(post["url"]).get_data(as_text=True)


def test_a_closed_post_refuses_comments(ctx, client, post):
    db.session.scalar(sa.select(Post)).comments_open = False
    db.session.commit()
    with pytest.raises(service.CommentRejected) as rejected:
        submit()
    assert rejected.value.error == "closed"


def test_threading_depth_setting_shapes_the_page(ctx, client, post):
    settings(comment_moderation="nobody", thread_comments_depth=2)
    first = submit({"comment": "one"})
    second = submit({"comment": "two", "comment_parent": first.id}, ip="198.51.100.8")
    submit({"comment": "three", "comment_parent": second.id}, ip="198.51.100.9")
    html = client.get(post["url"]).get_data(as_text=True)
    assert "depth-3" not in html and html.count("depth-2") == 2


# --- bans -------------------------------------------------------------------------------------

def ban(kind, value, **kw):
    made = bans.add(kind, value, **kw)
    db.session.commit()
    return made


def test_a_banned_email_is_refused_politely(ctx):
    ban(BanKind.EMAIL, "Ayesha@Example.com")
    with pytest.raises(service.CommentRejected) as rejected:
        submit()
    assert rejected.value.status == 403 and rejected.value.error == "banned"
    assert "could not be accepted" in rejected.value.message
    assert db.session.scalar(sa.select(sa.func.count(Comment.id))) == 1  # only the seed's


def test_a_ban_can_silently_hold_instead(ctx):
    settings(ban_action="hold", comment_moderation="nobody")
    ban(BanKind.IP, "198.51.100.7")
    comment = submit()
    assert comment.status is CommentStatus.PENDING
    assert comment.hold_reasons == ["banned IP 198.51.100.7"]


@pytest.mark.parametrize(("banned", "ip", "caught"), [
    ("198.51.100.0/24", "198.51.100.250", True),
    ("198.51.100.0/24", "198.51.101.1", False),
    ("198.51.100.77", "198.51.100.7", False),
    ("2001:db8:1::/48", "2001:db8:1:ffff::1", True),
    ("2001:db8:1::/48", "2001:db8:2::1", False),
])
def test_ip_and_range_bans(ctx, banned, ip, caught):
    ban(BanKind.IP, banned)
    if caught:
        with pytest.raises(service.CommentRejected):
            submit(ip=ip)
    else:
        submit(ip=ip)


def test_range_of_an_address(ctx):
    assert bans.network_of("203.0.113.77") == "203.0.113.0/24"
    assert bans.network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"


def test_a_social_account_ban(ctx):
    user = User(name="Bilal", email="bilal@example.com", email_verified=True)
    user.accounts.append(OAuthAccount(provider="google", subject="1234"))
    db.session.add(user)
    db.session.commit()
    ban(BanKind.ACCOUNT, "google:1234")
    with pytest.raises(service.CommentRejected):
        submit(user=user)


def test_every_ban_that_catches_an_author_is_found_and_no_other(ctx):
    """A signed-in author is caught by any of their accounts and by their account's email (what
    they type in the email field is not theirs to choose), and the moderation queue names every
    ban that fired."""
    settings(ban_action="hold", comment_moderation="nobody")
    user = User(name="Bilal", email="Bilal@Example.com", email_verified=True)
    user.accounts.append(OAuthAccount(provider="google", subject="1234"))
    user.accounts.append(OAuthAccount(provider="wordpress", subject="77"))
    db.session.add(user)
    db.session.commit()
    ban(BanKind.ACCOUNT, "wordpress:77")
    ban(BanKind.EMAIL, "bilal@example.com")
    ban(BanKind.EMAIL, "typed@example.com")
    ban(BanKind.EMAIL, "someone-else@example.com")
    ban(BanKind.ACCOUNT, "google:9999")
    ban(BanKind.IP, "203.0.113.0/24")
    comment = submit({"email": "Typed@Example.com"}, user=user, ip="198.51.100.7")
    assert comment.status is CommentStatus.PENDING
    assert sorted(comment.hold_reasons) == ["banned account wordpress:77",
                                            "banned email bilal@example.com"]


def test_a_ban_expires(ctx):
    made = ban(BanKind.EMAIL, "ayesha@example.com", expires_at=utcnow() + timedelta(hours=1))
    with pytest.raises(service.CommentRejected):
        submit()
    made.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert submit().status is CommentStatus.PENDING
    assert db.session.scalars(Ban.active()).all() == []


@pytest.mark.parametrize(("kind", "value"), [
    (BanKind.EMAIL, "not-an-email"), (BanKind.IP, "300.1.2.3"), (BanKind.ACCOUNT, "google"),
    (BanKind.IP, ""),
])
def test_invalid_bans_are_refused(ctx, kind, value):
    with pytest.raises(bans.InvalidBan):
        bans.add(kind, value)


def test_a_ban_cannot_expire_in_the_past(ctx):
    with pytest.raises(bans.InvalidBan):
        bans.add(BanKind.EMAIL, "a@example.com", expires_at=utcnow() - timedelta(days=1))


def test_the_json_api_reports_a_ban(client, post, app):
    with app.app_context():
        ban(BanKind.IP, "127.0.0.1")
    token = client.get(f"/api/session?post={post['slug']}").get_json()["csrf_token"]
    response = client.post(f"/api/posts/{post['slug']}/comments", json=GUEST,
                           headers={"X-CSRFToken": token})
    assert response.status_code == 403
    assert response.get_json()["error"] == "banned"


# --- plus-addresses ---------------------------------------------------------------------------

def comment_as(client, post, email):
    token = client.get(f"/api/session?post={post['slug']}").get_json()["csrf_token"]
    return client.post(f"/api/posts/{post['slug']}/comments", headers={"X-CSRFToken": token},
                       json={**GUEST, "email": email, "comment": f"Written as {email}."})


@pytest.mark.parametrize("action", ["refuse", "hold"])
def test_a_ban_catches_the_plus_addresses_of_its_mailbox_by_default(client, post, app, action):
    with app.app_context():
        settings(comment_flood_seconds=0, comment_moderation="nobody", ban_action=action)
        ban(BanKind.EMAIL, "user@example.com")
    caught = comment_as(client, post, "User+x@Example.com")
    if action == "refuse":
        assert caught.status_code == 403 and caught.get_json()["error"] == "banned"
    else:
        assert caught.status_code == 201 and caught.get_json()["held"] is True
        with app.app_context():
            held = db.session.get(Comment, caught.get_json()["comment"]["id"])
            assert held.hold_reasons == ["banned email user@example.com"]
    # the tag is not the mailbox: a ban on one tagged address catches only that one
    with app.app_context():
        ban(BanKind.EMAIL, "other+spam@example.com")
    assert comment_as(client, post, "other+news@example.com").status_code == 201
    assert comment_as(client, post, "other@example.com").get_json()["held"] is False
    # dots are the mailbox's own at most providers: not folded
    assert comment_as(client, post, "us.er@example.com").get_json()["held"] is False


def test_with_the_setting_off_a_ban_catches_the_address_alone(client, post, app):
    with app.app_context():
        settings(comment_flood_seconds=0, comment_moderation="nobody", ban_plus_addresses=False)
        ban(BanKind.EMAIL, "user@example.com")
    response = comment_as(client, post, "user+x@example.com")
    assert response.status_code == 201 and response.get_json()["held"] is False
    assert comment_as(client, post, "user@example.com").status_code == 403


def test_the_plus_address_setting_is_on_the_discussion_screen(app, client):
    sign_in_admin(client, make_user(app, "mod@example.com", admin=True))
    html = client.get("/admin/settings").get_data(as_text=True)
    assert '<input checked id="ban_plus_addresses" name="ban_plus_addresses" type="checkbox"' \
        in html  # on by default
    assert "+tag variants" in html
    token = csrf_token(client, "/admin/settings")
    form = {"close_comments_days_old": "14", "comment_moderation": "unknown",
            "comment_max_links": "2", "thread_comments_depth": "5", "comments_per_page": "50",
            "default_comments_page": "newest", "comment_order": "asc",
            "comment_flood_seconds": "15", "ban_action": "refuse", "csrf_token": token}
    assert client.post("/admin/settings", data=form).status_code == 303  # unticked: off
    with app.app_context():
        assert get_setting("ban_plus_addresses") is False
    form["ban_plus_addresses"] = "y"
    assert client.post("/admin/settings", data=form).status_code == 303
    with app.app_context():
        assert get_setting("ban_plus_addresses") is True
