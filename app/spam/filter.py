"""The filter that learns from this site: naive Bayes over the comments its moderators judged.

What it learns from: every moderator verdict (`learn()`: Spam is spam, Approve and Not Spam are
real), staged in the moderator's own transaction, and — rebuilt by `train()` (`flask spam
train`) — every stored comment in Spam (spam) or approved (real). Pending comments are nobody's
verdict yet, and Trash holds comments removed for any reason (off topic, a duplicate, a
disallowed word, the author's own deletion), so neither teaches it anything; pingbacks and
trackbacks are not what it is asked about.

How it classifies: the features of a comment (`features()`: its words and pairs of words, the
hosts its links point to and how many there are, the author's name, the website's host, the
email's domain, the browser's product, the address's network) are hashed into `BUCKETS` buckets;
multinomial naive Bayes on which buckets a comment has, with the larger class's counts scaled
down to the smaller class's total (so a site with ten times more spam than real comments, as most
have, is not pushed towards Spam: see `Counts.probability`) and without a prior.
P(spam) ≥ `SPAM_AT` is "spam", ≥ `UNSURE_AT` "unsure" (held), anything less "ham". Both thresholds
were chosen by cross-validation (`bench/spam.py`, docs/benchmarks.md): real comments sent to Spam
well under 2 %, even where far more spam than real comments was learned.
Until it has learned `MIN_EXAMPLES` comments of each class, it has no opinion (None).

Where the model lives: in the database (app/spam/models.py), so that every worker and host
shares it. Each worker keeps the counts in two arrays and looks at the model's version at most
every `REFRESH_SECONDS` (one small query, never one per post), reading only the buckets that
changed since; the worker that learned looks again at once. Classifying is two array reads and a
logarithm per feature: tens of microseconds, no query, no network.
"""

from __future__ import annotations

import functools
import hashlib
import html
import ipaddress
import math
import re
import threading
import time
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.dialects import postgresql, sqlite

from app.database import after_commit
from app.extensions import db
from app.models import Comment, CommentStatus
from app.spam.models import SpamExample, SpamFeature, SpamFilterState

BUCKETS = 1 << 20  # hashed features: two arrays of 4 MiB per worker, few collisions
MIN_EXAMPLES = 10  # of each class before it has an opinion (see docs/benchmarks.md)
SPAM_AT = 0.9  # P(spam) from which a comment goes to Spam
UNSURE_AT = 0.2  # … and from which it is held
REFRESH_SECONDS = 2.0  # how often a worker looks at the model's version
ALPHA = 1.0  # Laplace smoothing
MIN_HISTORY = 2 * MIN_EXAMPLES  # stored comments of each class `stats()` needs to cross-validate
HISTORY_LIMIT = 20_000  # the most recent stored comments of each class `stats()` cross-validates on

_STATE = SpamFilterState.__table__
_FEATURES = SpamFeature.__table__
_EXAMPLES = SpamExample.__table__


@dataclass(frozen=True)
class Score:
    probability: float  # P(spam), 0..1
    verdict: str  # "spam" (confident), "unsure" (hold it), "ham" (go on through the usual rules)
    reason: str  # for moderators, e.g. "learned filter: 97% spam"


@dataclass(frozen=True)
class TrainReport:
    ham: int  # comments learned as real
    spam: int  # … as spam
    features: int  # buckets with a count
    forgotten: int  # verdicts learned before on comments no longer stored
    ready: bool  # it has learned enough of both classes to classify


@dataclass(frozen=True)
class Evaluation:
    """Cross-validated figures at the filter's thresholds (fractions, 0..1)."""

    folds: int
    ham: int
    spam: int
    precision: float  # of the comments it sent to Spam, how many were spam
    recall: float  # of the spam, how much it sent to Spam
    caught: float  # of the spam, how much it sent to Spam or held
    false_spam: float  # of the real comments, how many it sent to Spam
    held: float  # of the real comments, how many it held


