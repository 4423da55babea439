"""The OpenAPI document is exact (issue 16, point 10).

Schemathesis runs every check it has against the app in-process (WSGI, no socket): responses,
status codes, content types and headers as documented; data the document calls valid accepted,
data it calls invalid refused; undocumented methods 405; a missing X-CSRFToken refused; and,
following the document's links, a comment created, edited and deleted by its own browser. The
live stream is left out: it never ends (tests/test_live.py covers it).

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

from app.comments import openapi, service
from app.extensions import db
from app.models import Comment, Post
from tests.conftest import make_app, reset_database
from tests.test_comments import API, FORM, GUEST, configure, csrf_token

SLUG = "pakistan-russia-agree-to-bury-the-hatchet"
ORIGIN = {"Origin": "http://localhost"}
NEW_COMMENT = openapi.SPEC["components"]["schemas"]["NewComment"]["properties"]


class Browser:
    """What a browser adds to every call the fuzzer makes: its cookies (the session the CSRF
    token belongs to, and `parley_mine`, which says whose comments these are) and the real token
    wherever the generated request carries the X-CSRFToken header (a request without it stays
    without it, and must be refused)."""

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

        return self.app(environ, keep_cookies)


def _dispose(app) -> None:
    from app.mail import get_mailer

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
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json", Browser(api_app, token, {"session": client.get_cookie("session").value}),
        config=config).exclude(path_regex="/live$")

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
    # The runs reached the storing code, and a browser's own comments were edited and deleted.
    assert 201 in by_operation[f"POST /api/posts/{SLUG}/comments"], by_operation
    assert 200 in by_operation["PUT /api/comments/{id}"], by_operation
    assert 204 in by_operation["DELETE /api/comments/{id}"], by_operation


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
    """413 on PUT was undocumented; 429 must carry Retry-After, as documented."""
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", api_app)
    post = schema["/api/posts/{slug}/comments"]["POST"]
    put = schema["/api/comments/{id}"]["PUT"]
    for operation, codes in ((post, {"201", "400", "403", "404", "409", "413", "429", "503"}),
                             (put, {"200", "400", "403", "404", "413", "503"}),
                             (schema["/api/comments/{id}"]["DELETE"],
                              {"204", "400", "403", "404", "503"})):
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
    configure(api_app, comment_flood_seconds=60)
    flood = client.post(API, json={**GUEST, "comment": "Again, quickly."},
                        headers={"X-CSRFToken": token})
    assert flood.status_code == 429 and int(flood.headers["Retry-After"]) >= 1
    post.validate_response(flood)
