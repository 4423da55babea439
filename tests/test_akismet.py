"""Akismet, as WordPress.com uses it, against a server on 127.0.0.1 that speaks Akismet's REST API
(tests/akismet_server.py): what each comment sends, what each answer does to it, what happens
when Akismet cannot answer, and what a moderator's verdict sends back. Then how the screen
combines Akismet's verdict with the learned filter's."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import sqlalchemy as sa

from app.commands import seed_article
from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, CommentStatus
from app.moderation.actions import Action, apply
from app.moderation.models import Actor
from app.settings import set_setting
from app.spam import akismet as akismet_client
from app.spam import filter as learned
from tests.akismet_server import KEY, AkismetServer
from tests.conftest import make_app, reset_database
from tests.test_admin_helpers import csrf_token as admin_csrf
from tests.test_admin_helpers import make_user, sign_in_admin
from tests.test_article import PERMALINK
from tests.test_comments import API, FORM, GUEST, ORIGIN, configure, csrf_token, stored
from tests.test_honeypot import HELD_LINK, api_answer_shape, cookie_shape, event_count
from tests.test_mail import free_port

TIMEOUT = 0.5  # AKISMET_TIMEOUT here: long enough for a loaded machine, short enough to wait out
SLUG = "pakistan-russia-agree-to-bury-the-hatchet"
PAGE = f"http://localhost{PERMALINK}"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
READER = {"REMOTE_ADDR": "198.51.100.23"}


@pytest.fixture
def akismet():
    with AkismetServer() as server:
        yield server


def _akismet_app(database_url, url, **config):
    app = make_app(database_url, **{"AKISMET_KEY": KEY, "AKISMET_API_URL": url,
                                    "AKISMET_TIMEOUT": TIMEOUT, **config})
    reset_database(app)
    with app.app_context():
        seed_article()
        set_setting("comment_flood_seconds", 0)
        set_setting("comment_moderation", "nobody")  # only the spam checks hold anything
        db.session.commit()
    return app


@pytest.fixture
def app(database_url, akismet):
    app = _akismet_app(database_url, akismet.url)
    yield app
    akismet_client.get_client(app).join()
    get_mailer(app).join()


@pytest.fixture
def admin(app):
    client = app.test_client()
    sign_in_admin(client, make_user(app, "moderator@example.com", admin=True, name="Mod Erator"))
    return client


def _post(client, text, **extra):
    """A guest's comment through the JSON API, from a browser on the article page."""
    return client.post(API, json={**GUEST, "comment": text, **extra},
                       headers={"X-CSRFToken": csrf_token(client), "Referer": PAGE,
                                "User-Agent": BROWSER}, environ_base=READER)


def _comment(app, comment_id):
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        return comment.status, comment.hold_reasons


def _last(app):
    with app.app_context():
        return db.session.scalars(sa.select(Comment).order_by(Comment.id.desc())).first()


def _moderate(admin, comment_id, action):
    return admin.post(f"/admin/comments/{comment_id}/{action}",
                      data={"csrf_token": admin_csrf(admin, "/admin/")})


# --- what each comment sends ------------------------------------------------------------------

def test_a_new_comment_is_checked_with_every_field_akismet_documents(app, client, akismet):
    response = client.post(FORM, data={**GUEST, "comment": "Peace at last."},
                           headers={**ORIGIN, "Referer": PAGE, "User-Agent": BROWSER},
                           environ_base=READER)
    assert response.status_code == 303
    comment = _last(app)
    assert comment.status == CommentStatus.APPROVED  # Akismet says ham: the usual rules decide

    [call] = akismet.of("comment-check")
    sent = dict(call.fields)
    written = datetime.fromisoformat(sent.pop("comment_date_gmt"))
    assert abs((written - comment.created_at).total_seconds()) < 5
    assert sent == {
        "api_key": KEY,
        "blog": "http://localhost",
        "user_ip": "198.51.100.23",
        "user_agent": BROWSER,
        "referrer": PAGE,
        "permalink": PAGE,
        "comment_type": "comment",
        "comment_author": "Ayesha Khan",
        "comment_author_email": "ayesha@example.com",
        "comment_author_url": "https://ayesha.example.com",
        "comment_content": "Peace at last.",
        "comment_post_modified_gmt": "2011-01-25T04:00:00+00:00",
        "blog_lang": "en",
        "blog_charset": "UTF-8",
    }
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.headers["User-Agent"].startswith("Parley/")


