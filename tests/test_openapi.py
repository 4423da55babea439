"""The OpenAPI document is exact (issue 16, point 10).

Schemathesis runs every check it has against the app in-process (WSGI, no socket): responses,
status codes, content types and headers as documented; data the document calls valid accepted,
data it calls invalid refused; undocumented methods 405; a missing X-CSRFToken refused;
following the document's links, a comment created, edited and deleted by its own browser; and a
guest's like asked for, and one its browser confirmed taken back. The live stream is left out:
it never ends (tests/test_live.py covers it).

Then what the document says of each field is held against what the gate does, field by field.
"""

from __future__ import annotations

import json
import re
import string
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import likes
from app.comments import openapi, service
from app.extensions import db
from app.mail import get_mailer
from app.models import Comment, Like, Post, utcnow
from app.signing import sign
from tests.conftest import make_app, reset_database
from tests.test_comments import API, FORM, GUEST, configure, csrf_token

SLUG = "pakistan-russia-agree-to-bury-the-hatchet"
ORIGIN = {"Origin": "http://localhost"}
NEW_COMMENT = openapi.SPEC["components"]["schemas"]["NewComment"]["properties"]


class Browser:
    """What a browser adds to every call the fuzzer makes: its cookies (the session the CSRF
    token belongs to, and `parley_mine`, which says whose comments these are) and the real token
    wherever the generated request carries the X-CSRFToken header (a request without it stays
    without it, and must be refused). It also waits for the mail each call queued: the mail
    thread's Message-ID draws on the `random` module, and Hypothesis fails a run whose global
    random state moves while it generates the next call (a like's confirmation, sent at once,
    made that a race)."""

    def __init__(self, app, token: str, cookies: dict[str, str]) -> None:
        self.app, self.token, self.jar = app, token, dict(cookies)

    def __call__(self, environ, start_response):
        if "HTTP_X_CSRFTOKEN" in environ:
            environ["HTTP_X_CSRFTOKEN"] = self.token
        environ["HTTP_COOKIE"] = "; ".join(f"{name}={value}" for name, value in self.jar.items())

        def keep_cookies(status, headers, exc_info=None):
            for name, value in headers:
                if name.lower() == "set-cookie":
                    for morsel in SimpleCookie(value).values():
                        if morsel.value and morsel["max-age"] != "0":
                            self.jar[morsel.key] = morsel.value
                        else:
                            self.jar.pop(morsel.key, None)
            return start_response(status, headers, exc_info)

        answer = self.app(environ, keep_cookies)
        get_mailer(self.app).join()
        return answer


def _dispose(app) -> None:
    get_mailer(app).join()  # accepted comments queue subscriber mail
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def api_app(database_url):
    """Flood and rate limits off (else most calls would be 429s); names optional, so generated
    bodies reach the storing code; published at once; nothing mailed to moderators."""
    app = make_app(database_url, RATELIMIT_ENABLED=False)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash must show as the 500 a reader gets
    reset_database(app)
    with app.app_context():
        from app.commands import seed_article

        seed_article()
    configure(app, comment_flood_seconds=0, moderation_notify=False, comment_moderation="nobody",
              require_name_email=False)
    yield app
    _dispose(app)


# --- Schemathesis, every check --------------------------------------------------------------

