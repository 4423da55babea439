"""A guest lists, downloads or erases all their comments through a signed link sent by mail."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import Comment
from tests.smtp import body
from tests.test_comments import csrf_token
from tests.test_subscriptions import post, settle


def ask_for_link(app, inbox, client, email):
    token = csrf_token(client)
    response = client.post("/my-comments/", data={"email": email, "csrf_token": token})
    assert response.status_code == 200
    assert "a link to them is on its way" in response.get_data(as_text=True)
    settle(app)


def test_list_export_and_erase_after_confirming(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    post(app, client, "Mine, <b>one</b>", "me@example.com", name="Me", subscribe_comments=True)
    post(app, client, "Someone else's", "else@example.com", name="Else")
    settle(app)
    ask_for_link(app, inbox, client, "ME@example.com")
    mail = [m for m in inbox.to("me@example.com") if "Your comments" in m["Subject"]][0]
    path = re.search(r"http://localhost(/my-comments/[\w.\-]+)", body(mail)).group(1)

    listing = client.get(path).get_data(as_text=True)
    assert "Mine, <b>one</b>" in listing and "Someone else" not in listing
    export = client.get(path + "/export.json")
    assert export.headers["Content-Disposition"].startswith("attachment")
    data = export.json
    assert [c["content"] for c in data["comments"]] == ["Mine, <b>one</b>"]
    assert data["subscriptions"] == [{"post": "pakistan-russia-agree-to-bury-the-hatchet",
                                      "confirmed": False}]

    token = csrf_token(client)
    unconfirmed = client.post(path + "/erase", data={"csrf_token": token})
    assert unconfirmed.status_code == 400  # nothing goes without the box ticked
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Comment.id))) == 3
    done = client.post(path + "/erase", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200 and "1 comment" in done.get_data(as_text=True)
    with app.app_context():
        emails = db.session.scalars(sa.select(Comment.author_email)).all()
        assert "me@example.com" not in emails and "else@example.com" in emails


def test_no_mail_for_an_unknown_address_and_same_answer(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    ask_for_link(app, inbox, client, "stranger@example.com")
    assert inbox.to("stranger@example.com") == []


def test_bad_links(mailbox):
    app, inbox = mailbox
    client = app.test_client()
    assert client.get("/my-comments/forged-token").status_code == 400
    assert client.get("/my-comments/forged-token/export.json").status_code == 400
    token = csrf_token(client)
    assert client.post("/my-comments/forged-token/erase",
                       data={"csrf_token": token, "confirm": "yes"}).status_code == 400
    assert client.post("/my-comments/", data={"email": "x"}).status_code == 400  # no CSRF token