def test_a_reply_says_so_and_site_url_names_the_blog(app, client, akismet):
    app.config["SITE_URL"] = "https://blog.example.com"
    with app.app_context():
        parent = db.session.scalar(sa.select(Comment.id))  # the article's own comment
    assert _post(client, "Quite right.", comment_parent=parent).status_code == 201
    [call] = akismet.of("comment-check")
    assert call.fields["comment_type"] == "reply"
    assert call.fields["blog"] == "https://blog.example.com"
    assert call.fields["permalink"] == f"https://blog.example.com{PERMALINK}"


def test_ham_goes_on_through_the_usual_rules(app, client, akismet):
    configure(app, comment_moderation="unknown")
    response = _post(client, "A first comment.")
    assert response.status_code == 201 and response.json["held"] is True
    assert _comment(app, response.json["comment"]["id"]) == (CommentStatus.PENDING,
                                                              ["first comment"])


def test_an_admin_is_never_checked(app, admin, akismet):
    response = admin.post(API, json={"comment": "From the desk."},
                          headers={"X-CSRFToken": csrf_token(admin)})
    assert response.status_code == 201 and response.json["held"] is False
    assert akismet.of("comment-check") == []


# --- what each answer does ----------------------------------------------------------------------

def test_spam_goes_to_spam_with_its_reason_for_moderators(app, client, admin, akismet):
    akismet.verdict = "true"
    response = _post(client, "Cheap watches, best prices.")
    assert response.status_code == 201 and response.json["held"] is True
    comment_id = response.json["comment"]["id"]
    assert _comment(app, comment_id) == (CommentStatus.SPAM, ["Akismet: spam"])
    assert "Cheap watches" not in app.test_client().get(PERMALINK).get_data(as_text=True)
    queue = admin.get("/admin/?status=spam").get_data(as_text=True)
    assert "Cheap watches" in queue and "Akismet: spam" in queue


def test_discard_drops_the_comment_with_the_answer_a_held_comment_gets(app, akismet):
    configure(app, comment_moderation="everyone")
    held = _post(app.test_client(), "An honest comment, held for a moderator.")
    assert held.status_code == 201 and held.json["held"] is True
    before, events = stored(app), event_count(app)

    akismet.verdict = "discard"
    dropped = _post(app.test_client(), "BUY NOW, cheap watches")

    assert stored(app) == before and event_count(app) == events  # nothing stored or announced
    assert api_answer_shape(dropped, "BUY NOW, cheap watches") == api_answer_shape(
        held, "An honest comment, held for a moderator.")
    assert dropped.json["comment"]["id"] == before[-1][0] + 1  # the id a held one would get


def test_discard_through_the_form_redirects_as_a_held_comment_does(app, akismet):
    configure(app, comment_moderation="everyone")
    held = app.test_client().post(FORM, data={**GUEST, "comment": "Held, honestly."},
                                  headers=ORIGIN)
    before = stored(app)
    akismet.verdict = "discard"
    dropped = app.test_client().post(FORM, data={**GUEST, "comment": "BUY NOW"}, headers=ORIGIN)

    assert stored(app) == before
    assert held.status_code == dropped.status_code == 303
    kept, gone = HELD_LINK.match(held.location), HELD_LINK.match(dropped.location)
    assert kept and gone, (held.location, dropped.location)
    assert len(kept.group(2)) == len(gone.group(2))
    assert gone.group(1) == gone.group(3) == str(before[-1][0] + 1)
    assert cookie_shape(dropped) == cookie_shape(held)


# --- when Akismet cannot answer -----------------------------------------------------------------

@pytest.mark.parametrize("failure", ["down", "slow", "garbage", "invalid key", "5xx"])
def test_no_verdict_holds_the_comment_never_losing_it(database_url, akismet, failure, caplog):
    url = f"http://127.0.0.1:{free_port()}/1.1/" if failure == "down" else akismet.url
    app = _akismet_app(database_url, url)
    if failure == "slow":
        akismet.delay = 3 * TIMEOUT + 1
    elif failure == "garbage":
        akismet.broken = (200, "<html><body>Down for maintenance</body></html>")
    elif failure == "invalid key":
        app.config["AKISMET_KEY"] = "not-the-key"
    elif failure == "5xx":
        akismet.broken = (503, "Service Unavailable")
    client = app.test_client()

    started = time.monotonic()
    response = _post(client, "Is anyone there?")
    waited = time.monotonic() - started

    assert response.status_code == 201 and response.json["held"] is True
    assert _comment(app, response.json["comment"]["id"]) == (
        CommentStatus.PENDING, ["spam check unavailable"])
    assert waited < TIMEOUT + 1.0  # the poster waits AKISMET_TIMEOUT, and the rest of the request
    # the no-JS form too: the held comment's redirect, not an error page
    form = client.post(FORM, data={**GUEST, "comment": "Hello again?"}, headers=ORIGIN)
    assert form.status_code == 303 and "unapproved=" in form.location
    assert _last(app).hold_reasons == ["spam check unavailable"]
    assert "gave no verdict" in caplog.text
    if failure == "invalid key":
        assert "We were unable to verify your API key." in caplog.text  # X-akismet-debug-help
    akismet.delay = 0


