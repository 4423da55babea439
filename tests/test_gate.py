"""One gate for every change to a comment: screen → store → the caller commits once → after-commit
effects. Each door is tried as a user would: a commenter's own edit, Approve and Reply, and a
change that is rolled back."""

from __future__ import annotations

import sqlalchemy as sa

from app.comments import service
from app.database import pending_effects
from app.extensions import db
from app.live import get_broker
from app.mail import get_mailer
from app.models import Comment, CommentStatus, Event, Post, Subscription, utcnow
from app.moderation.models import Actor, AuditEntry, Ban, BanKind, CommentRevision
from tests.test_admin_helpers import csrf_token as admin_csrf_token
from tests.test_admin_helpers import make_user, sign_in_admin
from tests.test_article import PERMALINK
from tests.test_comments import GUEST, api_post, configure, csrf_token
from tests.test_mail import inbox, mail_app, submit, wait_for_mail  # noqa: F401 (fixtures)

SPAM = ("Cheap casino bonus at http://a.example http://b.example http://c.example "
        "and http://d.example")


def _events_after(app, event_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Event.kind).where(Event.id > event_id)
                                       .order_by(Event.id)))


def _last_event(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.max(Event.id))) or 0


def _approved_guest_comment(app, client) -> int:
    """The issue's first steps: an innocent guest comment, held as a first comment, then approved
    by a moderator."""
    configure(app, comment_moderation="unknown", comment_max_links=2, moderation_keys=["casino"],
              comment_flood_seconds=0)
    response = api_post(client, {**GUEST, "comment": "An innocent first comment."})
    assert response.status_code == 201 and response.json["held"] is True
    comment_id = response.json["comment"]["id"]
    with app.app_context():
        service.set_status(db.session.get(Comment, comment_id), CommentStatus.APPROVED)
        db.session.commit()
    return comment_id


def _edit(client, comment_id: int, text: str):
    return client.put(f"/api/comments/{comment_id}", json={"comment": text},
                      headers={"X-CSRFToken": csrf_token(client)})


# --- a commenter's own edit is screened like a new comment ------------------------------------

def test_a_self_edit_the_rules_would_hold_goes_back_to_pending(app, client):
    comment_id = _approved_guest_comment(app, client)
    before = _last_event(app)

    response = _edit(client, comment_id, SPAM)

    assert response.status_code == 200
    assert response.json["held"] is True  # the author is told it awaits moderation
    assert "comment-held" in response.json["comment"]["html"]
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment.status == CommentStatus.PENDING
        assert {"4 links", "keyword “casino” in comment", "edited by its author"} <= set(
            comment.hold_reasons)
        assert db.session.scalar(sa.select(CommentRevision.content)) == "An innocent first comment."
    # live readers see it go, and the count fall; nothing of the new text is public
    assert _events_after(app, before) == ["comment.removed", "count"]
    assert "casino" not in app.test_client().get(PERMALINK).get_data(as_text=True)
    listed = app.test_client().get("/api/posts/pakistan-russia-agree-to-bury-the-hatchet/comments")
    assert comment_id not in [c["id"] for c in listed.json["comments"]]
    # the author still sees their own comment, as held
    held = client.get("/api/session?post=pakistan-russia-agree-to-bury-the-hatchet").json["held"]
    assert [c["id"] for c in held] == [comment_id]


def test_a_self_edit_with_a_disallowed_keyword_is_trashed_like_a_new_comment(app, client):
    comment_id = _approved_guest_comment(app, client)
    configure(app, disallowed_keys=["viagra"])
    before = _last_event(app)
    assert _edit(client, comment_id, "Now selling viagra.").status_code == 200
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert comment.status == CommentStatus.TRASH
        assert "disallowed keyword “viagra” in comment" in comment.hold_reasons
    assert _events_after(app, before) == ["comment.removed", "count"]


def test_a_self_edit_by_a_banned_author_is_refused_and_changes_nothing(app, client):
    comment_id = _approved_guest_comment(app, client)
    configure(app, ban_action="refuse")
    with app.app_context():
        db.session.add(Ban(kind=BanKind.EMAIL, value=GUEST["email"]))
        db.session.commit()
    before = _last_event(app)
    response = _edit(client, comment_id, "Edited after the ban.")
    assert response.status_code == 403 and response.json["error"] == "banned"
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        assert (comment.status, comment.content) == (CommentStatus.APPROVED,
                                                     "An innocent first comment.")
        assert db.session.scalar(sa.select(sa.func.count(CommentRevision.id))) == 0
    assert _events_after(app, before) == []


def test_a_clean_self_edit_of_an_approved_comment_stays_approved_and_updates_live(app, client):
    comment_id = _approved_guest_comment(app, client)
    before = _last_event(app)
    response = _edit(client, comment_id, "An innocent first comment, spelt better.")
    assert response.status_code == 200 and response.json["held"] is False
    assert _events_after(app, before) == ["comment.updated"]


def test_editing_a_held_comment_never_approves_it(app, client):
    configure(app, comment_moderation="unknown", comment_flood_seconds=0)
    comment_id = api_post(client, {**GUEST, "comment": "Held at first."}).json["comment"]["id"]
    response = _edit(client, comment_id, "Held at first, and still.")
    assert response.status_code == 200 and response.json["held"] is True
    with app.app_context():
        assert db.session.get(Comment, comment_id).status == CommentStatus.PENDING


