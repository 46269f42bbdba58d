"""The module engine's read API for other plugins (the programme dashboard, the coach view).

Call these inside a request of the running tool (they find the installed packs through the
app). Each enforces its own role rule and raises ``NotPermitted`` otherwise; every read is
scoped to the launch's platform and course.

- ``installed_packs() -> list[PackSummary]``: the modules that loaded, essentials first.
- ``progress_for(context) -> dict[module_key, ModuleProgress]``: the launch person's own.
- ``course_progress(context) -> dict[sub, dict[module_key, ModuleProgress]]``: everyone with
  progress in the launch's course; coaches and administrators only.
- ``shared_reflections(context, sub) -> list[SharedReflection]``: the reflections a person
  chose to share with their coach; for coaches and administrators of the same course, and for
  the person themselves.

``ModuleProgress`` (``plugins.modules.engine``) has ``module``, ``units_visited``,
``units_total``, ``reflections_answered``, ``reflections_total``, ``checks_passed``,
``checks_total``, ``percent`` (0-100), ``completed``, ``completed_at`` (ISO 8601 or None) and
``score`` (0-100 or None); ``as_dict()`` for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from lti_tool.plugin_records import course_records
from plugins.contract import ADMINISTRATOR, COACH, LaunchContext

from .engine import PROGRESS, ModuleProgress, progress_of
from .packs import Pack, PackSet, Reflection

PLUGIN_KEY = "modules"
COURSE_VIEWERS = (COACH, ADMINISTRATOR)


class NotPermitted(PermissionError):
    """The launch's role may not see what was asked for."""


@dataclass(frozen=True)
class PackSummary:
    key: str
    title: str
    status: str  # "essential" | "elective"
    summary: str
    estimated_hours: float
    unit_count: int


@dataclass(frozen=True)
class SharedReflection:
    module: str
    module_title: str
    unit: str
    unit_title: str
    reflection: str
    prompt: str
    text: str
    saved_at: str


def _tool():
    return current_app.extensions["npqsl_lti"]


def installed_pack_set() -> PackSet:
    """The packs of the running tool's ``modules`` plugin (empty when it is not installed)."""
    plugin = _tool().plugins.get(PLUGIN_KEY)
    return plugin.packs if plugin is not None else PackSet()


def installed_packs() -> list[PackSummary]:
    return [
        PackSummary(p.key, p.title, p.status, p.summary, p.estimated_hours, len(p.units))
        for p in installed_pack_set()
    ]


def _course_scope(context: LaunchContext) -> dict:
    return {"platform_pk": context.platform_pk, "course_pk": context.course_pk, "plugin_key": PLUGIN_KEY}


def _by_person(context: LaunchContext, sub: str | None) -> dict[str, dict[str, ModuleProgress]]:
    packs = installed_pack_set()
    people: dict[str, dict[str, ModuleProgress]] = {}
    if context.course_pk is None:
        return people
    for row in course_records(_tool().db, names=(PROGRESS,), sub=sub, **_course_scope(context)):
        pack = packs.get(row.activity)
        if pack is not None:
            people.setdefault(row.sub, {})[pack.key] = progress_of(pack, row.data)
    return people


def progress_for(context: LaunchContext) -> dict[str, ModuleProgress]:
    """Every installed module's progress for the launch's person (untouched modules at 0)."""
    mine = _by_person(context, context.sub).get(context.sub, {})
    return {p.key: mine.get(p.key) or progress_of(p, None) for p in installed_pack_set()}


def _require_course_viewer(context: LaunchContext) -> None:
    if not context.has_role(*COURSE_VIEWERS):
        raise NotPermitted(f"a {context.role} may not see other people's module work")
    if context.course_pk is None:
        raise NotPermitted("this launch is not in a course")


def course_progress(context: LaunchContext) -> dict[str, dict[str, ModuleProgress]]:
    """Progress of everyone in the launch's course, by LTI sub, for its coaches."""
    _require_course_viewer(context)
    packs = list(installed_pack_set())
    return {
        sub: {p.key: found.get(p.key) or progress_of(p, None) for p in packs}
        for sub, found in _by_person(context, None).items()
    }


def shared_reflections(context: LaunchContext, sub: str) -> list[SharedReflection]:
    """The reflections ``sub`` shared with their coach, in module and unit order."""
    if sub != context.sub:
        _require_course_viewer(context)
    if context.course_pk is None:
        return []
    rows = course_records(_tool().db, name_prefix="reflection:", sub=sub, **_course_scope(context))
    stored = {
        (r.activity, r.name): r.data for r in rows if r.data.get("shared") and r.data.get("text", "").strip()
    }
    found = []
    for pack in installed_pack_set():
        found += _shared_in(pack, stored)
    return found


def _shared_in(pack: Pack, stored: dict) -> list[SharedReflection]:
    found = []
    for unit in pack.units:
        for reflection in unit.of_type(Reflection):
            data = stored.get((pack.key, f"reflection:{unit.key}:{reflection.key}"))
            if data:
                found.append(
                    SharedReflection(
                        pack.key,
                        pack.title,
                        unit.key,
                        unit.title,
                        reflection.key,
                        reflection.prompt,
                        data["text"],
                        data.get("saved_at", ""),
                    )
                )
    return found
