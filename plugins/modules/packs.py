"""Content packs: the YAML and Markdown files of a module, validated into plain objects.

The format is ``plugins/modules/PACK_FORMAT.md``. A pack that breaks any rule is refused as a
whole with every problem found, each naming its file, field and reason; other packs still
load. Packs come from ``plugins/modules/packs/`` and from the entry-point group
``npqsl_lti.module_packs`` (``name = package:folder/inside/it``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

PACK_ENTRY_POINT_GROUP = "npqsl_lti.module_packs"
BUILTIN_PACKS = Path(__file__).parent / "packs"

CONTENT_AREAS = (
    "strategy-and-improvement",
    "teaching-and-curriculum-excellence",
    "leading-with-impact",
    "working-in-partnership",
    "managing-resources-and-risks",
    "increasing-capability",
)
BEHAVIOURS = ("commitment", "collaboration", "personal-drive", "resilience", "awareness", "integrity", "respect")
STATUSES = ("essential", "elective")
KEY = re.compile(r"^[a-z][a-z0-9-]*$")
UNIT_STEM = re.compile(r"^(?P<nn>\d\d)-(?P<key>[a-z][a-z0-9-]*)$")

try:  # the C loader is several times faster where libyaml is present
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


# -- what a loaded pack is -----------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    text: str
    correct: bool
    feedback: str


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    multiple: bool
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Reflection:
    key: str
    prompt: str
    guidance: str = ""
    type: str = "reflection"


@dataclass(frozen=True)
class WorkplaceTask:
    key: str
    title: str
    instructions: str
    feeds_final_project: bool = False
    type: str = "workplace_task"


@dataclass(frozen=True)
class KnowledgeCheck:
    key: str
    title: str
    questions: tuple[Question, ...]
    type: str = "knowledge_check"


Activity = Reflection | WorkplaceTask | KnowledgeCheck


@dataclass(frozen=True)
class Reading:
    citation: str
    note: str
    url: str | None = None


@dataclass(frozen=True)
class ToolLink:
    plugin: str
    label: str


@dataclass(frozen=True)
class Unit:
    key: str
    stem: str
    title: str
    estimated_minutes: int
    content_areas: tuple[str, ...]
    behaviours: tuple[str, ...]
    outcomes: tuple[str, ...]
    reading: tuple[Reading, ...]
    tools: tuple[ToolLink, ...]
    activities: tuple[Activity, ...]
    content: str

    def of_type(self, kind: type) -> list:
        return [a for a in self.activities if isinstance(a, kind)]


@dataclass(frozen=True)
class Completion:
    """What a candidate must do to complete the module."""

    every_unit_visited: bool = True
    every_reflection_answered: bool = True
    knowledge_check_threshold: float = 0.8


@dataclass(frozen=True)
class Pack:
    key: str
    title: str
    status: str
    summary: str
    estimated_hours: float
    content_areas: tuple[str, ...]
    behaviours: tuple[str, ...]
    units: tuple[Unit, ...]
    completion: Completion
    source: str = ""

    def unit(self, key: str) -> Unit | None:
        return next((u for u in self.units if u.key == key), None)

    def neighbours(self, key: str) -> tuple[Unit | None, Unit | None]:
        """The units before and after ``key`` in the order learners meet them."""
        keys = [u.key for u in self.units]
        i = keys.index(key)
        return (self.units[i - 1] if i > 0 else None, self.units[i + 1] if i + 1 < len(keys) else None)


# -- problems ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One broken rule: the file (relative to the pack), the field path, and why."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"


class PackError(Exception):
    """A pack that cannot load; ``problems`` lists every broken rule found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class PackFailure:
    """A pack left out, and why (shown by ``npqsl-lti plugins list`` and the picker)."""

    name: str
    source: str
    problems: tuple[Problem, ...]

    @property
    def reason(self) -> str:
        return "; ".join(str(p) for p in self.problems)


