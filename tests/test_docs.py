"""The docs stay honest: every CLI command and every config key is documented in README.md and
config.toml, and README's "How it works" names the subpackages and modules that exist."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import click
import pytest

from newsletter.cli import cli
from newsletter.config import Config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SAMPLE_CONFIG = (ROOT / "config.toml").read_text(encoding="utf-8")
_HIDDEN = {"root", "path"}


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    """Return every command path under group ("send", "subscribers import", ...)."""
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found += _commands(command, path + " ")
        else:
            found.append(path)
    return found


def _keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Return every dotted config key ("delivery.smtp.host", ...) of the Config dataclasses."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _HIDDEN:
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            keys += _keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


COMMANDS = _commands(cli)
KEYS = _keys()


def test_the_walks_found_the_cli_and_config():
    assert {"send", "subscribers import", "issue new", "schedule"} <= set(COMMANDS)
    assert {"newsletter.sender", "delivery.smtp.host", "schedule.cron"} <= set(KEYS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_command_is_in_the_readme(command):
    assert f"newsletter {command}" in README, f"README.md does not show `newsletter {command}`"


def _toml_tables(text: str) -> dict[str, set[str]]:
    """Return {table: keys set in it} of a TOML file's text, comments included (keys shown there
    commented out count as documented)."""
    tables: dict[str, set[str]] = {"": set()}
    current = ""
    for line in text.splitlines():
        header = re.match(r"\s*#?\s*\[\[?([\w.]+)\]\]?", line)
        if header:
            current = header.group(1)
            tables.setdefault(current, set())
            continue
        key = re.match(r"\s*#?\s*([A-Za-z_][\w]*)\s*=", line)
        if key:
            tables.setdefault(current, set()).add(key.group(1))
    return tables


@pytest.mark.parametrize("key", KEYS)
def test_every_config_key_is_in_the_sample_config(key):
    table, _, name = key.rpartition(".")
    assert name in _toml_tables(SAMPLE_CONFIG).get(table, set()), f"config.toml does not document {key}"


@pytest.mark.parametrize("key", KEYS)
def test_every_config_key_is_in_the_readme(key):
    assert f"`{key}`" in README, f"README.md does not name the config key `{key}`"


def test_how_it_works_names_every_subpackage():
    packages = sorted(p.parent.name for p in (ROOT / "newsletter").glob("*/__init__.py"))
    section = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in packages if f"{p}/" not in section]
    assert not missing, f"README's How it works does not name {missing}"


def test_how_it_works_names_every_module():
    # A newcomer finds where a thing happens from the tree in README; a module it does not name
    # is one nobody will look for. (Alembic revisions are data, not modules to read.)
    section = README.split("## How it works", 1)[1].split("\n## ", 1)[0]
    modules = sorted({p.stem for p in (ROOT / "newsletter").rglob("*.py")
                      if p.name != "__init__.py" and "migrations" not in p.parts})
    missing = [m for m in modules if not re.search(rf"\b{re.escape(m)}\b", section)]
    assert not missing, f"README's How it works does not name the modules {missing}"
