"""Helpers shared by the admin, moderation and mail tests (no tests of its own)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Comment, CommentStatus, Post, User

ADMIN_EMAIL = "moderator@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def make_user(app, email: str = "reader@example.com", *, admin: bool = False,
              password: str | None = None, name: str = "Reader") -> int:
    with app.app_context():
        user = User(name=name, email=email, email_verified=True, is_admin=admin)
        if password:
            user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return user.id


def make_admin(app, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> int:
    return make_user(app, email, admin=True, password=password, name="Mod Erator")


def csrf_token(client, path: str = "/admin/login") -> str:
    """A CSRF token for *client*'s session, read from a page's form."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, **extra):
    token = csrf_token(client)
    return client.post("/admin/login", data={"csrf_token": token, "email": email,
                                             "password": password, **extra})


def sign_in_ordinary(client, user_id: int) -> None:
    """Sign a non-admin in the way Flask-Login's session records it (social sign-in's job)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True


def sign_in_admin(client, user_id: int) -> None:
    """Sign an admin in as the admin sign-in leaves the session (the password path is tested on
    its own; scrypt takes a good part of a second, too slow to repeat for every test)."""
    import time

    from app.admin import AUTH_AT, SEEN_AT

    sign_in_ordinary(client, user_id)
    with client.session_transaction() as session:
        session[AUTH_AT] = session[SEEN_AT] = time.time()


def add_comment(app, status: CommentStatus = CommentStatus.PENDING, **fields: Any) -> int:
    """Store a comment directly (no rules) and return its id."""
    from app.comments.content import render

    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        values = {"author_name": "Guest", "author_email": "guest@example.com",
                  "content": "Hello there", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0 Test"}
        values.update(fields)
        comment = Comment(post_id=post.id, status=status, content_html=render(values["content"]),
                          **values)
        db.session.add(comment)
        db.session.commit()
        return comment.id


def status_of(app, comment_id: int) -> CommentStatus | None:
    with app.app_context():
        comment = db.session.get(Comment, comment_id)
        return comment.status if comment is not None else None
