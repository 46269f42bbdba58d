"""The programme's rules (how many essentials and electives, the completion target, the event
days, the final assessment's wording) are data in ``programme.toml``, validated once at start-up.

``NPQSL_PROGRAMME_RULES`` names another file with the same shape, for a provider whose
programme differs.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

DEFAULT_RULES_FILE = Path(__file__).with_name("programme.toml")
RULES_ENV = "NPQSL_PROGRAMME_RULES"


class RulesError(Exception):
    """The rules file is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class EventDay:
    number: int
    title: str
    summary: str


@dataclass(frozen=True)
class Rules:
    title: str
    essential_modules_required: int
    elective_modules_required: int
    completion_months: int
    warn_months_remaining: int
    event_days: tuple[EventDay, ...]
    final_assessment_title: str
    final_assessment_summary: str

    def event_day(self, number: int) -> EventDay | None:
        return next((day for day in self.event_days if day.number == number), None)


class _EventDaySchema(Schema):
    number = fields.Integer(required=True, validate=validate.Range(min=1, max=99))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    summary = fields.String(load_default="", validate=validate.Length(max=1000))


class _FinalAssessmentSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    summary = fields.String(load_default="", validate=validate.Length(max=1000))


class _RulesSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    essential_modules_required = fields.Integer(required=True, validate=validate.Range(min=0, max=20))
    elective_modules_required = fields.Integer(required=True, validate=validate.Range(min=0, max=20))
    completion_months = fields.Integer(required=True, validate=validate.Range(min=1, max=120))
    warn_months_remaining = fields.Integer(load_default=3, validate=validate.Range(min=0, max=120))
    event_days = fields.List(fields.Nested(_EventDaySchema), required=True, validate=validate.Length(max=20))
    final_assessment = fields.Nested(_FinalAssessmentSchema, required=True)

    @validates_schema
    def _numbers_unique(self, data, **_kwargs):
        numbers = [day["number"] for day in data.get("event_days", [])]
        if len(numbers) != len(set(numbers)):
            raise ValidationError("event day numbers must be unique", "event_days")


def _first_error(messages, prefix: str = "") -> str:
    """'field.sub: reason' for the first message marshmallow reports."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _first_error(value, f"{prefix}{key}." if key != "_schema" else prefix)
    if isinstance(messages, list) and messages and not isinstance(messages[0], str):
        return _first_error(messages[0], prefix)
    reason = messages[0] if isinstance(messages, list) else str(messages)
    return f"{prefix.rstrip('.')}: {reason}" if prefix else reason


def parse_rules(text: str, source: str = "programme rules") -> Rules:
    """Rules from TOML text; RulesError names the source, the field and the reason."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML ({exc})") from exc
    try:
        data = _RulesSchema().load(raw)
    except ValidationError as exc:
        raise RulesError(f"{source}: {_first_error(exc.messages)}") from exc
    return Rules(
        title=data["title"],
        essential_modules_required=data["essential_modules_required"],
        elective_modules_required=data["elective_modules_required"],
        completion_months=data["completion_months"],
        warn_months_remaining=data["warn_months_remaining"],
        event_days=tuple(EventDay(**day) for day in sorted(data["event_days"], key=lambda d: d["number"])),
        final_assessment_title=data["final_assessment"]["title"],
        final_assessment_summary=data["final_assessment"]["summary"],
    )


def load_rules(path: Path | None = None, environ: dict[str, str] | None = None) -> Rules:
    """The rules from ``path``, else the file named by NPQSL_PROGRAMME_RULES, else the default."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get(RULES_ENV) or DEFAULT_RULES_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the programme rules ({exc.strerror})") from exc
    return parse_rules(text, str(path))
