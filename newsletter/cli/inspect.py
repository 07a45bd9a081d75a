"""`newsletter extract` and `newsletter summarize`: look at one source without touching any issue."""

from __future__ import annotations

import dataclasses
import json

import click

from ..config import Config, load_config
from ..models import Article
from .common import AppContext, pass_app, say
from .group import cli


def _config(app: AppContext) -> Config:
    """Return the configuration, or the defaults when no config file exists (inspection needs none)."""
    if app.config_file.exists():
        return app.config
    return load_config(app.config_file, must_exist=False)


def _article(app: AppContext, source: str) -> tuple[Config, Article]:
    """Return the config and the article extracted from source; raises SourceError."""
    # Imported here: trafilatura takes a tenth of a second to load, and other commands need none of it.
    from ..articles.extract import extract
    from ..articles.sources import fetch

    config = _config(app)
    return config, extract(fetch(source, config.fetch))


@cli.command("extract")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print the article and its metadata as JSON.")
@pass_app
def extract_command(app: AppContext, source: str, as_json: bool) -> None:
    """Print the article text of SOURCE (a URL, an .html/.txt/.md file, or - for stdin)."""
    _, article = _article(app, source)
    if as_json:
        say(json.dumps(dataclasses.asdict(article), ensure_ascii=False, indent=2))
    else:
        say(article.text)


@cli.command("summarize")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True,
              help="Print {title, url, author, date, text, summary} as JSON.")
@click.option("--summarizer", "name", default=None, metavar="NAME",
              help="Summariser plugin to use (default: summarize.summarizer in the config).")
@click.option("--max-words", type=click.IntRange(min=1), default=None, metavar="N",
              help="Word budget of the blurb (default: summarize.max_words in the config).")
@pass_app
def summarize_command(app: AppContext, source: str, as_json: bool, name: str | None,
                      max_words: int | None) -> None:
    """Print the newsletter blurb for SOURCE (a URL, an .html/.txt/.md file, or - for stdin)."""
    from ..summarize import (
        make_summarizer,  # loads the summariser plugins only when needed
    )

    config, article = _article(app, source)
    settings = config.summarize
    if max_words is not None:
        settings = dataclasses.replace(settings, max_words=max_words)
    summary = make_summarizer(settings, name=name).summarize(article)
    if as_json:
        fields = {k: getattr(article, k) for k in ("title", "url", "author", "date", "text")}
        say(json.dumps({**fields, "summary": summary}, ensure_ascii=False, indent=2))
    else:
        say(summary)