def test_schemathesis_runs_every_check_and_finds_nothing(api_app):
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events, from_schema

    client = api_app.test_client()
    token = client.get("/api/session").get_json()["csrf_token"]
    cookies = {"session": client.get_cookie("session").value,
               likes.COOKIE: _confirmed_guest_like(api_app)}  # so that an unlike can succeed
    config = SchemathesisConfig.from_dict({
        # Every check is on by default; a body over MAX_CONTENT_LENGTH is refused with 413,
        # which is a refusal too (Schemathesis's list of refusals leaves it out).
        "checks": {"negative_data_rejection": {"expected-statuses": [
            "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
            "5xx"]}},
        "phases": {"stateful": {"enabled": True}},
        "generation": {"mode": "all", "max-examples": 40, "deterministic": True,
                       "database": "none"},
        # The article's slug, so that calls reach the handlers rather than stop at a 404.
        "parameters": {"path.slug": SLUG},
    })
    # Every operation, the document's own GET too (Schemathesis leaves that out unless a filter
    # selects it); not the live stream, which never ends (tests/test_live.py covers it).
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", Browser(api_app, token, cookies), config=config,
    ).include(path_regex="^/api/").exclude(path_regex="/live$")

    failures: dict[tuple[str, str], str] = {}
    errors: list[str] = []
    answered: dict[str, set[int]] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.setdefault((event.recorder.label, check.name),
                                            f"{getattr(failure, 'message', failure)}\n"
                                            f"{check.failure_info.code_sample[:600]}")
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    request = f"{interaction.request.method} {interaction.request.uri}"
                    answered.setdefault(re.sub(r"/\d+$", "/{id}", request.split("?")[0]),
                                        set()).add(interaction.response.status_code)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(str(getattr(event, "info", event)))
    assert not errors, "\n".join(errors)
    assert not failures, "\n\n".join(f"{label} — {name}:\n{text}"
                                     for (label, name), text in failures.items())
    by_operation = {k.split(" ", 1)[0] + " " + k.split("localhost", 1)[-1]: v
                    for k, v in answered.items()}
    # Every operation but the live stream was called; the runs reached the storing code, a
    # browser's own comments were edited and deleted, and its like was taken back.
    called = {re.sub(r"/posts/[^/]+/", "/posts/{slug}/", key) for key in by_operation}
    assert {f"{method.upper()} {path}" for path, item in openapi.SPEC["paths"].items()
            for method in item if method != "parameters" and not path.endswith("/live")
            } - called == set()
    assert 201 in by_operation[f"POST /api/posts/{SLUG}/comments"], by_operation
    assert 200 in by_operation["PUT /api/comments/{id}"], by_operation
    assert 204 in by_operation["DELETE /api/comments/{id}"], by_operation
    assert 202 in by_operation[f"POST /api/posts/{SLUG}/likes"], by_operation
    assert 200 in by_operation[f"DELETE /api/posts/{SLUG}/likes"], by_operation


def _confirmed_guest_like(app) -> str:
    """A like confirmed by mail, and the cookie its browser was given on confirming it."""
    with app.app_context():
        post = db.session.scalar(sa.select(Post).where(Post.slug == SLUG))
        like = Like(post_id=post.id, email="fuzz@example.com", name="Fuzz", confirmed_at=utcnow())
        db.session.add(like)
        db.session.execute(sa.update(Post).where(Post.id == post.id)
                           .values(like_count=Post.like_count + 1))
        db.session.commit()
        return sign(likes.LIKES_COOKIE, [like.id])


# --- what the document says of each field is what the gate does ------------------------------

def _refused_fields(app, data: dict) -> dict[str, str]:
    """The fields the gate refuses in *data* (a guest's comment on the article)."""
    with app.app_context():
        post = db.session.scalar(sa.select(Post).where(Post.slug == SLUG))
        try:
            service.validate(post, {"comment": "A comment.", **data}, None)
        except service.CommentRejected as rejected:
            return rejected.fields or {"": rejected.message}
        finally:
            db.session.rollback()
    return {}


def _matches(field: str, value: str) -> bool:
    schema = NEW_COMMENT[field]
    return (len(value) <= schema.get("maxLength", len(value))
            and len(value) >= schema.get("minLength", 0)
            and re.search(schema["pattern"], value) is not None)


def test_the_documents_whitespace_is_what_strip_trims():
    spaces = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    assert re.fullmatch(f"[{openapi.SPACE}]+", spaces)
    assert re.sub(f"[{openapi.SPACE}]", "", "".join(map(chr, range(0x3100)))) == "".join(
        chr(c) for c in range(0x3100) if not chr(c).isspace())
    assert openapi.MAX_ID == service.MAX_ID


URL_TEXT = st.text(alphabet=string.ascii_letters[:6] + "HTPSs" + "0.:/?#@-_ \t\n\x00\x01\x7f\x85é",
                   max_size=24)
URL_SHAPED = st.builds("".join, st.lists(st.sampled_from(
    ["http://", "HTTPS://", "ftp://", "://", "a", "b.c", ".", ":", "/", "?", "#", "@", " ", "\t",
     "\x01", "é", "\u3000", "x" * 190]), max_size=6))


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(URL_TEXT, URL_SHAPED, st.from_regex(openapi.URL_PATTERN)))
def test_the_url_pattern_is_the_gates_rule(api_app, value):
    """A website the pattern allows is accepted, and only those (both ways)."""
    assert _matches("url", value) == ("url" not in _refused_fields(api_app, {"url": value})), value


