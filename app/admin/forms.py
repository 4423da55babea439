"""The admin's forms: every POST carries a CSRF token, even a lone button (EmptyForm)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from app.comments.content import http_url
from app.models import CommentStatus
from app.moderation.actions import Action
from app.moderation.models import BanKind


class EmptyForm(FlaskForm):
    """A POST button: nothing but the CSRF token (and where to go back to)."""

    next = HiddenField()


class LoginForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


def http_address(form: FlaskForm, field: StringField) -> None:
    """The one URL check every door uses: only an http(s) address is stored."""
    if field.data and not http_url(field.data):
        raise ValidationError("The website must be an http:// or https:// address.")


class CommentEditForm(FlaskForm):
    """Quick Edit (name, email, website, text) and Edit (the same and the status)."""

    author = StringField("Name", validators=[DataRequired(), Length(max=245)])
    email = EmailField("Email", validators=[Optional(), Email(), Length(max=100)])
    url = StringField("Website", validators=[Optional(), URL(require_tld=False), http_address,
                                             Length(max=200)])
    content = TextAreaField("Comment", validators=[DataRequired(), Length(max=65525)])
    status = SelectField("Status", choices=[SelectChoice("", "(unchanged)")] + [
        SelectChoice(s.value, s.value.capitalize()) for s in CommentStatus], default="")
    next = HiddenField()


class ReplyForm(FlaskForm):
    content = TextAreaField("Reply", validators=[DataRequired(), Length(max=65525)])
    next = HiddenField()


class BulkForm(FlaskForm):
    action = SelectField("Bulk actions", choices=[SelectChoice(a.value, a.label) for a in Action],
                         validators=[DataRequired()])
    ids = SelectMultipleField("Comments", coerce=int, validate_choice=False)
    next = HiddenField()


APPROVAL_CHOICES = [
    SelectChoice("nobody", "Publish comments at once (no approval needed)"),
    SelectChoice("unknown", "Comment author must have a previously approved comment"),
    SelectChoice("everyone", "Comment must be manually approved"),
]


class DiscussionForm(FlaskForm):
    """WordPress's Settings → Discussion, and what it lacks (bans, mail)."""

    close_comments_for_old_posts = BooleanField("Automatically close comments on posts older than")
    close_comments_days_old = IntegerField("days", validators=[NumberRange(1, 100000)])
    comment_moderation = SelectField("Before a comment appears", choices=APPROVAL_CHOICES)
    comment_max_links = IntegerField(
        "Hold a comment in the queue if it contains this many links or more (0: never)",
        validators=[NumberRange(0, 1000)])
    moderation_keys = TextAreaField("Comment Moderation", validators=[Length(max=100_000)])
    disallowed_keys = TextAreaField("Disallowed Comment Keys", validators=[Length(max=100_000)])
    thread_comments_depth = SelectField(
        "Threaded (nested) comments, levels deep (1: not threaded)",
        choices=[SelectChoice(str(n)) for n in range(1, 11)])
    page_comments = BooleanField("Break comments into pages")
    comments_per_page = IntegerField("top level comments per page",
                                     validators=[NumberRange(1, 1000)])
    default_comments_page = SelectField("page displayed by default", choices=[
        SelectChoice("newest", "last"), SelectChoice("oldest", "first")])
    comment_order = SelectField("Comments should be displayed with the", choices=[
        SelectChoice("asc", "older"), SelectChoice("desc", "newer")])
    require_name_email = BooleanField("Comment author must fill out name and email")
    comment_flood_seconds = IntegerField("Seconds a commenter must wait between comments (0: off)",
                                         validators=[NumberRange(0, 86400)])
    ban_action = SelectField("A banned author's comment is", choices=[
        SelectChoice("refuse", "refused with a polite message"),
        SelectChoice("hold", "silently held for moderation")])
    ban_plus_addresses = BooleanField(
        "A ban on an email address also catches its +tag variants "
        "(user+anything@example.com counts as user@example.com)")
    moderation_notify = BooleanField("Email me whenever a comment is held for moderation")


class PostCommentsForm(FlaskForm):
    comments_open = BooleanField("Allow comments")


BAN_DURATIONS = [SelectChoice(v, label) for v, label in (
    ("", "Never"), ("1", "1 day"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"),
    ("365", "1 year"))]


class BanForm(FlaskForm):
    kind = SelectField("Ban by", choices=[SelectChoice(BanKind.EMAIL.value, "Email"),
                                          SelectChoice(BanKind.ACCOUNT.value, "Social account"),
                                          SelectChoice(BanKind.IP.value, "IP address or range")])
    value = StringField("Email, account (provider:subject) or IP / range",
                        validators=[DataRequired(), Length(max=254)])
    reason = StringField("Note (only moderators see it)", validators=[Length(max=500)])
    expires = SelectField("Expires after", choices=BAN_DURATIONS, default="")
    next = HiddenField()