@dataclass(frozen=True)
class Stats:
    ham: int
    spam: int
    features: int
    version: int
    ready: bool
    history_ham: int  # stored comments it could learn from (approved; Spam)
    history_spam: int
    evaluation: Evaluation | None  # None: too little history to cross-validate


# --- features ----------------------------------------------------------------------------------

_SCHEMED = re.compile(r"(?:https?://|www\.)[^\s<>\"'()\[\]]+", re.IGNORECASE)
# A bare domain ("cheap-pills.example.ru") is found from its top-level domain: a pattern that
# begins with a literal dot is scanned for quickly, where one that begins with the host's
# letters is tried at every position of the text (a third of the cost of classifying).
_TLD = re.compile(r"\.(?:com|net|org|info|biz|ru|io|co|me|ly|us|uk|de|xyz|top|online|site|club)\b",
                  re.IGNORECASE)
_HOST_TAIL = re.compile(r"[a-z0-9-][a-z0-9.-]*$", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")
_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def _host(link: str) -> str:
    host = _SCHEME.sub("", link.strip().lower()).split("/", 1)[0].split("?", 1)[0]
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].strip(".,;:!?")
    return host[4:] if host.startswith("www.") else host


def _links(text: str) -> list[str]:
    """The links in a comment's text: with a scheme or www., or a bare domain."""
    links = _SCHEMED.findall(text)
    rest = _SCHEMED.sub(" ", text) if links else text
    for found in _TLD.finditer(rest):
        head = _HOST_TAIL.search(rest, max(0, found.start() - 100), found.start())
        if head:
            links.append(head.group() + found.group())
    return links


def _domain(host: str) -> str:
    return ".".join(host.split(".")[-2:])


