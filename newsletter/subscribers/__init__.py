"""Subscriber lists: the store in the database (store: lists, consent, suppression), address
normal form (addresses) and CSV import and export (csvfile)."""

from .addresses import address_key, normalise_address
from .csvfile import ImportReport
from .store import SubscriberStore

__all__ = ["SubscriberStore", "ImportReport", "address_key", "normalise_address"]
