"""What a candidate does in a module and what it adds up to: records, progress, completion, events.

State lives in the core's plugin records of the ``modules`` plugin, per person and course, with
the module key as the record's activity:

- ``progress``: ``{"visited": {unit: iso}, "answered": {"unit/reflection": iso},
  "checks": {"unit/check": best fraction}, "completed_at": iso | None, "score": float | None}``
- ``reflection:<unit>:<key>``: ``{"text", "shared", "saved_at", "history": [{"version", "text",
  "saved_at", "conflict"}]}`` (every saved version, the newest ``HISTORY_LIMIT`` kept)
- ``check:<unit>:<key>``: ``{"best": fraction, "attempts": [{"at", "score", "answers"}]}``
- ``task:<unit>:<key>``: ``{"entries": [{"at", "did", "evidence"}]}``

Learning events all have the module key as their activity, and these extensions (keys are
plain strings; the xAPI statement builder may map them to IRIs):

- ``launched``: ``{"module"}`` when a module is opened from the VLE.
- ``experienced``: ``{"module", "unit"}`` for every view of a unit page.
- ``answered``: ``{"module", "unit", "reflection"}`` when a reflection first gets text (the
  text itself stays in the tool: reflections are personal); and
  ``{"module", "unit", "check", "score_percent", "best_percent"}`` for every knowledge-check
  attempt, with ``Result(success=passed, completion=True, response=the choices)``. Scores stay
  out of ``Result`` here on purpose: a scored event goes to the VLE gradebook, and the module's
  line item is for the module score alone.
- ``submitted``: ``{"module", "unit", "task", "feeds_final_project"}`` for a workplace-task entry.
- ``progressed``: ``{"module", "progress"}`` (0-100) whenever the progress figure changes.
- ``completed``: ``{"module"}``, once, when the completion rule is first met, with
  ``Result(score_raw=score, score_min=0, score_max=100, success=True, completion=True)``: the
  score is the mean of the best percentages on the module's knowledge checks (100 when the
  module has none). The core sends it to the module's gradebook line item and the LRS.
- ``scored``: ``{"module"}`` when a retake after completion raises the module score, with the
  new score in the same shape as ``completed``, so the gradebook keeps the best.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from plugins.contract import LaunchContext, LearningEvent, Plugin, Result, StateConflict, record

from .packs import KnowledgeCheck, Pack, Reflection, Unit, WorkplaceTask

PROGRESS = "progress"
HISTORY_LIMIT = 500
MAX_REFLECTION_CHARS = 20_000
MAX_TASK_CHARS = 10_000
RETRIES = 6

T = TypeVar("T")


class ActivityError(ValueError):
    """The candidate's input cannot be accepted; the message says why, for the person."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def reflection_record(unit: str, key: str) -> str:
    return f"reflection:{unit}:{key}"


def check_record(unit: str, key: str) -> str:
    return f"check:{unit}:{key}"


def task_record(unit: str, key: str) -> str:
    return f"task:{unit}:{key}"


# -- progress --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleProgress:
    """How far one person is through one module."""

    module: str
    units_visited: int
    units_total: int
    reflections_answered: int
    reflections_total: int
    checks_passed: int
    checks_total: int
    percent: int
    completed: bool
    completed_at: str | None
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _reflection_ids(pack: Pack) -> list[str]:
    return [f"{u.key}/{r.key}" for u in pack.units for r in u.of_type(Reflection)]


def _check_ids(pack: Pack) -> list[str]:
    return [f"{u.key}/{c.key}" for u in pack.units for c in u.of_type(KnowledgeCheck)]


def score_of(pack: Pack, state: Mapping[str, Any]) -> float:
    """The module score: the mean best knowledge-check percentage (100 without checks)."""
    checks = _check_ids(pack)
    if not checks:
        return 100.0
    best = state.get("checks") or {}
    return round(sum(float(best.get(c, 0.0)) for c in checks) * 100 / len(checks), 2)


