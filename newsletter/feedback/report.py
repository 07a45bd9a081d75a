"""A bounce or complaint report as every intake (webhook, DSN, ARF) hands it to apply."""

from __future__ import annotations

from dataclasses import dataclass

MAX_DETAIL = 1000         # characters of a server reply or description kept with an event


@dataclass(frozen=True)
class Report:
    """What one report says about one message to one address.

    kind is a models.FeedbackKind and source a models.SuppressionSource. event_key identifies
    the report for good (provider and its event id, or the report message's own Message-ID and
    the recipient), so a replay or a second copy is recognised. message_id, provider_id and
    verp_token are whichever of the message's identifiers the report carries.
    """

    kind: str
    source: str
    provider: str                 # postmark | mailgun | sendgrid | ses | mailbox
    event_key: str
    email: str = ""               # the recipient the report names
    message_id: str = ""          # our Message-ID header ("<...@domain>", brackets optional)
    provider_id: str = ""         # the transport's id for the message or its batch
    verp_token: str = ""          # the token of a VERP return path (personalize.verp)
    code: str = ""                # enhanced status code or the provider's code
    detail: str = ""              # the server's reply, the provider's description

    def describe(self) -> str:
        """Return the report's reason in one line: code and detail, as kept with a suppression."""
        text = " ".join(f"{self.code} {self.detail}".split())
        return text[:MAX_DETAIL] or self.kind


def bare_id(value: str) -> str:
    """Return a Message-ID or provider id without blanks and angle brackets ("<a@b>" → "a@b")."""
    return (value or "").strip().strip("<>").strip()


def id_forms(value: str) -> list[str]:
    """Return the spellings an id may be stored under: bare and in angle brackets ([] for "")."""
    bare = bare_id(value)
    return [bare, f"<{bare}>"] if bare else []