@dataclass
class PackSet:
    """The packs that loaded, in a stable order, and the failures."""

    packs: dict[str, Pack] = field(default_factory=dict)
    failures: list[PackFailure] = field(default_factory=list)

    def get(self, key: str | None) -> Pack | None:
        return self.packs.get(key or "")

    def __iter__(self):
        return iter(sorted(self.packs.values(), key=lambda p: (STATUSES.index(p.status), p.title)))


# -- schemas -------------------------------------------------------------------------------------
def _one_of(choices: Iterable[str], what: str):
    choices = tuple(choices)
    return validate.OneOf(choices, error=f"{{input!r}} is not a known {what} (one of: {', '.join(choices)})")


def _text(**kwargs) -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"), **kwargs)


def _key() -> fields.String:
    return fields.String(
        required=True,
        validate=validate.Regexp(
            KEY, error="must be lower-case letters, digits and hyphens, starting with a letter"
        ),
    )


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class CompletionSchema(_Strict):
    every_unit_visited = fields.Boolean(load_default=True)
    every_reflection_answered = fields.Boolean(load_default=True)
    knowledge_check_threshold = fields.Float(
        load_default=0.8, validate=validate.Range(0, 1, error="must be a fraction between 0 and 1")
    )


class ModuleSchema(_Strict):
    key = _key()
    title = _text()
    status = fields.String(required=True, validate=_one_of(STATUSES, "status"))
    summary = _text()
    estimated_hours = fields.Float(required=True, validate=validate.Range(min=0, min_inclusive=False))
    content_areas = fields.List(fields.String(validate=_one_of(CONTENT_AREAS, "content area")), required=True)
    behaviours = fields.List(fields.String(validate=_one_of(BEHAVIOURS, "behaviour")), required=True)
    units = fields.List(
        fields.String(validate=validate.Regexp(UNIT_STEM, error="must be nn-unit-key, e.g. 01-what-the-gap-is")),
        required=True,
        validate=validate.Length(min=1, error="must list at least one unit"),
    )
    completion = fields.Nested(CompletionSchema, load_default=None)


class OptionSchema(_Strict):
    text = _text()
    correct = fields.Boolean(required=True)
    feedback = _text()


class QuestionSchema(_Strict):
    key = _key()
    text = _text()
    multiple = fields.Boolean(load_default=False)
    options = fields.List(
        fields.Nested(OptionSchema),
        required=True,
        validate=validate.Length(min=2, error="needs at least two options"),
    )

    @validates_schema
    def _right_answers(self, data: Mapping[str, Any], **_: Any) -> None:
        right = sum(1 for o in data.get("options", ()) if o.get("correct"))
        if not data.get("multiple") and right != 1:
            raise ValidationError(
                f"a single-choice question needs exactly one correct option, found {right}", "options"
            )
        if data.get("multiple") and right < 1:
            raise ValidationError("a multiple-choice question needs at least one correct option", "options")


class ReadingSchema(_Strict):
    citation = _text()
    note = _text()
    url = fields.Url(load_default=None, schemes={"http", "https"})


class ToolSchema(_Strict):
    plugin = _key()
    label = _text()


class ReflectionSchema(_Strict):
    type = fields.Constant("reflection")
    key = _key()
    prompt = _text()
    guidance = fields.String(load_default="")


class WorkplaceTaskSchema(_Strict):
    type = fields.Constant("workplace_task")
    key = _key()
    title = _text()
    instructions = _text()
    feeds_final_project = fields.Boolean(load_default=False)


class KnowledgeCheckSchema(_Strict):
    type = fields.Constant("knowledge_check")
    key = _key()
    title = _text()
    questions = fields.List(
        fields.Nested(QuestionSchema), required=True, validate=validate.Length(min=1, error="needs a question")
    )

    @validates_schema
    def _unique_questions(self, data: Mapping[str, Any], **_: Any) -> None:
        keys = [q["key"] for q in data.get("questions", ())]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValidationError(f"question key {repeated[0]!r} is used twice", "questions")


ACTIVITY_SCHEMAS = {
    "reflection": (ReflectionSchema, Reflection),
    "workplace_task": (WorkplaceTaskSchema, WorkplaceTask),
    "knowledge_check": (KnowledgeCheckSchema, KnowledgeCheck),
}


