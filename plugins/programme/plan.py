"""The qualification rule (every essential module + M chosen electives) applied to one candidate.

Which modules are essential comes from the installed packs; the rules say how many essentials
the qualification expects (fewer installed is a warning) and how many electives to choose.

``build_plan`` takes the installed modules, the candidate's progress and their chosen electives
and says what is done, what is left and why the plan cannot complete the qualification, if it
cannot. Pure: no storage, no Flask, no module engine (it reads the engine's values by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .rules import Rules

ESSENTIAL = "essential"
ELECTIVE = "elective"


@dataclass(frozen=True)
class ModuleLine:
    """One module as the dashboard shows it."""

    key: str
    title: str
    status: str
    summary: str = ""
    estimated_hours: float | None = None
    installed: bool = True
    percent: int = 0
    completed: bool = False
    completed_at: datetime | None = None
    score: float | None = None
    units_visited: int = 0
    units_total: int = 0
    chosen: bool = False

    @property
    def state(self) -> str:
        """completed | in-progress | not-started | not-installed."""
        if not self.installed:
            return "not-installed"
        if self.completed:
            return "completed"
        return "in-progress" if self.percent > 0 or self.units_visited > 0 else "not-started"


@dataclass(frozen=True)
class PlanWarning:
    """A reason the plan cannot complete the qualification, in words for the candidate."""

    code: str
    message: str


@dataclass(frozen=True)
class Plan:
    essentials: tuple[ModuleLine, ...]
    electives: tuple[ModuleLine, ...]
    chosen: tuple[ModuleLine, ...]
    warnings: tuple[PlanWarning, ...]
    essentials_required: int
    electives_required: int

    @property
    def can_complete(self) -> bool:
        return not self.warnings

    @property
    def modules_required(self) -> int:
        """Every installed essential (at least the number the rules name) and the electives required."""
        return max(len(self.essentials), self.essentials_required) + self.electives_required

    @property
    def modules_done(self) -> int:
        """Completed modules that count: every essential, and chosen electives up to the number required."""
        essentials = sum(1 for line in self.essentials if line.completed)
        electives = sum(1 for line in self.chosen if line.completed)
        return essentials + min(electives, self.electives_required)

    @property
    def modules_complete(self) -> bool:
        return self.can_complete and self.modules_done == self.modules_required

    @property
    def elective_keys(self) -> tuple[str, ...]:
        return tuple(line.key for line in self.electives)


def _value(source: Any, name: str, default: Any = None) -> Any:
    if source is None:
        return default
    if isinstance(source, Mapping):
        return source.get(name, default)
    return getattr(source, name, default)


def as_datetime(value: Any) -> datetime | None:
    """A datetime from a datetime or an ISO 8601 string (the engine keeps strings); None otherwise."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def module_line(pack: Any, progress: Any, *, chosen: bool = False) -> ModuleLine:
    """A ModuleLine from a pack summary and its ModuleProgress (None: not started)."""
    units_total = _value(progress, "units_total") or _value(pack, "unit_count") or _value(pack, "units") or 0
    return ModuleLine(
        key=_value(pack, "key"),
        title=_value(pack, "title"),
        status=_value(pack, "status"),
        summary=_value(pack, "summary", "") or "",
        estimated_hours=_value(pack, "estimated_hours"),
        percent=int(round(_value(progress, "percent", 0) or 0)),
        completed=bool(_value(progress, "completed", False)),
        completed_at=as_datetime(_value(progress, "completed_at")),
        score=_value(progress, "score"),
        units_visited=_value(progress, "units_visited", 0) or 0,
        units_total=units_total if isinstance(units_total, int) else len(units_total),
        chosen=chosen,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def build_plan(
    packs: Iterable[Any],
    progress: Mapping[str, Any],
    chosen_keys: Sequence[str],
    rules: Rules,
) -> Plan:
    """Apply the rule to the installed ``packs``, the candidate's ``progress`` and chosen electives."""
    packs = list(packs)
    chosen_keys = list(dict.fromkeys(chosen_keys))
    essentials = tuple(
        module_line(p, progress.get(_value(p, "key"))) for p in packs if _value(p, "status") == ESSENTIAL
    )
    electives = tuple(
        module_line(p, progress.get(_value(p, "key")), chosen=_value(p, "key") in chosen_keys)
        for p in packs
        if _value(p, "status") == ELECTIVE
    )
    by_key = {line.key: line for line in electives}
    essential_keys = {line.key for line in essentials}
    chosen: list[ModuleLine] = []
    warnings: list[PlanWarning] = []
    for key in chosen_keys:
        if key in by_key:
            chosen.append(by_key[key])
            continue
        chosen.append(ModuleLine(key=key, title=key, status=ELECTIVE, installed=False, chosen=True))
        what = "is now an essential module" if key in essential_keys else "is not installed in this tool"
        warnings.append(
            PlanWarning(
                "elective_not_installed",
                f"The chosen elective “{key}” {what}. Choose another elective so that it counts.",
            )
        )

    need_essentials, need_electives = rules.essential_modules_required, rules.elective_modules_required
    if len(essentials) < need_essentials:
        warnings.insert(
            0,
            PlanWarning(
                "essentials_missing",
                f"The qualification needs {_plural(need_essentials, 'essential module')}, but only "
                f"{len(essentials)} {'is' if len(essentials) == 1 else 'are'} installed. Ask your programme "
                "provider to install the missing essential modules.",
            ),
        )
    if len(electives) < need_electives:
        warnings.append(
            PlanWarning(
                "electives_unavailable",
                f"The qualification needs {_plural(need_electives, 'elective')}, but only {len(electives)} "
                f"{'is' if len(electives) == 1 else 'are'} available. Ask your programme provider which "
                "electives they will offer.",
            )
        )
    installed_chosen = sum(1 for line in chosen if line.installed)
    if installed_chosen < need_electives and len(electives) >= need_electives:
        warnings.append(
            PlanWarning(
                "electives_not_chosen",
                f"{_plural(need_electives, 'elective')} must be chosen to complete the qualification; "
                f"{installed_chosen} chosen so far.",
            )
        )
    return Plan(essentials, electives, tuple(chosen), tuple(warnings), need_essentials, need_electives)


class ChoiceError(ValueError):
    """A candidate's elective choice breaks the rules; the message says how."""


def check_elective_choice(keys: Sequence[str], plan: Plan) -> list[str]:
    """The chosen elective keys, validated against the installed electives; raises ChoiceError."""
    keys = [k.strip() for k in keys if k and k.strip()]
    if len(set(keys)) != len(keys):
        raise ChoiceError("Choose each elective only once.")
    if not keys:
        raise ChoiceError("Choose at least one elective.")
    if len(keys) > plan.electives_required:
        raise ChoiceError(
            f"Choose no more than {_plural(plan.electives_required, 'elective')}; you chose {len(keys)}."
        )
    unknown = [k for k in keys if k not in plan.elective_keys]
    if unknown:
        raise ChoiceError(f"“{unknown[0]}” is not one of the electives offered here.")
    return keys