def test_a_moderators_edit_is_trusted(app, client):
    comment_id = _approved_guest_comment(app, client)
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        service.moderator_edit(comment, Actor(None, "a moderator"), content=SPAM,
                               author=comment.author_name, email=comment.author_email,
                               url="javascript:alert(1)")
        db.session.commit()
        comment = db.session.get(Comment, comment_id)
        assert comment.status == CommentStatus.APPROVED and comment.content == SPAM
        assert comment.author_url == ""  # trusted text, but a link is still only http(s)


# --- Approve and Reply is one transaction -----------------------------------------------------

def test_a_refused_approve_and_reply_changes_nothing(app, client):
    """The reply is a duplicate of the moderator's earlier reply, so it is refused (409): the
    held parent stays held, and nothing of the approval is stored, audited or announced."""
    configure(app, comment_moderation="unknown", comment_flood_seconds=0)
    parent_id = api_post(client, {**GUEST, "comment": "A question."}).json["comment"]["id"]
    moderator = app.test_client()
    sign_in_admin(moderator, make_user(app, "mod@example.com", admin=True, name="Mod"))
    token = admin_csrf_token(moderator, "/admin/")
    reply = {"csrf_token": token, "content": "Thanks for asking."}
    assert moderator.post(f"/admin/comments/{parent_id}/reply", data=reply).status_code == 303
    with app.app_context():  # a moderator sends it back to the queue
        service.set_status(db.session.get(Comment, parent_id), CommentStatus.PENDING)
        db.session.commit()
        audited = db.session.scalar(sa.select(sa.func.count(AuditEntry.id)))
    before = _last_event(app)

    refused = moderator.post(f"/admin/comments/{parent_id}/reply", data=reply,
                             headers={"Accept": "application/json"})

    assert refused.status_code == 409
    with app.app_context():
        assert db.session.get(Comment, parent_id).status == CommentStatus.PENDING
        assert db.session.scalar(sa.select(sa.func.count(Comment.id)).where(
            Comment.parent_id == parent_id)) == 1  # the first reply only
        assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == audited
    assert _events_after(app, before) == []


def test_an_accepted_approve_and_reply_is_stored_together(app, client):
    configure(app, comment_moderation="unknown", comment_flood_seconds=0)
    parent_id = api_post(client, {**GUEST, "comment": "Another question."}).json["comment"]["id"]
    moderator = app.test_client()
    sign_in_admin(moderator, make_user(app, "mod@example.com", admin=True, name="Mod"))
    before = _last_event(app)
    assert moderator.post(f"/admin/comments/{parent_id}/reply", data={
        "csrf_token": admin_csrf_token(moderator, "/admin/"),
        "content": "An answer."}).status_code == 303
    with app.app_context():
        assert db.session.get(Comment, parent_id).status == CommentStatus.APPROVED
        reply = db.session.scalar(sa.select(Comment).where(Comment.parent_id == parent_id))
        assert reply.content == "An answer." and reply.status == CommentStatus.APPROVED
    assert _events_after(app, before) == ["comment.created", "count", "comment.created", "count"]


# --- after the commit, and only then ----------------------------------------------------------

def _stage_every_effect(app) -> None:
    """In the current transaction: approve a held comment (live event, subscriber mail) and
    submit a new one the rules hold (moderator mail)."""
    post = db.session.scalar(sa.select(Post))
    held = db.session.scalar(sa.select(Comment).where(Comment.status == CommentStatus.PENDING))
    service.set_status(held, CommentStatus.APPROVED)
    service.submit(post, {**GUEST, "email": "new@example.com", "author": "New",
                          "comment": "A first comment, held."}, ip="198.51.100.9",
                   user_agent="Firefox")


def _published(app) -> list[int | None]:
    news: list[int | None] = []
    get_broker(app).start(news.append)
    return news


def test_a_rolled_back_change_sends_no_mail_and_no_live_event(mail_app, inbox):  # noqa: F811
    submit(mail_app, {"comment": "Held for a while."})  # a first comment: held, mailed
    wait_for_mail(mail_app, inbox, 2)
    inbox.messages.clear()
    with mail_app.app_context():
        db.session.add(Subscription(email="reader@example.com",
                                    post_id=db.session.scalar(sa.select(Post.id)),
                                    confirmed_at=utcnow()))
        db.session.commit()
    news = _published(mail_app)
    before = _last_event(mail_app)

    with mail_app.app_context():
        _stage_every_effect(mail_app)
        assert pending_effects(db.session()) > 0
        db.session.rollback()
        assert pending_effects(db.session()) == 0

    assert get_mailer(mail_app).join(10)
    assert inbox.messages == [] and news == [] and _events_after(mail_app, before) == []

    # The same change committed does all of it: the test above can fail.
    with mail_app.app_context():
        _stage_every_effect(mail_app)
        db.session.commit()
    messages = wait_for_mail(mail_app, inbox, 3)
    recipients = sorted(r for rcpt, _ in messages for r in rcpt)
    assert recipients == ["moderator@example.com", "owner@example.com", "reader@example.com"]
    assert news and _events_after(mail_app, before) == ["comment.created", "count"]
