"""One signing helper: a token made for one use is refused for every other, and an expired one
says so in the words of its own use."""

from __future__ import annotations

import time

import pytest

from app import likes, privacy
from app.comments import cookies
from app.moderation import notify
from app.signing import BadLink, Purpose, sign, unsign
from app.subscriptions import service as subscriptions

PURPOSES = [notify.MAIL_LINK, privacy.MY_COMMENTS, subscriptions.CONFIRM, subscriptions.UNSUBSCRIBE,
            likes.LIKE_CONFIRM, likes.LIKES_COOKIE, cookies.COMMENTER, cookies.MINE]


def test_every_use_has_its_own_salt():
    assert len({p.salt for p in PURPOSES}) == len(PURPOSES)


@pytest.mark.parametrize("made_for", PURPOSES, ids=lambda p: p.salt)
def test_a_token_is_refused_for_any_other_use(app, made_for):
    with app.test_request_context():
        token = sign(made_for, {"id": 1, "email": "a@example.com"})
        assert unsign(made_for, token) == {"id": 1, "email": "a@example.com"}
        for other in PURPOSES:
            if other is not made_for:
                with pytest.raises(BadLink):
                    unsign(other, token)


def test_an_expired_link_says_so_in_its_own_words(app):
    short = Purpose("test-short", 1, "Ask for a new one.")
    with app.test_request_context():
        token = sign(short, {"email": "a@example.com"})
        time.sleep(2.1)
        with pytest.raises(BadLink, match="Ask for a new one."):
            unsign(short, token)
        with pytest.raises(BadLink, match="copied whole"):
            unsign(short, token[:-2] + "xx")


def test_a_privacy_link_does_not_open_a_subscription(app, client):
    with app.test_request_context():
        token = sign(privacy.MY_COMMENTS, {"email": "a@example.com"})
    assert client.get(f"/my-comments/{token}").status_code == 200
    response = client.get(f"/subscriptions/confirm/{token}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
