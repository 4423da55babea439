"""`flask comments …`: list and moderate comments from the shell, as WP-CLI's `wp comment`; and
`flask akismet verify`.

Moderation here is a moderator's as on the admin screens (app/moderation/actions.py): audited
(as "command line"), and Spam / Approve teach the spam checks.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from app.extensions import db
from app.models import Comment, CommentStatus
from app.moderation.actions import Action, apply
from app.moderation.models import Actor
from app.spam import akismet

comments_cli = AppGroup("comments", help="List and moderate comments (as WP-CLI's `wp comment`).")

STATUS_CHOICES = [s.value for s in CommentStatus]
ACTIONS = {
    "approve": CommentStatus.APPROVED,
    "unapprove": CommentStatus.PENDING,
    "spam": CommentStatus.SPAM,
    "trash": CommentStatus.TRASH,
}
MODERATION = {"approve": Action.APPROVE, "unapprove": Action.UNAPPROVE, "spam": Action.SPAM,
              "trash": Action.TRASH, "delete": Action.DELETE}
SHELL = Actor(None, "command line (flask comments)")


@comments_cli.command("list")
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only comments in this state.")
def list_comments(status: str | None) -> None:
    """List comments, oldest first."""
    query = sa.select(Comment).order_by(Comment.id)
    if status:
        query = query.where(Comment.status == CommentStatus(status))
    rows = db.session.scalars(query).all()
    click.echo(f"{'ID':>6}  {'STATUS':<9} {'DATE (UTC)':<17} {'AUTHOR':<20} {'EMAIL':<28} CONTENT")
    for c in rows:
        text = " ".join(c.content.split())
        click.echo(f"{c.id:>6}  {c.status.value:<9} {c.created_at:%Y-%m-%d %H:%M}  "
                   f"{c.author_name[:20]:<20} {c.author_email[:28]:<28} {text[:50]}")
    click.echo(f"{len(rows)} comment{'s' if len(rows) != 1 else ''}.")


def _moderate(action: str, ids: tuple[int, ...]) -> None:
    missing = 0
    for comment_id in ids:
        comment = db.session.get(Comment, comment_id)
        if comment is None:
            click.echo(f"Warning: comment {comment_id} does not exist.", err=True)
            missing += 1
            continue
        changed = apply(comment, MODERATION[action], SHELL)
        db.session.commit()  # publishes to live readers, like any other approval
        if action == "delete":
            click.echo(f"Success: Deleted comment {comment_id}.")
            continue
        verb = {"approve": "Approved", "unapprove": "Unapproved", "spam": "Marked as spam",
                "trash": "Trashed"}[action]
        if changed:
            click.echo(f"Success: {verb} comment {comment_id}.")
        else:
            click.echo(f"Comment {comment_id} is already {ACTIONS[action].value}.")
    if missing:
        raise click.exceptions.Exit(1)


def _make_action(action: str) -> None:
    @comments_cli.command(action, help=f"{action.capitalize()} the comments with these IDs.")
    @click.argument("ids", nargs=-1, type=int, required=True)
    def command(ids: tuple[int, ...]) -> None:
        _moderate(action, ids)


for _action in (*ACTIONS, "delete"):
    _make_action(_action)


akismet_cli = AppGroup("akismet", help="Akismet, the spam check WordPress.com uses.")


@akismet_cli.command("verify")
def verify() -> None:
    """Ask Akismet whether AKISMET_KEY is valid for this site (SITE_URL)."""
    if not akismet.enabled():
        raise click.ClickException("AKISMET_KEY is not set: Akismet is off.")
    try:
        valid = akismet.verify_key()
    except akismet.Unavailable as exc:
        raise click.ClickException(f"Akismet did not say: {exc}") from None
    if not valid:
        raise click.ClickException("Akismet says the key is invalid (for this site).")
    click.echo("Akismet accepts the key.")


def register(app: Flask) -> None:
    app.cli.add_command(comments_cli)
    app.cli.add_command(akismet_cli)
