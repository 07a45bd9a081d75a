"""Sending an issue from the web editor and the API: what a send would do (lists, recipients,
whether the render is current), and starting it in a thread of the web process, or handing it to
the queue workers when [queue] is enabled, the same way `newsletter send` does.

Never twice: a second request while the send runs is refused here (and by the send lock across
processes), and the ledger sends each subscriber an issue at most once whatever happens.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ..config import Config
from ..db import get_engine
from ..errors import IssueError, NewsletterError, SendRefused
from ..inputs import check_list_name
from ..ledger import Ledger
from ..models import IssueState, SubscriberStatus
from ..subscribers import SubscriberStore

log = logging.getLogger(__name__)
SENDS = "newsletter.sends"          # app.extensions key of the app's SendRunner


@dataclass
class Tracked:
    """A send running (or run) in this process: its progress as the send loop reports it."""

    issue_id: str
    list_name: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0                  # messages this run dealt with
    total: int = 0                 # messages this run had to deal with
    finished: float = 0.0          # time.monotonic() when it ended; 0 while it runs
    error: str = ""                # why it stopped early, in words
    halt: threading.Event = field(default_factory=threading.Event, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Return True while the send's thread is alive."""
        return self.thread is not None and self.thread.is_alive()

    @property
    def rate(self) -> float:
        """Return this run's messages per second so far."""
        seconds = (self.finished or time.monotonic()) - self.started
        return self.done / seconds if seconds > 0 else 0.0

    def update(self, done: int, total: int) -> None:
        """Record the send loop's progress (its progress callback); the first call restarts the clock."""
        if not self.total and not self.done:
            self.started = time.monotonic()
        self.done, self.total = done, total


class SendRunner:
    """The sends this web process runs, one thread per issue; stop() halts them (resumable)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sends: dict[str, Tracked] = {}

    def get(self, issue_id: str) -> Tracked | None:
        """Return the tracked send of issue_id (running or the last one run here), or None."""
        with self._lock:
            return self._sends.get(issue_id)

    def start(self, config: Config, issue_id: str, list_name: str) -> Tracked:
        """Start sending issue_id to list_name in a thread; raises SendRefused when one runs here."""
        with self._lock:
            current = self._sends.get(issue_id)
            if current is not None and current.running:
                raise SendRefused(f"issue {issue_id!r} is being sent right now: follow its progress "
                                  "below", issue_id, "running")
            tracked = Tracked(issue_id, list_name)
            tracked.thread = threading.Thread(target=_run, args=(config, tracked), daemon=True,
                                              name=f"newsletter-send-{issue_id}")
            self._sends[issue_id] = tracked
            tracked.thread.start()
        return tracked

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every running send to stop at its next safe point and wait for them (the next send resumes)."""
        with self._lock:
            running = [t for t in self._sends.values() if t.running]
        for tracked in running:
            tracked.halt.set()
        for tracked in running:
            assert tracked.thread is not None
            tracked.thread.join(timeout)


def _run(config: Config, tracked: Tracked) -> None:
    """Send in this thread as `newsletter send` does; record how it ended on tracked."""
    from ..pipeline import send_issue
    from ..schedule.scheduler import drop_sent_jobs

    try:
        report = send_issue(config, tracked.issue_id, list_name=tracked.list_name,
                            progress=tracked.update, halt=tracked.halt)
        if getattr(report, "paused", ""):
            tracked.error = f"paused: {report.paused}; fix the cause and send again to resume"
        if getattr(report, "state", "") == IssueState.SENT:
            # Sent by hand: a send still scheduled for it would find nothing to do.
            drop_sent_jobs(config, tracked.issue_id, tracked.list_name)
    except NewsletterError as err:
        tracked.error = str(err)
    except Exception:  # a thread has nobody to raise to: the log keeps the traceback
        log.exception("sending issue %s failed", tracked.issue_id)
        tracked.error = "the send stopped on an unexpected error (see the server's log); send again to resume"
    finally:
        tracked.finished = time.monotonic()


@dataclass(frozen=True)
class SendPlan:
    """What "Send now" would do: the list, how many will get it, and why it cannot go as it is."""

    issue_id: str
    list_name: str
    recipients: int                # active subscribers who have not had it (what the ledger plans or has left)
    state: str                     # "" (never sent), sending, sent
    stale: str = ""                # why the saved render cannot go out unchanged ("" when it can)
    running: bool = False          # a send of it runs now (here or on the queue's workers)


