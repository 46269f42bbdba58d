"""The outbox: how owed deliveries are claimed, answered, retried, parked and re-driven.

Every learning event leaves one outbox row per receiver that wants it (see ``events.py``). A
worker (``worker.py``) claims due rows, hands each to its receiver's ``deliver`` and records the
answer here. Nothing in this module knows HTTP or Flask; it is the bookkeeping.

The delivery contract (what a receiver such as ``lti_tool.grades`` implements)::

    class MyReceiver:
        name = "ags"                                   # at most 16 characters, stable

        def wants(self, event: LearningEventRow) -> bool: ...

        def deliver(self, message: OutboxMessage, event: LearningEventRow, tool: Tool) -> Delivery:
            response = tool.http.post(...)             # or a connection error
            return Delivery.from_response(response)    # or Delivery.delivered() / .retry() / .permanent()

- ``message`` and ``event`` are detached, read-only copies of the rows. ``message.id`` is stable
  across retries (and ``event.id`` across receivers): use them to make a repeated delivery
  harmless, because delivery is at least once (a worker that dies after the receiver accepted
  but before it recorded the answer leaves the row to be delivered again).
- ``tool`` is the running ``lti_tool.app.Tool`` (``tool.db``, ``tool.http``, ``tool.keyring``,
  ``tool.service_connector(platform)``, ``tool.settings``). ``deliver`` runs inside the app's
  application context, in a worker thread, never inside a request.
- Answer with a ``Delivery``:

  * ``Delivery.delivered(status=None)`` — the receiver accepted it; the row is done.
  * ``Delivery.retry(error, status=None, retry_after=None)`` — a transient failure (connection
    refused, timeout, 5xx, 408, 429): tried again for ever, with exponential backoff and full
    jitter (``outbox.backoff_base_seconds`` doubling up to ``outbox.backoff_max_seconds``, or
    the receiver's Retry-After when longer).
  * ``Delivery.permanent(answer, status=None)`` — the receiver refused it and will refuse it
    again (a 4xx that will not change): retried with backoff until the row has been tried
    ``outbox.max_attempts`` times in all, then parked as ``dead`` with ``status`` and ``answer``
    kept, for ``npqsl-lti outbox status|retry`` and the admin page.

  ``Delivery.from_response(response)`` classifies an HTTP response that way, and
  ``Delivery.from_exception(exc)`` turns a connection error into a retry. An exception raised
  by ``deliver`` counts as a transient failure, with the traceback summary kept as the error.

Batches: a receiver may also answer several rows at once (an LRS taking statement arrays)::

        batch_size = 100                               # optional: most rows per call

        def deliver_many(self, items: Sequence[tuple[OutboxMessage, LearningEventRow]], tool: Tool
                         ) -> list[Delivery]: ...      # one Delivery per item, in order

  The worker then hands it the claimed rows of that receiver together, up to ``batch_size``
  (and never more than a worker claims at a time, ``outbox.batch_size``). Each row's answer is
  recorded on its own, exactly as for ``deliver``; an exception, or a list of the wrong length,
  counts as a transient failure of every row in the batch. ``deliver`` is still required.

Order: rows sharing an ``ordering_key`` (receiver, person, activity) are delivered in id order.
A row is claimable only while no earlier row with its key is still pending (leased or not), so
one failing delivery holds back the later ones of the same person and activity, and nothing
else. A dead row no longer holds anything back.

Claiming: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the batch and a lease is
set in the same transaction; on SQLite one conditional ``UPDATE ... RETURNING`` does both under
the database's write lock. Either way a row is held by one worker (``lease_owner``) until
``lease_until``; a worker that crashes loses its rows to the next worker once the lease expires,
and a worker whose lease was taken over cannot record an answer over the new owner's.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from .db import Database
from .models import LearningEventRow, OutboxMessage, utcnow

if TYPE_CHECKING:
    import requests

    from .app import Tool
    from .events import Receiver

log = logging.getLogger(__name__)

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
STATUSES = (PENDING, DELIVERED, DEAD)

DELIVERED_OUTCOME = "delivered"
RETRY_OUTCOME = "retry"
PERMANENT_OUTCOME = "permanent"

# The most of a receiver's answer or an error kept on a row.
MAX_ERROR_CHARS = 2000
# HTTP statuses that say "not now" rather than "never".
TRANSIENT_STATUSES = frozenset({408, 425, 429})


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Delivery:
    """A receiver's answer to one delivery: delivered, retry later, or a permanent failure."""

    outcome: str
    status: int | None = None
    error: str | None = None
    # Seconds the receiver asked to wait (HTTP Retry-After), for retries.
    retry_after: float | None = None

    @classmethod
    def delivered(cls, status: int | None = None) -> Delivery:
        """The receiver accepted the delivery."""
        return cls(DELIVERED_OUTCOME, status)

    @classmethod
    def retry(cls, error: str, status: int | None = None, retry_after: float | None = None) -> Delivery:
        """A transient failure (refused, timeout, 5xx, 408, 429): try again later, for ever."""
        return cls(RETRY_OUTCOME, status, _clip(error), retry_after)

    @classmethod
    def permanent(cls, answer: str, status: int | None = None) -> Delivery:
        """The receiver refused and will refuse again (a 4xx): dead after outbox.max_attempts."""
        return cls(PERMANENT_OUTCOME, status, _clip(answer))

    @classmethod
    def from_response(cls, response: requests.Response) -> Delivery:
        """2xx delivered; 408, 425, 429 and 5xx retry; any other 4xx permanent; else retry."""
        status = response.status_code
        if 200 <= status < 300:
            return cls.delivered(status)
        answer = f"{status} {response.reason or ''}".strip()
        body = (response.text or "").strip()
        if body:
            answer = f"{answer}: {body}"
        if 400 <= status < 500 and status not in TRANSIENT_STATUSES:
            return cls.permanent(answer, status)
        return cls.retry(answer, status, _retry_after(response.headers.get("Retry-After")))

    @classmethod
    def from_exception(cls, exc: BaseException) -> Delivery:
        """A connection error, timeout or any other failure to get an answer: retry."""
        return cls.retry(f"{exc.__class__.__name__}: {exc}")

    @property
    def is_delivered(self) -> bool:
        return self.outcome == DELIVERED_OUTCOME


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


