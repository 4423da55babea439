"""Akismet, as WordPress.com uses it (https://akismet.com/developers/).

When AKISMET_KEY is set, every new comment and every author's edit goes to `comment-check` with
every field Akismet documents (app/moderation/screen.py calls `check()`), and a moderator's
Spam / Not spam goes back as `submit-spam` / `submit-ham` once the change is committed
(app/moderation/actions.py calls `report()`), on a thread of its own, never in the moderator's
request. `verify_key()` is `flask akismet verify`.

Each call is a form-encoded POST to `{AKISMET_API_URL}{verb}`, made here with `requests` rather
than through the `akismet` package (25.10.1, its current release): that client builds every
address from a private module constant (`akismet._common._API_URL`, always
`https://rest.akismet.com`) and takes no setting or argument to change it, so it cannot be
pointed at another server that speaks the API (a proxy, the tests' server) except by patching
that private constant for the whole process or rewriting its URLs in a custom httpx transport.
It would also bring httpx, and a pytest plugin, for four form posts.

A check keeps the poster waiting AKISMET_TIMEOUT at most, whatever the server does: the request
runs on a small pool and the caller stops waiting at the deadline. No answer, a late one, or one
that is not a verdict (an "invalid" key, a 5xx, anything but "true"/"false") raises `Unavailable`,
and the screen holds the comment for a moderator.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as NoAnswerYet
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from flask import Flask, current_app, has_request_context
from requests.structures import CaseInsensitiveDict

from app.database import after_commit
from app.models import Comment, Post, utcnow
from app.urls import post_url, site_url

log = logging.getLogger(__name__)

HAM, SPAM, DISCARD = "ham", "spam", "discard"
THANKS = "Thanks for making the web a better place."  # what submit-spam and submit-ham answer
# Akismet asks for "Application/version | Plugin/version".
USER_AGENT = "Parley/0.1 | Parley-Akismet/1.0"
CHECK_THREADS = 4  # checks in flight per process; more wait their turn, within the same deadline
_EXTENSION = "parley.akismet"
_lock = threading.Lock()


class Unavailable(Exception):
    """Akismet gave no verdict: down, slower than AKISMET_TIMEOUT, or an answer that is none."""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    headers: CaseInsensitiveDict


class Client:
    """One app's way to Akismet: kept-alive connections, a small pool for checks (so that the
    caller can stop waiting at the deadline) and one thread for reports (never in a request)."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.checks = ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="parley-akismet")
        self.reports = ThreadPoolExecutor(1, thread_name_prefix="parley-akismet-report")
        self._pending: set[Future] = set()
        self._pending_lock = threading.Lock()

    def ask(self, url: str, data: dict[str, str], timeout: float) -> Answer:
        """POST *data* to *url* and return the answer, or raise Unavailable after *timeout*."""
        future = self.checks.submit(_post, self.session, url, data, timeout)
        try:
            return future.result(timeout=timeout)
        except NoAnswerYet:
            future.cancel()  # still queued behind slower checks: it need not run at all
            raise Unavailable(f"no answer within {timeout:g} s") from None
        except requests.RequestException as exc:
            raise Unavailable(f"could not reach it ({type(exc).__name__})") from None

    def report(self, url: str, data: dict[str, str], timeout: float) -> None:
        """Send a report on the report thread; the caller does not wait."""
        future = self.reports.submit(_send_report, self.session, url, data, timeout)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every report sent so far is done (for tests and orderly shutdowns)."""
        with self._pending_lock:
            pending = set(self._pending)
        return not wait(pending, timeout).not_done


def get_client(app: Flask | None = None) -> Client:
    app = app or current_app._get_current_object()
    client = app.extensions.get(_EXTENSION)
    if client is None:
        with _lock:
            client = app.extensions.setdefault(_EXTENSION, Client())
    return client


def enabled() -> bool:
    """Is Akismet on (AKISMET_KEY set)?"""
    return bool(current_app.config["AKISMET_KEY"])


def check(post: Post, *, content: str, author: str, email: str, url: str, ip: str,
          user_agent: str, referrer: str = "", reply: bool = False,
          created_at: datetime | None = None, admin: bool = False) -> str:
    """Akismet's verdict on a comment: HAM, SPAM or DISCARD (blatant spam), or Unavailable.

    *created_at* is given for an author's edit of an existing comment (Akismet is told it is a
    recheck after an edit); a new comment is dated now.
    """
    data = fields(post, content=content, author=author, email=email, url=url, ip=ip,
                  user_agent=user_agent, referrer=referrer, reply=reply,
                  created_at=created_at, admin=admin)
    if created_at is not None:
        data["recheck_reason"] = "edit"
    try:
        answer = _ask("comment-check", data)
        if answer.status == 200 and answer.text == "true":
            discard = answer.headers.get("X-akismet-pro-tip", "").strip().lower() == "discard"
            return DISCARD if discard else SPAM
        if answer.status == 200 and answer.text == "false":
            return HAM
        raise Unavailable(_describe(answer))
    except Unavailable as exc:
        log.warning("Akismet comment-check gave no verdict (the comment is held): %s", exc)
        raise


def report(comment: Comment, *, spam: bool) -> None:
    """Tell Akismet a moderator's verdict on *comment* (submit-spam or submit-ham) once the
    caller's transaction commits, on the report thread; a rollback sends nothing."""
    if not enabled():
        return
    config = current_app.config
    data = fields(comment.post, content=comment.content, author=comment.author_name,
                  email=comment.author_email, url=comment.author_url, ip=comment.ip,
                  user_agent=comment.user_agent, reply=comment.parent_id is not None,
                  created_at=comment.created_at,
                  admin=comment.user is not None and comment.user.is_admin)
    url = config["AKISMET_API_URL"] + ("submit-spam" if spam else "submit-ham")
    data = {"api_key": config["AKISMET_KEY"], **data}
    client, timeout = get_client(), config["AKISMET_TIMEOUT"]
    after_commit(lambda: client.report(url, data, timeout))