def recipients(config: Config, issue_id: str, list_name: str) -> int:
    """Return how many messages a send of issue_id to list_name would hand over now.

    Before the first send: the list's active subscribers (what Ledger.plan freezes). After it:
    the rows a run would claim (pending or deferred) whose subscriber is still active (the send
    loop skips the others). Unknown rows are not counted: they are resent only on request.
    """
    engine = get_engine(config)
    ledger = Ledger(engine)
    if list_name in ledger.lists_of(issue_id):
        return ledger.claimable(issue_id, list_name, active_only=True)
    return SubscriberStore(engine).counts(list_name)[SubscriberStatus.ACTIVE]


def plan_send(config: Config, runner: SendRunner, issue_id: str, list_name: str | None = None) -> SendPlan:
    """Return the SendPlan of issue_id (to list_name, default delivery.default_list)."""
    from ..pipeline import check_current

    list_name = list_name or config.delivery.default_list
    ledger = Ledger(get_engine(config))
    state = ledger.issue_state(issue_id) or ""
    stale = ""
    try:
        check_current(config, issue_id, frozen=bool(state))
    except IssueError as err:          # StaleRender, or never built
        stale = str(err)
    return SendPlan(issue_id, list_name, recipients(config, issue_id, list_name), state, stale,
                    is_running(config, runner, issue_id, list_name))


def is_running(config: Config, runner: SendRunner, issue_id: str, list_name: str) -> bool:
    """Return True while a send of issue_id runs in this process or has chunks open on the queue."""
    tracked = runner.get(issue_id)
    if tracked is not None and tracked.running:
        return True
    if config.queue.enabled:
        from ..queue.progress import send_progress

        progress = send_progress(get_engine(config), issue_id, list_name)
        return progress is not None and not progress.finished
    return False


def start_send(config: Config, runner: SendRunner, issue_id: str, *, confirm: str, build: bool = False,
               list_name: str | None = None) -> SendPlan:
    """Start sending issue_id after the editor confirmed it by typing its id (confirm).

    With build, the issue is built first (unless its send started: the frozen render goes out).
    Returns the SendPlan as it was when the send started. Raises SendRefused (confirm does not
    match, a send of it runs, everyone had it, nobody is subscribed), InputError (a bad list
    name), StaleRender (the render is older than its
    inputs and build was not asked), IssueError (never built, another process sends it) and
    what building or enqueueing raises (RenderError, SubscriberError, QueueError, ConfigError).
    """
    from ..delivery.lock import send_lock
    from ..pipeline import check_current, rebuild_for_send, send_issue

    list_name = check_list_name(list_name) if list_name else config.delivery.default_list
    if confirm.strip() != issue_id:
        raise SendRefused(f"type the issue id {issue_id!r} to confirm the send", issue_id, "confirm")
    if is_running(config, runner, issue_id, list_name):
        raise SendRefused(f"issue {issue_id!r} is being sent right now: follow its progress", issue_id, "running")
    ledger = Ledger(get_engine(config))
    if build:
        rebuild_for_send(config, issue_id)
    else:
        check_current(config, issue_id)
    plan = plan_send(config, runner, issue_id, list_name)
    if not plan.state and plan.recipients == 0:
        raise SendRefused(f"list {list_name!r} has no active subscriber: nothing to send", issue_id, "empty")
    if plan.state and plan.recipients == 0:
        counts = ledger.counts(issue_id, list_name)
        if counts["unknown"]:
            # In flight when a run died: they may have arrived, so only the CLI resends them, on request.
            raise SendRefused(f"nothing left to send: {counts['unknown']} messages of issue {issue_id!r} may or "
                              f"may not have arrived (`newsletter send {issue_id} --retry-unknown` resends "
                              "them)", issue_id, "sent")
        raise SendRefused(f"issue {issue_id!r} went to everyone on list {list_name!r} already "
                          f"({counts['sent']} sent): nothing to send", issue_id, "sent")
    if config.queue.enabled:
        send_issue(config, issue_id, list_name=list_name)      # enqueues its chunks for the workers
        return plan
    # A `newsletter send` of it in another process holds the send lock: say so now, not in the thread.
    with send_lock(config.paths.state, get_engine(config), issue_id):
        pass
    runner.start(config, issue_id, list_name)
    return plan
