"""Erasure (GDPR art. 17): delete an address and its personal data, keep only a hashed suppression.

The subscriber row goes; the ledger's copies of the address are replaced by a placeholder (the
counts stay true); a SHA-256 of the lower-cased address stays in erased_addresses so that the
address can never be imported or added to that list again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..db import deliveries, erased_addresses, subscribers, utcnow, write_transaction
from ..errors import SubscriberError
from .addresses import address_key, normalise_address


def address_hash(key: str) -> str:
    """Return the hex SHA-256 of an address key (the lower-cased address)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def erased_keys(conn: Connection, list_name: str, keys: Iterable[str]) -> set[str]:
    """Return the address keys among keys that were erased from list_name."""
    by_hash = {address_hash(k): k for k in keys}
    if not by_hash:
        return set()
    found = conn.execute(select(erased_addresses.c.address_hash).where(
        erased_addresses.c.list == list_name, erased_addresses.c.address_hash.in_(list(by_hash)))).scalars()
    return {by_hash[h] for h in found}


def erase(engine: Engine, email: str, list_name: str) -> bool:
    """Erase email from list_name; return False when it was not on the list (nothing changes then).

    Raises SubscriberError for an invalid address.
    """
    key = address_key(normalise_address(email))
    digest = address_hash(key)
    with write_transaction(engine) as conn:
        row = conn.execute(select(subscribers.c.id).where(
            subscribers.c.list == list_name, subscribers.c.email_key == key)).first()
        if row is None:
            return False
        conn.execute(update(deliveries).where(deliveries.c.list == list_name,
                                              func.lower(deliveries.c.email) == key)
                     .values(email=f"erased-{digest[:16]}@erased.invalid"))
        conn.execute(delete(subscribers).where(subscribers.c.id == row.id))
        if not erased_keys(conn, list_name, [key]):
            conn.execute(insert(erased_addresses).values(list=list_name, address_hash=digest,
                                                         erased_at=utcnow()))
    return True


def refuse_erased(conn: Connection, list_name: str, key: str, address: str) -> None:
    """Raise SubscriberError when address (with key) was erased from list_name."""
    if erased_keys(conn, list_name, [key]):
        raise SubscriberError(f"{address} was erased from {list_name!r} at its owner's request "
                              "and cannot be added again")
