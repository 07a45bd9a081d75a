"""`newsletter tokens ...`: bearer tokens for the JSON API at /api/v1/."""

from __future__ import annotations

import click

from .common import AppContext, pass_app, say
from .group import cli


@cli.group("tokens")
def tokens_group() -> None:
    """Manage the API tokens of /api/v1/ (stored hashed; shown once)."""


@tokens_group.command("create")
@click.argument("name")
@pass_app
def create_cmd(app: AppContext, name: str) -> None:
    """Create token NAME and print it, alone, on standard output (it is not shown again)."""
    token = app.accounts().create_token(name)
    click.echo(token)
    click.echo(f"API token {name!r} created; store it now, it is not shown again "
               "(send it as 'Authorization: Bearer TOKEN')", err=True)


@tokens_group.command("list")
@pass_app
def list_cmd(app: AppContext) -> None:
    """List the tokens' names and dates (never their values)."""
    tokens = app.accounts().list_tokens()
    for t in tokens:
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        say(f"{t.name}\tcreated {t.created_at:%Y-%m-%d %H:%M}\t{used}")
    if not tokens:
        say("no API tokens: create one with `newsletter tokens create NAME`")


@tokens_group.command("revoke")
@click.argument("name")
@pass_app
def revoke_cmd(app: AppContext, name: str) -> None:
    """Revoke token NAME: requests carrying it are refused from now on."""
    app.accounts().revoke_token(name)
    say(f"API token {name} revoked")
