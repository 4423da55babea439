"""What a reader sees on the article page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import resources

import pytest
import sqlalchemy as sa
from flask import Flask

from app.extensions import db
from app.models import Comment, CommentStatus, Post
from app.words import comments_heading, format_comment_date, format_post_date
from tests.conftest import SHARED

PERMALINK = "/2011/01/25/pakistan-russia-agree-to-bury-the-hatchet/"


class TextExtractor(HTMLParser):
    """The page's visible text, one block per line, as a reader would copy it."""

    BLOCKS = {"p", "h1", "h2", "h3", "li", "div", "time", "title", "label", "footer", "cite"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style"}:
            self.skip += 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in {"script", "style"}:
            self.skip -= 1
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = TextExtractor()
    parser.feed(html)
    return re.sub(r"[ \t]*\n\s*", "\n", "".join(parser.parts))


def seed_paragraphs() -> list[str]:
    """The article's paragraphs from the 2011 page itself (../shared/seed), else the packaged copy."""
    source = SHARED / "seed" / "article-page.txt"
    if source.exists():
        blocks = [b.strip() for b in source.read_text("utf-8").split("\n\n") if b.strip()]
        start = blocks.index("By Kamran Yousaf") + 1
        end = next(i for i, b in enumerate(blocks) if b.startswith("Published in"))
        return blocks[start:end + 1]
    data = json.loads(resources.files("app.data").joinpath("article.json").read_text("utf-8"))
    return [data["standfirst"], *data["paragraphs"], data["source_line"]]


def test_every_paragraph_of_the_seed_in_order(client):
    text = page_text(client.get(PERMALINK).get_data(as_text=True))
    position = 0
    for paragraph in seed_paragraphs():
        found = text.find(paragraph, position)
        assert found >= 0, f"missing or out of order: {paragraph[:60]!r}"
        position = found + len(paragraph)
    # the seed's own punctuation survives: curly quotes, an ellipsis, a curly apostrophe
    assert "“The world is becoming bi-polar … new re-alignments" in text
    assert "Pakistan’s position" in text


def test_header_title_date_byline_and_like_widget(client):
    html = client.get("/").get_data(as_text=True)
    text = page_text(html)
    assert "The Express Tribune Blogs" in text
    assert "Pakistan, Russia agree to bury the\u00a0hatchet" in text
    assert "January 25, 2011" in text
    assert "By Kamran Yousaf" in text
    assert "Published in The Express Tribune, January 25th, 2011." in text
    assert "3 bloggers like this." in text


def test_blog_title_and_tagline_are_configurable(database_url):
    from tests.conftest import make_app, reset_database

    app = make_app(database_url, BLOG_TITLE="Moscow Notes", BLOG_TAGLINE="From the cold")
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    text = page_text(app.test_client().get("/").get_data(as_text=True))
    assert "Moscow Notes" in text and "From the cold" in text
    with app.app_context():
        db.engine.dispose()


def test_existing_comment_heading_and_form(client):
    html = client.get(PERMALINK).get_data(as_text=True)
    text = page_text(html)
    assert "One comment" in text
    assert ("There is little possibility that the Russians will ever commit the stupidity of "
            "letting their guard down against the untrustworthy Pakistanis.") in text
    assert "Relations may improve, but Pakistan will never be Russia’s friend ….. !" in text
    assert "January 25, 2011 at 3:14 pm" in text
    assert "Leave a Reply" in text
    assert "Fill in your details below or click an icon to log in:" in text
    for field in ('id="commentform"', 'name="comment"', 'name="author"', 'name="email"',
                  'name="url"', 'name="comment_parent"', 'id="submit"'):
        assert field in html
    for alt in ("WordPress.com Logo", "Google photo", "Twitter picture", "Facebook photo"):
        assert f'alt="{alt}"' in html


def test_unconfigured_providers_are_disabled_with_a_tooltip(client):
    html = client.get("/").get_data(as_text=True)
    for label in ("WordPress.com", "Google", "X (Twitter)", "Facebook"):
        assert f'title="{label} sign-in is not configured on this site"' in html
    assert 'href="/login/' not in html


@pytest.mark.parametrize("count,heading", [(0, "No comments yet"), (1, "One comment"),
                                           (2, "2 comments"), (1234, "1,234 comments")])
def test_heading_pluralisation(count, heading):
    assert comments_heading(count) == heading


def test_heading_follows_the_approved_comments(app, client):
    from app.comments import service

    with app.app_context():
        post = db.session.scalar(sa.select(Post))
        for name, text in (("Ayesha", "Second"), ("Held", "Held back")):
            db.session.add(Comment(post_id=post.id, author_name=name, author_email="x@example.com",
                                   content=text, content_html=f"<p>{text}</p>"))
        db.session.commit()
        service.set_status(db.session.scalar(sa.select(Comment).where(Comment.content == "Second")),
                           CommentStatus.APPROVED)
        db.session.commit()
    text = page_text(client.get(PERMALINK).get_data(as_text=True))
    assert "2 comments" in text and "Held back" not in text
    with app.app_context():
        for comment in db.session.scalars(sa.select(Comment)):
            service.set_status(comment, CommentStatus.TRASH)
        db.session.commit()
    text = page_text(client.get(PERMALINK).get_data(as_text=True))
    assert "No comments yet" in text


def test_front_page_and_permalink_serve_the_article(client):
    front = client.get("/")
    permalink = client.get(PERMALINK)
    assert front.status_code == permalink.status_code == 200
    assert "Pakistan, Russia agree" in permalink.get_data(as_text=True)
    # no trailing slash: redirected to the canonical address, as WordPress does
    assert client.get(PERMALINK.rstrip("/")).status_code in (301, 308)


@pytest.mark.parametrize("path", [
    "/2011/01/26/pakistan-russia-agree-to-bury-the-hatchet/",  # wrong date
    "/2011/01/25/no-such-post/",
    "/wp-login.php",
])
def test_unknown_paths_get_a_themed_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    text = page_text(response.get_data(as_text=True))
    assert "Not Found" in text and "The Express Tribune Blogs" in text


def test_head_has_title_description_canonical_and_open_graph(client):
    html = client.get("/").get_data(as_text=True)
    title = "Pakistan, Russia agree to bury the\u00a0hatchet | The Express Tribune Blogs"
    assert f"<title>{title}</title>" in html
    assert '<meta name="description" content="Moscow suspects that extremists' in html
    canonical = f'<link rel="canonical" href="http://localhost{PERMALINK}">'
    assert canonical in html
    for prop in ("og:type", "og:title", "og:description", "og:url", "og:site_name"):
        assert f'property="{prop}"' in html


def test_every_stylesheet_script_and_icon_is_local(client):
    html = client.get("/").get_data(as_text=True)
    for tag, attr in (("link", "href"), ("script", "src"), ("img", "src")):
        for url in re.findall(rf"<{tag}\b[^>]*\b{attr}=\"([^\"]+)\"", html):
            if tag == "img" and "gravatar.com/avatar/" in url:
                continue  # commenters' avatars: the layout holds when they fail
            assert url.startswith("/") or url.startswith("http://localhost/"), url
            if url.startswith("/static/"):
                with client.get(url) as response:
                    assert response.status_code == 200, url


def test_the_page_is_responsive(client):
    html = client.get("/").get_data(as_text=True)
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    with client.get("/static/css/parley.css") as response:
        css = response.get_data(as_text=True)
    assert "@media (max-width:" in css and "Georgia" in css


def test_seed_twice_leaves_one_post_and_one_comment(app, runner):
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0 and "already there" in result.output
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Post.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(Comment.id))) == 1


