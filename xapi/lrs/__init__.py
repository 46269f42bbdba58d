"""The embedded learning record store: xAPI 2.0.0 and 1.0.3 resources over the tool's database.

``statement_store(tool)`` is the one ``StatementStore`` of a running tool: the Statements API
writes through it and so must the tool's own receivers, so that ``after_store`` callbacks (the
flat projection) see every statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from lti_tool.app import Tool

    from .store import StatementStore

_stores: WeakKeyDictionary = WeakKeyDictionary()


def statement_store(tool: Tool) -> StatementStore:
    """The tool's statement store, made on first use."""
    from .store import StatementStore

    store = _stores.get(tool)
    if store is None:
        store = _stores[tool] = StatementStore(tool.db)
    return store