@functools.lru_cache(maxsize=4096)
def _network(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return "none"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def features(*, content: str, author: str, email: str, url: str, ip: str,
             user_agent: str) -> list[int]:
    """The buckets of a comment's features, each once, sorted."""
    text = html.unescape(content) if "&" in content else content
    names: set[str] = set()
    links = _links(text)
    for link in links:
        host = _host(link)
        names.add("link:" + host)
        names.add("link-domain:" + _domain(host))
    names.add(f"links:{min(len(links), 3)}")
    plain = _TAG.sub(" ", text)
    words = [w for w in _WORD.findall(plain.lower()) if len(w) <= 30]
    names.update(words)
    names.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    names.add(f"words:{min(len(words) // 10, 5)}")
    if len(words) >= 3 and plain.isupper():  # not one letter in lower case
        names.add("shouting")
    names.update("author:" + w for w in _WORD.findall(author.lower()))
    site = _host(url) if url.strip() else ""
    names.add("site:" + (site or "none"))
    if site:
        names.add("site-domain:" + _domain(site))
    domain = email.rpartition("@")[2].strip().lower() if "@" in email else ""
    names.add("mail:" + (domain or "none"))
    agent = user_agent.strip().lower()
    names.add("agent:" + (agent.split("/", 1)[0].split(" ", 1)[0] if agent else "none"))
    if agent:
        names.add("agent-full:" + agent)
    names.add("network:" + _network(ip))
    return sorted({zlib.crc32(n.encode("utf-8", "surrogatepass")) & (BUCKETS - 1) for n in names})


def digest(*, content: str, author: str, email: str, url: str, ip: str, user_agent: str) -> str:
    """What identifies a learned comment: a digest of the fields its features come from."""
    fields = "\x1f".join((content, author, email, url, ip, user_agent))
    return hashlib.blake2b(fields.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# --- the model ---------------------------------------------------------------------------------

class Counts:
    """Per-class counts of each bucket, and of comments: everything naive Bayes needs. The
    workers' model is one; so is each fold of a cross-validation."""

    def __init__(self, buckets: int = BUCKETS) -> None:
        self.ham = array("i", bytes(4 * buckets))
        self.spam = array("i", bytes(4 * buckets))
        self.ham_docs = self.spam_docs = 0
        self.ham_total = self.spam_total = 0  # sums of the counts

    def add(self, buckets: Sequence[int], spam: bool, times: int = 1) -> None:
        counts = self.spam if spam else self.ham
        for bucket in buckets:
            counts[bucket] += times
        if spam:
            self.spam_docs += times
            self.spam_total += times * len(buckets)
        else:
            self.ham_docs += times
            self.ham_total += times * len(buckets)

    @property
    def ready(self) -> bool:
        return self.ham_docs >= MIN_EXAMPLES and self.spam_docs >= MIN_EXAMPLES

    def probability(self, buckets: Iterable[int]) -> float:
        """P(spam) by multinomial naive Bayes with equal priors. The larger class's counts are
        scaled down to the smaller class's total before smoothing, so the class with more
        comments learned does not win every word it has seen and the other has not. On the public
        corpus with five spam to one real comment, cross-validated: raw counts sent every real
        comment to Spam, counts scaled to the mean of the two totals 1.5 %, to the smaller
        total none (and at ten to one, 7 % and none); see docs/benchmarks.md. Buckets neither
        class has seen say nothing."""
        ham, spam = self.ham, self.spam
        smaller = max(min(self.ham_total, self.spam_total), 1)
        ham_scale = smaller / max(self.ham_total, 1)
        spam_scale = smaller / max(self.spam_total, 1)
        log, odds = math.log, 0.0
        for bucket in buckets:
            h, s = ham[bucket], spam[bucket]
            if h or s:
                odds += log((s * spam_scale + ALPHA) / (h * ham_scale + ALPHA))
        if odds >= 0:
            return 1.0 / (1.0 + math.exp(-min(odds, 700.0)))
        e = math.exp(max(odds, -700.0))
        return e / (1.0 + e)


def score(probability: float) -> Score:
    """The verdict and the moderators' reason for a probability."""
    verdict = "spam" if probability >= SPAM_AT else "unsure" if probability >= UNSURE_AT else "ham"
    return Score(probability, verdict, f"learned filter: {int(probability * 100)}% spam")


class _Model:
    """One worker's copy of the model of one app's database."""

    def __init__(self) -> None:
        self.counts = Counts(0)  # nothing learned: replaced, never changed, by the first load
        self.version = -1  # never loaded
        self.checked = -math.inf
        self.lock = threading.Lock()

    def mark_stale(self) -> None:
        self.checked = -math.inf

    def refresh(self) -> None:
        """Look at the model's version if it is time to, and read what changed since."""
        if time.monotonic() - self.checked < REFRESH_SECONDS:
            return
        if not self.lock.acquire(blocking=False):
            return  # another thread is reading it: classify with what is here meanwhile
        try:
            # A connection of its own: only committed changes, never the caller's staged ones.
            with db.engine.connect() as conn:
                self.checked = time.monotonic()
                state = conn.execute(sa.select(_STATE).where(_STATE.c.id == 1)).first()
                if state is None:  # nothing learned (or the tables emptied under it)
                    self.counts, self.version = Counts(0), -1
                    return
                if state.version == self.version:
                    return
                # Read it all after a rebuild, or when the version went back (a restored backup).
                if state.rebuilt > self.version or state.version < self.version or self.version < 0:
                    counts, since = Counts(), None
                else:
                    counts, since = self.counts, self.version
                query = sa.select(_FEATURES.c.bucket, _FEATURES.c.ham, _FEATURES.c.spam)
                if since is not None:
                    query = query.where(_FEATURES.c.version > since)
                ham, spam = counts.ham, counts.spam
                for bucket, h, s in conn.execute(query):
                    # never below nothing, whatever happened to the rows (classify takes a log)
                    ham[bucket], spam[bucket] = max(h, 0), max(s, 0)
                counts.ham_docs, counts.spam_docs = state.ham, state.spam
                counts.ham_total, counts.spam_total = state.ham_features, state.spam_features
                self.counts, self.version = counts, state.version
        finally:
            self.lock.release()


_MODELS_KEY = "parley.spam_filter"


def _model(app: Flask | None = None) -> _Model:
    extensions = (app or current_app).extensions
    model = extensions.get(_MODELS_KEY)
    if model is None:
        model = extensions.setdefault(_MODELS_KEY, _Model())
    return model


# --- the API the screen and the moderator actions use ------------------------------------------

def classify(*, content: str, author: str, email: str, url: str, ip: str,
             user_agent: str) -> Score | None:
    """The filter's verdict on a new comment, or None while it has not learned enough of both
    classes."""
    model = _model()
    model.refresh()
    counts = model.counts
    if not counts.ready:
        return None
    return score(counts.probability(features(content=content, author=author, email=email, url=url,
                                             ip=ip, user_agent=user_agent)))


def learn(*, content: str, author: str, email: str, url: str, ip: str, user_agent: str,
          spam: bool) -> None:
    """Learn one moderator verdict, staged in the caller's transaction (the caller commits).

    A verdict it already holds changes nothing; the opposite verdict on a comment it learned
    moves the comment to the other class.
    """
    fields = {"content": content, "author": author, "email": email, "url": url, "ip": ip,
              "user_agent": user_agent}
    key = digest(**fields)
    known = _known(key)
    if known is spam:
        return
    version = _lock()
    known = _known(key)  # again, under the lock: another moderator may just have judged it
    if known is spam:
        return
    buckets = features(**fields)
    ham_delta = (-1 if known is False else 0) + (0 if spam else 1)
    spam_delta = (-1 if known is True else 0) + (1 if spam else 0)
    insert = _insert(_FEATURES)
    rows = [{"bucket": b, "ham": ham_delta, "spam": spam_delta, "version": version} for b in buckets]
    statement = insert.values(rows)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[_FEATURES.c.bucket],
        set_={"ham": _FEATURES.c.ham + statement.excluded.ham,
              "spam": _FEATURES.c.spam + statement.excluded.spam,
              "version": statement.excluded.version}))
    db.session.execute(_STATE.update().where(_STATE.c.id == 1).values(
        ham=_STATE.c.ham + ham_delta, spam=_STATE.c.spam + spam_delta,
        ham_features=_STATE.c.ham_features + ham_delta * len(buckets),
        spam_features=_STATE.c.spam_features + spam_delta * len(buckets)))
    example = _insert(_EXAMPLES).values(digest=key, spam=spam)
    db.session.execute(example.on_conflict_do_update(index_elements=[_EXAMPLES.c.digest],
                                                     set_={"spam": spam}))
    after_commit(_model().mark_stale, key=_MODELS_KEY)


