"""The benchmark's data: the article with N approved comments, in Parley and in Isso."""

from __future__ import annotations

import json
import random
import urllib.request
from datetime import UTC, datetime, timedelta

WORDS = ("the talks in Islamabad went further than anyone expected and both sides agreed that "
         "trade energy and security cooperation would come first while the old grievances of "
         "the cold war would be left to historians").split()


def comment_texts(count: int, seed: int = 7) -> list[dict]:
    """*count* comments: author, email, url, text; every fourth one a reply to the one before."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        paragraphs = ["\n".join([" ".join(rng.choices(WORDS, k=rng.randint(12, 30))).capitalize()
                                 + "."]) for _ in range(rng.randint(1, 3))]
        items.append({
            "author": f"Reader {i}",
            "email": f"reader{i}@example.com",
            "url": f"https://reader{i}.example.org" if i % 3 == 0 else "",
            "text": "\n\n".join(paragraphs),
            "reply_to": i - 1 if i % 4 == 3 else None,
        })
    return items


def parley_app(database_url: str, **config):
    from app import create_app

    settings = {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench-secret-key",
                "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": False}
    settings.update(config)
    return create_app(settings, config_name="development")


def seed_parley(database_url: str, count: int, *, settings: dict | None = None) -> dict:
    """A fresh schema with the article and *count* approved comments; return the post's ids."""
    from app.commands import seed_article
    from app.extensions import db
    from app.settings import set_setting

    app = parley_app(database_url)
    with app.app_context():
        db.drop_all()
        db.create_all()
        post, _ = seed_article()
        for key, value in {"comment_moderation": "nobody", "comment_flood_seconds": 0,
                           **(settings or {})}.items():
            set_setting(key, value)
        add_comments(post.id, count)
        db.session.commit()
        result = {"post_id": post.id, "slug": post.slug}
        db.session.remove()
        db.engine.dispose()
    return result


def add_comments(post_id: int, count: int, start: datetime | None = None) -> None:
    """Insert *count* approved comments on *post_id* in bulk (the rendering WordPress stores)."""
    import sqlalchemy as sa

    from app.comments.content import render
    from app.extensions import db
    from app.models import Comment, CommentStatus

    start = start or datetime(2011, 1, 26, tzinfo=UTC)
    items = comment_texts(count)
    ids: list[int] = []
    batch = 500
    for offset in range(0, count, batch):
        rows = []
        for i, item in enumerate(items[offset:offset + batch], offset):
            created = start + timedelta(minutes=i)
            rows.append(Comment(
                post_id=post_id, author_name=item["author"], author_email=item["email"],
                author_url=item["url"], content=item["text"], content_html=render(item["text"]),
                status=CommentStatus.APPROVED, ip="127.0.0.1", created_at=created,
                updated_at=created))
        db.session.add_all(rows)
        db.session.flush()
        ids.extend(c.id for c in rows)
        for i, comment in enumerate(rows, offset):
            reply_to = items[i]["reply_to"]
            if reply_to is not None:
                comment.parent_id = ids[reply_to]
        db.session.flush()
        db.session.expunge_all()
    db.session.execute(sa.text("SELECT 1"))


ISSO_CFG = """\
[general]
dbpath = {dbpath}
host = {host}
notify = stdout
gravatar = true
[moderation]
enabled = false
[guard]
enabled = false
[server]
listen = {host}
[admin]
enabled = false
"""


def isso_post(url: str, thread: str, item: dict, parent: int | None = None,
              title: str = "Pakistan, Russia agree to bury the hatchet") -> int:
    body = {"text": item["text"], "author": item["author"], "email": item["email"],
            "website": item["url"] or None, "title": title}
    if parent:
        body["parent"] = parent
    request = urllib.request.Request(f"{url}/new?uri={thread}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def seed_isso(url: str, thread: str, count: int) -> None:
    ids: list[int] = []
    for item in comment_texts(count):
        parent = ids[item["reply_to"]] if item["reply_to"] is not None else None
        ids.append(isso_post(url, thread, item, parent))
