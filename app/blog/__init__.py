"""The blog itself: the article page at its permalink and at `/`."""

from flask import Blueprint

bp = Blueprint("blog", __name__)

from app.blog import views  # noqa: E402,F401
