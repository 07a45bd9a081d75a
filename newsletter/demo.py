"""The main job on the embedded sample: compose the sample issue from articles/, build it, import
the sample list and deliver it to a local folder (the file backend), whatever the project's
backend: run in a real project, it mails nobody and leaves the real lists alone."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from . import issues, pipeline
from .config import Config
from .db import get_engine
from .delivery.send import SendReport
from .subscribers import ImportReport, SubscriberStore

DEMO_ISSUE = "sample"
DEMO_LIST = "sample"            # its own list: the sample addresses never join the project's lists
ARTICLE_SUFFIXES = (".html", ".htm", ".txt", ".md")


@dataclass
class DemoReport:
    """What the demo did: the issue composed and built, the list imported, and the send's result."""

    issue_id: str
    added: pipeline.AddReport | None       # None when the issue file already existed
    build: pipeline.BuildReport | None     # None when the issue was already frozen by a send
    imported: ImportReport
    sent: SendReport
    outbox: Path


def run_demo(config: Config, progress: pipeline.Progress | None = None) -> DemoReport:
    """Compose, build, import and send the sample issue; idempotent (a second run sends nothing).

    Returns a DemoReport; raises what pipeline.add_sources, build_issue and send_issue raise.
    """
    # README: "deliver it to a local folder; no outside service", even where delivery is real.
    config = replace(config, delivery=replace(config.delivery, backend="file"))
    added = None
    if not issues.issue_path(config.paths.issues, DEMO_ISSUE).exists():
        issues.create_issue(config.paths.issues, DEMO_ISSUE, "This week in science and space",
                            intro="The stories we enjoyed this week, each in a few sentences.")
        articles = sorted(p for p in (config.root / "articles").iterdir()
                          if p.suffix.lower() in ARTICLE_SUFFIXES)
        added = pipeline.add_sources(config, DEMO_ISSUE, [str(p) for p in articles])
    build = None if pipeline.is_frozen(config, DEMO_ISSUE) else pipeline.build_issue(config, DEMO_ISSUE)
    store = SubscriberStore(get_engine(config))
    imported = store.import_csv(config.paths.subscribers / "sample.csv", DEMO_LIST)
    sent = pipeline.send_issue(config, DEMO_ISSUE, list_name=DEMO_LIST, progress=progress)
    return DemoReport(issue_id=DEMO_ISSUE, added=added, build=build, imported=imported, sent=sent,
                      outbox=config.delivery.file.dir / DEMO_ISSUE)
