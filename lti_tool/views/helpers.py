"""Small helpers views share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from ..app import Tool


def tool() -> Tool:
    """The running tool's services (database, keys, settings, validator)."""
    return current_app.extensions["npqsl_lti"]
