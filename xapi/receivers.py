"""The outbox receivers that turn learning events into statements: the embedded LRS, external LRSs.

Both answer in batches (``deliver_many``, see ``lti_tool.outbox``): the worker hands them up to
``batch_size`` rows at once, and they store or POST the statements together.

- ``LrsReceiver`` ("lrs") stores statements in the embedded LRS through ``StatementStore``, in
  the tool's own database, with the tool as the authority. No HTTP.
- ``ForwardReceiver`` (one per ``[[xapi.forward]]``, named after it) POSTs statement arrays to an
  external LRS with HTTP Basic credentials and the endpoint's ``X-Experience-API-Version``.

Statement ids derive from event ids, so a statement an LRS already holds is a re-send: a 409 (or
the store's conflict) counts as delivered. A batch the LRS refuses as a whole (409, 400, 413)
goes again one statement at a time, by PUT with its statementId, so one refused or duplicate
statement never holds back the rest. Refused connections, timeouts, 5xx, 408 and 429 retry for
ever through the outbox. A statement that cannot be built or fails validation is a bug: it is
logged as an error and answered as a permanent failure, so it ends up dead and visible
(``npqsl-lti outbox status``), never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import requests

from lti_tool.outbox import RETRY_OUTCOME, TRANSIENT_STATUSES, Delivery

from .statements import StatementBuilder, StatementBuildError

if TYPE_CHECKING:
    from lti_tool.app import Tool
    from lti_tool.models import LearningEventRow, OutboxMessage
    from lti_tool.settings import ForwardLrs

    from .lrs.store import StatementStore

    Item = tuple[OutboxMessage, LearningEventRow]

log = logging.getLogger(__name__)

LRS_RECEIVER = "lrs"
# Rows the embedded LRS stores in one transaction.
LRS_BATCH_SIZE = 100
# Statuses that say "this LRS will not take these credentials": no point trying one by one.
AUTH_STATUSES = frozenset({401, 403})


def _unbuildable(error: StatementBuildError) -> Delivery:
    return Delivery.permanent(f"statement not built (a bug; see the log): {error}")


class _StatementReceiver:
    """What both receivers share: every event is wanted, and one row is a batch of one."""

    name: str
    batch_size: int

    def __init__(self, builder: StatementBuilder):
        self.builder = builder

    def wants(self, event: LearningEventRow) -> bool:
        return True

    def deliver(self, message: OutboxMessage, event: LearningEventRow, tool: Tool) -> Delivery:
        [delivery] = self.deliver_many([(message, event)], tool)
        return delivery

    def deliver_many(self, items: Sequence[Item], tool: Tool) -> list[Delivery]:
        answers: list[Delivery | None] = [None] * len(items)
        ready: list[tuple[int, dict]] = []
        for index, built in enumerate(self.builder.build_many([event for _, event in items])):
            if isinstance(built, StatementBuildError):
                answers[index] = _unbuildable(built)
            else:
                ready.append((index, built))
        if ready:
            for index, delivery in self._send(items, ready, tool):
                answers[index] = delivery
        return [answer or Delivery.retry("no answer recorded") for answer in answers]

    def _send(self, items: Sequence[Item], ready: list[tuple[int, dict]], tool: Tool):
        raise NotImplementedError


class LrsReceiver(_StatementReceiver):
    """Stores statements in the embedded LRS, the tool being their authority."""

    name = LRS_RECEIVER
    batch_size = LRS_BATCH_SIZE

    def __init__(self, builder: StatementBuilder, store: StatementStore):
        super().__init__(builder)
        self.store = store
        self.authority = builder.vocab.tool_agent(builder.factory.settings.registration.tool_name)

    def _send(self, items, ready, tool):
        from .lrs.store import StatementConflict, StatementError

        # The store keeps each statement with its platform (tenant): one call per platform.
        by_platform: dict[int, list[tuple[int, dict]]] = {}
        for index, statement in ready:
            by_platform.setdefault(items[index][1].platform_id, []).append((index, statement))
        for platform_id, group in by_platform.items():
            try:
                self._store([s for _, s in group], platform_id)
            except StatementError:
                # One statement spoils the batch (all or nothing): store them one at a time.
                for index, statement in group:
                    try:
                        self._store([statement], platform_id)
                    except StatementConflict:
                        yield index, Delivery.delivered(409)
                    except StatementError as exc:
                        log.error("embedded LRS refused statement %s: %s", statement["id"], exc)
                        yield index, Delivery.permanent(f"400 {exc}", 400)
                    except Exception as exc:  # noqa: BLE001 - the database may be away: retry
                        yield index, Delivery.from_exception(exc)
                    else:
                        yield index, Delivery.delivered(204)
            except Exception as exc:  # noqa: BLE001 - the database may be away: retry
                for index, _ in group:
                    yield index, Delivery.from_exception(exc)
            else:
                for index, _ in group:
                    yield index, Delivery.delivered(204)

    def _store(self, statements: list[dict], platform_id: int) -> None:
        self.store.store(statements, authority=self.authority, platform_id=platform_id)


class ForwardReceiver(_StatementReceiver):
    """POSTs statements to one external LRS, in arrays of up to its batch_size."""

    def __init__(self, builder: StatementBuilder, lrs: ForwardLrs):
        super().__init__(builder)
        self.lrs = lrs
        self.name = lrs.name
        self.batch_size = lrs.batch_size
        self.statements_url = lrs.url.rstrip("/") + "/statements"
        self.headers = {"X-Experience-API-Version": lrs.version, "Content-Type": "application/json"}
        self.auth = (lrs.username, lrs.password) if lrs.username or lrs.password else None

    def _send(self, items, ready, tool):
        try:
            response = tool.http.post(
                self.statements_url, json=[s for _, s in ready], headers=self.headers, auth=self.auth
            )
        except requests.RequestException as exc:
            failed = Delivery.from_exception(exc)
            return [(index, failed) for index, _ in ready]
        status = response.status_code
        if 200 <= status < 300:
            return [(index, Delivery.delivered(status)) for index, _ in ready]
        if 400 <= status < 500 and status not in TRANSIENT_STATUSES | AUTH_STATUSES and len(ready) > 1:
            log.info("%s answered %s to a batch of %d; sending them one at a time", self.name, status, len(ready))
            return self._one_by_one(ready, tool)
        return [(index, self._answer(response)) for index, _ in ready]

    def _one_by_one(self, ready: list[tuple[int, dict]], tool: Tool) -> list[tuple[int, Delivery]]:
        answers: list[tuple[int, Delivery]] = []
        for position, (index, statement) in enumerate(ready):
            try:
                response = tool.http.put(
                    self.statements_url,
                    params={"statementId": statement["id"]},
                    json=statement,
                    headers=self.headers,
                    auth=self.auth,
                )
            except requests.RequestException as exc:
                delivery = Delivery.from_exception(exc)
            else:
                delivery = self._answer(response)
            answers.append((index, delivery))
            if delivery.outcome == RETRY_OUTCOME:
                # The LRS went away mid-way: the rest wait for the next attempt, untried.
                answers.extend((i, delivery) for i, _ in ready[position + 1 :])
                break
        return answers

    def _answer(self, response: requests.Response) -> Delivery:
        if response.status_code == 409:
            # The LRS holds a statement with this id already: the event's statement is there.
            return Delivery.delivered(409)
        delivery = Delivery.from_response(response)
        if delivery.outcome == "permanent":
            log.error("%s refused a statement: %s", self.name, delivery.error)
        return delivery


def install(tool: Tool) -> None:
    """Add the embedded LRS (when on) and one receiver per external LRS to the tool's receivers."""
    from lti_tool.settings import SettingsError

    from .lrs import statement_store

    builder = StatementBuilder(tool)
    if not tool.settings.public_url and not tool.settings.is_development:
        log.warning("NPQSL_PUBLIC_URL is not set: xAPI activity IRIs use %s", builder.vocab.base)
    wanted: list[_StatementReceiver] = []
    if tool.settings.xapi.lrs_enabled:
        wanted.append(LrsReceiver(builder, statement_store(tool)))
    wanted.extend(ForwardReceiver(builder, lrs) for lrs in tool.settings.xapi.forward)
    taken = {receiver.name for receiver in tool.events.receivers}
    for receiver in wanted:
        if receiver.name in taken:
            raise SettingsError(f"NPQSL_XAPI_FORWARD: the name {receiver.name!r} is taken by another receiver")
        taken.add(receiver.name)
        tool.events.add_receiver(receiver)
