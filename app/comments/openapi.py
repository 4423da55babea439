"""The JSON API, described as OpenAPI 3.0 (served at /api/openapi.json): comments, the reader's
session, the live stream, and the Like button (app/likes.py).

The document is exact, and tests/test_openapi.py holds it to that with Schemathesis's full set
of checks: a request it calls valid is accepted (or refused for what the site's state decides:
403 closed or banned, 404 no such post, comment or like, 409 a duplicate or a reply to a comment
that is not there, 429 too fast), one it calls invalid is refused with 400 (413 when too large), and
every status and field of every answer is listed. The JSON door (app/comments/api.py) checks each
field's JSON type against this document; the lengths and patterns are the gate's own rules
(app/comments/service.py; a like's, app/likes.py), written out here.
"""

from __future__ import annotations

# What `str.strip()` trims (Python's whitespace), spelled out so that every regex engine reading
# the patterns (Python's, ECMA-262's, the Rust one Schemathesis validates with) agrees: ECMA's
# `\s` lacks U+001C-U+001F and U+0085 and adds U+FEFF.
SPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CONTROL = r"\u0000-\u001f\u007f"
_W = f"[{SPACE}]"
_N = f"[^{_CONTROL}{SPACE}]"  # a character of a web or email address: no control, no space
MAX_ID = 2**31 - 1  # a PostgreSQL integer column (service.MAX_ID)

# Text: anything but a NUL (PostgreSQL text cannot hold one). A comment needs one character that
# is not whitespace: surrounding whitespace is trimmed, and a comment of nothing is refused.
TEXT_PATTERN = r"^[^\u0000]*$"
COMMENT_PATTERN = rf"^[^\u0000]*[^\u0000{SPACE}][^\u0000]*$"

# A website, as the gate reads one: trimmed; `http://` or `https://` (any case) and a host, or a
# bare address that gets `http://` put in front (so no `://` in it, no `:` before its first `/`,
# and at most 193 characters); a dot somewhere; no space or control character inside; at most
# 200 characters once trimmed. Or nothing.
_SCHEME = "[Hh][Tt][Tt][Pp][Ss]?://"
_WITH_SCHEME = rf"(?={_N}{{1,200}}{_W}*$){_SCHEME}(?={_N}*\.)[^{_CONTROL}{SPACE}/?#]+{_N}*"
_BARE = (rf"(?={_N}{{1,193}}{_W}*$)(?={_N}*\.)(?!{_N}*://)"
         rf"[^{_CONTROL}{SPACE}/?#:][^{_CONTROL}{SPACE}/:]*(?:/{_N}*)?")
URL_PATTERN = rf"^{_W}*(?:{_WITH_SCHEME}|{_BARE})?{_W}*$"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


# An email address in the form every mail system takes: a dot-atom, `@`, a domain of LDH labels
# whose last one ends in a letter and is not a special-use name (RFC 6761: `.test`, `.local`, …).
# The gate (email-validator) also takes internationalised addresses, which this does not describe.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SPECIAL = "|".join(_any_case(name) for name in
                    ("arpa", "invalid", "localhost", "local", "onion", "test"))
_TLD = rf"(?!(?:{_SPECIAL}){_W}*$)(?![A-Za-z0-9]{{2}}--)(?:[A-Za-z0-9][A-Za-z0-9-]{{0,61}})?[A-Za-z]"
_ADDRESS = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+{_TLD}"
EMAIL_PATTERN = rf"^{_W}*(?:{_ADDRESS})?{_W}*$"  # a comment's: or nothing
LIKE_EMAIL_PATTERN = rf"^{_W}*{_ADDRESS}{_W}*$"  # a like's: never nothing

_TRIMMED = "Surrounding whitespace is trimmed (and counts towards the limit)."


def _id(description: str, minimum: int = 0) -> dict:
    return {"type": "integer", "minimum": minimum, "maximum": MAX_ID, "description": description}