def verify_key() -> bool:
    """Does Akismet accept AKISMET_KEY for this site? (Unavailable when it does not say.)"""
    answer = _ask("verify-key", {"blog": _blog()})
    if answer.status == 200 and answer.text in ("valid", "invalid"):
        return answer.text == "valid"
    raise Unavailable(_describe(answer))


def fields(post: Post, *, content: str, author: str, email: str, url: str, ip: str,
           user_agent: str, referrer: str = "", reply: bool = False,
           created_at: datetime | None = None, admin: bool = False) -> dict[str, str]:
    """Everything Akismet's comment-check documents about a comment, as WordPress sends it.

    `user_role` is sent for an admin's comment only: the screen never asks about an admin's
    comment (admins are trusted), so that happens when a moderator reports one.
    """
    data = {
        "blog": _blog(),
        "user_ip": ip,
        "user_agent": user_agent,
        "referrer": referrer,
        "permalink": _permalink(post),
        "comment_type": "reply" if reply else "comment",
        "comment_author": author,
        "comment_author_email": email,
        "comment_author_url": url,
        "comment_content": content,
        "comment_date_gmt": _gmt(created_at or utcnow()),
        "comment_post_modified_gmt": _gmt(post.published_at),
        "blog_lang": "en",
        "blog_charset": "UTF-8",
    }
    if admin:
        data["user_role"] = "administrator"
    return data


def _ask(verb: str, data: dict[str, str]) -> Answer:
    config = current_app.config
    return get_client().ask(config["AKISMET_API_URL"] + verb,
                            {"api_key": config["AKISMET_KEY"], **data}, config["AKISMET_TIMEOUT"])


def _post(session: requests.Session, url: str, data: dict[str, str], timeout: float) -> Answer:
    response = session.post(url, data=data, timeout=timeout)
    for name in ("X-akismet-alert-code", "X-akismet-alert-msg"):
        if name in response.headers:  # Akismet's word to the site owner (a usage limit, say)
            log.warning("Akismet says (%s): %s", name, response.headers[name])
    return Answer(response.status_code, response.text.strip(), response.headers)


def _send_report(session: requests.Session, url: str, data: dict[str, str],
                 timeout: float) -> None:
    verb = url.rstrip("/").rsplit("/", 1)[-1]
    try:
        answer = _post(session, url, data, timeout)
    except requests.RequestException as exc:
        log.warning("Akismet %s not sent: %s", verb, exc)
        return
    if answer.status != 200 or answer.text != THANKS:
        log.warning("Akismet %s not taken: %s", verb, _describe(answer))


def _describe(answer: Answer) -> str:
    """An answer that is not a verdict, in words for the log."""
    said = "the key (or blog address) is invalid" if answer.text == "invalid" \
        else f"HTTP {answer.status}, {answer.text[:200]!r}"
    help_text = answer.headers.get("X-akismet-debug-help")
    return f"{said} ({help_text})" if help_text else said


def _blog() -> str:
    """The site Akismet knows the key by: SITE_URL, else the address the reader used."""
    return current_app.config["SITE_URL"] or site_url()


def _permalink(post: Post) -> str:
    """The post's address on that same site."""
    if has_request_context() and not current_app.config["SITE_URL"]:
        return post_url(post, _external=True)
    with current_app.test_request_context(base_url=_blog()):
        return post_url(post, _external=True)


def _gmt(moment: datetime) -> str:
    """ISO 8601 in UTC, as Akismet documents its dates."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")