@dataclass(frozen=True)
class Policy:
    """How long to wait between attempts and when to give up (the [outbox] settings)."""

    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    max_attempts: int = 5
    lease_seconds: float = 120.0

    @classmethod
    def from_settings(cls, outbox_settings) -> Policy:
        return cls(
            backoff_base_seconds=outbox_settings.backoff_base_seconds,
            backoff_max_seconds=outbox_settings.backoff_max_seconds,
            max_attempts=outbox_settings.max_attempts,
            lease_seconds=outbox_settings.lease_seconds,
        )


def backoff_delay(attempts: int, policy: Policy, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: full jitter, capped.

    Uniform between 0 and min(max, base * 2**(attempts-1)): retries from many rows spread out
    instead of arriving at a recovering receiver together.
    """
    ceiling = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2.0 ** min(max(attempts, 1) - 1, 60))
    return (rng or random).uniform(0.0, ceiling)


# -- receivers installed by other packages -------------------------------------------------

RECEIVER_ENTRY_POINT_GROUP = "npqsl_lti.receivers"
MAX_RECEIVER_NAME = 16


def installed_receivers(tool: Tool) -> list[Receiver]:
    """Receivers other packages install: each entry point in ``npqsl_lti.receivers`` names a
    factory called with the tool (``def make(tool) -> Receiver``).

    One that fails to load, or whose name is too long or taken, is logged and left out.
    """
    found: list[Receiver] = []
    for ep in entry_points(group=RECEIVER_ENTRY_POINT_GROUP):
        try:
            receiver = ep.load()(tool)
            name = receiver.name
            if not isinstance(name, str) or not 0 < len(name) <= MAX_RECEIVER_NAME:
                raise ValueError(f"name {name!r} must be 1-{MAX_RECEIVER_NAME} characters")
            if any(other.name == name for other in [*tool.events.receivers, *found]):
                raise ValueError(f"name {name!r} is already taken")
            if not callable(getattr(receiver, "wants", None)) or not callable(getattr(receiver, "deliver", None)):
                raise ValueError("wants() and deliver() must be callable")
        except Exception as exc:  # noqa: BLE001 - a broken receiver must not stop the tool
            log.error("outbox receiver %s (%s) left out: %s: %s", ep.name, ep.value, exc.__class__.__name__, exc)
            continue
        found.append(receiver)
    return found


# -- claiming ---------------------------------------------------------------------------------


def _claimable(now: datetime, due_before: datetime):
    """Due, not leased (or the lease expired), and first in line for its ordering key."""
    row = OutboxMessage
    earlier = aliased(OutboxMessage)
    return and_(
        row.status == PENDING,
        row.next_attempt_at <= due_before,
        or_(row.lease_until.is_(None), row.lease_until < now),
        ~exists().where(
            earlier.ordering_key == row.ordering_key,
            earlier.id < row.id,
            earlier.status == PENDING,
        ),
    )


def claim(
    db: Database, owner: str, *, limit: int, lease_seconds: float, due_before: datetime | None = None
) -> list[int]:
    """Lease up to ``limit`` due rows to ``owner``, oldest-due first; returns their ids in id order."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    due_before = min(now, due_before) if due_before else now
    # Oldest-due first (the ix_outbox_due index), so rows paused behind a failing one get their turn.
    pick = (
        select(OutboxMessage.id)
        .where(_claimable(now, due_before))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    with db.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            ids = list(session.scalars(pick.with_for_update(skip_locked=True, of=OutboxMessage)))
            if ids:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .values(lease_owner=owner, lease_until=until)
                    .execution_options(synchronize_session=False)
                )
        else:
            # One statement: SQLite takes its write lock before reading, so two workers cannot
            # both see a row unleased.
            ids = list(
                session.scalars(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(pick.scalar_subquery()))
                    .values(lease_owner=owner, lease_until=until)
                    .returning(OutboxMessage.id)
                    .execution_options(synchronize_session=False)
                )
            )
    return sorted(ids)


