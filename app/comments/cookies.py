"""The commenter's own cookies: remembered details, and the comments this browser wrote.

The second is how a guest sees their own held comment and edits or deletes their comment for a
while: a signed list of ids, never trust in what the client says.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from app.signing import BadLink, Purpose, sign, unsign

COMMENTER_COOKIE = "parley_commenter"
MINE_COOKIE = "parley_mine"
ONE_YEAR = 365 * 24 * 3600
MINE_MAX_AGE = 30 * 24 * 3600
MINE_MAX = 20


COMMENTER = Purpose("commenter", ONE_YEAR)
MINE = Purpose("mine", MINE_MAX_AGE)


def _load(name: str, purpose: Purpose) -> Any:
    raw = request.cookies.get(name)
    if not raw:
        return None
    try:
        return unsign(purpose, raw)
    except BadLink:
        return None


def _set(response: Response, name: str, value: Any, purpose: Purpose) -> None:
    response.set_cookie(
        name, sign(purpose, value), max_age=purpose.max_age, httponly=True, samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )


def remembered_commenter() -> dict[str, str] | None:
    data = _load(COMMENTER_COOKIE, COMMENTER)
    return data if isinstance(data, dict) else None


def remember_commenter(response: Response, author: str, email: str, url: str,
                       consent: bool) -> None:
    """WordPress's "Save my name, email, and website": a one-year cookie only when ticked."""
    if consent:
        _set(response, COMMENTER_COOKIE, {"author": author, "email": email, "url": url},
             COMMENTER)
    elif COMMENTER_COOKIE in request.cookies:
        response.delete_cookie(COMMENTER_COOKIE, httponly=True, samesite="Lax")


def my_comments() -> dict[int, int]:
    """The comments this browser wrote (the latest MINE_MAX of them): id → stamp (when each was
    made, `Comment.stamp`). A comment is this browser's only if both match: an id alone can be
    given again to someone else's comment after the first was deleted."""
    data = _load(MINE_COOKIE, MINE)
    if not isinstance(data, list):
        return {}
    return {pair[0]: pair[1] for pair in data if isinstance(pair, list) and len(pair) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in pair)}


def remember_mine(response: Response, comment_id: int, stamp: int) -> None:
    kept = [[i, s] for i, s in my_comments().items() if i != comment_id][-(MINE_MAX - 1):]
    _set(response, MINE_COOKIE, [*kept, [comment_id, stamp]], MINE)
