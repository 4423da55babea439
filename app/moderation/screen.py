"""Moderation rules: decide whether an incoming comment is published, held, trashed, put in
Spam, dropped or refused.

`screen()` is the one place the comment service asks. It applies, in WordPress's order, to
everyone but an admin: bans (ours), the disallowed keywords (→ trash), the honeypot (a filled
one → dropped), Akismet when AKISMET_KEY is set (spam → Spam; "discard" → dropped; no verdict →
held), the learned filter (spam → Spam; unsure → held), and the hold rules (everyone held, too
many links, moderation keywords, first comment) (→ pending). Either spam check saying spam puts
the comment in Spam. Every rule that fired is recorded on the comment and shown in the
moderation queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Post, User
from app.moderation import bans, rules
from app.settings import get_setting
from app.spam import akismet
from app.spam import filter as learned

log = logging.getLogger(__name__)

BANNED_MESSAGE = ("Sorry, your comment could not be accepted. "
                  "If you think this is a mistake, please contact the site owner.")
CLOSED_MESSAGE = "Comments are closed on this post."
# The reason a comment is held when a spam check could not say (Akismet down, slow or confused).
SPAM_CHECK_UNAVAILABLE = "spam check unavailable"
AKISMET_SPAM = "Akismet: spam"
AKISMET_DISCARD = "Akismet: blatant spam"  # its "discard": only ever stored for an author's edit
HONEYPOT_FILLED = "honeypot field filled"


@dataclass
class Draft:
    """A comment checked against the form's rules, ready to screen and store."""

    content: str
    author: str
    email: str
    url: str
    parent_id: int | None
    notify: bool
    html: str  # the text rendered once: stored, and what the link rule counts
    honeypot: str = ""  # the form's trap field: people leave it empty
    referrer: str = ""  # the page the comment was sent from (the request's Referer), for Akismet
    created_at: datetime | None = None  # an author's edit: when the comment was first posted


@dataclass
class Verdict:
    """What the rules decided about a new comment, and why (shown in the moderation queue)."""

    status: CommentStatus
    reasons: list[str] = field(default_factory=list)
    refuse: str | None = None  # a polite message: the comment is not stored at all
    error: str = "refused"  # the machine-readable code that goes with *refuse*
    # Dropped silently: not stored, and its poster told what the poster of a held comment is
    # (a filled honeypot, Akismet's "discard"). An author's edit is put in Spam instead.
    discard: bool = False


def screen(post: Post, draft: Draft, user: User | None, ip: str, user_agent: str) -> Verdict:
    """Apply the bans and the Discussion settings to a new comment."""
    if rules.closed_by_age(post):
        return Verdict(CommentStatus.PENDING, refuse=CLOSED_MESSAGE, error="closed")
    if user is not None and user.is_admin:
        return Verdict(CommentStatus.APPROVED)

    banned = bans.find(draft.email, user, ip)
    if banned:
        reasons = [b.label for b in banned]
        if get_setting("ban_action") == "refuse":
            return Verdict(CommentStatus.PENDING, reasons, refuse=BANNED_MESSAGE, error="banned")
        return Verdict(CommentStatus.PENDING, reasons)

    fields = {"content": draft.content, "author": draft.author, "email": draft.email,
              "url": draft.url, "ip": ip, "user_agent": user_agent}
    disallowed = rules.match_keywords(get_setting("disallowed_keys"), fields)
    if disallowed:
        return Verdict(CommentStatus.TRASH, [f"disallowed {r}" for r in disallowed])

    if draft.honeypot:
        return Verdict(CommentStatus.SPAM, [HONEYPOT_FILLED], discard=True)

    checked = _spam_checks(post, draft, ip, user_agent)
    if checked.status is CommentStatus.SPAM:
        return checked
    reasons = [*checked.reasons, *_hold_reasons(draft, user, fields)]
    return Verdict(CommentStatus.PENDING if reasons else CommentStatus.APPROVED, reasons)


def _spam_checks(post: Post, draft: Draft, ip: str, user_agent: str) -> Verdict:
    """Akismet's and the learned filter's verdict. Either saying spam is spam (and Akismet's
    "discard" drops the comment at once); a check that cannot say (Akismet unavailable) or is
    unsure holds it, by giving a reason."""
    spam, reasons = False, []
    if akismet.enabled():
        try:
            answer = akismet.check(post, content=draft.content, author=draft.author,
                                   email=draft.email, url=draft.url, ip=ip, user_agent=user_agent,
                                   referrer=draft.referrer, reply=draft.parent_id is not None,
                                   created_at=draft.created_at)
        except akismet.Unavailable:
            reasons.append(SPAM_CHECK_UNAVAILABLE)
        else:
            if answer == akismet.DISCARD:
                return Verdict(CommentStatus.SPAM, [AKISMET_DISCARD], discard=True)
            if answer == akismet.SPAM:
                spam = True
                reasons.append(AKISMET_SPAM)
    try:
        score = learned.classify(content=draft.content, author=draft.author, email=draft.email,
                                 url=draft.url, ip=ip, user_agent=user_agent)
    except Exception:  # a broken filter must not lose the comment (nor 500): held, and logged
        log.exception("the learned filter failed; the comment is held")
        score = None
        if SPAM_CHECK_UNAVAILABLE not in reasons:
            reasons.append(SPAM_CHECK_UNAVAILABLE)
    if score is not None and score.verdict in ("spam", "unsure"):
        spam = spam or score.verdict == "spam"
        reasons.append(score.reason)
    if spam:
        return Verdict(CommentStatus.SPAM, reasons)
    return Verdict(CommentStatus.PENDING if reasons else CommentStatus.APPROVED, reasons)


def _hold_reasons(draft: Draft, user: User | None, fields: dict[str, str]) -> list[str]:
    reasons: list[str] = []
    rule = get_setting("comment_moderation")
    if rule == "everyone":
        reasons.append("every comment is held")
    max_links = int(get_setting("comment_max_links"))
    if max_links > 0:
        links = rules.count_links(draft.html)
        if links >= max_links:
            reasons.append(f"{links} links" if links != 1 else "1 link")
    reasons += rules.match_keywords(get_setting("moderation_keys"), fields)
    if rule == "unknown" and not _previously_approved(draft, user):
        reasons.append("first comment")
    return reasons


def _previously_approved(draft: Draft, user: User | None) -> bool:
    """WordPress's default: has this author a comment approved before?"""
    known = sa.select(Comment.id).where(Comment.status == CommentStatus.APPROVED)
    if user is not None:
        known = known.where(Comment.user_id == user.id)
    elif draft.email:
        known = known.where(Comment.author_email == draft.email, Comment.author_name == draft.author)
    else:
        return False
    return db.session.scalar(known.limit(1)) is not None
