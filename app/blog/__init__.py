"""The blog itself: the article page at its permalink and at `/` (views.py), the page cache
(cache.py) and the feeds (feeds.py)."""

from app.blog.views import bp  # noqa: F401
