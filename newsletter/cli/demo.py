"""The main job on the embedded sample: compose, build, import the sample list, deliver."""

from __future__ import annotations

from .. import pipeline
from . import cli
from .common import AppContext, pass_app, say, warn


@cli.command()
@pass_app
def demo(app: AppContext) -> None:
    """Compose the sample digest from articles/, import subscribers/sample.csv and deliver it."""
    config = app.config
    report = pipeline.run_demo(config)
    if report.added is not None:
        for source, err in report.added.failed:
            warn(err)
        say(f"composed issue {report.issue_id!r} from {len(report.added.added)} articles "
            f"({config.paths.issues / (report.issue_id + '.toml')})")
    if report.build is not None:
        for problem in report.build.warnings:
            warn(problem)
        say(f"built {report.build.folder}")
    imp = report.imported
    say(f"subscribers: {imp.added} added, {imp.updated} updated from {config.paths.subscribers / 'sample.csv'}")
    say(f"delivery: {report.sent}")
    say(f"messages are in {report.outbox}")
