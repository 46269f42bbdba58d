"""Housekeeping: forget logins and launches nobody can use any more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from . import login_states
from .db import Database
from .models import Launch, utcnow

# Keep expired rows a day, so a support request quoting a reference can still be traced.
RETAIN_EXPIRED = timedelta(days=1)


@dataclass(frozen=True)
class Purged:
    logins: int
    launches: int


def purge_expired(db: Database, retain: timedelta = RETAIN_EXPIRED) -> Purged:
    """Delete login states and launches that expired more than ``retain`` ago."""
    logins = login_states.purge(db, retain)
    with db.transaction() as session:
        result = session.execute(delete(Launch).where(Launch.expires_at < utcnow() - retain))
        launches = result.rowcount or 0
    return Purged(logins=logins, launches=launches)
