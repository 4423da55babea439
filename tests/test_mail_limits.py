"""Mail nobody can turn into a weapon: every door that mails an address someone typed is limited
per recipient and per client IP, and moderator mail per commenter IP, against a real SMTP server
(aiosmtpd). Over a limit the answer is the same as a success's, and nothing is sent."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest
import redis
import sqlalchemy as sa

from app.commands import seed_article
from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, CommentStatus, Post, Subscription
from app.settings import set_setting
from tests.conftest import make_app, reset_database
from tests.smtp import start_smtp
from tests.test_admin_helpers import add_comment
from tests.test_admin_live import Stream, admin_session, serve, submit
from tests.test_comments import API, csrf_token

LIKES = "/api/posts/pakistan-russia-agree-to-bury-the-hatchet/likes"
OTHER_IP = "198.51.100.9"


@contextmanager
def mailing(database_url, *, inbox=None, fresh=True, **config):
    """An app that mails a real SMTP server; yields (app, inbox)."""
    controller = None
    if inbox is None:
        controller, inbox, port = start_smtp()
    else:
        inbox, port = inbox
    app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port,
                   MAIL_FROM="Parley <parley@example.com>", **config)
    if fresh:
        reset_database(app)
        with app.app_context():
            seed_article()
            set_setting("comment_flood_seconds", 0)
            set_setting("comment_moderation", "nobody")
            db.session.commit()
    try:
        yield app, inbox
    finally:
        get_mailer(app).join()
        if controller is not None:
            controller.stop()


def settle(app, inbox, at_least=0):
    assert get_mailer(app).join(10)
    inbox.wait_for(at_least, timeout=5)
    return inbox.messages


def client_from(app, ip="127.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def answer(response):
    """Everything a client can see of an answer."""
    return response.status_code, sorted(response.headers.items()), response.get_data()


def like(client, email, token=None):
    return client.post(LIKES, json={"email": email},
                       headers={"X-CSRFToken": token or csrf_token(client)})


# --- like confirmations ------------------------------------------------------------------------

def test_the_fourth_like_confirmation_to_one_address_is_withheld_and_answered_alike(
        database_url, caplog):
    caplog.set_level(logging.INFO, logger="app.limits")
    with mailing(database_url, MAIL_LIMIT_PER_ADDRESS="3 per hour") as (app, inbox):
        client = client_from(app)
        token = csrf_token(client)
        answers = [like(client, "victim@example.com", token) for _ in range(4)]
        messages = settle(app, inbox, 3)
        assert len(inbox.to("victim@example.com")) == 3
        assert answers[2].status_code == 202
        assert answer(answers[3]) == answer(answers[2])  # byte for byte, headers included
        assert len(messages) == 3
        # a +tag or a capital is the same mailbox
        like(client, "Victim+again@Example.com", token)
        settle(app, inbox)
        assert len(inbox.messages) == 3
        # another address is not held back by the victim's limit
        like(client, "someone@example.com", token)
        assert len(settle(app, inbox, 4)) == 4
    withheld = [r.getMessage() for r in caplog.records if "mail withheld" in r.getMessage()]
    assert len(withheld) == 2
    assert "MAIL_LIMIT_PER_ADDRESS" in withheld[0] and "v…@example.com" in withheld[0]
    assert not any("victim" in line for line in withheld)  # the address is not in the log


def test_gmail_dots_reach_one_inbox_and_count_as_one(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_ADDRESS="2 per hour") as (app, inbox):
        client = client_from(app)
        token = csrf_token(client)
        for spelling in ("jane.doe@gmail.com", "janedoe@gmail.com", "j.a.n.e.doe@googlemail.com"):
            like(client, spelling, token)
        assert len(settle(app, inbox, 2)) == 2


def test_like_confirmations_are_limited_per_client_ip_across_addresses(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_IP="3 per hour") as (app, inbox):
        client = client_from(app)
        token = csrf_token(client)
        answers = [like(client, f"reader{i}@example.com", token) for i in range(4)]
        settle(app, inbox, 3)
        assert sorted(m["To"] for m in inbox.messages) == [
            "reader0@example.com", "reader1@example.com", "reader2@example.com"]
        assert answer(answers[3]) == answer(answers[2])
        # another client is not held back, and may mail the address the first one could not
        assert like(client_from(app, OTHER_IP), "reader3@example.com").status_code == 202
        assert len(settle(app, inbox, 4)) == 4 and inbox.to("reader3@example.com")


def test_ipv6_clients_are_counted_by_their_64(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_IP="2 per hour") as (app, inbox):
        for i, ip in enumerate(("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9")):
            like(client_from(app, ip), f"six{i}@example.com")
        like(client_from(app, "2001:db8:1:3::1"), "six3@example.com")  # another /64
        settle(app, inbox, 3)
        assert sorted(m["To"] for m in inbox.messages) == [
            "six0@example.com", "six1@example.com", "six3@example.com"]


def test_rate_limits_off_lifts_the_mail_limits(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_ADDRESS="1 per hour",
                 RATELIMIT_ENABLED=False) as (app, inbox):
        client = client_from(app)
        token = csrf_token(client)
        for _ in range(3):
            like(client, "bench@example.com", token)
        assert len(settle(app, inbox, 3)) == 3


# --- the privacy link --------------------------------------------------------------------------

def ask_for_link(client, email):
    return client.post("/my-comments/", data={"email": email, "csrf_token": csrf_token(client)})


def test_the_privacy_link_is_limited_per_address_and_answered_alike(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_ADDRESS="3 per hour") as (app, inbox):
        add_comment(app, CommentStatus.APPROVED, author_email="writer@example.com")
        client = client_from(app)
        answers = [ask_for_link(client, "writer@example.com") for _ in range(4)]
        settle(app, inbox, 3)
        assert [m["Subject"].endswith("Your comments") for m in inbox.messages] == [True] * 3
        assert answer(answers[3]) == answer(answers[2])
        # an address without comments gets the same answer, and no mail
        assert answer(ask_for_link(client, "nobody@example.com"))[2] == answers[2].get_data() \
            .replace(b"writer@example.com", b"nobody@example.com")
        assert len(settle(app, inbox)) == 3


def test_the_privacy_link_is_limited_per_client_ip(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_IP="3 per hour") as (app, inbox):
        for i in range(5):
            add_comment(app, CommentStatus.APPROVED, author_email=f"writer{i}@example.com",
                        content=f"Comment {i}")
        client = client_from(app)
        answers = [ask_for_link(client, f"writer{i}@example.com") for i in range(4)]
        settle(app, inbox, 3)
        assert len(inbox.messages) == 3 and not inbox.to("writer3@example.com")
        assert answers[3].status_code == answers[2].status_code == 200
        assert answers[3].get_data() == answers[2].get_data().replace(b"writer2", b"writer3")
        assert answer(ask_for_link(client_from(app, OTHER_IP), "writer4@example.com"))[0] == 200
        settle(app, inbox, 4)
        assert inbox.to("writer4@example.com")


# --- subscription confirmations ----------------------------------------------------------------

def add_posts(app, count):
    with app.app_context():
        first = db.session.scalar(sa.select(Post))
        for i in range(count):
            db.session.add(Post(slug=f"more-{i}", title=f"More {i}", body="<p>More.</p>",
                                published_at=first.published_at))
        db.session.commit()


def comment_on(client, slug, email, text, **extra):
    return client.post(API.replace("pakistan-russia-agree-to-bury-the-hatchet", slug),
                       json={"comment": text, "author": "Reader", "email": email, **extra},
                       headers={"X-CSRFToken": csrf_token(client)})


def shape(response):
    """An answer to a new comment, less what differs from one comment to the next (its id,
    text, post and times, the length, the cookie's list of one's own comments)."""
    body = response.get_json()
    comment = body.pop("comment")
    headers = sorted((k, v.split("=")[0] if k == "Set-Cookie" else v)
                     for k, v in response.headers.items()
                     if k not in {"Content-Length", "Location"})
    return response.status_code, headers, sorted(body), body["held"], sorted(comment), \
        comment["status"]


def test_subscription_confirmations_are_limited_per_address(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_ADDRESS="3 per hour") as (app, inbox):
        add_posts(app, 2)
        client = client_from(app)
        slug = "pakistan-russia-agree-to-bury-the-hatchet"
        answers = [
            comment_on(client, slug, "fan@example.com", "One", subscribe_comments=True,
                       subscribe_blog=True),  # two confirmations: this post, and new posts
            comment_on(client, "more-0", "fan@example.com", "Two", subscribe_comments=True),
            comment_on(client, "more-1", "fan@example.com", "Three", subscribe_comments=True),
        ]
        settle(app, inbox, 3)
        assert [m["Subject"].split("] ")[1][:14] for m in inbox.messages] == ["Please confirm"] * 3
        assert len(inbox.to("fan@example.com")) == 3
        assert answers[2].status_code == 201
        assert shape(answers[2]) == shape(answers[1])
        with app.app_context():  # the withheld one is stored, unconfirmed, as asked
            assert db.session.scalar(sa.select(sa.func.count(Subscription.id))) == 4


def test_subscription_confirmations_are_limited_per_client_ip(database_url):
    with mailing(database_url, MAIL_LIMIT_PER_IP="3 per hour") as (app, inbox):
        client = client_from(app)
        slug = "pakistan-russia-agree-to-bury-the-hatchet"
        answers = [comment_on(client, slug, f"fan{i}@example.com", f"Note {i}",
                              subscribe_comments=True) for i in range(4)]
        settle(app, inbox, 3)
        assert len(inbox.messages) == 3 and not inbox.to("fan3@example.com")
        assert shape(answers[3]) == shape(answers[2])
        comment_on(client_from(app, OTHER_IP), slug, "fan4@example.com", "Elsewhere",
                   subscribe_comments=True)
        settle(app, inbox, 4)
        assert inbox.to("fan4@example.com")


# --- moderator mail ----------------------------------------------------------------------------

def test_held_comments_from_one_ip_stop_mailing_the_moderators_but_stay_queued_and_live(
        database_url):
    controller, inbox, port = start_smtp()
    try:
        with serve(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port,
                   MAIL_LIMIT_PER_IP="3 per hour") as (app, server):
            stream = Stream(admin_session(server), server.url + "/admin/live")
            try:
                stream.wait_for(lambda k, d: k == "counts")
                ids = [submit(app, f"Flood {i}", ip="203.0.113.50") for i in range(5)]
                for comment_id in ids:  # every one reaches the open queue
                    stream.wait_for(lambda k, d, c=comment_id: k == "comment.held"
                                    and d["id"] == c)
                settle(app, inbox, 3)
                assert len(inbox.messages) == 3  # one moderator: one mail per comment, 3 of 5
                other = submit(app, "From elsewhere", ip=OTHER_IP)
                stream.wait_for(lambda k, d: k == "comment.held" and d["id"] == other)
                settle(app, inbox, 4)
                assert "From elsewhere" in inbox.messages[-1].get_body(("plain",)).get_content()
            finally:
                stream.close()
            with app.app_context():
                assert db.session.scalar(sa.select(sa.func.count(Comment.id)).where(
                    Comment.status == CommentStatus.PENDING)) == 6
    finally:
        controller.stop()


# --- one count for every worker and host --------------------------------------------------------

@pytest.mark.redis
def test_two_apps_sharing_redis_share_the_counts(database_url, redis_url, redis_prefix):
    shared = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix,
              "MAIL_LIMIT_PER_ADDRESS": "3 per hour"}
    with mailing(database_url, **shared) as (first, inbox):
        port = first.config["MAIL_PORT"]
        with mailing(database_url, inbox=(inbox, port), fresh=False, **shared) as (second, _):
            one, two = client_from(first), client_from(second)
            like(one, "victim@example.com")
            like(two, "victim@example.com")
            like(one, "victim@example.com")
            settle(first, inbox, 3)
            settle(second, inbox, 3)
            assert like(two, "victim@example.com").status_code == 202
            settle(second, inbox)
            assert len(inbox.to("victim@example.com")) == 3
            store = redis.Redis.from_url(redis_url)  # no address is kept in clear in Redis
            keys = list(store.scan_iter(f"{redis_prefix}*"))
            store.close()
            assert keys and not any(b"victim" in k for k in keys)