_ERROR = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "A short code: `invalid`, `bad_json`, "
                  "`csrf_failed`, `duplicate`, `flood`, `closed`, `rate_limited`, …"},
        "message": {"type": "string", "description": "What to tell the reader"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "A message per field that was refused"},
    },
}
_COMMENT = {
    "type": "object",
    "required": ["id", "post_id", "parent_id", "author", "author_url", "avatar", "content_html",
                 "status", "created_at", "date", "edited"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"},
        "post_id": {"type": "integer"},
        "parent_id": {"type": "integer", "nullable": True},
        "author": {"type": "string"},
        "author_url": {"type": "string", "nullable": True},
        "avatar": {"type": "string"},
        "content_html": {"type": "string", "description": "Sanitised HTML"},
        "status": {"type": "string", "enum": ["pending", "approved", "spam", "trash"]},
        "created_at": {"type": "string", "format": "date-time"},
        "date": {"type": "string", "description": "As the blog shows it"},
        "edited": {"type": "boolean"},
        "depth": {"type": "integer", "minimum": 1,
                  "description": "Its depth in the thread (answers to a create or an edit)"},
        "html": {"type": "string", "description": "Its list item as the page shows it (answers "
                 "to a create or an edit)"},
    },
}
_NEW_COMMENT = {
    "type": "object",
    "required": ["comment"],
    "description": "A guest also sends `author` and `email` when the Discussion setting "
                   "\"Comment author must fill out name and email\" is on (the default); a "
                   "signed-in reader's name, email and website are their account's. Other "
                   "properties are ignored.",
    "properties": {
        "comment": {"type": "string", "minLength": 1, "maxLength": 65525,
                    "pattern": COMMENT_PATTERN,
                    "description": "The text. Whitespace only is refused (400). " + _TRIMMED},
        "author": {"type": "string", "maxLength": 245, "pattern": TEXT_PATTERN,
                   "description": _TRIMMED},
        "email": {"type": "string", "maxLength": 100, "pattern": EMAIL_PATTERN,
                  "description": "Never shown. Internationalised addresses are accepted too. "
                                 + _TRIMMED},
        "url": {"type": "string", "maxLength": 200, "pattern": URL_PATTERN,
                "description": "A website: `https://example.com/me`, or `example.com` (read as "
                               "`http://example.com`). " + _TRIMMED},
        "comment_parent": _id("The comment this one answers (0: none). It must be an approved "
                              "comment on the same post, else 409."),
        "parent_id": _id("Read when `comment_parent` is absent"),
        "subscribe_comments": {"type": "boolean", "description": "Mail me new comments"},
        "notify": {"type": "boolean", "description": "Same as `subscribe_comments`"},
        "subscribe_blog": {"type": "boolean", "description": "Mail me new posts"},
        "remember": {"type": "boolean", "description": "Save my name, email and website in "
                                                       "this browser"},
        "ak_hp_textarea": {"description": "The form's field people never see: leave it out, "
                                          "empty or null. Anything else in it and the comment "
                                          "is dropped, answered as a held one (201, `held`)."},
    },
}
_EDIT = {
    "type": "object",
    "required": ["comment"],
    "properties": {"comment": _NEW_COMMENT["properties"]["comment"]},
}
_SESSION = {
    "type": "object",
    "required": ["csrf_token", "user", "commenter", "held", "mine"],
    "additionalProperties": False,
    "properties": {
        "csrf_token": {"type": "string", "description": "Send it as X-CSRFToken"},
        "user": {"type": "object", "nullable": True, "additionalProperties": False,
                 "required": ["name", "avatar", "provider", "is_admin"],
                 "properties": {"name": {"type": "string"},
                                "avatar": {"type": "string", "nullable": True},
                                "provider": {"type": "string", "nullable": True},
                                "is_admin": {"type": "boolean"}}},
        "commenter": {"type": "object", "nullable": True,
                      "description": "The guest's saved name, email and website",
                      "properties": {"author": {"type": "string"}, "email": {"type": "string"},
                                     "url": {"type": "string"}}},
        "held": {"type": "array", "items": {"$ref": "#/components/schemas/Comment"},
                 "description": "This browser's comments awaiting moderation"},
        "mine": {"type": "array", "description": "This browser's comments it may still change",
                 "items": {"type": "object", "additionalProperties": False,
                           "required": ["id", "content", "editable_until"],
                           "properties": {"id": {"type": "integer"},
                                          "content": {"type": "string"},
                                          "editable_until": {"type": "string",
                                                             "format": "date-time"}}}},
    },
}

_LIKER = {
    "type": "object",
    "required": ["name", "avatar"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string", "description": "Their account's name, or the name "
                                                             "they liked with (else “A reader”)"},
                   "avatar": {"type": "string", "description": "Their picture's address"}},
}
_LIKE = {
    "type": "object",
    "required": ["email"],
    "description": "A guest's like, counted once they confirm it from the mail sent to `email` "
                   "(one like per address). The mail goes only while the mail limits allow "
                   "(per address and per client); the answer is the same either way. A "
                   "signed-in reader's like counts at once and its body is not read (parley.js "
                   "sends none). Other properties are ignored.",
    "properties": {
        "email": {"type": "string", "maxLength": 100, "pattern": LIKE_EMAIL_PATTERN,
                  "description": "Never shown; its Gravatar is. Internationalised addresses are "
                                 "accepted too. " + _TRIMMED},
        "name": {"type": "string", "maxLength": 245, "pattern": TEXT_PATTERN,
                 "description": "Shown as the liker's name once confirmed. " + _TRIMMED},
    },
}


