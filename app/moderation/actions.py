"""What a moderator does to comments, each step recorded in the audit log.

The admin screens, the links in moderator mail and the command line call these; callers commit,
once. Changes go through the comment gate (app/comments/service.py), so approvals, edits and
removals reach live readers, mail and the page window as any other change does. A moderator's
Spam, Not Spam and Approve are verdicts the spam checks learn from (`_teach`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from app.comments import service
from app.extensions import db
from app.models import Comment, CommentStatus, Post
from app.moderation.models import Actor, AuditAction, AuditEntry, CommentRevision
from app.moderation.screen import SPAM_CHECK_UNAVAILABLE
from app.spam import akismet
from app.spam import filter as learned


class Action(enum.Enum):
    """The row actions of WordPress's Comments screen that move a comment between queues."""

    APPROVE = "approve"
    UNAPPROVE = "unapprove"
    SPAM = "spam"
    NOT_SPAM = "unspam"
    TRASH = "trash"
    RESTORE = "restore"
    DELETE = "delete"

    @property
    def label(self) -> str:
        return {"unspam": "Not Spam", "delete": "Delete Permanently"}.get(
            self.value, self.value.capitalize())

    @property
    def audit(self) -> AuditAction:
        return {Action.APPROVE: AuditAction.APPROVE, Action.UNAPPROVE: AuditAction.UNAPPROVE,
                Action.SPAM: AuditAction.SPAM, Action.NOT_SPAM: AuditAction.NOT_SPAM,
                Action.TRASH: AuditAction.TRASH, Action.RESTORE: AuditAction.RESTORE,
                Action.DELETE: AuditAction.DELETE}[self]


# Which actions make sense for a comment in each state (the row actions WordPress shows).
AVAILABLE: dict[CommentStatus, tuple[Action, ...]] = {
    CommentStatus.PENDING: (Action.APPROVE, Action.SPAM, Action.TRASH),
    CommentStatus.APPROVED: (Action.UNAPPROVE, Action.SPAM, Action.TRASH),
    CommentStatus.SPAM: (Action.NOT_SPAM, Action.DELETE),
    CommentStatus.TRASH: (Action.RESTORE, Action.SPAM, Action.DELETE),
}


def _snapshot(comment: Comment) -> dict[str, Any]:
    text = " ".join(comment.content.split())
    return {"author": comment.author_name, "excerpt": text[:120], "post_id": comment.post_id}


def _status_before(comment: Comment, left: CommentStatus) -> CommentStatus:
    """The state *comment* was in before it went to *left* (spam or trash); pending if unknown."""
    rows = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.comment_id == comment.id)
        .order_by(AuditEntry.id.desc()).limit(20))
    for entry in rows:
        detail = entry.detail or {}
        if detail.get("to") == left.value and detail.get("from"):
            try:
                previous = CommentStatus(detail["from"])
            except ValueError:
                break
            if previous not in (CommentStatus.SPAM, CommentStatus.TRASH):
                return previous
            break
    return CommentStatus.PENDING


def target_status(comment: Comment, action: Action) -> CommentStatus:
    if action is Action.APPROVE:
        return CommentStatus.APPROVED
    if action is Action.UNAPPROVE:
        return CommentStatus.PENDING
    if action is Action.SPAM:
        return CommentStatus.SPAM
    if action is Action.TRASH:
        return CommentStatus.TRASH
    if action is Action.NOT_SPAM:
        return _status_before(comment, CommentStatus.SPAM) if comment.status is CommentStatus.SPAM \
            else comment.status
    if action is Action.RESTORE:
        return _status_before(comment, CommentStatus.TRASH) \
            if comment.status is CommentStatus.TRASH else comment.status
    raise ValueError(action)


def apply(comment: Comment, action: Action, actor: Actor) -> bool:
    """Do *action* to *comment*; return False if there was nothing to do."""
    if action is Action.DELETE:
        AuditEntry.add(actor, AuditAction.DELETE, comment.id, status=comment.status.value,
                       **_snapshot(comment))
        service.delete(comment)
        return True
    before = comment.status
    after = target_status(comment, action)
    if not service.set_status(comment, after):
        return False
    AuditEntry.add(actor, action.audit, comment.id, **{"from": before.value, "to": after.value})
    _teach(comment, action, before)
    return True