EMAIL_TEXT = st.text(alphabet="ab1.-_+@ \tAXé\x00", max_size=20)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(EMAIL_TEXT, st.emails().map(str), st.from_regex(openapi.EMAIL_PATTERN)))
def test_an_email_the_pattern_allows_is_accepted(api_app, value):
    """One way only: the gate also takes internationalised addresses, as the document says."""
    refused = "email" in _refused_fields(api_app, {"email": value})
    if _matches("email", value):
        assert not refused, value
    elif value.isascii() and "xn--" not in value.lower() and not value.strip().startswith("@"):
        assert refused, value


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(EMAIL_TEXT, st.emails().map(str), st.from_regex(openapi.LIKE_EMAIL_PATTERN)))
def test_a_like_takes_the_emails_its_pattern_allows(api_app, value):
    """As a comment's, one way for internationalised addresses; but never no address at all."""
    schema = openapi.SPEC["components"]["schemas"]["Like"]["properties"]["email"]
    matches = len(value) <= schema["maxLength"] and re.search(schema["pattern"], value)
    client = api_app.test_client()
    response = client.post(f"/api/posts/{SLUG}/likes", json={"email": value},
                           headers={"X-CSRFToken": csrf_token(client)})
    get_mailer(api_app).join()  # its Message-ID draws on `random`, which Hypothesis watches
    if matches:
        assert response.status_code == 202, (value, response.json)
    elif value.isascii() and "xn--" not in value.lower():
        assert response.status_code == 400 and set(response.json["fields"]) == {"email"}, value


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=8), st.text(alphabet=" \t\n\x0b\x1c\x85\u3000\ufeffa\x00",
                                                     max_size=6)))
def test_the_comment_and_author_patterns_are_the_gates_rules(api_app, value):
    assert _matches("comment", value) == ("comment" not in _refused_fields(
        api_app, {"comment": value})), value
    assert _matches("author", value) == ("author" not in _refused_fields(
        api_app, {"author": value})), value


# --- the findings, one by one ------------------------------------------------------------------

def _stored(app) -> list[tuple]:
    with app.app_context():
        rows = db.session.execute(sa.select(Comment.id, Comment.parent_id, Comment.content)
                                  .order_by(Comment.id)).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("value", [True, False, 1.5, 1.0, "1", "", None, -1, 2**31, [1], {"id": 1}])
