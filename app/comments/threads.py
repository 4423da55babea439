"""Arrange a post's comments as WordPress threads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.models import Comment


@dataclass
class Node:
    comment: Comment
    depth: int
    children: list[Node] = field(default_factory=list)


def build_thread(comments: Sequence[Comment], max_depth: int) -> list[Node]:
    """Nest *comments* (oldest first) under their parents, at most *max_depth* deep.

    A reply whose parent is not shown (held, trashed) stands at the top level, as WordPress
    shows orphans; a reply deeper than the limit joins its nearest allowed ancestor's replies.
    """
    # Where a reply to each comment goes: the comment's own node while it is above the limit,
    # else the node it was placed under. Kept here rather than as a parent link on each node,
    # which made every page's tree a reference cycle left for the garbage collector (300 objects
    # a page) instead of freed when the page was sent.
    home: dict[int, Node] = {}
    roots: list[Node] = []
    for comment in comments:
        parent = home.get(comment.parent_id) if comment.parent_id else None
        if parent is None:
            node = Node(comment, 1)
            roots.append(node)
        else:
            node = Node(comment, parent.depth + 1)
            parent.children.append(node)
        home[comment.id] = node if node.depth < max_depth or parent is None else parent
    return roots