def load(db: Database, ids: Sequence[int]) -> list[tuple[OutboxMessage, LearningEventRow]]:
    """The claimed rows and their events, detached, in id order."""
    if not ids:
        return []
    with db.sessions() as session:
        messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
        events = {
            e.id: e
            for e in session.scalars(
                select(LearningEventRow).where(LearningEventRow.id.in_({m.event_id for m in messages}))
            )
        }
        session.expunge_all()
    return sorted(((m, events[m.event_id]) for m in messages if m.event_id in events), key=lambda p: p[0].id)


def renew(db: Database, owner: str, ids: Iterable[int], lease_seconds: float) -> set[int]:
    """Extend the lease on rows ``owner`` still holds; returns the ids it still holds."""
    ids = list(ids)
    if not ids:
        return set()
    until = utcnow() + timedelta(seconds=lease_seconds)
    with db.transaction() as session:
        return set(
            session.scalars(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.lease_owner == owner,
                    OutboxMessage.status == PENDING,
                )
                .values(lease_until=until)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
        )


def release(db: Database, owner: str, ids: Iterable[int], next_attempt_at: datetime | None = None) -> int:
    """Give rows back without an attempt (a stopping worker, a receiver known to be down)."""
    ids = list(ids)
    if not ids:
        return 0
    values: dict = {"lease_owner": None, "lease_until": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with db.transaction() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.lease_owner == owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


@dataclass(frozen=True)
class Recorded:
    """What became of a row after an answer: its new status, and when it is tried next."""

    held: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None = None


def record_answer(
    db: Database,
    message: OutboxMessage,
    owner: str,
    delivery: Delivery,
    policy: Policy,
    rng: random.Random | None = None,
) -> Recorded:
    """Store a receiver's answer on a row ``owner`` holds; refuse if the lease was taken over."""
    now = utcnow()
    attempts = message.attempts + 1
    values: dict = {
        "attempts": attempts,
        "lease_owner": None,
        "lease_until": None,
        "last_status": delivery.status,
    }
    next_at = None
    if delivery.is_delivered:
        new_status = DELIVERED
        values.update(status=DELIVERED, delivered_at=now, last_error=None)
    elif delivery.outcome == PERMANENT_OUTCOME and attempts >= policy.max_attempts:
        new_status = DEAD
        values.update(status=DEAD, last_error=delivery.error)
    else:
        new_status = PENDING
        delay = backoff_delay(attempts, policy, rng)
        if delivery.retry_after:
            delay = max(delay, min(delivery.retry_after, policy.backoff_max_seconds))
        next_at = now + timedelta(seconds=delay)
        values.update(next_attempt_at=next_at, last_error=delivery.error)
    with db.transaction() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.lease_owner == owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        held = result.rowcount == 1
    return Recorded(held, new_status, attempts, next_at)


# -- operating it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RowSummary:
    """One row as an operator sees it."""

    id: int
    platform_id: int
    receiver: str
    event_id: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    leased: bool

    @classmethod
    def of(cls, row: OutboxMessage, now: datetime) -> RowSummary:
        return cls(
            id=row.id,
            platform_id=row.platform_id,
            receiver=row.receiver,
            event_id=row.event_id,
            status=row.status,
            attempts=row.attempts,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            leased=bool(row.lease_until and row.lease_until > now),
        )

    @property
    def answer(self) -> str:
        """The last answer in one line: ``400 Bad Request: {...}``, ``ConnectionError: ...``."""
        status = str(self.last_status) if self.last_status is not None else ""
        error = self.last_error or ""
        if status and not error.startswith(status):
            return f"{status} {error}".strip()
        return error or status

    def as_json(self) -> dict:
        data = dict(self.__dict__, answer=self.answer)
        for key in ("created_at", "next_attempt_at"):
            data[key] = data[key].isoformat(timespec="seconds")
        return data


@dataclass(frozen=True)
class Status:
    """Counts per receiver and status, the oldest pending row, and the dead rows."""

    counts: dict[str, dict[str, int]]
    oldest_pending: RowSummary | None
    dead: list[RowSummary]
    dead_total: int
    now: datetime = field(default_factory=utcnow)

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return self.now - self.oldest_pending.created_at if self.oldest_pending else None

    def total(self, status: str) -> int:
        return sum(by_status.get(status, 0) for by_status in self.counts.values())

    def as_json(self) -> dict:
        age = self.oldest_pending_age
        return {
            "counts": self.counts,
            "oldest_pending": self.oldest_pending.as_json() if self.oldest_pending else None,
            "oldest_pending_age_seconds": round(age.total_seconds(), 1) if age is not None else None,
            "dead": [row.as_json() for row in self.dead],
            "dead_total": self.dead_total,
        }


def _scope(statement, platform_id: int | None):
    return statement.where(OutboxMessage.platform_id == platform_id) if platform_id is not None else statement


def status(db: Database, *, platform_id: int | None = None, dead_limit: int = 100) -> Status:
    """What the outbox holds; ``platform_id`` limits it to one tenant (the admin page)."""
    now = utcnow()
    counts: dict[str, dict[str, int]] = {}
    with db.sessions() as session:
        grouped = _scope(
            select(OutboxMessage.receiver, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.receiver, OutboxMessage.status
            ),
            platform_id,
        )
        for receiver, row_status, count in session.execute(grouped):
            counts.setdefault(receiver, dict.fromkeys(STATUSES, 0))[row_status] = count
        oldest = session.scalars(
            _scope(select(OutboxMessage).where(OutboxMessage.status == PENDING), platform_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(1)
        ).first()
        dead = session.scalars(
            _scope(select(OutboxMessage).where(OutboxMessage.status == DEAD), platform_id)
            .order_by(OutboxMessage.id)
            .limit(dead_limit)
        ).all()
        return Status(
            counts=dict(sorted(counts.items())),
            oldest_pending=RowSummary.of(oldest, now) if oldest else None,
            dead=[RowSummary.of(row, now) for row in dead],
            dead_total=sum(c.get(DEAD, 0) for c in counts.values()),
            now=now,
        )


def retry_dead(
    db: Database,
    *,
    ids: Iterable[int] = (),
    receiver: str | None = None,
    platform_id: int | None = None,
) -> list[int]:
    """Put dead rows back to pending with their attempts reset; returns the ids re-driven.

    With no ``ids`` and no ``receiver``, every dead row (of ``platform_id``, when given).
    """
    ids = list(ids)
    statement = _scope(update(OutboxMessage).where(OutboxMessage.status == DEAD), platform_id)
    if ids:
        statement = statement.where(OutboxMessage.id.in_(ids))
    if receiver is not None:
        statement = statement.where(OutboxMessage.receiver == receiver)
    statement = statement.values(
        status=PENDING, attempts=0, next_attempt_at=utcnow(), lease_owner=None, lease_until=None
    )
    with db.transaction() as session:
        return sorted(
            session.scalars(statement.returning(OutboxMessage.id).execution_options(synchronize_session=False))
        )


def purge_delivered(db: Database, older_than: timedelta) -> int:
    """Delete rows delivered more than ``older_than`` ago (the events themselves stay)."""
    cutoff = utcnow() - older_than
    with db.transaction() as session:
        result = session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.status == DELIVERED, OutboxMessage.delivered_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def format_age(age: timedelta | None) -> str:
    """``3d 4h``, ``5m 2s``, ``12s``: short enough for a status line."""
    if age is None:
        return "-"
    seconds = max(0, int(age.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"
