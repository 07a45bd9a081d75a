"""What every command shares: the --config option, the lazily loaded Config, and output helpers."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..config import Config, config_path, load_config
from ..db import get_engine
from ..inputs import printable
from ..workspace.accounts import Accounts


@dataclass
class AppContext:
    """Holds the --config choice; loads the config the first time a command asks for it."""

    config_file: Path
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_file)
        return self._config

    def accounts(self) -> Accounts:
        """Return the web editor's accounts and API tokens in the configured database."""
        return Accounts(get_engine(self.config))


pass_app = click.make_pass_decorator(AppContext)


def say(message: str = "") -> None:
    """Print one line of normal output."""
    click.echo(message)


def warn(message: str) -> None:
    """Print one warning line on stderr."""
    click.echo(f"warning: {printable(message)}", err=True)


# `--json` on every command that reports something: the same facts as the text, for scripts.
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def emit_json(value: Any) -> None:
    """Print value as indented JSON on stdout (dates, paths and the like as text)."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


class _CLIHandler(logging.Handler):
    """Shows the library's log records as one plain line each (warnings and up, or all with -v)."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        # A server's reply or a file's bytes may hold terminal escapes: shown escaped, one line.
        click.echo(prefix + printable(record.getMessage()), err=True)


def setup_logging(verbose: bool) -> None:
    """Route the newsletter logger to the terminal; silence third-party chatter (cssutils)."""
    root = logging.getLogger("newsletter")
    root.handlers[:] = [_CLIHandler()]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("cssutils", "CSSUTILS", "trafilatura", "htmldate", "courlan", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if noisy != "apscheduler" else logging.WARNING)


def default_config_file() -> Path:
    return config_path(None)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
