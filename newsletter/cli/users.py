"""`newsletter users ...`: the editors who may log in to the web editor (/admin/)."""

from __future__ import annotations

import sys

import click

from ..errors import AccountError
from .common import AppContext, pass_app, say
from .group import cli


@cli.group("users")
def users_group() -> None:
    """Manage the editors who log in to the web editor at /admin/."""


@users_group.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")
@pass_app
def add_cmd(app: AppContext, name: str, password_stdin: bool) -> None:
    """Add editor NAME; the password is prompted for (twice) unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise AccountError("no password given", name)
    app.accounts().add_user(name, password)
    say(f"user {name} added; log in at {app.config.newsletter.base_url.rstrip('/')}/admin/")


@users_group.command("list")
@pass_app
def list_cmd(app: AppContext) -> None:
    """List the editors."""
    users = app.accounts().list_users()
    for user in users:
        say(f"{user.name}\tadded {user.created_at:%Y-%m-%d %H:%M}")
    if not users:
        say("no users yet: add one with `newsletter users add NAME`")


@users_group.command("remove")
@click.argument("name")
@pass_app
def remove_cmd(app: AppContext, name: str) -> None:
    """Remove editor NAME (their open sessions stop working)."""
    app.accounts().remove_user(name)
    say(f"user {name} removed")
