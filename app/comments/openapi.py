"""The JSON API, described as OpenAPI 3.0 (served at /api/openapi.json)."""

from __future__ import annotations

_ERROR = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_COMMENT = {
    "type": "object",
    "required": ["id", "post_id", "author", "avatar", "content_html", "status", "created_at"],
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
        "date": {"type": "string"},
        "html": {"type": "string"},
    },
}
_NEW_COMMENT = {
    "type": "object",
    "required": ["comment"],
    "description": "A guest also sends `author` and `email` when the Discussion setting "
                   "\"Comment author must fill out name and email\" is on (the default).",
    "properties": {
        "comment": {"type": "string", "maxLength": 65525},
        "author": {"type": "string", "maxLength": 245},
        "email": {"type": "string", "maxLength": 100},
        "url": {"type": "string", "maxLength": 200},
        "comment_parent": {"type": "integer", "minimum": 0},
        "parent_id": {"type": "integer", "minimum": 0, "description": "Read when "
                      "`comment_parent` is absent"},
        "subscribe_comments": {"type": "boolean"},
        "notify": {"type": "boolean", "description": "Same as `subscribe_comments`"},
        "subscribe_blog": {"type": "boolean"},
        "remember": {"type": "boolean"},
    },
}
_SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*codes: int) -> dict:
    return {
        str(code): {"description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code in codes
    }


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Parley comments API", "version": "1"},
    "paths": {
        "/api/posts/{slug}/comments": {
            "get": {
                "summary": "The post's approved comments, oldest first",
                "parameters": [_SLUG, {"name": "after", "in": "query", "required": False,
                                       "schema": {"type": "integer"}}],
                "responses": {
                    "200": {"description": "Comments", "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {
                            "post": {"type": "string"},
                            "count": {"type": "integer"},
                            "comments": {"type": "array",
                                         "items": {"$ref": "#/components/schemas/Comment"}},
                        }}}}},
                    **_errors(400, 404, 503),
                },
            },
            "post": {
                "summary": "Create a comment (same rules as the form)",
                "parameters": [_SLUG, {"name": "X-CSRFToken", "in": "header", "required": True,
                                       "schema": {"type": "string"},
                                       "description": "From GET /api/session"}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewComment"}}}},
                "responses": {
                    "201": {"description": "Created (held when `held` is true)",
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "properties": {"comment": {"$ref": "#/components/schemas/Comment"},
                                               "held": {"type": "boolean"}}}}}},
                    **_errors(400, 403, 404, 409, 413, 429, 503),
                },
            },
        },
        "/api/posts/{slug}/live": {
            "get": {
                "summary": "Server-Sent Events: comment.created, comment.updated, "
                           "comment.removed, count",
                "parameters": [_SLUG,
                               {"name": "Last-Event-ID", "in": "header", "required": False,
                                "schema": {"type": "integer"}},
                               {"name": "last_event_id", "in": "query", "required": False,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "An event stream",
                                      "content": {"text/event-stream": {"schema": {
                                          "type": "string"}}}},
                              **_errors(400, 404)},
            },
        },
        "/api/comments/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}},
                           {"name": "X-CSRFToken", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "put": {
                "summary": "Edit one's own comment (same browser, within the edit window)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["comment"],
                    "properties": {"comment": {"type": "string", "maxLength": 65525}}}}}},
                "responses": {"200": {"description": "Edited", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "comment": {"$ref": "#/components/schemas/Comment"}}}}}},
                    **_errors(400, 403, 404)},
            },
            "delete": {
                "summary": "Delete one's own comment (same browser, within the edit window)",
                "responses": {"204": {"description": "Deleted"}, **_errors(400, 403, 404)},
            },
        },
        "/api/session": {
            "get": {
                "summary": "The reader's own state: CSRF token, sign-in, saved details, "
                           "held comments",
                "parameters": [{"name": "post", "in": "query", "required": False,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Session state",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}}}}},
            },
        },
    },
    "components": {"schemas": {"Error": _ERROR, "Comment": _COMMENT, "NewComment": _NEW_COMMENT}},
}
