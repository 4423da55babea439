"""A guest edits or takes back their own comment, for a while, from the browser they used."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.comments import service
from app.extensions import db
from app.models import Comment, utcnow
from tests.test_article import PERMALINK
from tests.test_comments import GUEST, api_post, configure, csrf_token


def own(client, text="Mine to fix"):
    response = api_post(client, {**GUEST, "comment": text})
    assert response.status_code == 201
    return response.json


def test_author_can_edit_within_the_window_and_the_comment_says_so(app, client):
    configure(app, comment_moderation="nobody")
    created = own(client)
    comment_id = created["comment"]["id"]
    assert created["editable_until"]
    mine = client.get("/api/session?post=pakistan-russia-agree-to-bury-the-hatchet").json["mine"]
    assert [m["id"] for m in mine] == [comment_id] and mine[0]["content"] == "Mine to fix"
    response = client.put(f"/api/comments/{comment_id}", json={"comment": "Mine, fixed"},
                          headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200
    assert response.json["comment"]["content_html"] == "<p>Mine, fixed</p>"
    assert response.json["comment"]["edited"] is True
    page = client.get(PERMALINK).get_data(as_text=True)
    assert "Mine, fixed" in page and "(edited)" in page and "Mine to fix" not in page
    from app.moderation.models import CommentRevision

    with app.app_context():
        revisions = db.session.scalars(sa.select(CommentRevision.content)).all()
        assert revisions == ["Mine to fix"]  # the previous text is kept for the admins


def test_someone_else_cannot_edit_or_delete_it(app, client):
    configure(app, comment_moderation="nobody")
    comment_id = own(client)["comment"]["id"]
    stranger = app.test_client()
    token = csrf_token(stranger)
    assert stranger.put(f"/api/comments/{comment_id}", json={"comment": "hijacked"},
                        headers={"X-CSRFToken": token}).status_code == 403
    assert stranger.delete(f"/api/comments/{comment_id}",
                           headers={"X-CSRFToken": token}).status_code == 403
    # a forged cookie claiming the comment is refused too
    stranger.set_cookie("parley_mine", f"[{comment_id}]")
    assert stranger.delete(f"/api/comments/{comment_id}",
                           headers={"X-CSRFToken": token}).status_code == 403
    with app.app_context():
        assert db.session.get(Comment, comment_id).content == "Mine to fix"


def test_the_window_closes(app, client, monkeypatch):
    configure(app, comment_moderation="nobody")
    comment_id = own(client)["comment"]["id"]
    later = utcnow() + timedelta(minutes=16)  # sixteen minutes on
    monkeypatch.setattr(service, "utcnow", lambda: later)
    response = client.put(f"/api/comments/{comment_id}", json={"comment": "too late"},
                          headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 403
    assert "15 minutes" in response.json["message"]
    assert client.get("/api/session?post=pakistan-russia-agree-to-bury-the-hatchet").json["mine"] == []


def test_edit_is_validated_and_needs_csrf(app, client):
    configure(app, comment_moderation="nobody")
    comment_id = own(client)["comment"]["id"]
    assert client.put(f"/api/comments/{comment_id}", json={"comment": "x"}).status_code == 400
    response = client.put(f"/api/comments/{comment_id}", json={"comment": "  "},
                          headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400 and "comment" in response.json["fields"]
    with app.app_context():
        assert db.session.get(Comment, comment_id).content == "Mine to fix"


def test_author_can_delete_within_the_window(app, client):
    configure(app, comment_moderation="nobody")
    comment_id = own(client, "Regrettable")["comment"]["id"]
    response = client.delete(f"/api/comments/{comment_id}",
                             headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 204
    assert "Regrettable" not in client.get(PERMALINK).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Comment, comment_id) is None
    assert client.delete(f"/api/comments/{comment_id}",
                         headers={"X-CSRFToken": csrf_token(client)}).status_code == 404


def test_a_deleted_comments_id_given_to_another_grants_its_old_author_nothing(app, client):
    """SQLite gives a deleted last row's id to the next comment. The browser that wrote the
    deleted one keeps its cookie (and its no-JS link): neither may touch the newcomer's comment."""
    configure(app, comment_moderation="nobody", comment_flood_seconds=0)
    first = own(client, "Mine, soon taken back")["comment"]["id"]
    assert client.delete(f"/api/comments/{first}",
                         headers={"X-CSRFToken": csrf_token(client)}).status_code == 204
    other = app.test_client()
    second = own(other, "Someone else's words")["comment"]["id"]
    with app.app_context():
        reused = db.session.get(Comment, second).id == first
    response = client.put(f"/api/comments/{second}", json={"comment": "hijacked"},
                          headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 403
    assert client.get("/api/session?post=pakistan-russia-agree-to-bury-the-hatchet").json["mine"] == []
    with app.app_context():
        assert db.session.get(Comment, second).content == "Someone else's words"
    assert reused or app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