def _known(key: str) -> bool | None:
    return db.session.execute(sa.select(_EXAMPLES.c.spam).where(_EXAMPLES.c.digest == key)).scalar()


def _insert(table: sa.Table):
    """INSERT … ON CONFLICT for the database in use (Parley runs on SQLite and PostgreSQL)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_BUMP = (_STATE.update().where(_STATE.c.id == 1).values(version=_STATE.c.version + 1)
         .returning(_STATE.c.version))


def _lock() -> int:
    """Take the model's row for this transaction and move its version on: every change to the
    model goes one after another, in the order versions are given."""
    version = db.session.execute(_BUMP).scalar()
    if version is None:  # a new database: the row is made by the first change
        db.session.execute(_insert(_STATE).values(
            id=1, version=0, rebuilt=0, ham=0, spam=0, ham_features=0, spam_features=0)
            .on_conflict_do_nothing())
        version = db.session.execute(_BUMP).scalar()
    return version


# --- rebuilding and measuring from the stored comments -----------------------------------------

def _history(limit: int | None = None) -> dict[str, tuple[bool, array]]:
    """The stored comments it learns from, by digest, oldest first: approved (real) and Spam,
    pings left out; a comment stored twice (the same fields) counts once, as its latest copy
    says. With *limit*, only the most recent *limit* of each class. Each comment's buckets are
    kept as an array of 4-byte ints (a list of Python ints took ten times the memory)."""
    columns = (Comment.content, Comment.author_name, Comment.author_email, Comment.author_url,
               Comment.ip, Comment.user_agent)
    examples: dict[str, tuple[int, bool, array]] = {}
    for status in (CommentStatus.APPROVED, CommentStatus.SPAM):
        query = (sa.select(Comment.id, *columns)
                 .where(Comment.status == status, Comment.comment_type.is_(None))
                 .order_by(Comment.id.desc()))
        if limit is not None:
            query = query.limit(limit)
        for row in db.session.execute(query).yield_per(1000):
            fields = {"content": row.content, "author": row.author_name,
                      "email": row.author_email, "url": row.author_url, "ip": row.ip,
                      "user_agent": row.user_agent}
            key = digest(**fields)
            if key not in examples or examples[key][0] < row.id:
                examples[key] = (row.id, status is CommentStatus.SPAM,
                                 array("i", features(**fields)))
    ordered = sorted(examples.items(), key=lambda item: item[1][0])
    return {key: (spam, buckets) for key, (_, spam, buckets) in ordered}


def train() -> TrainReport:
    """Rebuild the model from the stored comments, in the caller's transaction (`flask spam
    train` commits it). Running it twice gives the same model."""
    history = _history()
    counts = Counts()
    for spam, buckets in history.values():
        counts.add(buckets, spam)
    learned = set(db.session.execute(sa.select(_EXAMPLES.c.digest)).scalars())
    forgotten = len(learned - history.keys())
    version = _lock()
    db.session.execute(_FEATURES.delete())
    db.session.execute(_EXAMPLES.delete())
    rows = [{"bucket": b, "ham": h, "spam": s, "version": version}
            for b, (h, s) in enumerate(zip(counts.ham, counts.spam, strict=True)) if h or s]
    for start in range(0, len(rows), 5000):
        db.session.execute(_FEATURES.insert(), rows[start:start + 5000])
    examples = [{"digest": key, "spam": spam} for key, (spam, _) in history.items()]
    for start in range(0, len(examples), 5000):
        db.session.execute(_EXAMPLES.insert(), examples[start:start + 5000])
    db.session.execute(_STATE.update().where(_STATE.c.id == 1).values(
        rebuilt=version, ham=counts.ham_docs, spam=counts.spam_docs,
        ham_features=counts.ham_total, spam_features=counts.spam_total))
    after_commit(_model().mark_stale, key=_MODELS_KEY)
    return TrainReport(ham=counts.ham_docs, spam=counts.spam_docs, features=len(rows),
                       forgotten=forgotten, ready=counts.ready)


def cross_validate(examples: Sequence[tuple[bool, Sequence[int]]], folds: int = 10) -> list[float]:
    """P(spam) of each example from a model that learned every other fold (stratified; the
    examples are dealt out in the order given, so shuffle them first if they are sorted)."""
    fold_of: list[int] = []
    dealt = [0, 0]
    for spam, _ in examples:
        fold_of.append(dealt[spam] % folds)
        dealt[spam] += 1
    everything = Counts()
    for spam, buckets in examples:
        everything.add(buckets, spam)
    scores = [0.0] * len(examples)
    for fold in range(folds):
        held_out = [i for i, f in enumerate(fold_of) if f == fold]
        for i in held_out:
            everything.add(examples[i][1], examples[i][0], -1)
        for i in held_out:
            scores[i] = everything.probability(examples[i][1])
        for i in held_out:
            everything.add(examples[i][1], examples[i][0], 1)
    return scores


def evaluate(labels: Sequence[bool], scores: Sequence[float], folds: int,
             spam_at: float = SPAM_AT, unsure_at: float = UNSURE_AT) -> Evaluation:
    """Precision and recall of the "spam" verdict, and what is held, at these thresholds."""
    spam = sum(labels)
    ham = len(labels) - spam
    sent = [(s >= spam_at, s >= unsure_at, label) for s, label in zip(scores, labels, strict=True)]
    true_spam = sum(1 for to_spam, _, label in sent if to_spam and label)
    false_spam = sum(1 for to_spam, _, label in sent if to_spam and not label)
    caught = sum(1 for _, held, label in sent if held and label)
    held_ham = sum(1 for to_spam, held, label in sent if held and not to_spam and not label)
    return Evaluation(
        folds=folds, ham=ham, spam=spam,
        precision=true_spam / (true_spam + false_spam) if true_spam + false_spam else 1.0,
        recall=true_spam / spam if spam else 0.0, caught=caught / spam if spam else 0.0,
        false_spam=false_spam / ham if ham else 0.0, held=held_ham / ham if ham else 0.0)


def stats() -> Stats:
    """What the filter has learned, and how well it does on this site's own history."""
    state = db.session.execute(sa.select(_STATE).where(_STATE.c.id == 1)).first()
    buckets = db.session.execute(sa.select(sa.func.count()).select_from(_FEATURES).where(
        sa.or_(_FEATURES.c.ham > 0, _FEATURES.c.spam > 0))).scalar() or 0
    ham, spam = (state.ham, state.spam) if state is not None else (0, 0)
    history = _history(HISTORY_LIMIT)
    # Dealt out by digest: a stable order that is not the order they came in.
    examples = [history[key] for key in sorted(history)]
    history_spam = sum(1 for spam_, _ in examples if spam_)
    history_ham = len(examples) - history_spam
    evaluation = None
    if min(history_ham, history_spam) >= MIN_HISTORY:
        folds = 10 if min(history_ham, history_spam) >= 10 * MIN_EXAMPLES else 5
        scores = cross_validate(examples, folds)
        evaluation = evaluate([spam_ for spam_, _ in examples], scores, folds)
    return Stats(ham=ham, spam=spam, features=buckets, version=state.version if state else 0,
                 ready=ham >= MIN_EXAMPLES and spam >= MIN_EXAMPLES, history_ham=history_ham,
                 history_spam=history_spam, evaluation=evaluation)


# --- flask spam train|stats --------------------------------------------------------------------

spam_cli = AppGroup("spam", help="The learned spam filter: rebuild it, see what it has learned.")


def _needs(ham: int, spam: int) -> str:
    missing = [f"{MIN_EXAMPLES - n} more {what}" for n, what in
               ((ham, "approved"), (spam, "spam")) if n < MIN_EXAMPLES]
    return (f"It has no opinion until it has learned {MIN_EXAMPLES} comments of each class: "
            f"{' and '.join(missing)}.")


@spam_cli.command("train")
def train_command() -> None:
    """Rebuild the filter from the stored comments: Spam against approved."""
    report = train()
    db.session.commit()
    click.echo(f"Learned {report.ham:,} approved and {report.spam:,} spam comments "
               f"({report.features:,} features).")
    if report.forgotten:
        click.echo(f"Forgot {report.forgotten:,} verdicts on comments no longer stored "
                   "(deleted, or emptied from Spam).")
    click.echo("It classifies new comments." if report.ready else _needs(report.ham, report.spam))


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %"


@spam_cli.command("stats")
def stats_command() -> None:
    """Show what the filter has learned and its cross-validated precision and recall."""
    found = stats()
    click.echo(f"Learned: {found.ham:,} approved and {found.spam:,} spam comments, "
               f"{found.features:,} features (version {found.version}).")
    click.echo("It classifies new comments: P(spam) ≥ "
               f"{SPAM_AT:g} goes to Spam, ≥ {UNSURE_AT:g} is held." if found.ready
               else _needs(found.ham, found.spam))
    history = (f"{found.history_ham:,} approved and {found.history_spam:,} spam comments stored")
    result = found.evaluation
    if result is None:
        click.echo(f"Too little history to cross-validate: {history}; it needs at least "
                   f"{MIN_HISTORY} of each.")
        return
    click.echo(f"Cross-validated on this site's history ({result.folds}-fold, {history}):")
    click.echo(f"  sent to Spam: precision {_percent(result.precision)}, "
               f"recall {_percent(result.recall)}")
    click.echo(f"  spam sent to Spam or held: {_percent(result.caught)}")
    click.echo(f"  real comments sent to Spam: {_percent(result.false_spam)}; "
               f"held: {_percent(result.held)}")


def register(app: Flask) -> None:
    """Add `flask spam train|stats`."""
    app.cli.add_command(spam_cli)
