"""The RSS 2.0 feeds: posts, latest comments and one post's comments, as a feed reader sees them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources

import feedparser
import pytest
import sqlalchemy as sa

from app.comments.content import render
from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"
# The article's title as stored (with WordPress's no-break space before the last word).
TITLE = json.loads(resources.files("app.data").joinpath("article.json").read_text("utf-8"))["title"]
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
NASTY_AUTHOR = 'Tom & "Jerry" <b>Cat</b>'
NASTY_TEXT = 'I agree <script>alert("x")</script> & so does R&D.'


def parse(response):
    assert response.status_code == 200
    assert response.mimetype == "application/rss+xml"
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "rss20"
    return feed


def add_comment(app, status: CommentStatus, *, author: str = "Reader", content: str = "Hello.",
                minutes: int = 0, parent_id: int | None = None) -> int:
    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        when = datetime(2011, 1, 26, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        comment = Comment(
            post_id=post.id, parent_id=parent_id, author_name=author,
            author_email=f"{status.value}-secret@example.com", author_url="",
            content=content, content_html=render(content), status=status,
            ip="203.0.113.99", created_at=when, updated_at=when,
        )
        db.session.add(comment)
        db.session.commit()
        return comment.id


@pytest.fixture
def comments(app):
    """Approved, pending and spam comments besides the seed's, one with markup in every field."""
    return {
        "nasty": add_comment(app, CommentStatus.APPROVED, author=NASTY_AUTHOR, content=NASTY_TEXT,
                             minutes=10),
        "later": add_comment(app, CommentStatus.APPROVED, author="Ayesha", content="Second.",
                             minutes=20),
        "pending": add_comment(app, CommentStatus.PENDING, author="Held", content="Held back.",
                               minutes=30),
        "spam": add_comment(app, CommentStatus.SPAM, author="Spammer", content="Buy now",
                            minutes=40),
    }


def test_posts_feed(client):
    feed = parse(client.get("/feed/"))
    assert feed.feed.title == "The Express Tribune Blogs"
    assert feed.feed.link == "http://localhost/"
    assert feed.feed.subtitle == "News, views and reviews from Pakistan"
    assert feed.feed.language == "en-US"
    assert feed.feed.sy_updateperiod == "hourly"
    assert {"rel": "self", "href": "http://localhost/feed/", "type": "application/rss+xml"} in [
        dict(link) for link in feed.feed.links
    ]
    assert "updated" in feed.feed  # lastBuildDate
    [item] = feed.entries
    assert item.title == TITLE
    assert item.link == f"http://localhost{PERMALINK}"
    assert item.author == "Kamran Yousaf"  # dc:creator
    assert item.published_parsed[:5] == (2011, 1, 25, 4, 0)
    assert item.id == "http://localhost/?p=1"
    assert item.guidislink is False
    assert item.summary.startswith("Moscow suspects")
    assert "ISLAMABAD: Pakistan and Russia" in item.content[0].value
    assert item.wfw_commentrss == f"http://localhost{PERMALINK}feed/"
    assert item.slash_comments == "1"
    assert item.comments == f"http://localhost{PERMALINK}#comments"


def test_posts_feed_leaves_out_scheduled_posts(app, client):
    with app.app_context():
        db.session.add(Post(slug="tomorrow", title="Not yet", body="<p>Soon.</p>",
                            published_at=datetime.now(UTC) + timedelta(days=1)))
        db.session.commit()
    feed = parse(client.get("/feed/"))
    assert [e.title for e in feed.entries] == [TITLE]


