"""`flask wxr import|export`: WordPress export files in, WordPress export files out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

from app import live
from app.extensions import db
from app.models import Comment, CommentStatus, Event, Post
from app.wxr import clean_post_html, import_wxr, parse
from app.wxr import importer as wxr_importer

DATA = Path(__file__).resolve().parent / "data"
WP12 = DATA / "wordpress-1.2.xml"
WPCOM10 = DATA / "wordpresscom-1.0.xml"
WP = "{http://wordpress.org/export/1.2/}"
ARTICLE = "pakistan-russia-agree-to-bury-the-hatchet"
NOVAYA_GLAVA = "новая-глава"  # the percent-encoded slug of the second post, decoded


def run(runner, *args: str):
    return runner.invoke(args=["wxr", *args])


def snapshot(app) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, to compare the database before and after."""
    with app.app_context():
        return {
            table.name: sorted(tuple(repr(v) for v in row)
                               for row in db.session.execute(sa.select(table)))
            for table in db.metadata.sorted_tables
        }


def comments_by_wp_id(slug: str) -> dict[int, Comment]:
    post = db.session.scalar(sa.select(Post).where(Post.slug == slug))
    rows = db.session.scalars(sa.select(Comment).where(Comment.post_id == post.id))
    return {c.wp_id: c for c in rows if c.wp_id is not None}


def test_import_wordpress_org_12(app, runner):
    result = run(runner, "import", str(WP12))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Read WXR 1.2 from https://dispatches.example.org." in out
    assert "Posts: 2 new, 0 already here." in out
    assert ("Comments: 11 new (8 approved, 1 pending, 1 spam, 1 trash; "
            "2 of them pingbacks or trackbacks); 0 already here.") in out
    assert "Replies to a comment that is not in the file, attached to the post: 1." in out
    assert "1 page: Parley serves posts, not pages" in out
    assert "1 attachment: media files are not imported" in out
    assert "1 comment: on a page, which is not imported" in out
    assert "1 post: status “draft”: only published and scheduled posts are imported" in out

    with app.app_context():
        chai = db.session.scalar(sa.select(Post).where(Post.slug == "chai-and-chai"))
        assert chai.title == "Чай & chai: a tale of two teas"  # entities read as WordPress shows them
        assert chai.byline == "By Ayesha Siddiqa"  # the author's display name, not the login
        assert chai.standfirst == "Two countries, one word & two drinks."
        assert chai.published_at == datetime(2024, 2, 15, 8, 30, tzinfo=UTC)
        assert chai.comments_open
        # Classic-editor paragraphs become <p>s; the author's markup stays, scripts do not.
        assert chai.body.startswith("<p>In Moscow they drink <strong>чай</strong>")
        assert 'class="alignleft size-medium wp-image-104"' in chai.body
        assert "<ul>" in chai.body and "<li>" in chai.body
        for bad in ("<script", "alert(", "onerror", "onclick", "<iframe", "<p></p>"):
            assert bad not in chai.body

        glava = db.session.scalar(sa.select(Post).where(Post.slug == NOVAYA_GLAVA))
        assert glava.title == "Пакистан и Россия: новая глава"
        assert glava.byline == "By Николай Петров"
        assert not glava.comments_open  # wp:comment_status closed
        assert "<blockquote" in glava.body and "wp:paragraph" not in glava.body

        c = comments_by_wp_id("chai-and-chai")
        assert len(c) == 10
        # Threading: 11 replies to 10 although it comes first in the file; 12 replies to 11.
        assert c[10].parent_id is None
        assert c[11].parent_id == c[10].id
        assert c[12].parent_id == c[11].id
        assert c[19].parent_id is None  # its parent (999) is not in the file
        assert {wp: c[wp].status for wp in (13, 14, 15)} == {
            13: CommentStatus.PENDING, 14: CommentStatus.SPAM, 15: CommentStatus.TRASH}
        assert c[16].comment_type == "pingback" and c[17].comment_type == "trackback"
        assert c[10].comment_type is None
        assert c[16].author_name == "Tea Notes » Chai everywhere"
        # Non-ASCII survives, and comment text goes through the comment sanitiser.
        assert c[11].author_name == "عائشہ خان"
        assert c[11].content.startswith("بہت خوب!")
        assert c[11].content_html == ("<p>بہت خوب! دودھ پتی کا کوئی جواب نہیں۔</p>\n"
                                      "<p>Ivan, try it with cardamom.</p>")
        assert c[10].content == ("We say <em>чай</em> too! <script>alert('xss')</script> "
                                 "Tea & lemon <b>forever</b>.")
        assert "<script" not in c[10].content_html and "&lt;script&gt;" in c[10].content_html
        assert "<em>чай</em>" in c[10].content_html
        assert (c[10].author_email, c[10].author_url, c[10].ip) == (
            "ivan@example.ru", "http://ivan.example.ru", "198.51.100.10")
        # GMT dates are preferred; without one the local date is read in the blog's timezone.
        assert c[10].created_at == datetime(2024, 2, 15, 9, 45, tzinfo=UTC)
        assert c[18].created_at == datetime(2024, 2, 18, 15, 15, tzinfo=UTC)  # 20:15 in Karachi
        # A bulk import is not a live event: nothing was recorded for the stream.
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0
        assert db.session.scalar(
            sa.select(sa.func.count(Comment.id)).where(Comment.hold_reasons.is_not(None))) == 0


