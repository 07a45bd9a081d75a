"""What a render was made from, as digests: the issue, the templates and the render's settings.

`build` records these digests beside the render; `send`, `schedule` and scheduled jobs compare
them with the inputs as they are now, so an edit made after `build` is never silently left out.
"""

from __future__ import annotations

import dataclasses
import logging
import hashlib
import json
from pathlib import Path

from ..config import Config
from .. import issues
from ..errors import StaleRender
from ..models import Issue
from .saved import load_meta

log = logging.getLogger(__name__)

# The config sections a render reads: templates get all of [newsletter] (name, subject, address,
# colours...). Settings of other sections (delivery, schedule...) never change the render.
RENDER_SECTIONS = ("newsletter",)
# Built-in templates fill the gaps of the project's templates/ (see render.issue.environment).
BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "default_templates"
_SKIPPED = ("__pycache__",)


def _digest(*chunks: bytes) -> str:
    """Return the SHA-256 hex digest of the chunks, each length-prefixed (no ambiguous joins)."""
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "big"))
        h.update(chunk)
    return h.hexdigest()


def _json(value: object) -> bytes:
    """Return value as canonical JSON bytes (sorted keys; dates and paths as text)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def issue_digest(issue: Issue) -> str:
    """Return the digest of the issue's content as loaded (comments and layout do not count)."""
    return _digest(_json(dataclasses.asdict(issue)))


def templates_digest(config: Config) -> str:
    """Return the digest of every file in the project's templates folder and the built-in one."""
    chunks: list[bytes] = []
    folders = [Path(config.paths.templates).resolve(), BUILTIN_TEMPLATES.resolve()]
    for folder in dict.fromkeys(folders):              # the same folder once
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if not path.is_file() or any(p.startswith(".") or p in _SKIPPED for p in relative.parts):
                continue
            chunks += [str(relative).encode("utf-8"), path.read_bytes()]
        chunks.append(b"--")
    return _digest(*chunks)


def config_digest(config: Config) -> str:
    """Return the digest of the config sections a render reads (RENDER_SECTIONS)."""
    return _digest(_json({name: dataclasses.asdict(getattr(config, name)) for name in RENDER_SECTIONS}))


def input_digests(config: Config, issue: Issue) -> dict[str, str]:
    """Return {"issue", "templates", "config": hex digest} for a render of issue under config."""
    return {"issue": issue_digest(issue), "templates": templates_digest(config),
            "config": config_digest(config)}


def describe_changes(config: Config, issue_path: Path, recorded: dict[str, str],
                     current: dict[str, str]) -> list[str]:
    """Return, in words, the inputs whose digest differs from the recorded one (in a fixed order).

    An input the render did not record (an older release's render) is not compared.
    """
    words = {"issue": f"the issue file {issue_path}",
             "templates": f"the templates ({config.paths.templates} or the built-in ones)",
             "config": "the [" + "], [".join(RENDER_SECTIONS) + "] settings of the config file"}
    return [words[k] for k in words if k in recorded and recorded[k] != current.get(k)]


def check_current(config: Config, issue_id: str, *, frozen: bool) -> None:
    """Check that the saved render of issue_id is what `build` would make now.

    Raises IssueError when it was never built (or the issue file no longer loads) and StaleRender
    naming what changed since `build` (the issue file, the templates, the [newsletter] settings).
    A frozen render (its send started) is what goes out whatever changed: only logged then. A
    render saved by a release that recorded no digests is not compared.
    """
    recorded = load_meta(config.paths.state, issue_id).get("inputs")
    if not isinstance(recorded, dict):
        return
    path = issues.issue_path(config.paths.issues, issue_id)
    if not path.exists():
        if frozen:
            return
        raise StaleRender(f"issue {issue_id!r} changed after it was built (its file {path} is gone): "
                          "restore it and build again", issue_id, [f"the issue file {path}"])
    current = input_digests(config, issues.load_issue(config.paths.issues, issue_id))
    changed = describe_changes(config, path, recorded, current)
    if not changed:
        return
    if frozen:
        log.warning("issue %s: %s changed since its send started; the frozen render goes out "
                    "(start a new issue to change it)", issue_id, " and ".join(changed))
        return
    raise StaleRender(f"issue {issue_id!r} changed after it was built ({' and '.join(changed)}): run "
                      f"`newsletter build {issue_id}` (or `newsletter send {issue_id} --build`)",
                      issue_id, changed)