# --- an author's edit is checked again ---------------------------------------------------------

def test_a_self_edit_is_checked_as_an_edit_and_spam_goes_to_spam(app, client, akismet):
    response = _post(client, "An innocent comment.")
    comment_id = response.json["comment"]["id"]
    assert _comment(app, comment_id)[0] == CommentStatus.APPROVED
    created = _last(app).created_at

    akismet.verdict = "true"
    edit = client.put(f"/api/comments/{comment_id}", json={"comment": "Now with casino links."},
                      headers={"X-CSRFToken": csrf_token(client), "Referer": PAGE,
                               "User-Agent": BROWSER}, environ_base=READER)

    assert edit.status_code == 200 and edit.json["held"] is True
    assert _comment(app, comment_id) == (CommentStatus.SPAM,
                                         ["Akismet: spam", "edited by its author"])
    first, second = akismet.of("comment-check")
    assert "recheck_reason" not in first.fields
    assert second.fields["recheck_reason"] == "edit"
    assert second.fields["comment_content"] == "Now with casino links."
    assert datetime.fromisoformat(second.fields["comment_date_gmt"]) == created.replace(
        microsecond=0)
    assert "casino" not in app.test_client().get(PERMALINK).get_data(as_text=True)


def test_a_self_edit_akismet_would_discard_goes_to_spam(app, client, akismet):
    comment_id = _post(client, "An innocent comment.").json["comment"]["id"]
    akismet.verdict = "discard"
    edit = client.put(f"/api/comments/{comment_id}", json={"comment": "BUY NOW"},
                      headers={"X-CSRFToken": csrf_token(client)})
    assert edit.status_code == 200 and edit.json["held"] is True
    # an existing comment cannot be "not stored": it leaves the page for Spam
    assert _comment(app, comment_id) == (CommentStatus.SPAM,
                                         ["Akismet: blatant spam", "edited by its author"])


# --- a moderator's verdict goes back to Akismet ---------------------------------------------------

def test_moderator_spam_and_not_spam_go_back_after_the_commit(app, client, admin, akismet):
    comment_id = _post(client, "Looks fine to Akismet.").json["comment"]["id"]

    assert _moderate(admin, comment_id, "spam").status_code in (200, 303)
    [spam] = akismet.wait_for("submit-spam")
    assert spam.fields["api_key"] == KEY
    assert spam.fields["comment_content"] == "Looks fine to Akismet."
    assert spam.fields["user_ip"] == "198.51.100.23" and spam.fields["user_agent"] == BROWSER
    assert spam.fields["permalink"] == PAGE and spam.fields["comment_type"] == "comment"
    assert spam.fields["comment_author_email"] == "ayesha@example.com"
    assert "user_role" not in spam.fields

    assert _moderate(admin, comment_id, "unspam").status_code in (200, 303)
    [ham] = akismet.wait_for("submit-ham")
    assert ham.fields["comment_content"] == "Looks fine to Akismet."
    assert _comment(app, comment_id)[0] == CommentStatus.APPROVED


def test_approving_a_comment_held_while_akismet_was_away_sends_ham(database_url, akismet):
    app = _akismet_app(database_url, f"http://127.0.0.1:{free_port()}/1.1/")
    client = app.test_client()
    comment_id = _post(client, "Held while Akismet was down.").json["comment"]["id"]
    assert _comment(app, comment_id)[1] == ["spam check unavailable"]
    app.config["AKISMET_API_URL"] = akismet.url  # Akismet is back
    admin = app.test_client()
    sign_in_admin(admin, make_user(app, "moderator@example.com", admin=True))
    _moderate(admin, comment_id, "approve")
    [ham] = akismet.wait_for("submit-ham")
    assert ham.fields["comment_content"] == "Held while Akismet was down."
    akismet_client.get_client(app).join()


def test_approving_what_akismet_passed_tells_it_nothing(app, client, admin, akismet):
    configure(app, comment_moderation="unknown")
    comment_id = _post(client, "A first comment.").json["comment"]["id"]
    _moderate(admin, comment_id, "approve")
    assert akismet_client.get_client(app).join()
    assert _comment(app, comment_id)[0] == CommentStatus.APPROVED
    assert akismet.of("submit-ham") == akismet.of("submit-spam") == []