def test_import_wordpress_com_10_into_the_seeded_article(app, runner):
    with app.app_context():
        seed = db.session.scalar(sa.select(Comment).where(Comment.author_name == "Sohail"))
        seed_id = seed.id
    result = run(runner, "import", str(WPCOM10))
    assert result.exit_code == 0, result.output
    assert "Read WXR 1.0 from http://tribuneblogs.example.wordpress.com." in result.stdout
    assert "Posts: 0 new, 1 already here." in result.stdout
    # Sohail's comment is the seed's: recognised by author and date, as WordPress's importer does.
    assert "Comments: 5 new (3 approved, 1 pending, 1 spam; 1 of them pingbacks or trackbacks); " \
           "1 already here." in result.stdout
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Comment.author_name == "Sohail")) == 1
        c = comments_by_wp_id(ARTICLE)
        assert c[4417].parent_id == seed_id  # a reply to the existing comment
        assert c[4420].parent_id == c[4417].id
        assert c[4420].author_name == 'Tom & "Jerry" <script>'
        assert "<script" not in c[4420].content_html
        assert c[4421].status == CommentStatus.PENDING
        assert c[4422].status == CommentStatus.SPAM
        assert c[4425].comment_type == "pingback"
        assert "پاکستان" in c[4417].content
        post = db.session.scalar(sa.select(Post).where(Post.slug == ARTICLE))
        assert post.byline == "By Kamran Yousaf"  # the existing post is left as it was


def test_imported_comments_show_on_an_already_cached_page(app, runner, client):
    permalink = f"/2011/01/25/{ARTICLE}/"
    assert "Ali Raza" not in client.get(permalink).get_data(as_text=True)  # now cached
    assert run(runner, "import", str(WPCOM10)).exit_code == 0
    page = client.get(permalink).get_data(as_text=True)
    assert "Ali Raza" in page and "Russia Watch » Moscow and Islamabad thaw" in page
    assert "Waiting for moderation" not in page and "cheap pills" not in page


def test_every_wxr_namespace_version_reads_the_same(app, runner, tmp_path):
    text = WP12.read_text("utf-8")
    v11 = tmp_path / "wordpress-1.1.xml"
    v11.write_text(text.replace("export/1.2/", "export/1.1/")
                   .replace("<wp:wxr_version>1.2", "<wp:wxr_version>1.1"), "utf-8")
    result = run(runner, "import", str(v11))
    assert result.exit_code == 0, result.output
    assert "Read WXR 1.1" in result.stdout
    assert "Posts: 2 new" in result.stdout and "Comments: 11 new" in result.stdout


def test_pings_can_be_left_out(app, runner):
    result = run(runner, "import", "--skip-pings", str(WP12))
    assert result.exit_code == 0, result.output
    assert "Comments: 9 new (6 approved" in result.stdout
    assert "1 pingback: --skip-pings" in result.stdout
    assert "1 trackback: --skip-pings" in result.stdout
    with app.app_context():
        assert db.session.scalar(
            sa.select(sa.func.count()).where(Comment.comment_type.is_not(None))) == 0


@pytest.mark.parametrize("sample", [WP12, WPCOM10], ids=lambda p: p.stem)
def test_importing_twice_changes_nothing(app, runner, sample):
    assert run(runner, "import", str(sample)).exit_code == 0
    before = snapshot(app)
    again = run(runner, "import", str(sample))
    assert again.exit_code == 0, again.output
    assert "Comments: 0 new;" in again.stdout and "Posts: 0 new" in again.stdout
    assert snapshot(app) == before


def content_of(app) -> tuple[dict, set]:
    """Posts and comments by what they are, not by their ids: what a round trip must keep."""
    with app.app_context():
        posts = {
            p.slug: (p.title, p.published_at, p.byline, p.standfirst, clean_post_html(p.body),
                     p.source_line, p.like_count, p.comments_open)
            for p in db.session.scalars(sa.select(Post))
        }
        comments = list(db.session.scalars(sa.select(Comment)))
        key = {c.id: (c.author_name, c.created_at) for c in comments}
        slugs = {p.id: p.slug for p in db.session.scalars(sa.select(Post))}
        rows = {
            (slugs[c.post_id], c.author_name, c.author_email, c.author_url, c.ip, c.content,
             c.content_html, c.status, c.created_at, c.comment_type, key.get(c.parent_id))
            for c in comments
        }
        assert len(rows) == len(comments)
        return posts, rows