class UnitSchema(_Strict):
    key = _key()
    title = _text()
    estimated_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    content_areas = fields.List(fields.String(validate=_one_of(CONTENT_AREAS, "content area")), required=True)
    behaviours = fields.List(fields.String(validate=_one_of(BEHAVIOURS, "behaviour")), required=True)
    outcomes = fields.List(_text(), required=True, validate=validate.Length(min=1, error="needs an outcome"))
    reading = fields.List(fields.Nested(ReadingSchema), load_default=list)
    tools = fields.List(fields.Nested(ToolSchema), load_default=list)
    # Each activity is checked by the schema of its type (see _activities).
    activities = fields.List(fields.Dict(), required=True)


# -- loading -------------------------------------------------------------------------------------
def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested error messages as (field.path, reason) pairs."""
    if isinstance(messages, Mapping):
        found = []
        for name, inner in messages.items():
            path = prefix if name == "_schema" else (f"{prefix}.{name}" if prefix else str(name))
            found += _flatten(inner, path)
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(prefix or "(file)", m.replace("Unknown field.", "unknown field")) for m in messages]
    if isinstance(messages, list):
        return [pair for m in messages for pair in _flatten(m, prefix)]
    return [(prefix or "(file)", str(messages))]


def _read_yaml(path: Path, name: str) -> Any:
    if not path.is_file():
        raise PackError([Problem(name, "(file)", "file is missing")])
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
    except UnicodeDecodeError as exc:
        raise PackError([Problem(name, "(file)", f"not UTF-8 text ({exc.reason})")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise PackError([Problem(name, "(file)", f"not valid YAML: {where}{reason}")]) from None


def _validate(schema: Schema, data: Any, name: str, prefix: str = "") -> dict:
    if not isinstance(data, Mapping):
        raise PackError([Problem(name, prefix or "(file)", "must be a mapping of fields")])
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise PackError(Problem(name, path, reason) for path, reason in _flatten(exc.messages, prefix)) from None


def _activities(raw: list[dict], name: str) -> tuple[Activity, ...]:
    loaded: list[Activity] = []
    problems: list[Problem] = []
    for i, item in enumerate(raw):
        kind = item.get("type")
        if kind not in ACTIVITY_SCHEMAS:
            problems.append(
                Problem(name, f"activities.{i}.type", f"{kind!r} is not one of {', '.join(ACTIVITY_SCHEMAS)}")
            )
            continue
        schema, build = ACTIVITY_SCHEMAS[kind]
        try:
            data = _validate(schema(), item, name, f"activities.{i}")
        except PackError as exc:
            problems += exc.problems
            continue
        if kind == "knowledge_check":
            data["questions"] = tuple(
                Question(q["key"], q["text"], q["multiple"], tuple(Option(**o) for o in q["options"]))
                for q in data["questions"]
            )
        loaded.append(build(**data))
    keys = [a.key for a in loaded]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(Problem(name, "activities", f"activity key {key!r} is used twice in the unit"))
    for kind, needed in (("reflection", Reflection), ("workplace_task", WorkplaceTask)):
        if not problems and not any(isinstance(a, needed) for a in loaded):
            problems.append(Problem(name, "activities", f"a unit needs at least one {kind}"))
    if problems:
        raise PackError(problems)
    return tuple(loaded)


def _unit(folder: Path, stem: str) -> Unit:
    yaml_name, md_name = f"units/{stem}.yaml", f"units/{stem}.md"
    data = _validate(UnitSchema(), _read_yaml(folder / yaml_name, yaml_name), yaml_name)
    expected = UNIT_STEM.match(stem).group("key")
    problems = []
    if data["key"] != expected:
        problems.append(Problem(yaml_name, "key", f"{data['key']!r} must equal the file name's key {expected!r}"))
    try:
        activities = _activities(data["activities"], yaml_name)
    except PackError as exc:
        problems += exc.problems
    md = folder / md_name
    if not md.is_file():
        problems.append(Problem(md_name, "(file)", "file is missing"))
    if problems:
        raise PackError(problems)
    try:
        content = md.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PackError([Problem(md_name, "(file)", f"not UTF-8 text ({exc.reason})")]) from None
    return Unit(
        key=data["key"],
        stem=stem,
        title=data["title"],
        estimated_minutes=data["estimated_minutes"],
        content_areas=tuple(data["content_areas"]),
        behaviours=tuple(data["behaviours"]),
        outcomes=tuple(data["outcomes"]),
        reading=tuple(Reading(**r) for r in data["reading"]),
        tools=tuple(ToolLink(**t) for t in data["tools"]),
        activities=activities,
        content=content,
    )


def load_pack(folder: Path, source: str = "") -> Pack:
    """Load and check one pack folder; raise PackError listing every problem found."""
    folder = Path(folder)
    data = _validate(ModuleSchema(), _read_yaml(folder / "module.yaml", "module.yaml"), "module.yaml")
    problems: list[Problem] = []
    if data["key"] != folder.name:
        problems.append(
            Problem("module.yaml", "key", f"{data['key']!r} must equal the folder name {folder.name!r}")
        )
    units: list[Unit] = []
    for stem in data["units"]:
        try:
            units.append(_unit(folder, stem))
        except PackError as exc:
            problems += exc.problems
            continue
    keys = [u.key for u in units]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(Problem("module.yaml", "units", f"unit key {key!r} appears twice"))
    if problems:
        raise PackError(problems)
    return Pack(
        key=data["key"],
        title=data["title"],
        status=data["status"],
        summary=data["summary"],
        estimated_hours=data["estimated_hours"],
        content_areas=tuple(data["content_areas"]),
        behaviours=tuple(data["behaviours"]),
        units=tuple(units),
        completion=Completion(**(data["completion"] or {})),
        source=source or str(folder),
    )


def _entry_point_folder(ep: EntryPoint) -> Path:
    """``package:folder/in/it`` as a path (the package is imported to find where it lives)."""
    package, _, inside = ep.value.partition(":")
    module = importlib.import_module(package.strip())
    base = Path(module.__file__).parent
    return base / inside.strip() if inside.strip() else base


def pack_folders(found: Iterable[EntryPoint] | None = None) -> list[tuple[str, Path | Exception]]:
    """(source, folder) for the built-in packs and the entry points (an error in place of a folder)."""
    folders: list[tuple[str, Path | Exception]] = []
    if BUILTIN_PACKS.is_dir():
        for module_yaml in sorted(BUILTIN_PACKS.glob("*/module.yaml")):
            folders.append((f"built-in {module_yaml.parent.name}", module_yaml.parent))
    for ep in found if found is not None else entry_points(group=PACK_ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        source = f"{ep.value} ({dist.name} {dist.version})" if dist is not None else ep.value
        try:
            folders.append((source, _entry_point_folder(ep)))
        except Exception as exc:  # noqa: BLE001 - a broken package must not stop the others
            folders.append((source, exc))
    return folders


def load_packs(folders: Iterable[tuple[str, Path | Exception]] | None = None) -> PackSet:
    """Every pack that loads; the others as failures with their problems. Never raises."""
    found = PackSet()
    for source, folder in pack_folders() if folders is None else folders:
        if isinstance(folder, Exception):
            problem = Problem("(package)", "(entry point)", f"{folder.__class__.__name__}: {folder}")
            found.failures.append(PackFailure(source.split(" ")[0], source, (problem,)))
            continue
        try:
            pack = load_pack(folder, source)
        except PackError as exc:
            found.failures.append(PackFailure(folder.name, source, tuple(exc.problems)))
            continue
        if pack.key in found.packs:
            problem = Problem(
                "module.yaml", "key", f"{pack.key!r} is already provided by {found.packs[pack.key].source}"
            )
            found.failures.append(PackFailure(pack.key, source, (problem,)))
            continue
        found.packs[pack.key] = pack
    return found
