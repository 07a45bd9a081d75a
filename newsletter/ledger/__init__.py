"""The delivery ledger: one row per (issue, subscriber), claimed before sending and recorded after
(core.py), settled after a crash from the run's journal (recovery.py); the row types and the
stored reply format are in rows.py."""

from .core import Ledger
from .rows import OPEN_STATES, RECORD_SLICE, STATES, Claimed, Outcome, Recovered, format_reply, parse_reply

__all__ = ["Ledger", "Claimed", "Outcome", "Recovered", "STATES", "OPEN_STATES", "RECORD_SLICE",
           "format_reply", "parse_reply"]