def test_a_rolled_back_verdict_sends_nothing(app, client, akismet):
    comment_id = _post(client, "Still here.").json["comment"]["id"]
    with app.app_context():
        apply(db.session.get(Comment, comment_id), Action.SPAM, Actor(None, "test"))
        db.session.rollback()
    assert akismet_client.get_client(app).join()
    assert akismet.of("submit-spam") == []
    assert _comment(app, comment_id)[0] == CommentStatus.APPROVED
    with app.app_context():  # the same verdict, committed, is sent
        apply(db.session.get(Comment, comment_id), Action.SPAM, Actor(None, "test"))
        db.session.commit()
    assert len(akismet.wait_for("submit-spam")) == 1


def test_a_moderator_never_waits_for_akismet(app, client, admin, akismet):
    comment_id = _post(client, "Fine.").json["comment"]["id"]
    akismet.delay = 3 * TIMEOUT
    started = time.monotonic()
    assert _moderate(admin, comment_id, "spam").status_code in (200, 303)
    assert time.monotonic() - started < TIMEOUT
    assert _comment(app, comment_id)[0] == CommentStatus.SPAM
    assert len(akismet.wait_for("submit-spam")) == 1  # it went, later, off the request
    akismet.delay = 0


def test_the_command_line_reports_spam_and_ham(app, client, akismet):
    comment_id = _post(client, "From the shell's point of view.").json["comment"]["id"]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["comments", "spam", str(comment_id)])
    assert result.exit_code == 0 and "Marked as spam" in result.output
    assert len(akismet.wait_for("submit-spam")) == 1
    result = runner.invoke(args=["comments", "approve", str(comment_id)])
    assert result.exit_code == 0 and "Approved" in result.output
    [ham] = akismet.wait_for("submit-ham")
    assert ham.fields["blog"] == "http://localhost"  # no request: SITE_URL, else localhost
    assert ham.fields["permalink"] == PAGE


def test_an_admins_comment_reported_says_administrator(app, admin, akismet):
    response = admin.post(API, json={"comment": "Admin's own."},
                          headers={"X-CSRFToken": csrf_token(admin)})
    _moderate(admin, response.json["comment"]["id"], "spam")
    [spam] = akismet.wait_for("submit-spam")
    assert spam.fields["user_role"] == "administrator"


def test_verify_key(app, akismet):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["akismet", "verify"])
    assert result.exit_code == 0 and "accepts the key" in result.output
    [call] = akismet.of("verify-key")
    assert call.fields == {"api_key": KEY, "blog": "http://localhost"}
    app.config["AKISMET_KEY"] = "not-the-key"
    result = runner.invoke(args=["akismet", "verify"])
    assert result.exit_code == 1 and "invalid" in result.output
    app.config["AKISMET_KEY"] = None
    result = runner.invoke(args=["akismet", "verify"])
    assert result.exit_code == 1 and "AKISMET_KEY is not set" in result.output


def test_without_a_key_akismet_is_never_asked(database_url, akismet):
    app = _akismet_app(database_url, akismet.url, AKISMET_KEY=None)
    assert _post(app.test_client(), "Hello.").json["held"] is False
    admin = app.test_client()
    sign_in_admin(admin, make_user(app, "moderator@example.com", admin=True))
    _moderate(admin, _last(app).id, "spam")
    assert akismet_client.get_client(app).join()
    assert akismet.calls == []


# --- Akismet and the learned filter together ------------------------------------------------------
# The learned filter's own learning is tested in its own tests; here its verdict is fixed (its
# `classify` replaced) to show how the screen combines the two.

SPAMMY = learned.Score(0.97, "spam", "learned filter: 97% spam")
UNSURE = learned.Score(0.6, "unsure", "learned filter: unsure (60% spam)")
HAMMY = learned.Score(0.02, "ham", "learned filter: 2% spam")