def empty_database(app) -> None:
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()


def test_export_then_import_into_an_empty_database_gives_the_same_blog(app, runner, tmp_path):
    assert run(runner, "import", str(WP12)).exit_code == 0
    assert run(runner, "import", str(WPCOM10)).exit_code == 0
    with app.app_context():  # Parley's own fields must travel too
        db.session.execute(sa.update(Post).where(Post.slug == "chai-and-chai")
                           .values(like_count=7, source_line="First published in Dawn ]]> Karachi."))
        db.session.commit()
    before = content_of(app)
    exported = tmp_path / "parley.xml"
    result = run(runner, "export", str(exported))
    assert result.exit_code == 0, result.output
    assert "Exported 3 posts and 17 comments (12 approved, 2 pending, 2 spam, 1 trash)." \
        in result.stdout

    empty_database(app)
    result = run(runner, "import", str(exported))
    assert result.exit_code == 0, result.output
    assert "Posts: 3 new" in result.stdout and "Comments: 17 new" in result.stdout
    assert "Skipped: nothing." in result.stdout
    after = content_of(app)
    assert after[0] == before[0]
    assert after[1] == before[1]


def test_export_imported_back_into_the_same_database_changes_nothing(app, runner, tmp_path):
    assert run(runner, "import", str(WP12)).exit_code == 0
    exported = tmp_path / "parley.xml"
    assert run(runner, "export", str(exported)).exit_code == 0
    before = snapshot(app)
    result = run(runner, "import", str(exported))
    assert result.exit_code == 0, result.output
    assert snapshot(app) == before


def test_export_is_wxr_12_as_wordpress_reads_it(app, runner, tmp_path):
    assert run(runner, "import", str(WP12)).exit_code == 0
    exported = tmp_path / "parley.xml"
    assert run(runner, "export", str(exported)).exit_code == 0
    data = exported.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    # WordPress's importer finds the namespaces by their prefixes on the document.
    for prefix in ("wp", "content", "excerpt", "dc"):
        assert f"xmlns:{prefix}=".encode() in data
    channel = ET.fromstring(data).find("channel")
    assert channel.findtext(f"{WP}wxr_version") == "1.2"
    assert channel.findtext(f"{WP}base_site_url") == "http://localhost"
    authors = {a.findtext(f"{WP}author_login"): a.findtext(f"{WP}author_display_name")
               for a in channel.findall(f"{WP}author")}
    assert authors["ayesha-siddiqa"] == "Ayesha Siddiqa"
    items = {i.findtext(f"{WP}post_name"): i for i in channel.findall("item")}
    assert set(items) == {ARTICLE, "chai-and-chai",
                          "%d0%bd%d0%be%d0%b2%d0%b0%d1%8f-%d0%b3%d0%bb%d0%b0%d0%b2%d0%b0"}
    chai = items["chai-and-chai"]
    assert chai.findtext(f"{WP}post_type") == "post"
    assert chai.findtext(f"{WP}status") == "publish"
    assert chai.findtext(f"{WP}post_date_gmt") == "2024-02-15 08:30:00"
    assert chai.findtext(f"{WP}post_date") == "2024-02-15 13:30:00"  # Karachi
    assert chai.findtext("{http://purl.org/dc/elements/1.1/}creator") == "ayesha-siddiqa"
    approved = {c.findtext(f"{WP}comment_author"): c.findtext(f"{WP}comment_approved")
                for c in chai.findall(f"{WP}comment")}
    assert approved["Ivan Petrov"] == "1" and approved["Bilal"] == "0"
    assert approved["cheap watches"] == "spam" and approved["Troll"] == "trash"
    types = {c.findtext(f"{WP}comment_author"): c.findtext(f"{WP}comment_type")
             for c in chai.findall(f"{WP}comment")}
    assert types["Samovar Weekly"] == "trackback" and types["Bilal"] == "comment"


