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
    nodes: dict[int, Node] = {}
    # Where each comment was placed, kept here rather than on the node: a node pointing back at
    # its parent made every page's tree a reference cycle, left for the garbage collector
    # (300 objects a page) instead of freed when the page was sent.
    placed_under: dict[int, Node | None] = {}
    roots: list[Node] = []
    for comment in comments:
        parent = nodes.get(comment.parent_id) if comment.parent_id else None
        if parent is None:
            node = Node(comment, 1)
            roots.append(node)
        else:
            while parent.depth >= max_depth and placed_under[parent.comment.id] is not None:
                parent = placed_under[parent.comment.id]
            node = Node(comment, parent.depth + 1)
            parent.children.append(node)
        nodes[comment.id] = node
        placed_under[comment.id] = parent
    return roots
