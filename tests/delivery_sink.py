"""A receiving end for outbox tests: an HTTP server we control, and a receiver that posts to it.

The sink counts what it accepts by outbox message id, so tests can prove nothing was delivered
twice or lost; it can answer 503 (``available = False``), answer as a test says (``answer``), be
slow (``delay``), or be closed so connections are refused and reopened on the same port.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from lti_tool import launch as launches
from lti_tool.events import LearningEvent
from lti_tool.models import OutboxMessage
from lti_tool.outbox import Delivery

from .browser import Browser
from .platform_emulator import LEARNER, LaunchSpec

SINK_URL_ENV = "NPQSL_TEST_SINK_URL"
PLUGIN_KEY = "example-reflection"

# An answer: a status, or (status, body, headers).
Answer = int | tuple[int, str, dict[str, str]]


class Sink:
    """An HTTP server on 127.0.0.1 that records every delivery and answers as told."""

    __test__ = False

    def __init__(self):
        self._lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.available = True
        self.delay = 0.0
        self.answer: Callable[[dict], Answer] = lambda body: 200
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}/deliveries"
        self._thread: threading.Thread | None = None

    def start(self) -> Sink:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening: connections to the port are refused until ``reopen``."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread = None

    def reopen(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self.start()

    stop = close

    def _wsgi(self, environ, start_response):
        body = Request(environ).get_json(force=True, silent=True) or {}
        if self.delay:
            time.sleep(self.delay)
        if not self.available:
            answer: Answer = (503, "sink down for maintenance", {"Retry-After": "1"})
        else:
            answer = self.answer(body)
        status, text, headers = answer if isinstance(answer, tuple) else (answer, "", {})
        with self._lock:
            self.received.append({**body, "status": status})
        return Response(text or json.dumps({"ok": status < 300}), status=status, headers=headers)(
            environ, start_response
        )

    # -- what it saw -----------------------------------------------------------------------
    def accepted(self) -> list[dict]:
        with self._lock:
            return [r for r in self.received if 200 <= r["status"] < 300]

    def accepted_ids(self) -> Counter[int]:
        return Counter(r["message"] for r in self.accepted())

    def attempts_of(self, message_id: int) -> list[int]:
        with self._lock:
            return [r["status"] for r in self.received if r["message"] == message_id]


class SinkReceiver:
    """A receiver like the real ones: one HTTP POST per delivery, answered through Delivery."""

    def __init__(self, url: str, name: str = "sink"):
        self.url = url
        self.name = name

    def wants(self, event) -> bool:
        return True

    def deliver(self, message, event, tool) -> Delivery:
        body = {"message": message.id, "key": message.ordering_key, "event": event.id, "activity": event.activity}
        try:
            response = tool.http.post(self.url, json=body, timeout=5)
        except requests.RequestException as exc:
            return Delivery.from_exception(exc)
        return Delivery.from_response(response)


def receiver_from_env(tool) -> SinkReceiver:
    """The entry-point factory the CLI tests install (group npqsl_lti.receivers)."""
    return SinkReceiver(os.environ[SINK_URL_ENV])


# -- a tool with a person who has launched ------------------------------------------------------


def launch_context(server, platform, *, sub: str = "cand-1", roles: list[str] | None = None):
    """Launch through the test platform; returns the LaunchContext and its launch reference."""
    page = Browser().launch(server, platform, LaunchSpec(sub=sub, roles=roles or [LEARNER]))
    assert page.status_code == 200, page.text[:500]
    token = re.search(r"launch=([^\"&]+)", page.text).group(1)
    return launches.load(server.db, server.tool.launch_tokens.read(token)), token


def emit(server, context, activities: list[str], kind: str = "progressed") -> list[int]:
    """Record one event per activity (in order); returns the outbox ids created, in id order."""
    with server.tool.events.record(context, PLUGIN_KEY) as rec:
        event_ids = [rec.emit(LearningEvent(kind, activity)) for activity in activities]
    with server.db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.event_id.in_(event_ids)).order_by(OutboxMessage.id)
            )
        )


def rows(server, ids: list[int] | None = None) -> dict[int, OutboxMessage]:
    with server.db.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        return {row.id: row for row in session.scalars(query)}


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
