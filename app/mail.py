"""Outgoing mail: through SMTP when `MAIL_SERVER` is set, into the log otherwise.

Nothing here runs in a request: `send_mail()` and `submit()` put work on a queue that one
background thread per process works through, so a slow or absent mail server never delays a
reader. (The queue lives in memory: mail not yet sent when the process stops is lost, and logged
as sent nowhere — acceptable for notifications.)
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from flask import Flask, current_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    """One message: plain text always, HTML as an alternative when given."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # e.g. List-Unsubscribe

    def to_message(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        domain = sender.rsplit("@", 1)[-1].strip(">") or None
        message["Message-ID"] = make_msgid(domain=domain)
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        for name, value in self.headers:
            message[name] = value
        message.set_content(self.text)
        if self.html is not None:
            message.add_alternative(self.html, subtype="html")
        return message


class Mailer:
    """A queue and one worker thread per application, started on first use."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Run *job* on the mail thread, inside an application context."""
        self._ensure_running()
        self._jobs.put(job)

    def send(self, mail: Mail) -> None:
        self.submit(lambda: self.deliver(mail))

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job is done (for tests and orderly shutdowns)."""
        deadline = time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._jobs.all_tasks_done.wait(remaining)
        return True

    def deliver(self, mail: Mail) -> None:
        """Send *mail* now, on this thread."""
        config = self.app.config
        message = mail.to_message(config["MAIL_FROM"])
        server = config["MAIL_SERVER"]
        if not server:
            log.info("mail (no MAIL_SERVER; logged, not sent) to %s: %s\n%s",
                     message["To"], mail.subject, mail.text)
            return
        # SMTP over SSL from the first byte, or a plain connection upgraded with STARTTLS
        # (config.py refuses both at once).
        smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
        with smtp_class(server, config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"]) as smtp:
            if config["MAIL_USE_TLS"] and not config["MAIL_USE_SSL"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(message)
        log.info("mail sent to %s: %s", message["To"], mail.subject)

    def _ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="parley-mail", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                with self.app.app_context():
                    job()
            except Exception:
                log.exception("mail: a job failed; its mail was not sent")
            finally:
                self._jobs.task_done()


def get_mailer(app: Flask | None = None) -> Mailer:
    app = app or current_app._get_current_object()
    mailer = app.extensions.get("parley.mailer")
    if mailer is None:
        mailer = app.extensions.setdefault("parley.mailer", Mailer(app))
    return mailer


def send_mail(to: str | list[str] | tuple[str, ...], subject: str, text: str,
              html: str | None = None, reply_to: str | None = None,
              headers: dict[str, str] | None = None) -> None:
    """Queue a message; it is sent (or logged) on the mail thread, never in the request."""
    recipients = (to,) if isinstance(to, str) else tuple(to)
    if recipients:
        get_mailer().send(Mail(recipients, subject, text, html, reply_to,
                               tuple((headers or {}).items())))
