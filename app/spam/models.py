"""Where the learned filter keeps what it has learned: in the database, so that every worker and
host classifies with the same model, and a verdict is learned in the moderator's own transaction.

Three tables. `spam_filter` is one row: the model's version (moved by every change, so a worker
reloads only when it changed), the version of the last rebuild, and how many comments and
features of each class it has learned. `spam_features` holds the per-class counts of each hashed
feature (a bucket of `filter.BUCKETS`), with the version that last changed it. `spam_examples`
says which comments it has learned and as what (by a digest of what was judged, never the text),
so a verdict given twice counts once and a changed mind (Spam, then Not Spam) moves the comment.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db


class SpamFilterState(db.Model):
    """The model's one row (id 1): versions and totals. Every change locks it first, so changes
    are applied one after another and versions follow the order of the commits."""

    __tablename__ = "spam_filter"

    id: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    version: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)
    rebuilt: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)  # version of the last train()
    ham: so.Mapped[int] = so.mapped_column(default=0)  # comments learned as real
    spam: so.Mapped[int] = so.mapped_column(default=0)  # comments learned as spam
    ham_features: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)  # sum of the counts
    spam_features: so.Mapped[int] = so.mapped_column(sa.BigInteger, default=0)


class SpamFeature(db.Model):
    """How many real and spam comments had a feature of this bucket."""

    __tablename__ = "spam_features"

    bucket: so.Mapped[int] = so.mapped_column(primary_key=True, autoincrement=False)
    ham: so.Mapped[int] = so.mapped_column(default=0)
    spam: so.Mapped[int] = so.mapped_column(default=0)
    version: so.Mapped[int] = so.mapped_column(sa.BigInteger, index=True)  # a worker reads what moved


class SpamExample(db.Model):
    """A comment the filter learned, by the digest of its fields, and as what."""

    __tablename__ = "spam_examples"

    digest: so.Mapped[str] = so.mapped_column(sa.String(32), primary_key=True)
    spam: so.Mapped[bool]
