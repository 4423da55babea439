"""Jinja filters and globals: dates in the blog's timezone, WordPress's wording, addresses."""

from __future__ import annotations

from flask import Flask

from app.auth.providers import PROVIDERS
from app.settings import get_setting
from app.urls import comment_page_url, post_url
from app.words import comments_heading, format_comment_date, format_post_date, likes_text, local_time


def register(app: Flask) -> None:
    app.add_template_filter(format_post_date, "post_date")
    app.add_template_filter(format_comment_date, "comment_date")
    app.add_template_filter(comments_heading, "comments_heading")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(likes_text, "likes_text")

    @app.context_processor
    def blog_globals() -> dict:
        return {
            "blog_title": app.config["BLOG_TITLE"],
            "blog_tagline": app.config["BLOG_TAGLINE"],
            "sign_in_providers": PROVIDERS,
            "post_url": post_url,
            "comment_page_url": comment_page_url,
            "get_setting": get_setting,
        }