def _likes(liked: dict, **more: dict) -> dict:
    """The post's likes as the page shows them, this reader's `liked`, and *more* fields."""
    properties = {
        "count": {"type": "integer", "minimum": 0, "description": "Confirmed likes in all"},
        "text": {"type": "string", "description": "As the page says it (“3 bloggers like this.”)"},
        "likers": {"type": "array", "maxItems": 12, "description": "The latest likers, newest first",
                   "items": {"$ref": "#/components/schemas/Liker"}},
        "liked": liked,
        **more,
    }
    return {"type": "object", "required": list(properties), "additionalProperties": False,
            "properties": properties}


_LIKED = {"type": "boolean", "description": "This reader (signed in, or a guest in the browser "
                                            "that confirmed) likes the post"}
_PENDING = {"type": "boolean", "enum": [True], "description": "Awaiting the mail's confirmation"}
_MESSAGE = {"type": "string", "description": "What to tell the reader"}

_SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
_CSRF = {"name": "X-CSRFToken", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "From GET /api/session (its session cookie too); without it, 400"}
_RETRY_AFTER = {"Retry-After": {"required": True, "description": "Seconds to wait",
                                "schema": {"type": "integer", "minimum": 1}}}
_WHY = {
    400: "Invalid: a field, the JSON, or the CSRF token (see `fields` and `error`)",
    403: "Not allowed",
    404: "No such post or comment",
    409: "In conflict with what is stored",
    413: "The body is larger than 256 KiB (a DELETE's too: the CSRF check reads it)",
    429: "Too many comments too quickly (`Retry-After` says how long to wait)",
    503: "The database is briefly unavailable (`Retry-After` says when to try again)",
}


_NUL_SLUG = ("A slug with a NUL in it, which PostgreSQL cannot hold (`invalid`; on SQLite there "
             "is no such post)")


