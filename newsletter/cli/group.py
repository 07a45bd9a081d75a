"""The `newsletter` click group: the --config option, and our errors turned into one line and exit 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..config import config_path
from ..errors import NewsletterError, SendStopped
from ..inputs import printable
from .common import AppContext, setup_logging


class _Group(click.Group):
    """A click group that turns our errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SendStopped as err:
            click.echo(f"interrupted: {printable(str(err))}", err=True)
            ctx.exit(130)
        except NewsletterError as err:
            click.echo(f"error: {printable(str(err))}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            # The reader went away (`newsletter status w1 | head`): stop quietly, as `cat` would.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(1)
        except OSError as err:
            # The machine said no (a state folder that cannot be made, a full disk, no permission):
            # one line naming the path, never a traceback.
            where = f"{err.filename}: " if err.filename else ""
            click.echo(printable(f"error: {where}{err.strerror or err}"), err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, envvar="NEWSLETTER_CONFIG",
              help="Config file (default ./config.toml, or $NEWSLETTER_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Show progress details.")
@click.version_option(package_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """Turn chosen articles into an email digest and deliver it."""
    setup_logging(verbose)
    ctx.obj = AppContext(config_path(config_file))