@pytest.mark.parametrize("field", ["comment_parent", "parent_id"])
def test_a_comments_number_is_a_json_integer(api_app, field, value):
    """`comment_parent: 1.5` or `true` was taken as 1. `"1"` is refused too: the JSON API
    takes JSON integers, as its document says (the form's text is the form's)."""
    client = api_app.test_client()
    before = _stored(api_app)
    response = client.post(API, json={**GUEST, "comment": f"A reply {value!r}", field: value},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid" and set(response.json["fields"]) == {field}
    assert "whole number" in response.json["fields"][field]
    assert _stored(api_app) == before


def test_a_reply_by_json_integer_and_by_form_text(api_app):
    client = api_app.test_client()
    parent = _stored(api_app)[0][0]
    response = client.post(API, json={**GUEST, "comment": "By number.", "comment_parent": parent},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 201 and response.json["comment"]["parent_id"] == parent
    for text, status in ((str(parent), 303), ("0", 303), ("", 303), ("1.5", 400), ("true", 400),
                         ("-1", 400), (" 1", 400), ("١", 400), ("99999999999", 400)):
        response = client.post(FORM, data={**GUEST, "comment": f"By form {text!r}.",
                                           "comment_parent": text}, headers=ORIGIN)
        assert response.status_code == status, text
        if status == 400:
            assert "must be given by its number" in response.get_data(as_text=True)


def test_a_reply_to_a_comment_that_is_not_there_is_a_conflict(api_app):
    client = api_app.test_client()
    token = csrf_token(client)
    response = client.post(API, json={**GUEST, "comment": "To nobody.", "comment_parent": 424242},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 409
    assert response.json["fields"] == {"comment_parent": "The comment you are replying to is "
                                                         "not available."}
    both = client.post(API, json={**GUEST, "email": "not an email", "comment": "To nobody.",
                                  "comment_parent": 424242}, headers={"X-CSRFToken": token})
    assert both.status_code == 400 and set(both.json["fields"]) == {"email", "comment_parent"}


@pytest.mark.parametrize("after, status", [("0", 200), ("1", 200), (str(2**31 - 1), 200),
                                           ("-1", 400), (str(2**31), 400), ("+1", 400),
                                           (" 1", 400), ("1.0", 400), ("", 400), ("x", 400)])
def test_after_takes_exactly_what_the_document_says(api_app, after, status):
    """`after=-1` was refused while the document allowed it: now the document says minimum 0."""
    schema = openapi.SPEC["paths"]["/api/posts/{slug}/comments"]["get"]["parameters"][1]["schema"]
    assert (schema["minimum"], schema["maximum"]) == (0, 2**31 - 1)
    response = api_app.test_client().get(API, query_string={"after": after})
    assert response.status_code == status
    if after == "0":
        assert len(response.json["comments"]) == response.json["count"] > 0


@pytest.mark.parametrize("text", ["", " ", "\n\t", "\u3000", "\x1c"])
def test_a_comment_of_whitespace_is_refused_as_documented(api_app, text):
    comment = NEW_COMMENT["comment"]
    assert comment["minLength"] == 1 and not re.search(comment["pattern"], text)
    assert "Whitespace only is refused (400)" in comment["description"]
    client = api_app.test_client()
    response = client.post(API, json={**GUEST, "comment": text},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 400 and set(response.json["fields"]) == {"comment"}


def test_every_status_the_api_answers_is_documented(api_app):
    """413 on PUT was undocumented, and on DELETE (whose body is read for a CSRF token); 429
    must carry Retry-After, as documented."""
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", api_app)
    post = schema["/api/posts/{slug}/comments"]["POST"]
    put = schema["/api/comments/{id}"]["PUT"]
    for operation, codes in ((post, {"201", "400", "403", "404", "409", "413", "429", "503"}),
                             (put, {"200", "400", "403", "404", "413", "503"}),
                             (schema["/api/comments/{id}"]["DELETE"],
                              {"204", "400", "403", "404", "413", "503"})):
        assert set(operation.definition.raw["responses"]) == codes, operation.label
    for code in ("429", "503"):
        assert "Retry-After" in post.definition.raw["responses"][code]["headers"]

    client = api_app.test_client()
    token = csrf_token(client)
    created = client.post(API, json={**GUEST, "comment": "Mine."}, headers={"X-CSRFToken": token})
    big = json.dumps({"comment": "x" * (256 * 1024)})
    too_large = client.put(f"/api/comments/{created.json['comment']['id']}", data=big,
                           content_type="application/json", headers={"X-CSRFToken": token})
    assert too_large.status_code == 413
    put.validate_response(too_large)
    delete = schema["/api/comments/{id}"]["DELETE"]
    too_large = client.delete(f"/api/comments/{created.json['comment']['id']}", data=big,
                              content_type="application/json", headers={"X-CSRFToken": token})
    assert too_large.status_code == 413
    delete.validate_response(too_large)
    configure(api_app, comment_flood_seconds=60)
    flood = client.post(API, json={**GUEST, "comment": "Again, quickly."},
                        headers={"X-CSRFToken": token})
    assert flood.status_code == 429 and int(flood.headers["Retry-After"]) >= 1
    post.validate_response(flood)


def test_every_api_route_is_in_the_document(api_app):
    """The Like endpoints were served under /api but missing from the document. Every rule
    under /api/ and each of its methods is described (the live stream too, which the fuzzer
    leaves out because it never ends)."""
    documented = {(re.sub(r"\{[^}]*\}", "{}", path), method.upper())
                  for path, item in openapi.SPEC["paths"].items()
                  for method in item if method != "parameters"}
    served = {(re.sub(r"<[^>]*>", "{}", rule.rule), method)
              for rule in api_app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served - documented == set()
    assert documented - served == set()


def test_every_status_a_like_answers_is_documented(api_app):
    """What the fuzzer cannot reach (a signed-in reader's like, an email that already likes the
    post, a body over the limit, a guest with no like to take back), each answer checked against
    the document; and the document's limits are the columns' and the likers shown."""
    import schemathesis

    from tests.test_likes import BIG_BODY, sign_in

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", api_app)
    show, like, unlike = (schema["/api/posts/{slug}/likes"][method]
                          for method in ("GET", "POST", "DELETE"))
    for operation, codes in ((show, {"200", "400", "404", "503"}),
                             (like, {"200", "202", "400", "404", "413", "503"}),
                             (unlike, {"200", "400", "404", "413", "503"})):
        assert set(operation.definition.raw["responses"]) == codes, operation.label
    fields = openapi.SPEC["components"]["schemas"]["Like"]["properties"]
    assert {name: fields[name]["maxLength"] for name in fields} == {
        name: Like.__table__.c[name].type.length for name in ("email", "name")}
    likers = like.definition.raw["responses"]["202"]["content"]["application/json"]["schema"]
    assert likers["properties"]["likers"]["maxItems"] == likes.LIKERS_SHOWN

    _confirmed_guest_like(api_app)  # fuzz@example.com already likes the post
    path, guest, reader = f"/api/posts/{SLUG}/likes", api_app.test_client(), api_app.test_client()
    token = csrf_token(guest)
    already = guest.post(path, json={"email": "fuzz@example.com"}, headers={"X-CSRFToken": token})
    assert already.json["liked"] is False and already.json["pending"] is False
    answers = [
        (like, already, 200),
        (show, guest.get(path), 200),
        (show, guest.get("/api/posts/no-such-post/likes"), 404),
        (like, guest.post(path, json={"email": "a@example.com"}, headers={"X-CSRFToken": token}),
         202),
        (like, guest.post(path, json={"email": "nope"}, headers={"X-CSRFToken": token}), 400),
        (like, guest.post(path, json={"email": "a@example.com"}), 400),  # no CSRF token
        (like, guest.post(path, data=BIG_BODY, content_type="application/json",
                          headers={"X-CSRFToken": token}), 413),
        (unlike, guest.delete(path, headers={"X-CSRFToken": token}), 404),
        (unlike, guest.delete(path, data=BIG_BODY, content_type="application/json",
                              headers={"X-CSRFToken": token}), 413),
    ]
    sign_in(api_app, reader)
    reader_token = csrf_token(reader)
    liked = reader.post(path, headers={"X-CSRFToken": reader_token})
    assert liked.json["liked"] is True and "pending" not in liked.json
    answers += [(like, liked, 200), (show, reader.get(path), 200),
                (unlike, reader.delete(path, headers={"X-CSRFToken": reader_token}), 200)]

    # The database gone (every statement refused, as a PostgreSQL restart does; simulated,
    # as tests/test_resilience.py does): 503 with Retry-After.
    def refuse(conn, cursor, statement, *args):
        raise sa.exc.OperationalError(statement, {}, Exception("server closed the connection"))

    with api_app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        gone = [(show, guest.get(path), 503),
                (like, guest.post(path, json={"email": "b@example.com"},
                                  headers={"X-CSRFToken": token}), 503),
                (unlike, reader.delete(path, headers={"X-CSRFToken": reader_token}), 503)]
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)
    assert all(int(response.headers["Retry-After"]) >= 1 for _, response, _ in gone)
    for operation, response, status in answers + gone:
        assert response.status_code == status, (operation.label, status, response.json)
        operation.validate_response(response)


def test_a_slug_with_a_nul_is_answered_as_documented(api_app):
    """PostgreSQL cannot hold a NUL, so there a slug with one is a 400 (SQLite: no such post),
    which GET /api/session?post= did not document."""
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", api_app)
    client = api_app.test_client()
    for path, operation in (("/api/session?post=a%00b", schema["/api/session"]["GET"]),
                            ("/api/posts/a%00b/likes", schema["/api/posts/{slug}/likes"]["GET"]),
                            ("/api/posts/a%00b/comments",
                             schema["/api/posts/{slug}/comments"]["GET"])):
        response = client.get(path)
        assert str(response.status_code) in operation.definition.raw["responses"], path
        operation.validate_response(response)