def test_export_to_standard_output(app, runner):
    result = run(runner, "export", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "Exported 1 post and 1 comment (1 approved)." in result.stderr


def assert_refused(app, runner, path: Path, *phrases: str) -> None:
    before = snapshot(app)
    result = run(runner, "import", str(path))
    assert result.exit_code == 1
    assert "Nothing was changed." in result.output
    for phrase in phrases:
        assert phrase in result.output
    assert "Traceback" not in result.output
    assert snapshot(app) == before


def test_malformed_xml_is_refused_with_a_clear_message(app, runner, tmp_path):
    broken = tmp_path / "broken.xml"
    text = WP12.read_text("utf-8")
    broken.write_text(text[: len(text) // 2], "utf-8")  # an export cut off half way
    assert_refused(app, runner, broken, "cannot be imported: not well-formed XML (line")


def test_a_file_that_is_not_an_export_is_refused(app, runner, client, tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(client.get("/feed/").data)  # RSS, but no WordPress export
    assert_refused(app, runner, feed, "not a WordPress export (WXR) file")


def test_an_entity_expansion_bomb_is_refused(app, runner, tmp_path):
    # The billion laughs: ten levels of ten, a 3 GB title from a few hundred bytes.
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
        + WP12.read_text("utf-8").split("?>", 1)[1].replace(
            "<title>Dispatches from Karachi</title>", "<title>&lol9;</title>"),
        "utf-8",
    )
    assert_refused(app, runner, bomb, "refused", "entity-expansion")


def test_an_external_entity_is_refused(app, runner, tmp_path):
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        + re.sub(r"^.*?<rss", "<rss", WP12.read_text("utf-8"), count=1, flags=re.DOTALL)
        .replace("<title>Dispatches from Karachi</title>", "<title>&secret;</title>"),
        "utf-8",
    )
    assert_refused(app, runner, xxe, "refused")


def minimal_wxr(comments: str) -> str:
    """A WXR 1.2 file with one post and the given <wp:comment> elements."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>t</title><wp:wxr_version>1.2</wp:wxr_version>
<item><title>Same second</title><dc:creator>admin</dc:creator>
<content:encoded><![CDATA[Body.]]></content:encoded>
<wp:post_id>7</wp:post_id><wp:post_date_gmt>2020-05-01 10:00:00</wp:post_date_gmt>
<wp:post_name>same-second</wp:post_name><wp:status>publish</wp:status><wp:post_type>post</wp:post_type>
{comments}
</item></channel></rss>"""


def wp_comment(wp_id: int, text: str, author: str = "Ping Source", when: str = "2020-05-01 11:00:00",
               parent: int = 0) -> str:
    return f"""<wp:comment><wp:comment_id>{wp_id}</wp:comment_id>
<wp:comment_author>{author}</wp:comment_author><wp:comment_date_gmt>{when}</wp:comment_date_gmt>
<wp:comment_content>{text}</wp:comment_content><wp:comment_approved>1</wp:comment_approved>
<wp:comment_type>pingback</wp:comment_type><wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"""


def test_two_comments_by_one_author_in_one_second_stay_two(app, runner, tmp_path):
    path = tmp_path / "same.xml"
    path.write_text(minimal_wxr(wp_comment(1, "first") + wp_comment(2, "second")), "utf-8")
    result = run(runner, "import", str(path))
    assert "Comments: 2 new" in result.stdout, result.output
    before = snapshot(app)
    assert "Comments: 0 new; 2 already here." in run(runner, "import", str(path)).stdout
    assert snapshot(app) == before
    # A later export of the same blog with one more reply adds just that reply, threaded.
    path.write_text(minimal_wxr(wp_comment(1, "first") + wp_comment(2, "second")
                                + wp_comment(3, "reply", author="Reader", parent=2)), "utf-8")
    assert "Comments: 1 new (1 approved" in run(runner, "import", str(path)).stdout
    with app.app_context():
        c = comments_by_wp_id("same-second")
        assert c[3].parent_id == c[2].id


# --- every door screens the same way; an import is not a live event ------------------------------

def wp_commenter(wp_id: int, url: str) -> str:
    return f"""<wp:comment><wp:comment_id>{wp_id}</wp:comment_id>
<wp:comment_author>Visitor {wp_id}</wp:comment_author><wp:comment_author_url>{url}</wp:comment_author_url>
<wp:comment_date_gmt>2020-05-01 11:0{wp_id}:00</wp:comment_date_gmt>
<wp:comment_content>Hello.</wp:comment_content><wp:comment_approved>1</wp:comment_approved></wp:comment>"""


def test_a_website_that_is_not_http_is_dropped_and_counted(app, runner, tmp_path):
    path = tmp_path / "urls.xml"
    path.write_text(minimal_wxr(
        wp_commenter(1, "javascript:alert(607)")
        + wp_commenter(2, "<![CDATA[ JaVaScRiPt:alert(document.cookie)]]>")
        + wp_commenter(3, "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==")
        + wp_commenter(4, "https://reader.example/?a=1&amp;b=2")
        + wp_commenter(5, "https://reader.example/" + "x" * 200)  # too long for the column
        + wp_commenter(6, "")
    ), "utf-8")
    result = run(runner, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "Comments: 6 new (6 approved); 0 already here." in result.stdout
    assert ("Commenters' website addresses dropped (the comments are kept): "
            "1 longer than 200 characters, 3 not http or https.") in result.stdout
    with app.app_context():
        urls = {wp: c.author_url for wp, c in comments_by_wp_id("same-second").items()}
    assert urls == {1: "", 2: "", 3: "", 4: "https://reader.example/?a=1&b=2", 5: "", 6: ""}


def test_an_import_records_no_live_events(app, runner):
    published: list[object] = []
    live.get_broker(app).start(published.append)
    result = run(runner, "import", str(WP12))
    assert result.exit_code == 0, result.output
    assert "Comments: 11 new" in result.stdout
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0
    assert published == []  # nothing told the hubs (post channels or the moderation queue)


# --- the caller owns the transaction --------------------------------------------------------------

@pytest.fixture
def commits():
    """How many transactions were committed while the test ran."""
    counted: list[object] = []

    def count(session) -> None:
        counted.append(session)

    sa.event.listen(so.Session, "after_commit", count)
    yield counted
    sa.event.remove(so.Session, "after_commit", count)


def test_the_import_command_commits_once(app, runner, commits):
    assert run(runner, "import", str(WP12)).exit_code == 0
    assert len(commits) == 1


def test_import_wxr_stages_and_leaves_the_commit_to_its_caller(app):
    before = snapshot(app)
    with app.app_context():
        report = import_wxr(parse(WP12, ZoneInfo("Asia/Karachi")))
        assert report.posts_created == 2 and sum(report.comments_created.values()) == 11
        # flushed, so visible inside the transaction ...
        assert db.session.scalar(sa.select(Post.id).where(Post.slug == "chai-and-chai"))
        db.session.rollback()
    assert snapshot(app) == before  # ... and nothing was committed


def test_a_failed_import_is_rolled_back_by_the_command(app, runner, monkeypatch, commits):
    # The renderer is made to fail on the trackback, half way through the file, when a post and
    # comments are already flushed (no real part of an import fails on demand).
    real_render = wxr_importer.render

    def failing_render(text: str) -> str:
        if "Samovar Weekly" in text:
            raise RuntimeError("renderer crashed")
        return real_render(text)

    monkeypatch.setattr(wxr_importer, "render", failing_render)
    before = snapshot(app)
    result = run(runner, "import", str(WP12))
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    assert commits == []
    assert snapshot(app) == before


# --- the export, as WordPress's exporter writes it ------------------------------------------------

# What export_wp() (wp-admin/includes/export.php, WordPress 6.x) writes, in its order. `True`: the
# value goes through wxr_cdata(); `False`: it is written bare (numbers, dates in RFC 822, URLs).
WORDPRESS_AUTHOR = {"wp:author_id": False, "wp:author_login": True, "wp:author_email": True,
                    "wp:author_display_name": True, "wp:author_first_name": True,
                    "wp:author_last_name": True}
WORDPRESS_ITEM = {
    "title": True, "link": False, "pubDate": False, "dc:creator": True, "guid": False,
    "description": False, "content:encoded": True, "excerpt:encoded": True, "wp:post_id": False,
    "wp:post_date": True, "wp:post_date_gmt": True, "wp:post_modified": True,
    "wp:post_modified_gmt": True, "wp:comment_status": True, "wp:ping_status": True,
    "wp:post_name": True, "wp:status": True, "wp:post_parent": False, "wp:menu_order": False,
    "wp:post_type": True, "wp:post_password": True, "wp:is_sticky": False,
}
WORDPRESS_POSTMETA = {"wp:meta_key": True, "wp:meta_value": True}
WORDPRESS_COMMENT = {
    "wp:comment_id": False, "wp:comment_author": True, "wp:comment_author_email": True,
    # WordPress writes the website bare (sanitize_url, unescaped: an "&" in it makes its own file
    # ill-formed); Parley puts it in CDATA like the other text, so every parser reads it whole.
    "wp:comment_author_url": True,
    "wp:comment_author_IP": True, "wp:comment_date": True, "wp:comment_date_gmt": True,
    "wp:comment_content": True, "wp:comment_approved": True, "wp:comment_type": True,
    "wp:comment_parent": False, "wp:comment_user_id": False,
}
NUMBERS = {"wp:author_id", "wp:post_id", "wp:post_parent", "wp:menu_order", "wp:is_sticky",
           "wp:comment_id", "wp:comment_parent", "wp:comment_user_id"}
CDATA = re.compile(r"<!\[CDATA\[.*?\]\]>", re.DOTALL)


def wxr_cdata(text: str) -> str:
    """WordPress's wxr_cdata(), as written in PHP."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def exported_blog(app, runner, tmp_path) -> Path:
    """Both sample files, plus the values that trip parsers up, exported."""
    assert run(runner, "import", str(WP12)).exit_code == 0
    assert run(runner, "import", str(WPCOM10)).exit_code == 0
    with app.app_context():
        chai = db.session.scalar(sa.select(Post).where(Post.slug == "chai-and-chai"))
        chai.source_line = "First published in Dawn ]]> Karachi."  # wxr_cdata splits it
        chai.like_count = 0
        ivan = db.session.scalar(sa.select(Comment).where(Comment.content.startswith("We say")))
        ivan.content += "\n\nSee <![CDATA[x]]> and ]]]]> too."
        ivan.author_url = "https://ivan.example.ru/?tea=1&milk=0"
        db.session.commit()
    exported = tmp_path / "parley.xml"
    result = run(runner, "export", str(exported))
    assert result.exit_code == 0, result.output
    return exported


def elements(raw: str, tag: str) -> list[str]:
    """The raw content of every <tag …>…</tag> in *raw*, CDATA left as written."""
    pattern = rf"<{re.escape(tag)}(?: [^>]*)?>((?:<!\[CDATA\[.*?\]\]>|[^<])*)</{re.escape(tag)}>"
    return [match.group(1) for match in re.finditer(pattern, raw, re.DOTALL)]


def test_the_export_is_written_as_wordpress_writes_it(app, runner, tmp_path):
    raw = exported_blog(app, runner, tmp_path).read_text("utf-8")
    root = ET.fromstring(raw.encode())
    channel = root.find("channel")
    qualified = {"wp": WP, "dc": "{http://purl.org/dc/elements/1.1/}",
                 "content": "{http://purl.org/rss/1.0/modules/content/}",
                 "excerpt": "{http://wordpress.org/export/1.2/excerpt/}"}

    def et_tag(tag: str) -> str:
        prefix, _, local = tag.rpartition(":")
        return qualified[prefix] + local if prefix else local

    # No self-closing tag anywhere (the XML processor parser drops <x/> and the key it holds).
    assert not re.search(r"<[^>]*/>", CDATA.sub("", raw))
    items = channel.findall("item")
    assert len(items) == 3
    for spec, parents in ((WORDPRESS_AUTHOR, channel.findall(f"{WP}author")),
                          (WORDPRESS_ITEM, items),
                          (WORDPRESS_POSTMETA, [m for i in items for m in i.findall(f"{WP}postmeta")]),
                          (WORDPRESS_COMMENT, [c for i in items for c in i.findall(f"{WP}comment")])):
        for parent in parents:
            # every element WordPress writes, in its order (the regex parser takes the first match)
            children = [c.tag for c in parent if c.tag in {et_tag(t) for t in spec}]
            assert children == [et_tag(t) for t in spec]
        for tag, in_cdata in spec.items():
            if tag in {"title", "description", "link", "pubDate"}:
                continue  # the channel has these too, bare; checked per item below
            texts = [p.findtext(et_tag(tag)) for p in parents]
            written = elements(raw, tag)
            assert len(written) == len(texts), tag
            for text, value in zip(texts, written, strict=True):
                if in_cdata:  # text in CDATA, HTML as is, "]]>" split as wxr_cdata splits it
                    assert value == wxr_cdata(text), (tag, value)
                else:
                    assert "CDATA" not in value and value == text.replace("&", "&amp;"), (tag, value)
                if tag in NUMBERS:
                    assert re.fullmatch(r"\d+", value), (tag, value)  # "0" written out
    for item in re.findall(r"\n\t<item>\n(.*?)\n\t</item>\n", raw, re.DOTALL):
        assert re.search(r"^\t\t<title><!\[CDATA\[", item, re.MULTILINE)
        assert "\t\t<description></description>" in item
        for tag in ("wp:post_parent", "wp:menu_order", "wp:is_sticky"):
            assert f"\t\t<{tag}>0</{tag}>" in item
    assert raw.count("\n\t<item>\n") == raw.count("\n\t</item>\n") == 3  # lines of their own
    # WordPress's importer inserts comments in id order and links a reply only to a comment
    # inserted before it: a parent's id is lower than its replies' (in the sample file a reply
    # comes before the comment it answers, so it was stored first).
    ids = [int(c.findtext(f"{WP}comment_id")) for i in items for c in i.findall(f"{WP}comment")]
    assert len(set(ids)) == len(ids) == 17
    replies = 0
    for item in items:
        here = {int(c.findtext(f"{WP}comment_id")): c for c in item.findall(f"{WP}comment")}
        for number, comment in here.items():
            parent = int(comment.findtext(f"{WP}comment_parent"))
            if parent:
                replies += 1
                assert parent in here and parent < number
    assert replies == 4
    by_text = {c.findtext(f"{WP}comment_content")[:7]: c
               for i in items for c in i.findall(f"{WP}comment")}
    assert by_text["بہت خوب"].findtext(f"{WP}comment_parent") == \
        by_text["We say "].findtext(f"{WP}comment_id")
    # Each author on one line: the regex parser reads <wp:author>…</wp:author> from one line.
    author_lines = [line for line in raw.splitlines() if "<wp:author>" in line]
    assert len(author_lines) == 3 and all(line.endswith("</wp:author>") for line in author_lines)

    # The values parsers get wrong, as WordPress writes them.
    assert ("<wp:comment_content><![CDATA[We say <em>чай</em> too! <script>alert('xss')</script> "
            "Tea & lemon <b>forever</b>.\n\nSee <![CDATA[x]]]]><![CDATA[> and ]]]]]]><![CDATA[> too."
            "]]></wp:comment_content>") in raw
    assert "<wp:meta_value><![CDATA[First published in Dawn ]]]]><![CDATA[> Karachi.]]></wp:meta_value>" \
        in raw
    assert "<wp:meta_value><![CDATA[0]]></wp:meta_value>" in raw  # no likes
    assert raw.count("<wp:comment_approved><![CDATA[0]]></wp:comment_approved>") == 2  # pending
    assert "<wp:comment_parent>0</wp:comment_parent>" in raw
    assert "<wp:comment_author_url><![CDATA[https://ivan.example.ru/?tea=1&milk=0]]>" in raw
    assert "&lt;" not in CDATA.sub("", raw)  # no escaped HTML outside CDATA either
    with app.app_context():  # and all of it reads back as it was
        chai = db.session.scalar(sa.select(Post).where(Post.slug == "chai-and-chai"))
        meta = {m.findtext(f"{WP}meta_key"): m.findtext(f"{WP}meta_value")
                for i in items for m in i.findall(f"{WP}postmeta")
                if i.findtext(f"{WP}post_name") == "chai-and-chai"}
        assert meta["_parley_source_line"] == chai.source_line
        ivan = db.session.scalar(sa.select(Comment).where(Comment.content.startswith("We say")))
        assert by_text["We say "].findtext(f"{WP}comment_content") == ivan.content


# --- WordPress's importer reads it, with each of its parsers ---------------------------------------

WP_IMPORTER_DIR = os.environ.get("WP_IMPORTER_DIR")
PHP = shutil.which("php")
PARSERS = {"simplexml": "WXR_Parser_SimpleXML", "xml": "WXR_Parser_XML",
           "regex": "WXR_Parser_Regex", "xmlprocessor": "WXR_Parser_XML_Processor"}

# Calls one parser of WordPress's importer on a file and prints what it read as JSON, with just
# enough of WordPress around it (WP_Error, __()) for the parsers to run outside WordPress.
PHP_DRIVER = r"""<?php
[$_, $parsers, $class, $file] = $argv;
set_error_handler(function ($no, $message, $where, $line) {
    if (!($no & (E_DEPRECATED | E_USER_DEPRECATED))) {  // old importers on a new PHP: not ours
        fwrite(STDERR, "PHP: $message ($where:$line)\n");
    }
    return true;
});
class WP_Error {
    function __construct(public $code = '', public $message = '', public $data = '') {}
    function get_error_code() { return $this->code; }
    function get_error_message() { return $this->message; }
    function get_error_data() { return $this->data; }
}
function is_wp_error($thing) { return $thing instanceof WP_Error; }
function __($text, $domain = null) { return $text; }
function esc_html($text) { return htmlspecialchars($text); }
function _doing_it_wrong(...$args) {}
const WP_DEBUG = false;
if (is_file("$parsers/../php-toolkit/load.php")) {
    require_once "$parsers/../php-toolkit/load.php";
}
foreach (glob("$parsers/class-wxr-parser*.php") as $source) {
    require_once $source;
}
$result = (new $class())->parse($file);
if (is_wp_error($result)) {
    fwrite(STDERR, $result->get_error_code() . ': ' . $result->get_error_message() . "\n");
    exit(2);
}
echo json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
"""


@pytest.fixture
def wordpress_parsers() -> Path:
    if not PHP or not WP_IMPORTER_DIR:
        pytest.skip(
            "WordPress importer parsers SKIP: "
            + ("php is not installed (apt-get install php-cli php-xml); " if not PHP else "")
            + ("WP_IMPORTER_DIR is unset: point it at a checkout of "
               "https://github.com/WordPress/wordpress-importer" if not WP_IMPORTER_DIR else ""))
    root = Path(WP_IMPORTER_DIR)
    for parsers in (root / "src" / "parsers", root / "parsers"):
        if (parsers / "class-wxr-parser-simplexml.php").is_file():
            return parsers
    pytest.fail(f"WP_IMPORTER_DIR={root} holds no parsers/class-wxr-parser-simplexml.php")


def importer_version(parsers: Path) -> tuple[int, ...]:
    plugin = parsers.parent / "wordpress-importer.php"
    found = plugin.is_file() and re.search(r"Version:\s*([\d.]+)", plugin.read_text("utf-8"))
    return tuple(int(n) for n in found.group(1).split(".")) if found else (99,)


def read_with(parsers: Path, parser: str, path: Path, tmp_path: Path) -> dict:
    if not (parsers / f"class-wxr-parser-{parser.replace('xmlprocessor', 'xml-processor')}.php").is_file():
        pytest.skip(f"this importer has no {parser} parser (it came in 0.9.0)")
    if parser == "regex" and importer_version(parsers) < (0, 8):
        pytest.skip("the regex parser before importer 0.8 drops every blank line of any text")
    driver = tmp_path / "driver.php"
    driver.write_text(PHP_DRIVER, "utf-8")
    done = subprocess.run([PHP, str(driver), str(parsers), PARSERS[parser], str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a warning
    return json.loads(done.stdout)


def as_wordpress_sees_it(path: Path) -> dict:
    """What each parser should find: the file read with ElementTree, in the parsers' keys."""
    ns = {"wp": WP[1:-1], "dc": "http://purl.org/dc/elements/1.1/",
          "content": "http://purl.org/rss/1.0/modules/content/",
          "excerpt": "http://wordpress.org/export/1.2/excerpt/"}
    channel = ET.parse(path).getroot().find("channel")

    def fields(element, names: dict[str, str]) -> dict[str, str]:
        return {key: element.findtext(tag, namespaces=ns) for key, tag in names.items()}

    post_fields = {"post_id": "wp:post_id", "post_title": "title", "post_author": "dc:creator",
                   "post_content": "content:encoded", "post_excerpt": "excerpt:encoded",
                   "post_date": "wp:post_date", "post_date_gmt": "wp:post_date_gmt",
                   "status": "wp:status", "post_name": "wp:post_name",
                   "comment_status": "wp:comment_status", "ping_status": "wp:ping_status",
                   "post_parent": "wp:post_parent", "menu_order": "wp:menu_order",
                   "post_type": "wp:post_type", "post_password": "wp:post_password",
                   "is_sticky": "wp:is_sticky", "guid": "guid"}
    comment_fields = {t.removeprefix("wp:"): t for t in WORDPRESS_COMMENT}
    author_fields = {t.removeprefix("wp:"): t for t in WORDPRESS_AUTHOR}
    return {
        "version": channel.findtext("wp:wxr_version", namespaces=ns),
        "base_url": channel.findtext("wp:base_site_url", namespaces=ns),
        "authors": {a.findtext("wp:author_login", namespaces=ns): fields(a, author_fields)
                    for a in channel.findall("wp:author", ns)},
        "posts": [
            fields(item, post_fields) | {
                "postmeta": [fields(m, {"key": "wp:meta_key", "value": "wp:meta_value"})
                             for m in item.findall("wp:postmeta", ns)],
                "comments": [fields(c, comment_fields) for c in item.findall("wp:comment", ns)],
            }
            for item in channel.findall("item")
        ],
    }


def differences(expected, got, where: str = "") -> list[tuple[str, str, str]]:
    """(where, expected, got) for each value that differs; numbers compared as text."""
    if isinstance(expected, dict):
        got = got if isinstance(got, dict) else {}
        return [d for key, value in expected.items()
                for d in differences(value, got.get(key), f"{where}.{key}".lstrip("."))]
    if isinstance(expected, list):
        got = got if isinstance(got, list) else []
        if len(got) != len(expected):
            return [(where, f"{len(expected)} entries", f"{len(got)} entries")]
        return [d for i, (e, g) in enumerate(zip(expected, got, strict=True))
                for d in differences(e, g, f"{where}[{i}]")]
    got = "" if got is None else str(got)
    return [] if got == expected else [(where, expected, got)]


@pytest.mark.parametrize("parser", PARSERS)
def test_every_parser_of_wordpress_importer_reads_the_export(app, runner, tmp_path, parser,
                                                             wordpress_parsers):
    exported = exported_blog(app, runner, tmp_path)
    expected = as_wordpress_sees_it(exported)
    got = read_with(wordpress_parsers, parser, exported, tmp_path)
    assert len(got["posts"]) == 3 and len(got["authors"]) == 3
    assert sum(len(p.get("comments", [])) for p in got["posts"]) == 17
    found = differences(expected, got)
    if parser == "regex":
        # It writes <br> and <hr> in post content as <br /> and <hr /> on purpose: the same HTML.
        found = [(where, e, g) for where, e, g in found
                 if not (where.endswith((".post_content", ".post_excerpt"))
                         and e.replace("<br>", "<br />").replace("<hr>", "<hr />") == g)]
    if parser == "xml":
        # WXR_Parser_XML reads any value that is exactly "0" as "" (`if ( ! trim( $cdata ) )` and
        # `! empty( $this->cdata )`): WordPress's own exports lose their 0s to it the same way,
        # and no way of writing "0" gets through. Its importer takes "" for 0 in the numbers;
        # a pending comment's comment_approved is the one value that suffers.
        lost = [where for where, e, g in found if where.endswith(".comment_approved")]
        assert len(lost) == 2  # the two pending comments
        found = [(where, e, g) for where, e, g in found if not (e == "0" and g == "")]
    assert found == []
