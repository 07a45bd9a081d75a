"""`newsletter init`: a new newsletter folder from the scaffold, with the identity (name, sender,
postal address, base URL) given as options, asked on a terminal, or kept as placeholders that
`build` warns about."""

from __future__ import annotations

import shutil
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import click
import tomlkit

from ..errors import ConfigError, SubscriberError
from ..files import write_atomic
from ..subscribers import normalise_address
from .common import say, stdin_is_tty, warn
from .group import cli

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"


# What init writes when it is not told or asked: plainly not anyone's identity, so `build` warns.
PLACEHOLDERS = {"name": "My Newsletter", "sender": "My Newsletter <newsletter@example.org>",
                "postal_address": "", "base_url": "https://newsletter.example.org"}
_PROMPTS = {"name": "Newsletter name", "sender": "Sender (Name <address@your-domain>)",
            "postal_address": "Postal address for the footer",
            "base_url": "Public https address of the web app"}


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="The newsletter's name (header and subject).")
@click.option("--sender", default=None, help="The From address: 'Name <address@your-domain>'.")
@click.option("--postal-address", default=None, help="The postal address every message shows.")
@click.option("--base-url", default=None, help="The https address where `newsletter serve` answers.")
def init(directory: Path, name: str | None, sender: str | None, postal_address: str | None,
         base_url: str | None) -> None:
    """Create a new newsletter in DIRECTORY: config.toml, templates/, subscribers/, issues/.

    On a terminal it asks for the name, sender, postal address and base URL that no option gave;
    otherwise what no option gave keeps a placeholder that `build` warns about."""
    if (directory / "config.toml").exists():
        raise ConfigError(f"{directory / 'config.toml'} already exists: not overwriting it")
    given = {"name": name, "sender": sender, "postal_address": postal_address, "base_url": base_url}
    for key, value in given.items():
        if value is not None:
            given[key] = _identity_value(key, value, click.BadParameter)
    if stdin_is_tty():
        for key, value in given.items():
            if value is None:
                given[key] = _ask(key, given)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in sorted(SCAFFOLD.iterdir()):
        target = directory / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
        elif entry.name != "config.toml":
            shutil.copyfile(entry, target)
    identity = {key: PLACEHOLDERS[key] if value is None else value for key, value in given.items()}
    if given["name"] is not None and given["sender"] is None:
        identity["sender"] = f"{given['name']} <newsletter@example.org>"
    write_atomic(directory / "config.toml", _config_text(identity))
    (directory / "issues").mkdir(exist_ok=True)
    say(f"created a newsletter in {directory}")
    kept = [key for key, value in given.items() if value is None]
    if kept:
        warn(f"kept placeholders for {', '.join('newsletter.' + k for k in kept)} in "
             f"{directory / 'config.toml'} (no terminal to ask on): edit them or pass "
             f"{' '.join('--' + k.replace('_', '-') for k in kept)}; "
             "`newsletter build` warns until they are yours")
    say(f"next: cd {directory} && newsletter issue new w1 && newsletter add articles/* --issue w1 "
        "&& newsletter build w1")


def _identity_value(key: str, value: str, error: type[click.ClickException]) -> str:
    """Return value cleaned for newsletter.<key>; raises error (BadParameter or UsageError) when unusable."""
    value = value.strip()
    if key == "name" and not value:
        raise error("the newsletter's name cannot be empty")
    if key == "sender":
        display, address = parseaddr(value)
        try:
            normalise_address(address)
        except SubscriberError as err:
            raise error(f"sender {value!r}: {err} (write 'Name <address@your-domain>')") from err
        if not display:
            value = address
    if key == "base_url":
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise error(f"base URL {value!r} must be an https:// address with a host")
        value = value.rstrip("/")
    if key == "postal_address":
        value = ", ".join(line.strip() for line in value.splitlines() if line.strip())
    return value


def _ask(key: str, given: dict[str, str | None]) -> str:
    """Ask for newsletter.<key> on the terminal until the answer is usable; Enter keeps the default."""
    default = PLACEHOLDERS[key]
    if key == "sender" and given.get("name"):
        default = f"{given['name']} <newsletter@example.org>"
    while True:
        answer = click.prompt(_PROMPTS[key], default=default, show_default=bool(default))
        try:
            value = _identity_value(key, answer, click.UsageError)
        except click.UsageError as err:
            click.echo(f"  {err.message}", err=True)
            continue
        if key == "base_url" and not value.lower().startswith("https://"):
            click.echo("  note: one-click unsubscribe needs https; `build` will warn about this address",
                       err=True)
        return value


def _config_text(identity: dict[str, str]) -> bytes:
    """Return the scaffold's config.toml with the [newsletter] identity replaced, comments kept."""
    doc = tomlkit.parse((SCAFFOLD / "config.toml").read_text(encoding="utf-8"))
    section = doc["newsletter"]
    for key, value in identity.items():
        section[key] = value
    text = tomlkit.dumps(doc).replace("# The sample newsletter's configuration.",
                                      "# This newsletter's configuration.", 1)
    return text.encode("utf-8")