def progress_of(pack: Pack, state: Mapping[str, Any] | None) -> ModuleProgress:
    """Progress from a ``progress`` record against the pack as it is now."""
    state = state or {}
    rule = pack.completion
    visited = sum(1 for u in pack.units if u.key in (state.get("visited") or {}))
    answered_ids = state.get("answered") or {}
    reflections = _reflection_ids(pack)
    answered = sum(1 for r in reflections if r in answered_ids)
    best = state.get("checks") or {}
    checks = _check_ids(pack)
    passed = sum(1 for c in checks if float(best.get(c, 0.0)) >= rule.knowledge_check_threshold - 1e-9)
    done = total = 0
    if rule.every_unit_visited:
        done, total = done + visited, total + len(pack.units)
    if rule.every_reflection_answered:
        done, total = done + answered, total + len(reflections)
    done, total = done + passed, total + len(checks)
    percent = 100 if total == 0 else int(done * 100 // total)
    completed_at = state.get("completed_at")
    return ModuleProgress(
        module=pack.key,
        units_visited=visited,
        units_total=len(pack.units),
        reflections_answered=answered,
        reflections_total=len(reflections),
        checks_passed=passed,
        checks_total=len(checks),
        percent=100 if completed_at else percent,
        completed=bool(completed_at),
        completed_at=completed_at,
        score=state.get("score"),
    )


def rule_met(pack: Pack, state: Mapping[str, Any]) -> bool:
    """Whether the module's completion rule holds for this state."""
    p = progress_of(pack, {**state, "completed_at": None})
    rule = pack.completion
    return (
        (not rule.every_unit_visited or p.units_visited == p.units_total)
        and (not rule.every_reflection_answered or p.reflections_answered == p.reflections_total)
        and p.checks_passed == p.checks_total
    )


# -- recording changes ----------------------------------------------------------------------------
def _retrying(plugin: Plugin, context: LaunchContext, work: Callable[[Any], T]) -> T:
    """Run ``work(recording)`` in a recording, again from the start when a record changed meanwhile."""
    for attempt in range(RETRIES):
        try:
            with record(context, plugin) as rec:
                return work(rec)
        except StateConflict:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _event(kind: str, pack: Pack, result: Result | None = None, **extensions: Any) -> LearningEvent:
    """An event about the module, or about one of its units or a unit's activity.

    The activity is a path (``module``, ``module/unit``, ``module/unit/item``), so an xAPI
    statement names the unit as the parent of a reflection, check or task and the module as
    their grouping. Events with a gradebook score stay on the module itself: the module's line
    item is keyed on it.
    """
    unit = extensions.get("unit")
    item = next((extensions[k] for k in ("reflection", "check", "task") if extensions.get(k)), None)
    activity = "/".join(part for part in (pack.key, unit, item) if part)
    return LearningEvent(kind, activity, result, extensions={"module": pack.key, **extensions})


def _advance(rec, pack: Pack, change: Callable[[dict], None]) -> ModuleProgress:
    """Change the progress record, and emit ``progressed``/``completed`` as the figures move."""
    state, version = rec.load(pack.key, PROGRESS)
    state = state or {}
    before = progress_of(pack, state)
    change(state)
    if not state.get("completed_at") and rule_met(pack, state):
        state["completed_at"] = now_iso()
        state["score"] = score_of(pack, state)
    improved = before.completed and score_of(pack, state) > float(state.get("score") or 0)
    if improved:
        state["score"] = score_of(pack, state)
    rec.save(pack.key, PROGRESS, state, expected_version=version)
    after = progress_of(pack, state)
    if improved:
        rec.emit(
            _event("scored", pack, Result(score_raw=after.score, score_min=0, score_max=100, completion=True))
        )
    if after.percent != before.percent:
        rec.emit(_event("progressed", pack, Result(completion=after.completed), progress=after.percent))
    if after.completed and not before.completed:
        rec.emit(
            _event(
                "completed",
                pack,
                Result(score_raw=after.score, score_min=0, score_max=100, success=True, completion=True),
            )
        )
    return after


def launched(plugin: Plugin, context: LaunchContext, pack: Pack) -> None:
    with record(context, plugin) as rec:
        rec.emit(_event("launched", pack))


def visit_unit(plugin: Plugin, context: LaunchContext, pack: Pack, unit: Unit) -> None:
    """A unit page was shown: an ``experienced`` event, and the first visit counts for progress."""

    def work(rec):
        rec.emit(_event("experienced", pack, unit=unit.key))
        state, _ = rec.load(pack.key, PROGRESS)
        if unit.key not in ((state or {}).get("visited") or {}):
            _advance(rec, pack, lambda s: s.setdefault("visited", {}).setdefault(unit.key, now_iso()))

    _retrying(plugin, context, work)


def read(plugin: Plugin, context: LaunchContext, pack: Pack, name: str) -> tuple[dict, int]:
    with record(context, plugin) as rec:
        data, version = rec.load(pack.key, name)
    return data or {}, version


def read_progress(plugin: Plugin, context: LaunchContext, pack: Pack) -> ModuleProgress:
    return progress_of(pack, read(plugin, context, pack, PROGRESS)[0])


# -- reflections -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedReflection:
    """What a save did: the version now stored, and whether another tab or device saved first."""

    version: int
    saved_at: str
    text: str
    conflict: bool
    # The text another tab or device had saved in between (kept in history too), when conflict.
    other_text: str | None = None


def save_reflection(
    plugin: Plugin,
    context: LaunchContext,
    pack: Pack,
    unit: Unit,
    reflection: Reflection,
    text: str,
    base_version: int,
) -> SavedReflection:
    """Save a reflection's text; every saved version goes to its history.

    ``base_version`` is the version the person's page started from. When someone saved since
    (another tab), the text is still saved on top and both texts stay in the history: nothing
    typed is lost, and the answer says so.
    """
    if len(text) > MAX_REFLECTION_CHARS:
        raise ActivityError(f"A reflection can be at most {MAX_REFLECTION_CHARS:,} characters long.")
    name = reflection_record(unit.key, reflection.key)

    def work(rec) -> SavedReflection:
        data, version = rec.load(pack.key, name)
        data = data or {"text": "", "shared": False, "history": []}
        conflict = version != base_version and data.get("text", "") != text
        other = data.get("text") if conflict else None
        if data.get("text", "") == text and version:
            return SavedReflection(version, data.get("saved_at", ""), text, False)
        saved_at = now_iso()
        history = list(data.get("history") or [])
        history.append({"version": version + 1, "text": text, "saved_at": saved_at, "conflict": conflict})
        data.update(text=text, saved_at=saved_at, history=history[-HISTORY_LIMIT:])
        new_version = rec.save(pack.key, name, data, expected_version=version)
        answer_id = f"{unit.key}/{reflection.key}"
        state, _ = rec.load(pack.key, PROGRESS)
        was_answered = answer_id in ((state or {}).get("answered") or {})
        if bool(text.strip()) != was_answered:

            def change(s: dict) -> None:
                answered = s.setdefault("answered", {})
                if text.strip():
                    answered[answer_id] = saved_at
                else:
                    answered.pop(answer_id, None)

            _advance(rec, pack, change)
            if text.strip():
                rec.emit(
                    _event(
                        "answered",
                        pack,
                        Result(completion=True),
                        unit=unit.key,
                        reflection=reflection.key,
                    )
                )
        return SavedReflection(new_version, saved_at, text, conflict, other)

    return _retrying(plugin, context, work)


def share_reflection(
    plugin: Plugin, context: LaunchContext, pack: Pack, unit: Unit, reflection: Reflection, shared: bool
) -> None:
    name = reflection_record(unit.key, reflection.key)

    def work(rec) -> None:
        data, version = rec.load(pack.key, name)
        data = data or {"text": "", "history": []}
        data["shared"] = shared
        rec.save(pack.key, name, data, expected_version=version)

    _retrying(plugin, context, work)


# -- knowledge checks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One marked attempt: the choices, which questions were right, the score and the best."""

    answers: dict[str, list[int]]
    right: dict[str, bool]
    score: float
    best: float
    passed: bool


def parse_answers(check: KnowledgeCheck, form: Mapping[str, list[str]]) -> dict[str, list[int]]:
    """The chosen option indices per question, from form fields ``<question key>``.

    Every question must be answered, a single-choice one with exactly one option.
    """
    answers: dict[str, list[int]] = {}
    missing: list[str] = []
    for number, question in enumerate(check.questions, start=1):
        raw = form.get(question.key) or []
        try:
            chosen = sorted({int(v) for v in raw})
        except ValueError:
            raise ActivityError(f"Question {number}: that choice is not one of its options.") from None
        if any(not 0 <= i < len(question.options) for i in chosen):
            raise ActivityError(f"Question {number}: that choice is not one of its options.")
        if not chosen:
            missing.append(str(number))
            continue
        if not question.multiple and len(chosen) > 1:
            raise ActivityError(f"Question {number}: choose one option only.")
        answers[question.key] = chosen
    if missing:
        raise ActivityError(f"Answer every question before checking: question {', '.join(missing)} has no answer.")
    return answers


def mark(check: KnowledgeCheck, answers: Mapping[str, list[int]]) -> dict[str, bool]:
    """A question is right when exactly its correct options were chosen."""
    return {
        q.key: sorted(answers.get(q.key, [])) == [i for i, o in enumerate(q.options) if o.correct]
        for q in check.questions
    }


def submit_check(
    plugin: Plugin,
    context: LaunchContext,
    pack: Pack,
    unit: Unit,
    check: KnowledgeCheck,
    answers: dict[str, list[int]],
) -> Attempt:
    """Mark an attempt, keep it, keep the best score, and report it."""
    right = mark(check, answers)
    score = sum(right.values()) / len(check.questions)
    name = check_record(unit.key, check.key)
    check_id = f"{unit.key}/{check.key}"
    threshold = pack.completion.knowledge_check_threshold

    def work(rec) -> Attempt:
        data, version = rec.load(pack.key, name)
        data = data or {"attempts": [], "best": 0.0}
        best = max(float(data.get("best", 0.0)), score)
        data["attempts"] = [*data.get("attempts", []), {"at": now_iso(), "score": score, "answers": answers}]
        data["best"] = best
        rec.save(pack.key, name, data, expected_version=version)
        rec.emit(
            _event(
                "answered",
                pack,
                Result(success=score >= threshold - 1e-9, completion=True, response=json.dumps(answers)),
                unit=unit.key,
                check=check.key,
                score_percent=round(score * 100, 2),
                best_percent=round(best * 100, 2),
            )
        )
        state, _ = rec.load(pack.key, PROGRESS)
        if float(((state or {}).get("checks") or {}).get(check_id, 0.0)) < best:
            _advance(rec, pack, lambda s: s.setdefault("checks", {}).__setitem__(check_id, best))
        return Attempt(answers, right, score, best, score >= threshold - 1e-9)

    return _retrying(plugin, context, work)


# -- workplace tasks -------------------------------------------------------------------------------
def log_task(
    plugin: Plugin, context: LaunchContext, pack: Pack, unit: Unit, task: WorkplaceTask, did: str, evidence: str
) -> dict:
    """Keep one entry of what the candidate did in school, with its evidence notes."""
    did, evidence = did.strip(), evidence.strip()
    if not did:
        raise ActivityError("Write what you did before saving the entry.")
    if len(did) > MAX_TASK_CHARS or len(evidence) > MAX_TASK_CHARS:
        raise ActivityError(f"Each box can hold at most {MAX_TASK_CHARS:,} characters.")
    entry = {"at": now_iso(), "did": did, "evidence": evidence}
    name = task_record(unit.key, task.key)

    def work(rec) -> dict:
        data, version = rec.load(pack.key, name)
        data = data or {"entries": []}
        data["entries"] = [*data.get("entries", []), entry]
        rec.save(pack.key, name, data, expected_version=version)
        rec.emit(
            _event(
                "submitted",
                pack,
                Result(completion=True),
                unit=unit.key,
                task=task.key,
                feeds_final_project=task.feeds_final_project,
            )
        )
        return entry

    return _retrying(plugin, context, work)
