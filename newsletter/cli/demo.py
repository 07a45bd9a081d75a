"""The main job on the embedded sample: compose, build, import the sample list, deliver."""

from __future__ import annotations

from ..demo import run_demo
from .common import AppContext, pass_app, say, warn
from .group import cli
from .send import print_summary, sending_progress


@cli.command()
@pass_app
def demo(app: AppContext) -> None:
    """Compose the sample digest from articles/, import subscribers/sample.csv (as list `sample`)
    and deliver it to state/outbox/sample/ (the file backend, whatever the config says)."""
    config = app.config
    with sending_progress() as progress:
        report = run_demo(config, progress=progress)
    if report.added is not None:
        for _source, err in report.added.failed:
            warn(err)
        say(f"composed issue {report.issue_id!r} from {len(report.added.added)} articles in "
            f"{config.root / 'articles'}: {config.paths.issues / (report.issue_id + '.toml')}")
    if report.build is not None:
        for problem in report.build.warnings:
            warn(problem)
        say(f"built {report.build.folder} (open preview.html; email.html holds raw placeholders)")
    imp = report.imported
    say(f"subscribers: {imp.added} added, {imp.updated} updated, {len(imp.errors)} bad rows in "
        f"{config.paths.subscribers / 'sample.csv'}")
    print_summary(report.sent)
    say(f"messages are in {report.outbox}")
