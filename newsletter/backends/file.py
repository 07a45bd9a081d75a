"""File backend: writes each message as <dir>/<issue>/<recipient>.eml (the demo's outbox)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, DeliveryError
from ..files import make_private_dir, write_atomic
from ..models import Delivery, Recipient
from .base import Backend, MessageSource

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")
_MAX_STEM = 120


def safe_name(text: str) -> str:
    """Return text as a file name: unsafe characters replaced, and a hash added when anything changed."""
    clean = _UNSAFE.sub("_", text).strip(".") or "_"
    if clean != text or len(clean) > _MAX_STEM:
        # Two addresses that clean to the same name ("a b@x", "a_b@x") must not share a file.
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        clean = f"{clean[:_MAX_STEM]}.{digest}"
    return clean


class FileBackend(Backend):
    """Writes messages atomically as .eml files; a message written is a message "sent"."""

    max_batch = 100
    reports_handover = True

    def __init__(self, config: "Config"):
        super().__init__(config)
        self.dir = Path(config.delivery.file.dir)
        self._made: set[Path] = set()

    def open(self) -> None:
        """Create the outbox folder (0700: its file names are addresses); raises ConfigError."""
        try:
            make_private_dir(self.dir)
        except OSError as err:
            raise ConfigError(f"delivery.file.dir: cannot create {self.dir}: {err}") from err

    def path_for(self, issue_id: str, email: str) -> Path:
        """Return the file a message of issue_id to email is written to."""
        return self.dir / safe_name(issue_id) / f"{safe_name(email.lower())}.eml"

    def send(self, source: MessageSource, batch: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Write one .eml per recipient; see Backend.send. Raises ConfigError when the folder is unwritable."""
        results: list[Delivery | DeliveryError] = []
        issue_id = source.rendered.issue_id
        for recipient in batch:
            path = self.path_for(issue_id, recipient.email)
            message = source.build(recipient)
            self.handing_over((recipient,))
            try:
                if path.parent not in self._made:
                    make_private_dir(path.parent)
                    self._made.add(path.parent)
                write_atomic(path, message)     # a private (0600) temp file, renamed
            except OSError as err:
                raise ConfigError(f"cannot write {path}: {err}") from err
            log.debug("wrote %s", path)
            results.append(Delivery(recipient=recipient.email, message_id=recipient.message_id,
                                    provider_id=str(path), reply=f"written to {path}"))
        return results
