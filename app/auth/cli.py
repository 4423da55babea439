"""`flask users …`: the people who run the site."""

from __future__ import annotations

import click
from email_validator import EmailNotValidError, validate_email
from flask.cli import AppGroup

from app.auth.accounts import MIN_PASSWORD_LENGTH, create_local_admin

users = AppGroup("users", help="Manage the site's users and admins.")


@users.command("create-admin")
@click.argument("email")
@click.option("--password", help="The admin's password (asked for, hidden, when left out).")
@click.option("--name", help="The name shown on the admin's comments (default: the email's name).")
def create_admin(email: str, password: str | None, name: str | None) -> None:
    """Create a local admin who signs in with EMAIL and a password (for sites with no provider).

    Running it again for the same EMAIL sets a new password.
    """
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(f"use at least {MIN_PASSWORD_LENGTH} characters.",
                                 param_hint="--password")
    user, created = create_local_admin(email, password, name=name)
    verb = "Created" if created else "Updated"
    click.echo(f"{verb} admin {user.email} (user {user.id}); the password is stored hashed (scrypt).")