def test_comments_feed_has_only_approved_comments_newest_first(client, comments):
    response = client.get("/comments/feed/")
    feed = parse(response)
    assert feed.feed.title == "Comments for The Express Tribune Blogs"
    assert [e.author for e in feed.entries] == ["Ayesha", NASTY_AUTHOR, "Sohail"]
    assert feed.entries[0].title == f"Comment on {TITLE} by Ayesha"
    assert feed.entries[0].link == f"http://localhost{PERMALINK}#comment-{comments['later']}"
    assert feed.entries[0].id == f"http://localhost/?p=1#comment-{comments['later']}"
    body = response.get_data(as_text=True)
    assert "Held back" not in body and "Buy now" not in body
    assert "@example.com" not in body and "203.0.113.99" not in body  # no emails, no IPs


def test_comment_feeds_escape_what_commenters_typed(app, client, comments):
    for url in ("/comments/feed/", f"{PERMALINK}feed/"):
        response = client.get(url)
        parse(response)
        assert b"<script" not in response.data and b"<b>" not in response.data
        root = ET.fromstring(response.data)
        item = next(i for i in root.iter("item") if i.findtext("link").endswith(
            f"#comment-{comments['nasty']}"))
        assert NASTY_AUTHOR in item.findtext("title")
        assert item.findtext("{http://purl.org/dc/elements/1.1/}creator") == NASTY_AUTHOR
        with app.app_context():
            html = db.session.get(Comment, comments["nasty"]).content_html
        assert "&lt;script&gt;" in html  # the sanitiser showed the tag as text …
        assert item.findtext(CONTENT) == html  # … and the feed carries that HTML, escaped once more
        assert item.findtext("description") == NASTY_TEXT  # the plain text, as typed


def test_post_comments_feed(client, comments):
    feed = parse(client.get(f"{PERMALINK}feed/"))
    assert feed.feed.title == f"Comments on: {TITLE}"
    assert feed.feed.link == f"http://localhost{PERMALINK}"
    # WordPress titles a single post's comment feed items "By: <author>".
    assert [e.title for e in feed.entries] == ["By: Ayesha", f"By: {NASTY_AUTHOR}", "By: Sohail"]
    assert all("Comment on" not in e.title for e in feed.entries)


def test_post_feed_does_not_clash_with_the_permalink(client):
    assert client.get(PERMALINK).status_code == 200
    assert client.get(f"{PERMALINK}feed/").mimetype == "application/rss+xml"
    assert client.get("/2011/01/26/pakistan-russia-agree-to-bury-the-hatchet/feed/").status_code == 404
    assert client.get("/2011/01/25/no-such-post/feed/").status_code == 404


def test_a_post_without_comments_has_an_empty_valid_feed(app, client):
    with app.app_context():
        db.session.execute(sa.delete(Comment))
        db.session.commit()
    assert parse(client.get(f"{PERMALINK}feed/")).entries == []
    assert parse(client.get("/comments/feed/")).entries == []
    assert parse(client.get("/feed/")).entries[0].slash_comments == "0"


def test_feeds_answer_conditional_requests(client):
    first = client.get("/comments/feed/")
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    again = client.get("/comments/feed/", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_reading_feeds_changes_nothing(app, client, comments):
    with app.app_context():
        events = db.session.scalar(sa.select(sa.func.count(Event.id)))
    for url in ("/feed/", "/comments/feed/", f"{PERMALINK}feed/"):
        client.get(url)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == events


def test_pages_advertise_their_feeds(client):
    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found: list[dict[str, str | None]] = []

        def handle_starttag(self, tag, attrs):
            if tag == "link" and dict(attrs).get("rel") == "alternate":
                self.found.append(dict(attrs))

    parser = Links()
    parser.feed(client.get(PERMALINK).get_data(as_text=True))
    assert {(a["type"], a["href"], a["title"]) for a in parser.found} == {
        ("application/rss+xml", "http://localhost/feed/", "The Express Tribune Blogs » Feed"),
        ("application/rss+xml", "http://localhost/comments/feed/",
         "The Express Tribune Blogs » Comments Feed"),
        ("application/rss+xml", f"http://localhost{PERMALINK}feed/",
         f"The Express Tribune Blogs » {TITLE} Comments Feed"),
    }