def test_health(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["checks"]["database"] == "ok"


@pytest.mark.parametrize(("utc", "shown"), [
    (datetime(2011, 1, 25, 10, 14, tzinfo=UTC), "January 25, 2011 at 3:14 pm"),
    (datetime(2011, 1, 25, 19, 5, tzinfo=UTC), "January 26, 2011 at 12:05 am"),  # next day there
    (datetime(2011, 1, 25, 7, 0, tzinfo=UTC), "January 25, 2011 at 12:00 pm"),
    (datetime(2011, 12, 31, 3, 9, tzinfo=UTC), "December 31, 2011 at 8:09 am"),
])
def test_dates_are_wordpress_dates_in_the_blog_timezone(utc, shown):
    with _blog_in_karachi().app_context():
        assert format_comment_date(utc) == shown
        assert format_post_date(utc) == shown.split(" at ")[0]


def test_month_names_are_wordpress_english_ones():
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]
    with _blog_in_karachi().app_context():
        assert [format_post_date(datetime(2011, month, 15, 12, tzinfo=UTC))
                for month in range(1, 13)] == [f"{name} 15, 2011" for name in months]


def _blog_in_karachi() -> Flask:
    app = Flask(__name__)
    app.config["BLOG_TIMEZONE"] = "Asia/Karachi"  # UTC+5, no summer time since 2009
    return app
