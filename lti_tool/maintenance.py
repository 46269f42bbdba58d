"""Housekeeping: forget launches nobody can use any more."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from .db import Database
from .login_states import MAX_TTL_SECONDS
from .models import Launch, utcnow

# Keep expired rows a day, so a support request quoting a reference can still be traced.
RETAIN_EXPIRED = timedelta(days=1)
# A launch row is what makes its login single-use (lti_tool/login_states.py): it stays at least
# as long as any login can live, whatever ``retain`` asks.
SHORTEST_RETAIN = timedelta(seconds=MAX_TTL_SECONDS)


def purge_expired(db: Database, retain: timedelta = RETAIN_EXPIRED) -> int:
    """Delete launches that expired more than ``retain`` ago; return how many."""
    cutoff = utcnow() - max(retain, SHORTEST_RETAIN)
    with db.transaction() as session:
        result = session.execute(delete(Launch).where(Launch.expires_at < cutoff))
        return result.rowcount or 0
