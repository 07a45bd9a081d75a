"""The `newsletter` command: the only place that prints and turns errors into exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import NewsletterError
from .common import AppContext, setup_logging
from ..config import config_path


class _Group(click.Group):
    """A click group that turns our errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NewsletterError as err:
            click.echo(f"error: {err}", err=True)
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


# Each area keeps its commands in its own module; importing it registers them on `cli`.
from . import compose, demo, inspect, schedule, send, subscribers, web  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    cli.main(args=argv, prog_name="newsletter")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