def _teach(comment: Comment, action: Action, before: CommentStatus) -> None:
    """A moderator's verdict, for the spam checks: Spam is spam; Approve and Not Spam are ham.

    The learned filter learns every verdict, in this transaction. Akismet hears, after the commit
    and off this thread, what it asks to hear (as WordPress's Akismet plugin tells it): every
    Spam (submit-spam), and ham for a comment leaving Spam or held because Akismet could not be
    asked (submit-ham); approving a comment Akismet already passed tells it nothing new.
    """
    if action is Action.SPAM:
        spam = True
    elif action in (Action.APPROVE, Action.NOT_SPAM):
        spam = False
    else:
        return
    learned.learn(content=comment.content, author=comment.author_name, email=comment.author_email,
                  url=comment.author_url, ip=comment.ip, user_agent=comment.user_agent, spam=spam)
    if spam or before is CommentStatus.SPAM or SPAM_CHECK_UNAVAILABLE in (comment.hold_reasons or ()):
        akismet.report(comment, spam=spam)


def apply_many(ids: Iterable[int], action: Action, actor: Actor) -> int:
    """Do *action* to each comment in *ids*; return how many changed."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    comments = db.session.scalars(sa.select(Comment).where(Comment.id.in_(ids))
                                  .order_by(Comment.id)).all()
    return sum(apply(c, action, actor) for c in comments)


def empty(status: CommentStatus, actor: Actor) -> int:
    """Delete every comment in Spam or Trash for good (WordPress's Empty Spam / Empty Trash)."""
    if status not in (CommentStatus.SPAM, CommentStatus.TRASH):
        raise ValueError(status)
    comments = db.session.scalars(sa.select(Comment).where(Comment.status == status)).all()
    for comment in comments:
        service.delete(comment)
    action = AuditAction.EMPTY_SPAM if status is CommentStatus.SPAM else AuditAction.EMPTY_TRASH
    AuditEntry.add(actor, action, None, count=len(comments), ids=[c.id for c in comments][:1000])
    return len(comments)


def edit(comment: Comment, actor: Actor, *, content: str, author: str, email: str, url: str,
         status: CommentStatus | None = None) -> bool:
    """Edit *comment* (trusted: a moderator's edit is not screened), keeping what it said before
    as a revision, and move it to *status*; return False if nothing changed."""
    changed_text = service.moderator_edit(comment, actor, content=content, author=author,
                                          email=email, url=url)
    moved = False
    if status is not None and status is not comment.status:
        action = {CommentStatus.APPROVED: Action.APPROVE, CommentStatus.PENDING: Action.UNAPPROVE,
                  CommentStatus.SPAM: Action.SPAM, CommentStatus.TRASH: Action.TRASH}[status]
        moved = apply(comment, action, actor)
    return changed_text or moved


def reply(parent: Comment, actor: Actor, content: str, *, user_agent: str = "") -> Comment:
    """Reply to *parent* as the signed-in admin, approving it first if it was held (WordPress's
    "Approve and Reply"), in the caller's one transaction: if the reply is refused
    (service.CommentRejected, as for any comment), the caller rolls back and the parent stays
    as it was."""
    if actor.user is None:
        raise ValueError("a reply needs a signed-in author")
    if parent.status is CommentStatus.PENDING:
        apply(parent, Action.APPROVE, actor)
    post = db.session.get(Post, parent.post_id)
    comment = service.submit(post, {"comment": content, "comment_parent": parent.id},
                             user=actor.user, ip=actor.ip, user_agent=user_agent).comment
    AuditEntry.add(actor, AuditAction.REPLY, comment.id, parent_id=parent.id)
    return comment


def revisions(comment: Comment) -> list[CommentRevision]:
    return list(db.session.scalars(CommentRevision.of(comment)))
