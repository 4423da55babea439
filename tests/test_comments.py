"""Commenting as a guest: the no-JS form, the JSON API, validation, sanitising and threads."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus
from app.settings import set_setting
from tests.test_article import PERMALINK, page_text

ORIGIN = {"Origin": "http://localhost"}
GUEST = {"author": "Ayesha Khan", "email": "ayesha@example.com", "url": "https://ayesha.example.com"}
API = "/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments"
FORM = "/posts/pakistan-russia-agree-to-bury-the-hatchet/comments"


def configure(app, **settings):
    with app.app_context():
        for key, value in settings.items():
            set_setting(key, value)
        db.session.commit()


@pytest.fixture
def open_door(app):
    """Publish comments at once and lift the flood limit (each test that needs it says so)."""
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)


def stored(app):
    with app.app_context():
        return [(c.id, c.author_name, c.author_email, c.content, c.status.value, c.parent_id)
                for c in db.session.scalars(sa.select(Comment).order_by(Comment.id))]


def csrf_token(client):
    return client.get("/api/session").json["csrf_token"]


def api_post(client, payload, token=None, **kwargs):
    headers = {"X-CSRFToken": token if token is not None else csrf_token(client)}
    return client.post(API, json=payload, headers=headers, **kwargs)


# --- the no-JavaScript form -----------------------------------------------------------------

def test_form_post_redirects_to_the_new_comment(app, client, open_door):
    response = client.post(FORM, data={**GUEST, "comment": "Peace at last."}, headers=ORIGIN)
    assert response.status_code == 303
    new_id = stored(app)[-1][0]
    assert response.headers["Location"].endswith(f"{PERMALINK}#comment-{new_id}")
    page = client.get(PERMALINK).get_data(as_text=True)
    assert "Peace at last." in page and "2 comments" in page_text(page)
    # linked to the website, never showing the email
    assert 'href="https://ayesha.example.com"' in page
    assert "ayesha@example.com" not in page


def test_held_comment_is_shown_only_through_its_signed_link(app, client):
    response = client.post(FORM, data={**GUEST, "comment": "First time here."}, headers=ORIGIN)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "unapproved=" in location and "moderation-hash=" in location
    assert stored(app)[-1][4] == "pending"
    mine = client.get(location.split("#")[0]).get_data(as_text=True)
    assert "First time here." in mine and "Your comment is awaiting moderation." in mine
    # everybody else, and a forged hash, see nothing of it
    assert "First time here." not in app.test_client().get(PERMALINK).get_data(as_text=True)
    forged = re.sub(r"moderation-hash=\w+", "moderation-hash=0000", location.split("#")[0])
    assert "First time here." not in client.get(forged).get_data(as_text=True)


def test_form_errors_are_shown_next_to_fields_with_every_character_kept(app, client):
    before = stored(app)
    typed = {"comment": "Ça va? <b>bold</b> “quotes” — and a\nnew line", "author": "",
             "email": "not-an-email", "url": "javascript:alert(1)"}
    response = client.post(FORM, data=typed, headers=ORIGIN)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Please fill in your name." in html
    assert "Please enter a valid email address." in html
    assert "Your website must be an http:// or https:// address." in html
    assert "Ça va? &lt;b&gt;bold&lt;/b&gt; “quotes” — and a\nnew line</textarea>" in html
    assert 'value="not-an-email"' in html and 'value="javascript:alert(1)"' in html
    assert stored(app) == before


def test_cross_site_form_post_is_refused(app, client, open_door):
    before = stored(app)
    response = client.post(FORM, data={**GUEST, "comment": "forged"},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "forged</textarea>" in response.get_data(as_text=True)  # the draft is kept
    response = client.post(FORM, data={**GUEST, "comment": "forged"},
                           headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert stored(app) == before


def test_the_article_page_is_the_same_bytes_for_every_anonymous_reader(app, client):
    first = client.get(PERMALINK).data
    other = app.test_client()
    other.get("/api/session")  # has a session cookie and a CSRF token of its own
    assert other.get(PERMALINK).data == first
    assert b"csrf" not in first.lower()


def test_remember_me_cookie_only_when_ticked(app, client, open_door):
    client.post(FORM, data={**GUEST, "comment": "one", "wp-comment-cookies-consent": "yes"},
                headers=ORIGIN)
    cookie = client.get_cookie("parley_commenter")
    assert cookie is not None and cookie.http_only
    assert client.get("/api/session").json["commenter"] == {
        "author": "Ayesha Khan", "email": "ayesha@example.com", "url": "https://ayesha.example.com"}
    client.post(FORM, data={**GUEST, "comment": "two"}, headers=ORIGIN)  # unticked: forgotten
    assert client.get_cookie("parley_commenter") is None
    assert client.get("/api/session").json["commenter"] is None


def test_notify_choice_is_stored(app, client, open_door):
    client.post(FORM, data={**GUEST, "comment": "tell me", "subscribe_comments": "subscribe"},
                headers=ORIGIN)
    with app.app_context():
        assert db.session.scalar(sa.select(Comment.notify).order_by(Comment.id.desc())) is True


# --- the JSON API ---------------------------------------------------------------------------

def test_api_create_and_list(app, client, open_door):
    response = api_post(client, {**GUEST, "comment": "Through the API"})
    assert response.status_code == 201
    body = response.json
    assert body["held"] is False
    assert body["comment"]["author"] == "Ayesha Khan"
    assert "email" not in str(body) and "ip" not in body["comment"]
    listing = client.get(API).json
    assert listing["count"] == 2
    assert [c["author"] for c in listing["comments"]] == ["Sohail", "Ayesha Khan"]
    first_id = listing["comments"][0]["id"]
    after = client.get(f"{API}?after={first_id}").json["comments"]
    assert [c["content_html"] for c in after] == ["<p>Through the API</p>"]
    assert client.get(f"{API}?after=x").status_code == 400


def test_api_lists_approved_only(app, client):
    api_post(client, {**GUEST, "comment": "held back"})
    assert "held back" not in str(client.get(API).json)


def test_api_requires_the_csrf_token(app, client, open_door):
    before = stored(app)
    response = client.post(API, json={**GUEST, "comment": "no token"})
    assert response.status_code == 400
    assert response.json["error"] == "csrf_failed"
    assert stored(app) == before


def test_api_validation_errors(app, client, open_door):
    before = stored(app)
    response = api_post(client, {"comment": "", "author": "x" * 246, "email": "a@b",
                                 "url": "ftp://files.example.com"})
    assert response.status_code == 400
    body = response.json
    assert set(body) == {"error", "message", "fields"}
    assert set(body["fields"]) == {"comment", "author", "email", "url"}
    assert "at most 245" in body["fields"]["author"]
    assert api_post(client, {"comment": 5, **GUEST}).status_code == 400
    bad = client.post(API, data="{not json", content_type="application/json",
                      headers={"X-CSRFToken": csrf_token(client)})
    assert bad.status_code == 400 and bad.json["error"] == "bad_json"
    assert stored(app) == before


@pytest.mark.parametrize("field,limit", [("author", 245), ("email", 100), ("url", 200),
                                         ("comment", 65525)])
def test_wordpress_length_limits(app, client, open_door, field, limit):
    payload = {**GUEST, "comment": "fits"}
    if field == "email":
        payload["email"] = "a" * (limit - len("@example.com") + 1) + "@example.com"
    elif field == "url":
        payload["url"] = "https://example.com/" + "a" * (limit - 19)
    else:
        payload[field] = "a" * (limit + 1)
    response = api_post(client, payload)
    assert response.status_code == 400
    assert field in response.json["fields"]


def test_duplicate_comment_is_refused_with_wordpress_wording(app, client, open_door):
    assert api_post(client, {**GUEST, "comment": "Same words"}).status_code == 201
    again = api_post(client, {**GUEST, "comment": "Same words"})
    assert again.status_code == 409
    assert again.json["message"] == ("Duplicate comment detected; it looks as though "
                                     "you’ve already said that!")
    assert [row[3] for row in stored(app)].count("Same words") == 1


def test_duplicate_means_same_text_same_place_and_same_name_or_email(app, client, open_door):
    assert api_post(client, {**GUEST, "comment": "Same words"}).status_code == 201
    parent_id = stored(app)[-1][0]
    refused = [
        {**GUEST, "author": "A. Khan"},  # same email, another name
        {**GUEST, "email": "other@example.com"},  # same name, another email
    ]
    for payload in refused:
        assert api_post(client, {**payload, "comment": "Same words"}).status_code == 409, payload
    accepted = [
        {**GUEST, "author": "Bilal", "email": "bilal@example.com"},  # someone else
        {**GUEST, "comment_parent": parent_id},  # the same author, but as a reply
        {**GUEST, "comment": "Same words, again"},  # other words
    ]
    for payload in accepted:
        assert api_post(client, {"comment": "Same words", **payload}).status_code == 201, payload
    # a trashed comment is no longer in the way
    with app.app_context():
        db.session.get(Comment, parent_id).status = CommentStatus.TRASH
        db.session.commit()
    assert api_post(client, {**GUEST, "comment": "Same words"}).status_code == 201
    assert [row[3] for row in stored(app)].count("Same words") == 4


def test_a_signed_in_reader_repeating_themselves_is_a_duplicate_by_account(app, client,
                                                                           open_door):
    from app.models import User
    from tests.test_admin_helpers import make_user, sign_in_ordinary

    user_id = make_user(app, "signed.in@example.com", name="Signed In")
    sign_in_ordinary(client, user_id)
    assert api_post(client, {"comment": "My words"}).status_code == 201
    with app.app_context():  # the account changes its name and email; it is still them
        user = db.session.get(User, user_id)
        user.name, user.email = "Renamed", "renamed@example.com"
        db.session.commit()
    assert api_post(client, {"comment": "My words"}).status_code == 409
    assert [row[3] for row in stored(app)].count("My words") == 1


def test_flood_control_answers_429_with_retry_after(app, client):
    configure(app, comment_moderation="nobody")
    assert api_post(client, {**GUEST, "comment": "first"}).status_code == 201
    other_email = {**GUEST, "email": "someone@example.com", "comment": "second"}
    response = api_post(client, other_email)  # same IP
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 16
    form = client.post(FORM, data=other_email, headers=ORIGIN)
    assert form.status_code == 429 and "second</textarea>" in form.get_data(as_text=True)
    # a different IP with the same email is held back as well
    response = api_post(client, {**GUEST, "comment": "third"},
                        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 429


def test_comments_closed(app, client):
    from app.models import Post

    with app.app_context():
        db.session.scalar(sa.select(Post)).comments_open = False
        db.session.commit()
    assert api_post(client, {**GUEST, "comment": "late"}).status_code == 403
    assert "Comments are closed." in client.get(PERMALINK).get_data(as_text=True)


# --- content: WordPress's allowed tags, autop, links; XSS through every field ---------------

XSS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<svg/onload=alert(1)>",
    "\"><script>alert(1)</script>",
    "<iframe src=//evil.example></iframe>",
    "<b onmouseover=alert(1)>bold</b>",
]


@pytest.mark.parametrize("payload", XSS)
def test_xss_through_every_field_never_reaches_a_page(app, client, open_door, payload):
    response = api_post(client, {"comment": payload, "author": payload,
                                 "email": "x@example.com", "url": "https://example.com/?q=" + payload})
    assert response.status_code in (201, 400)
    page = client.get(PERMALINK).get_data(as_text=True)
    assert "<script>alert" not in page
    assert "onerror=alert" not in page.replace("&lt;", "").replace("onerror=alert(1)&gt;", "")
    assert "javascript:alert" not in re.sub(r"&lt;.*?&gt;", "", page)
    for tag in re.findall(r"<(\w+)[^>]*\son\w+=", page):
        raise AssertionError(f"event handler attribute on <{tag}>")
    assert "<iframe" not in page and "<svg" not in page


def test_javascript_website_is_refused(app, client, open_door):
    response = api_post(client, {**GUEST, "url": "javascript:alert(1)", "comment": "hi"})
    assert response.status_code == 400 and "url" in response.json["fields"]


def test_allowed_html_autop_and_links(app, client, open_door):
    text = ("<strong>Strong</strong> and <em>em</em> and <marquee>old</marquee>\n"
            "second line\n\nSee https://tribune.com.pk/story/108452 today.")
    body = api_post(client, {**GUEST, "comment": text}).json["comment"]["content_html"]
    assert body == (
        "<p><strong>Strong</strong> and <em>em</em> and &lt;marquee&gt;old&lt;/marquee&gt;<br>\n"
        "second line</p>\n<p>See <a href=\"https://tribune.com.pk/story/108452\" "
        "rel=\"nofollow ugc\">https://tribune.com.pk/story/108452</a> today.</p>")


# --- threads ---------------------------------------------------------------------------------

def test_replies_nest_and_stop_at_the_depth_limit(app, client, open_door):
    configure(app, thread_comments_depth=3)
    parent = stored(app)[0][0]
    ids = [parent]
    for level in range(2, 6):
        response = api_post(client, {**GUEST, "comment": f"level {level}", "comment_parent": ids[-1]})
        assert response.status_code == 201, response.json
        ids.append(response.json["comment"]["id"])
    html = client.get(PERMALINK).get_data(as_text=True)
    depths = {int(i): int(d) for i, d in re.findall(r'data-comment-id="(\d+)"[^>]*data-depth="(\d+)"',
                                                      html)}
    assert [depths[i] for i in ids] == [1, 2, 3, 3, 3]
    # the reply beyond the limit sits with its nearest allowed ancestor's replies, in order
    nested = html.index(f'id="li-comment-{ids[2]}"')
    assert nested < html.index(f'id="li-comment-{ids[3]}"') < html.index(f'id="li-comment-{ids[4]}"')


def test_reply_to_a_missing_or_held_comment_is_refused(app, client):
    configure(app, comment_flood_seconds=0)
    held = api_post(client, {**GUEST, "comment": "held"}).json["comment"]["id"]
    for parent in (held, 999):
        response = api_post(client, {**GUEST, "comment": f"reply to {parent}",
                                     "comment_parent": parent})
        # a conflict with what is stored (a malformed number is a 400)
        assert response.status_code == 409 and "comment_parent" in response.json["fields"]


def test_gravatar_with_identicon_default_and_fixed_size(client):
    html = client.get(PERMALINK).get_data(as_text=True)
    avatar = re.search(r'<img alt="" src="([^"]+)" class="avatar avatar-48" width="48" height="48"',
                       html)
    assert avatar and "gravatar.com/avatar/" in avatar.group(1) and "d=identicon" in avatar.group(1)


# --- the command line ------------------------------------------------------------------------

def test_cli_lists_and_moderates(app, client, runner):
    configure(app, comment_flood_seconds=0)
    held = api_post(client, {**GUEST, "comment": "from the shell"}).json["comment"]["id"]
    result = runner.invoke(args=["comments", "list", "--status", "pending"])
    assert result.exit_code == 0 and "from the shell" in result.output and "1 comment." in result.output
    result = runner.invoke(args=["comments", "approve", str(held)])
    assert result.exit_code == 0 and f"Approved comment {held}" in result.output
    assert "from the shell" in client.get(PERMALINK).get_data(as_text=True)
    for action, status in (("unapprove", "pending"), ("spam", "spam"), ("trash", "trash")):
        assert runner.invoke(args=["comments", action, str(held)]).exit_code == 0
        assert stored(app)[-1][4] == status
    assert runner.invoke(args=["comments", "delete", str(held)]).exit_code == 0
    assert held not in [row[0] for row in stored(app)]
    assert runner.invoke(args=["comments", "approve", "424242"]).exit_code == 1
    assert runner.invoke(args=["comments", "list", "--status", "bogus"]).exit_code == 2


def test_openapi_describes_the_api(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/posts/{slug}/comments", "/api/posts/{slug}/live"} <= set(spec["paths"])
    assert CommentStatus.APPROVED.value in str(spec)


# --- what a published comment holds ----------------------------------------------------------

@pytest.mark.parametrize("signed_in", [False, True])
def test_a_published_comment_holds_exactly_what_was_stored(app, open_door, signed_in):
    """A published comment goes in as one plain INSERT (app.database.insert_loaded): the object
    the reply and the live event are built from must hold every column as stored, defaults
    included, with nothing left to load, and its author and post must be the session's own."""
    from app.comments import service
    from app.models import OAuthAccount, Post, User

    with app.app_context():
        user = None
        if signed_in:
            user = User(name="Bilal", email="bilal@example.com", email_verified=True)
            user.accounts.append(OAuthAccount(provider="google", subject="42"))
            db.session.add(user)
            db.session.commit()
        post = db.session.scalar(sa.select(Post))
        comment = service.submit(post, {**GUEST, "comment": "Stored as it is held."}, user=user,
                                 ip="203.0.113.9", user_agent="Firefox").comment
        db.session.commit()
        state = sa.inspect(comment)
        columns = {attr.key: attr.columns[0] for attr in state.mapper.column_attrs}
        assert state.persistent and not state.unloaded & set(columns)
        row = db.session.connection().execute(
            sa.select(*columns.values()).where(Comment.id == comment.id)).one()._mapping
        assert {key: getattr(comment, key) for key in columns} == \
            {key: row[column] for key, column in columns.items()}
        assert comment.status is CommentStatus.APPROVED and comment.wp_id is None
        assert comment.post is post and comment.user is user
        db.session.remove()


@pytest.mark.parametrize(("stored", "expected"), [
    ("2011-01-25 10:14:00", "2011-01-25T10:14:00+00:00"),
    ("2011-01-25 10:14:00.25", "2011-01-25T10:14:00.250000+00:00"),
    ("2011-01-25T10:14:00Z", "2011-01-25T10:14:00+00:00"),
    ("2011-01-25 15:14:00+05:00", "2011-01-25T10:14:00+00:00"),
    ("2011-01-25", "2011-01-25T00:00:00+00:00"),
])
def test_times_written_by_hand_are_read_as_utc(app, post, stored, expected):
    """A time put in with raw SQL, in any of the forms people write, reads back as the same
    instant in UTC, through the ORM and on the article page's plain rows alike."""
    from datetime import datetime

    from app.comments.pages import comment_page
    from app.models import Post

    with app.app_context():
        db.session.execute(sa.text("UPDATE comments SET created_at = :at"), {"at": stored})
        db.session.commit()
        comment = db.session.scalar(sa.select(Comment))
        shown = comment_page(db.session.scalar(sa.select(Post))).comments[0]
        assert comment.created_at == shown.created_at == datetime.fromisoformat(expected)
        assert comment.created_at.utcoffset().total_seconds() == 0
        db.session.remove()
