"""Operator commands: `flask --app app seed`, and the command groups of each area."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from importlib import resources

import click
import sqlalchemy as sa
from flask import Flask

from app.comments import cli as comments_cli
from app.comments.content import render
from app.extensions import db
from app.models import Comment, CommentStatus, Post


def seed_article() -> tuple[Post, bool]:
    """Load the 2011 article and its reader comment unless they are there; return (post, created)."""
    data = json.loads(resources.files("app.data").joinpath("article.json").read_text("utf-8"))
    post = db.session.scalar(sa.select(Post).where(Post.slug == data["slug"]))
    if post is not None:
        return post, False
    post = Post(
        slug=data["slug"],
        title=data["title"],
        published_at=datetime.fromisoformat(data["published_at"]),
        byline=data["byline"],
        standfirst=data["standfirst"],
        body="\n".join(f"<p>{escape(p)}</p>" for p in data["paragraphs"]),
        source_line=data["source_line"],
        like_count=data["like_count"],
    )
    db.session.add(post)
    db.session.flush()
    for item in data["comments"]:
        created = datetime.fromisoformat(item["created_at"])
        db.session.add(
            Comment(
                post_id=post.id,
                author_name=item["author_name"],
                author_email=item["author_email"],
                author_url=item["author_url"],
                content=item["content"],
                content_html=render(item["content"]),
                status=CommentStatus.APPROVED,
                created_at=created,
                updated_at=created,
            )
        )
    db.session.commit()
    return post, True


def register(app: Flask) -> None:
    comments_cli.register(app)

    @app.cli.command("seed")
    def seed() -> None:
        """Load the article and its existing comment (idempotent)."""
        post, created = seed_article()
        if created:
            click.echo(f"Seeded “{post.title}” with its reader comment.")
        else:
            click.echo(f"“{post.title}” is already there; nothing changed.")
