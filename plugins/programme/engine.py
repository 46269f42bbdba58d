"""The module engine's progress API (``plugins.modules.progress``), as the dashboard reads it.

The dashboard still works when the engine is not installed: it then lists no modules and says
why, instead of failing. Everything else in this plugin goes through these four functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plugins.contract import LaunchContext

from .plan import as_datetime


def _api():
    try:
        from plugins.modules import progress
    except ImportError:
        return None
    return progress


def available() -> bool:
    """Whether the module engine is installed."""
    return _api() is not None


def installed_packs() -> list[Any]:
    """The installed modules (PackSummary: key, title, status, summary, estimated_hours, units)."""
    api = _api()
    return list(api.installed_packs()) if api else []


def progress_for(context: LaunchContext) -> Mapping[str, Any]:
    """The launching candidate's ModuleProgress per module key."""
    api = _api()
    return api.progress_for(context) if api else {}


def course_progress(context: LaunchContext) -> Mapping[str, Mapping[str, Any]]:
    """Every candidate's ModuleProgress in the launch's course: sub -> module key -> progress."""
    api = _api()
    return api.course_progress(context) if api else {}


@dataclass(frozen=True)
class SharedReflection:
    """A reflection a candidate chose to share with their coach, as the coach view shows it."""

    module: str
    unit: str
    prompt: str
    text: str
    updated_at: datetime | None


def _field(item: Any, *names: str, default: Any = "") -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value not in (None, ""):
            return value
    return default


def shared_reflections(context: LaunchContext, sub: str) -> list[SharedReflection]:
    """The reflections candidate ``sub`` shared in the launch's course, newest first."""
    api = _api()
    if api is None:
        return []
    shared = [
        SharedReflection(
            module=_field(item, "module_title", "module", "module_key"),
            unit=_field(item, "unit_title", "unit", "unit_key"),
            prompt=_field(item, "prompt", "prompt_text", "question"),
            text=_field(item, "text", "answer"),
            updated_at=as_datetime(_field(item, "updated_at", "saved_at", "shared_at", default=None)),
        )
        for item in api.shared_reflections(context, sub)
    ]
    return sorted(shared, key=lambda r: r.updated_at.timestamp() if r.updated_at else 0.0, reverse=True)
