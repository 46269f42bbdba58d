"""The outbox worker: claim due rows, hand each to its receiver, record the answer; repeat.

Runs as its own process (``npqsl-lti worker``, any number of them on any number of machines)
or, in development, as a background thread of the web process (``outbox.inline_worker``). The
bookkeeping — claiming, leases, backoff, dead rows — lives in ``outbox.py``; this module is the
loop around it and the guard that keeps one bad row or receiver from stopping the others.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from . import outbox
from .models import LearningEventRow, OutboxMessage, utcnow
from .outbox import Delivery, Policy

if TYPE_CHECKING:
    from flask import Flask

    from .events import Receiver

log = logging.getLogger("lti_tool.worker")

# Frames of a receiver's traceback kept on the row, innermost last.
TRACEBACK_FRAMES = 3


def worker_name(prefix: str = "worker") -> str:
    """A lease owner unique to this worker: host, process and a random suffix."""
    return f"{prefix}:{socket.gethostname()[:24]}:{os.getpid()}:{secrets.token_hex(4)}"


def exception_summary(exc: BaseException) -> str:
    """``ValueError: bad score (at grades.py:88 in deliver <- ...)``, for an operator."""
    summary = traceback.TracebackException.from_exception(exc)
    text = "".join(summary.format_exception_only()).strip()
    frames = [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in summary.stack[-TRACEBACK_FRAMES:]]
    return f"{text} (at {' <- '.join(reversed(frames))})" if frames else text


def _answer(delivery: Delivery) -> str:
    status = str(delivery.status) if delivery.status is not None else ""
    error = delivery.error or ""
    return error if error.startswith(status) else f"{status} {error}".strip()


class Worker:
    """One delivery loop with its own lease owner name; run several for concurrency."""

    def __init__(
        self,
        app: Flask,
        *,
        name: str | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        policy: Policy | None = None,
    ):
        self.app = app
        self.tool = app.extensions["npqsl_lti"]
        settings = self.tool.settings.outbox
        self.name = name or worker_name()
        self.batch_size = batch_size or settings.batch_size
        self.poll_interval = settings.poll_interval_seconds if poll_interval is None else poll_interval
        self.policy = policy or Policy.from_settings(settings)
        # What this worker's attempts came to: delivered, retry, failed (permanent, not yet dead), dead.
        self.outcomes: Counter[str] = Counter()

    @property
    def db(self):
        return self.tool.db

    def receivers(self) -> dict[str, Receiver]:
        return {receiver.name: receiver for receiver in self.tool.events.receivers}

    # -- one batch ------------------------------------------------------------------------
    def run_once(self, *, due_before: datetime | None = None, stop: threading.Event | None = None) -> int:
        """Claim one batch and deliver it; returns how many rows were claimed."""
        ids = outbox.claim(
            self.db,
            self.name,
            limit=self.batch_size,
            lease_seconds=self.policy.lease_seconds,
            due_before=due_before,
        )
        if ids:
            self._deliver_batch(ids, stop)
        return len(ids)

    def _deliver_batch(self, ids: list[int], stop: threading.Event | None) -> None:
        held = set(ids)
        renew_at = time.monotonic() + self.policy.lease_seconds / 2
        receivers = self.receivers()
        # A receiver that just failed for a platform is not tried again for it in this batch: its
        # other rows go back without an attempt, due again after backoff_base_seconds, so a VLE
        # that is down gets one attempt per pause, not fifty at once. They are not tied to the
        # failed row's time, whose own backoff grows, so a row that keeps failing (and claims go
        # oldest-due first) cannot starve the rows behind it.
        down: set[tuple[str, int]] = set()
        paused: set[int] = set()
        try:
            with self.app.app_context():
                for unit in self._units(outbox.load(self.db, ids), receivers):
                    if stop is not None and stop.is_set():
                        break
                    if time.monotonic() >= renew_at:
                        held &= outbox.renew(self.db, self.name, held, self.policy.lease_seconds)
                        renew_at = time.monotonic() + self.policy.lease_seconds / 2
                    due: list[tuple[OutboxMessage, LearningEventRow]] = []
                    for message, event in unit:
                        if message.id not in held:
                            continue
                        if (message.receiver, message.platform_id) in down:
                            paused.add(message.id)
                            continue
                        due.append((message, event))
                    if not due:
                        continue
                    for (message, _event), (delivery, from_receiver) in zip(
                        due, self._attempt_unit(receivers, due), strict=True
                    ):
                        recorded = outbox.record_answer(self.db, message, self.name, delivery, self.policy)
                        held.discard(message.id)
                        self._note(message, delivery, recorded)
                        if recorded.held and delivery.outcome == outbox.RETRY_OUTCOME and from_receiver:
                            down.add((message.receiver, message.platform_id))
        finally:
            # Rows not attempted (stopping, an error) go back at once, without an attempt.
            if paused & held:
                pause = timedelta(seconds=self.policy.backoff_base_seconds)
                outbox.release(self.db, self.name, paused & held, utcnow() + pause)
            if held - paused:
                outbox.release(self.db, self.name, held - paused)

    def _units(
        self, loaded: list[tuple[OutboxMessage, LearningEventRow]], receivers: dict[str, Receiver]
    ) -> list[list[tuple[OutboxMessage, LearningEventRow]]]:
        """The claimed rows as delivery units, in id order of their first row: one row each, or
        up to the receiver's ``batch_size`` together for a receiver with ``deliver_many``.

        A claim never holds two rows with the same ordering key (see ``outbox._claimable``), so
        delivering a unit's rows together keeps every key's order.
        """
        units: list[list[tuple[OutboxMessage, LearningEventRow]]] = []
        open_units: dict[str, list] = {}
        for item in loaded:
            receiver = receivers.get(item[0].receiver)
            if receiver is None or not callable(getattr(receiver, "deliver_many", None)):
                units.append([item])
                continue
            unit = open_units.get(receiver.name)
            if unit is None or len(unit) >= max(1, getattr(receiver, "batch_size", self.batch_size)):
                unit = open_units[receiver.name] = []
                units.append(unit)
            unit.append(item)
        return units

    def _attempt_unit(
        self, receivers: dict[str, Receiver], unit: list[tuple[OutboxMessage, LearningEventRow]]
    ) -> list[tuple[Delivery, bool]]:
        """One answer per row of the unit, and whether each came from the receiver."""
        first = unit[0][0]
        receiver = receivers.get(first.receiver)
        deliver_many = getattr(receiver, "deliver_many", None)
        if not callable(deliver_many):
            return [self._attempt(receivers, message, event) for message, event in unit]
        try:
            deliveries = list(deliver_many(unit, self.tool))
        except Exception as exc:  # noqa: BLE001 - any fault of one batch must not stop the others
            log.warning("outbox %s..: receiver %s raised on a batch", first.id, first.receiver, exc_info=True)
            return [(Delivery.retry(exception_summary(exc)), False)] * len(unit)
        if len(deliveries) != len(unit) or not all(isinstance(d, Delivery) for d in deliveries):
            fault = Delivery.retry(f"receiver {first.receiver!r} did not answer one Delivery per row of its batch")
            return [(fault, False)] * len(unit)
        return [(delivery, True) for delivery in deliveries]

    def _attempt(
        self, receivers: dict[str, Receiver], message: OutboxMessage, event: LearningEventRow
    ) -> tuple[Delivery, bool]:
        """The receiver's answer, and whether it came from the receiver (not from a fault)."""
        receiver = receivers.get(message.receiver)
        if receiver is None:
            return Delivery.retry(f"no receiver named {message.receiver!r} is installed in this worker"), False
        try:
            delivery = receiver.deliver(message, event, self.tool)
        except Exception as exc:  # noqa: BLE001 - any fault of one delivery must not stop the others
            log.warning("outbox %s: receiver %s raised", message.id, message.receiver, exc_info=True)
            return Delivery.retry(exception_summary(exc)), False
        if not isinstance(delivery, Delivery):
            return Delivery.retry(f"receiver {message.receiver!r} answered {delivery!r}, not a Delivery"), False
        return delivery, True

    def _note(self, message: OutboxMessage, delivery: Delivery, recorded: outbox.Recorded) -> None:
        if not recorded.held:
            self.outcomes["lost_lease"] += 1
            log.warning(
                "outbox %s: lease of %s was taken over before the answer (%s) was stored",
                message.id,
                self.name,
                delivery.outcome,
            )
            return
        if recorded.status == outbox.DELIVERED:
            self.outcomes["delivered"] += 1
            log.debug("outbox %s: delivered to %s", message.id, message.receiver)
        elif recorded.status == outbox.DEAD:
            self.outcomes["dead"] += 1
            log.error(
                "outbox %s: %s refused it %d times, now dead: %s",
                message.id,
                message.receiver,
                recorded.attempts,
                _answer(delivery),
            )
        else:
            self.outcomes["retry" if delivery.outcome == outbox.RETRY_OUTCOME else "failed"] += 1
            log.info(
                "outbox %s: %s attempt %d failed (%s); next at %s",
                message.id,
                message.receiver,
                recorded.attempts,
                _answer(delivery),
                recorded.next_attempt_at.isoformat(timespec="seconds") if recorded.next_attempt_at else "-",
            )

    # -- loops ----------------------------------------------------------------------------
    def drain(self, stop: threading.Event | None = None) -> int:
        """Deliver everything due when called (following each ordering key), then return.

        Rows that fail wait for their backoff past the start, so a receiver that is down ends
        the drain instead of being hammered.
        """
        started = utcnow()
        total = 0
        while not (stop is not None and stop.is_set()):
            claimed = self.run_once(due_before=started, stop=stop)
            if not claimed:
                break
            total += claimed
        return total

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set: at once after a busy batch, after poll_interval when idle."""
        log.info("outbox worker %s started", self.name)
        while not stop.is_set():
            try:
                claimed = self.run_once(stop=stop)
            except Exception:  # noqa: BLE001 - the database may be away for a while; keep polling
                log.exception("outbox worker %s: poll failed", self.name)
                claimed = 0
            if not claimed:
                stop.wait(self.poll_interval)
        log.info("outbox worker %s stopped", self.name)


class WorkerThreads:
    """Several workers in daemon threads sharing one stop event."""

    def __init__(self, app: Flask, count: int = 1, *, prefix: str = "worker", **worker_options):
        self.stop_event = threading.Event()
        self.workers = [Worker(app, name=worker_name(prefix), **worker_options) for _ in range(count)]
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable[[Worker], object] | None = None) -> WorkerThreads:
        """Run each worker's poll loop (or ``target(worker)``) in a thread of its own."""

        def body(worker: Worker) -> None:
            if target is None:
                worker.run(self.stop_event)
            else:
                target(worker)

        for worker in self.workers:
            thread = threading.Thread(target=body, args=(worker,), name=worker.name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def drain(self) -> Counter[str]:
        """Every worker drains what is due; returns the outcomes of all of them together."""
        self.start(lambda worker: worker.drain(self.stop_event)).join()
        return self.outcomes()

    def join(self, timeout: float | None = None) -> WorkerThreads:
        for thread in self._threads:
            thread.join(timeout)
        return self

    def stop(self, timeout: float | None = 30) -> None:
        """Ask every worker to stop after its current delivery, and wait for them."""
        self.stop_event.set()
        self.join(timeout)

    @property
    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def outcomes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for worker in self.workers:
            total.update(worker.outcomes)
        return total