@pytest.mark.parametrize(("akismet_says", "filter_says", "status", "reasons"), [
    ("false", None, CommentStatus.APPROVED, None),
    ("false", HAMMY, CommentStatus.APPROVED, None),
    ("false", SPAMMY, CommentStatus.SPAM, ["learned filter: 97% spam"]),
    ("false", UNSURE, CommentStatus.PENDING, ["learned filter: unsure (60% spam)"]),
    ("true", HAMMY, CommentStatus.SPAM, ["Akismet: spam"]),
    ("true", SPAMMY, CommentStatus.SPAM, ["Akismet: spam", "learned filter: 97% spam"]),
    ("true", UNSURE, CommentStatus.SPAM, ["Akismet: spam", "learned filter: unsure (60% spam)"]),
    ("down", None, CommentStatus.PENDING, ["spam check unavailable"]),
    ("down", SPAMMY, CommentStatus.SPAM, ["spam check unavailable", "learned filter: 97% spam"]),
])
def test_either_saying_spam_is_spam(app, client, akismet, monkeypatch, akismet_says, filter_says,
                                    status, reasons):
    if akismet_says == "down":
        akismet.broken = (500, "Internal Server Error")
    else:
        akismet.verdict = akismet_says
    asked = []
    monkeypatch.setattr(learned, "classify", lambda **fields: asked.append(fields) or filter_says)

    response = _post(client, "Some words.")

    assert response.status_code == 201
    assert _comment(app, response.json["comment"]["id"]) == (status, reasons)
    assert asked == [{"content": "Some words.", "author": "Ayesha Khan",
                      "email": "ayesha@example.com", "url": "https://ayesha.example.com",
                      "ip": "198.51.100.23", "user_agent": BROWSER}]


def test_a_failing_filter_holds_the_comment(app, client, monkeypatch, caplog):
    def broken(**fields):
        raise RuntimeError("model file missing")

    monkeypatch.setattr(learned, "classify", broken)
    response = _post(client, "Some words.")
    assert response.status_code == 201 and response.json["held"] is True
    assert _comment(app, response.json["comment"]["id"]) == (CommentStatus.PENDING,
                                                             ["spam check unavailable"])
    assert "model file missing" in caplog.text


def test_moderator_verdicts_teach_the_filter_in_the_transaction(app, client, admin, monkeypatch):
    taught = []
    monkeypatch.setattr(learned, "learn", lambda **fields: taught.append(
        (fields["content"], fields["spam"], db.session().in_transaction())))
    configure(app, comment_moderation="everyone")
    first = _post(client, "Held for a moderator.").json["comment"]["id"]
    second = _post(client, "Another one.").json["comment"]["id"]
    _moderate(admin, first, "approve")  # ham
    _moderate(admin, second, "spam")  # spam
    _moderate(admin, second, "unspam")  # ham
    _moderate(admin, first, "unapprove")  # no verdict
    _moderate(admin, first, "trash")  # no verdict
    assert taught == [("Held for a moderator.", False, True), ("Another one.", True, True),
                      ("Another one.", False, True)]


def test_the_real_filter_learns_from_moderators_and_then_catches_spam(app, client, admin):
    """End to end with the learned filter itself (Akismet passing everything): it has no opinion
    until moderators have judged enough of each class, then its verdict puts spam in Spam."""
    configure(app, comment_moderation="everyone")
    for i in range(learned.MIN_EXAMPLES):
        spam = client.post(API, json={"author": f"Pharmacy {i}", "email": f"rx{i}@pills.example",
                                      "url": f"http://pills{i}.example",
                                      "comment": f"Buy cheap pills online, no prescription "
                                                 f"http://pills{i}.example/buy offer {i}"},
                           headers={"X-CSRFToken": csrf_token(client)}).json["comment"]["id"]
        ham = _post(client, f"Peace between neighbours matters; talk number {i} in Karachi "
                            f"and Moscow was long overdue.").json["comment"]["id"]
        assert _comment(app, spam)[1] == ["every comment is held"]  # no opinion yet
        _moderate(admin, spam, "spam")
        _moderate(admin, ham, "approve")
    with app.app_context():
        assert learned.stats().ready

    caught = client.post(API, json={"author": "Pharmacy 99", "email": "rx99@pills.example",
                                    "url": "http://pills99.example",
                                    "comment": "Buy cheap pills online, no prescription "
                                               "http://pills99.example/buy offer 99"},
                         headers={"X-CSRFToken": csrf_token(client)})
    assert caught.status_code == 201 and caught.json["held"] is True
    status, reasons = _comment(app, caught.json["comment"]["id"])
    assert status == CommentStatus.SPAM and reasons[0].startswith("learned filter:")


def test_a_rolled_back_verdict_teaches_the_filter_nothing(app, client):
    comment_id = _post(client, "Still here.").json["comment"]["id"]
    with app.app_context():
        before = learned.stats().spam
        apply(db.session.get(Comment, comment_id), Action.SPAM, Actor(None, "test"))
        db.session.rollback()
        assert learned.stats().spam == before
        apply(db.session.get(Comment, comment_id), Action.SPAM, Actor(None, "test"))
        db.session.commit()
        assert learned.stats().spam == before + 1