def _errors(*codes: int, **why: str) -> dict:
    """The error answers *codes*, each the Error object (described by *why*, e.g. `e403=`)."""
    answers = {}
    for code in codes:
        answer = {"description": why.get(f"e{code}", _WHY[code]),
                  "content": {"application/json": {
                      "schema": {"$ref": "#/components/schemas/Error"}}}}
        if code in (429, 503):
            answer["headers"] = _RETRY_AFTER
        answers[str(code)] = answer
    return answers


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **extra}


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Parley comments API", "version": "1"},
    "paths": {
        "/api/posts/{slug}/comments": {
            "get": {
                "operationId": "listComments",
                "summary": "The post's approved comments, oldest first",
                "parameters": [_SLUG, {
                    "name": "after", "in": "query", "required": False,
                    "schema": _id("Only comments with a larger id (0: all of them); a whole "
                                  "number, else 400")}],
                "responses": {
                    "200": _json({"type": "object", "required": ["post", "count", "comments"],
                                  "additionalProperties": False,
                                  "properties": {
                                      "post": {"type": "string", "description": "Its slug"},
                                      "count": {"type": "integer", "minimum": 0,
                                                "description": "Approved comments in all"},
                                      "comments": {"type": "array", "items": {
                                          "$ref": "#/components/schemas/Comment"}}}},
                                 "Comments"),
                    **_errors(400, 404, 503),
                },
            },
            "post": {
                "operationId": "createComment",
                "summary": "Create a comment (the form's rules: screened, perhaps held)",
                "parameters": [_SLUG, _CSRF],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewComment"}}}},
                "responses": {
                    "201": _json(
                        {"type": "object", "required": ["comment", "held", "editable_until"],
                         "additionalProperties": False,
                         "properties": {
                             "comment": {"$ref": "#/components/schemas/Comment"},
                             "held": {"type": "boolean",
                                      "description": "Awaiting moderation"},
                             "editable_until": {"type": "string", "format": "date-time",
                                                "nullable": True,
                                                "description": "Until when this browser may "
                                                               "edit or delete it"}}},
                        "Created (held when `held` is true)",
                        headers={"Location": {"required": True,
                                              "schema": {"type": "string"}}},
                        links={"EditIt": {"operationId": "editOwnComment",
                                          "parameters": {"id": "$response.body#/comment/id"}},
                               "DeleteIt": {"operationId": "deleteOwnComment",
                                            "parameters": {"id": "$response.body#/comment/id"}}}),
                    **_errors(400, 403, 404, 409, 413, 429, 503,
                              e403="Comments are closed on this post, or the sender is banned",
                              e404="No such post",
                              e409="A duplicate of an earlier comment, or a reply to a comment "
                                   "that is not (or no longer) there"),
                },
            },
        },
        "/api/posts/{slug}/live": {
            "get": {
                "operationId": "liveStream",
                "summary": "Server-Sent Events: comment.created, comment.updated, "
                           "comment.removed, count, likes",
                "parameters": [_SLUG,
                               {"name": "Last-Event-ID", "in": "header", "required": False,
                                "schema": {"type": "integer"}},
                               {"name": "last_event_id", "in": "query", "required": False,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "An event stream",
                                      "content": {"text/event-stream": {"schema": {
                                          "type": "string"}}}},
                              **_errors(400, 404, 429, 503, e429=(
                                  "This client already holds LIVE_MAX_STREAMS_PER_IP streams "
                                  "(`Retry-After` says when to try again)"))},
            },
        },
        "/api/comments/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}},
                           _CSRF],
            "put": {
                "operationId": "editOwnComment",
                "summary": "Edit one's own comment (same browser, within the edit window)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EditComment"}}}},
                "responses": {
                    "200": _json({"type": "object", "required": ["comment", "held"],
                                  "additionalProperties": False,
                                  "properties": {
                                      "comment": {"$ref": "#/components/schemas/Comment"},
                                      "held": {"type": "boolean"}}},
                                 "Edited (held again when the rules would hold the new text)"),
                    **_errors(400, 403, 404, 413, 503,
                              e403="Another browser's comment, the edit window has passed, "
                                   "comments are closed, or the new text is refused"),
                },
            },
            "delete": {
                "operationId": "deleteOwnComment",
                "summary": "Delete one's own comment (same browser, within the edit window)",
                "responses": {"204": {"description": "Deleted"},
                              **_errors(400, 403, 404, 413, 503,
                                        e403="Another browser's comment, or the edit window "
                                             "has passed")},
            },
        },
        "/api/posts/{slug}/likes": {
            "get": {
                "operationId": "showLikes",
                "summary": "The post's likes, its latest likers, and whether this reader likes it",
                "parameters": [_SLUG],
                "responses": {"200": _json(_likes(_LIKED), "The likes"),
                              **_errors(400, 404, 503, e400=_NUL_SLUG, e404="No such post")},
            },
            "post": {
                "operationId": "likePost",
                "summary": "Like the post: at once when signed in, else once the mail is confirmed",
                "parameters": [_SLUG, _CSRF],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Like"}}}},
                "responses": {
                    "200": _json({"oneOf": [
                        _likes({"type": "boolean", "enum": [True]}),
                        _likes({"type": "boolean", "enum": [False]},
                               pending={**_PENDING, "enum": [False]}, message=_MESSAGE),
                    ]}, "Liked (signed in), or this email already likes the post (`pending` "
                        "false)"),
                    "202": _json(_likes({"type": "boolean", "enum": [False]}, pending=_PENDING,
                                        message=_MESSAGE),
                                 "A confirmation mail is on its way (unless the mail limits "
                                 "hold it back, which the answer does not tell)"),
                    **_errors(400, 404, 413, 503, e404="No such post"),
                },
            },
            "delete": {
                "operationId": "unlikePost",
                "summary": "Take back this reader's like",
                "parameters": [_SLUG, _CSRF],
                "responses": {
                    "200": _json(_likes({"type": "boolean", "enum": [False]}), "Unliked"),
                    **_errors(400, 404, 413, 503,
                              e404="No such post, or this reader does not like it (a guest: "
                                   "not confirmed from this browser)"),
                },
            },
        },
        "/api/session": {
            "get": {
                "operationId": "sessionState",
                "summary": "The reader's own state: CSRF token, sign-in, saved details, "
                           "held comments",
                "parameters": [{"name": "post", "in": "query", "required": False,
                                "schema": {"type": "string"},
                                "description": "A post's slug: its held comments"}],
                "responses": {"200": _json({"$ref": "#/components/schemas/Session"},
                                           "Session state"),
                              **_errors(400, 503, e400=_NUL_SLUG)},
            },
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapiDocument",
                "summary": "This document",
                "responses": {"200": _json({"type": "object",
                                            "required": ["openapi", "info", "paths", "components"]},
                                           "OpenAPI 3.0")},
            },
        },
    },
    "components": {"schemas": {"Error": _ERROR, "Comment": _COMMENT, "NewComment": _NEW_COMMENT,
                               "EditComment": _EDIT, "Session": _SESSION, "Like": _LIKE,
                               "Liker": _LIKER}},
}
