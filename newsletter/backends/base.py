"""The Backend interface every transport implements, and the loader that finds one by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .. import plugins
from ..errors import DeliveryError
from ..models import Delivery, Recipient, Rendered

if TYPE_CHECKING:
    from ..config import Config

ENTRY_POINT_GROUP = plugins.BACKENDS


class MessageSource(Protocol):
    """What a backend gets to build messages from (implemented by personalize.MessageFactory).

    SMTP and file backends send build()'s bytes. HTTP APIs take headers() and fill the bodies of
    `rendered` with recipient.values themselves (or hand the values to the provider as variables),
    so the values must cover every token in the bodies.
    """

    rendered: Rendered

    def build(self, recipient: Recipient) -> bytes:
        """Return the complete RFC 5322 message for recipient (CRLF line ends)."""

    def headers(self, recipient: Recipient) -> dict[str, str]:
        """Return the per-message headers (From, To, Subject, List-Unsubscribe, ...) as readable,
        unencoded text (APIs encode them); From, To and Subject are always present."""


Handover = Callable[[Sequence[Recipient]], None]


class Backend(ABC):
    """A transport. send() may be called from several threads at once (delivery.concurrency).

    Results follow the reply classes of DESIGN.md (models.ReplyClass): a Delivery, or the
    DeliveryError of the reply's class (backends/replies.py maps replies to classes).
    """

    #: how many recipients one send() call may carry; the send loop batches to this size
    max_batch: int = 1
    #: True when send() calls handing_over() itself, right before each message may reach the
    #: server; otherwise the send loop calls it for the whole batch before send()
    reports_handover: bool = False
    #: True when send() calls reporting() with each result as soon as it is known (and every
    #: result it returns exactly once); otherwise the send loop takes them when send() returns
    reports_results: bool = False
    #: set by the send loop: told which recipients' messages are about to be handed over, so
    #: that after a crash it can tell messages that may have arrived from ones never sent
    on_handover: Handover | None = None
    #: set by the send loop: told each result as it comes, to stop the run in time
    on_results: Callable[[Sequence[Recipient], Sequence["Delivery | DeliveryError"]], None] | None = None
    #: set by the send loop: True once the run is stopping; a backend that sends a batch message
    #: by message asks it between messages and leaves the rest untried (StopRun without a reply)
    should_stop: Callable[[], bool] | None = None

    def __init__(self, config: "Config"):
        self.config = config

    def handing_over(self, recipients: Sequence[Recipient]) -> None:
        """Say that the messages of recipients are about to be handed to the server (from here
        on the server may have them even if no reply comes); call it right before writing them."""
        hook = self.on_handover
        if hook is not None:
            hook(recipients)

    def reporting(self, recipients: Sequence[Recipient], results: Sequence[Delivery | DeliveryError]) -> None:
        """Report the results of recipients' messages as soon as they are known (reports_results)."""
        hook = self.on_results
        if hook is not None:
            hook(recipients, results)

    def stopping(self) -> bool:
        """Return True once the send loop says the run is stopping (between messages of a batch)."""
        return self.should_stop is not None and self.should_stop()

    def open(self) -> None:
        """Connect and check credentials; raise ConfigError when they are wrong."""

    @abstractmethod
    def send(self, source: MessageSource, batch: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Send one message per recipient; return, in order, a Delivery or the DeliveryError for each.

        RecipientRejected = permanent for that address (suppressed), TransientDeliveryError =
        retry later, StopRun = the reply would be the same for everyone (sender, policy,
        content): the run stops and the row stays pending, AmbiguousDelivery = may have been
        accepted (the row becomes unknown), a plain DeliveryError = this one message failed.
        Raise ConfigError or StopRun (bad credentials, bad endpoint, a refused request) to stop
        the whole send with nothing of the batch sent, and TransientDeliveryError to fail the
        whole batch temporarily (server unreachable).
        """

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Backend":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backend_class(name: str) -> type[Backend]:
    """Return the Backend class registered as name, or given as "pkg.mod:Class"; raises ConfigError."""
    return plugins.load_class(plugins.BACKENDS, name, Backend, key="delivery.backend", kind="backend")


def make_backend(config: "Config") -> Backend:
    """Return the configured backend, not yet opened; raises ConfigError."""
    name = config.delivery.backend
    return plugins.create(backend_class(name), config, key="delivery.backend", name=name)
