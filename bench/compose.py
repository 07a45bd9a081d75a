"""Benchmark: compose a 12-item issue from local HTML files end to end; prints seconds last.

Extract, summarise, append to the issue file, render (Jinja2 → MJML → premailer) and save.
Uses real pages from ../shared/eval-dev when present (as a developer's machine has), else the
project's own sample articles. Target: ≤ 1.0 s on a 2-core machine.
"""

from __future__ import annotations

import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter import issues, pipeline  # noqa: E402
from newsletter.config import config_from_dict  # noqa: E402

EVAL_HTML = ROOT.parent / "shared" / "eval-dev" / "extraction" / "html"


def pages(folder: Path) -> list[Path]:
    """Write 12 HTML pages into folder and return their paths."""
    if EVAL_HTML.is_dir():
        sources = sorted(EVAL_HTML.glob("*.html.gz"))[:12]
        out = []
        for i, src in enumerate(sources):
            dst = folder / f"page{i:02d}.html"
            dst.write_bytes(gzip.decompress(src.read_bytes()))
            out.append(dst)
        return out
    articles = sorted((ROOT / "articles").glob("*.html"))
    out = []
    for i in range(12):
        dst = folder / f"page{i:02d}.html"
        # Same pages, distinct canonical URLs, so none is skipped as a duplicate.
        html = articles[i % len(articles)].read_text(encoding="utf-8")
        dst.write_text(html.replace("https://", f"https://r{i}.", 1), encoding="utf-8")
        out.append(dst)
    return out


def compose_once(work: Path, files: list[Path], run: int) -> float:
    """Create an issue, add the files and build it; return the seconds taken."""
    config = config_from_dict({}, work)
    issue_id = f"bench{run}"
    t0 = time.perf_counter()
    issues.create_issue(config.paths.issues, issue_id, "Benchmark issue")
    report = pipeline.add_sources(config, issue_id, [str(f) for f in files], force=True)
    built = pipeline.build_issue(config, issue_id)
    elapsed = time.perf_counter() - t0
    if len(report.added) != len(files):
        raise SystemExit(f"only {len(report.added)} of {len(files)} items added: {report.failed}")
    print(f"run {run}: {elapsed:.3f} s, {len(report.added)} items, "
          f"HTML {len(built.rendered.html) / 1024:.0f} KB", flush=True)
    return elapsed


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    try:
        files = pages(work)
        print(f"pages: {'eval-dev' if EVAL_HTML.is_dir() else 'articles/'} ({len(files)})")
        cold = compose_once(work, files, 0)
        warm = [compose_once(work, files, run) for run in range(1, 4)]
        print(f"cold (first in process, imports included): {cold:.3f} s")
        print(f"compose 12 items, median of 3 warm runs, seconds: {statistics.median(warm):.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
