"""The programme's rules on their own: the rules file, the 2 + 2 plan, the 18-month timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from plugins.programme.plan import ChoiceError, build_plan, check_elective_choice
from plugins.programme.rules import DEFAULT_RULES_FILE, RulesError, load_rules, parse_rules
from plugins.programme.timeline import add_months, timeline, whole_months_between

RULES = load_rules(DEFAULT_RULES_FILE, environ={})


@dataclass(frozen=True)
class Pack:
    key: str
    title: str
    status: str
    summary: str = ""
    estimated_hours: float = 50
    unit_count: int = 5


@dataclass(frozen=True)
class Progress:
    percent: int = 0
    completed: bool = False
    units_visited: int = 0
    units_total: int = 5
    completed_at: str | None = None
    score: float | None = None


FOUR = [
    Pack("succeeding", "Succeeding in Senior Leadership", "essential"),
    Pack("closing", "Closing the Gap", "essential"),
    Pack("teaching", "Improving the Quality of Teaching", "elective"),
    Pack("change", "Leading Change for Improvement", "elective"),
]


# -- the rules file -----------------------------------------------------------------------------
def test_the_shipped_rules_are_two_essentials_two_electives_18_months_and_three_event_days():
    assert (RULES.essential_modules_required, RULES.elective_modules_required) == (2, 2)
    assert RULES.completion_months == 18
    assert [day.number for day in RULES.event_days] == [1, 2, 3]
    assert RULES.final_assessment_title


def test_a_provider_file_named_by_the_environment_replaces_the_rules(tmp_path):
    text = DEFAULT_RULES_FILE.read_text().replace("completion_months = 18", "completion_months = 12")
    (tmp_path / "mine.toml").write_text(text)
    assert load_rules(environ={"NPQSL_PROGRAMME_RULES": str(tmp_path / "mine.toml")}).completion_months == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("completion_months = 18", "completion_months = 0"),
            "completion_months: Must be greater than or equal to 1",
        ),
        (
            ("elective_modules_required = 2", 'elective_modules_required = "two"'),
            "elective_modules_required: Not a valid integer",
        ),
        (("number = 2", "number = 1"), "event_days: event day numbers must be unique"),
        (('title = "Event day 3: leading change and evidencing impact"', 'title = ""'), "event_days.2.title"),
        (("[final_assessment]", "[final_assessment_typo]"), "final_assessment: Missing data"),
        (("completion_months = 18", "completion_months = 18 ]"), "not valid TOML"),
    ],
    ids=["zero-months", "not-a-number", "repeated-day", "empty-title", "missing-section", "bad-toml"],
)
def test_a_broken_rules_file_names_the_file_and_the_field(tmp_path, change, message):
    path: Path = tmp_path / "broken.toml"
    path.write_text(DEFAULT_RULES_FILE.read_text().replace(*change, 1))
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_a_missing_rules_file_is_reported():
    with pytest.raises(RulesError, match="cannot read the programme rules"):
        load_rules(Path("/nonexistent/programme.toml"))


# -- the plan: 2 essentials + 2 chosen electives -----------------------------------------------------------
def codes(plan) -> list[str]:
    return [w.code for w in plan.warnings]


def test_two_essentials_and_two_chosen_electives_can_complete():
    plan = build_plan(FOUR, {}, ["teaching", "change"], RULES)
    assert plan.can_complete and codes(plan) == []
    assert [line.key for line in plan.essentials] == ["succeeding", "closing"]
    assert [line.key for line in plan.chosen] == ["teaching", "change"]
    assert all(line.chosen for line in plan.electives)
    assert (plan.modules_done, plan.modules_required, plan.modules_complete) == (0, 4, False)


def test_modules_done_counts_essentials_and_chosen_electives_only():
    progress = {
        "succeeding": Progress(100, True, 5),
        "closing": Progress(40, False, 2),
        "teaching": Progress(100, True, 5),
        "change": Progress(100, True, 5),
    }
    plan = build_plan(FOUR, progress, ["teaching"], RULES)
    assert plan.modules_done == 2  # a completed elective that was not chosen does not count
    assert [line.state for line in plan.essentials] == ["completed", "in-progress"]
    everything = build_plan(FOUR, {**progress, "closing": Progress(100, True, 5)}, ["teaching", "change"], RULES)
    assert everything.modules_done == 4 and everything.modules_complete


def test_every_installed_essential_is_required():
    third = Pack("extra", "A third essential", "essential")
    progress = {"succeeding": Progress(100, True), "closing": Progress(100, True), "teaching": Progress(100, True)}
    plan = build_plan([*FOUR, third], {**progress, "change": Progress(100, True)}, ["teaching", "change"], RULES)
    assert (plan.modules_done, plan.modules_required, plan.modules_complete) == (4, 5, False)


def test_no_electives_chosen_is_a_warning():
    plan = build_plan(FOUR, {}, [], RULES)
    assert codes(plan) == ["electives_not_chosen"] and not plan.can_complete
    assert "0 chosen so far" in plan.warnings[0].message


def test_an_uninstalled_elective_is_flagged_and_does_not_count():
    plan = build_plan(FOUR, {}, ["teaching", "retired"], RULES)
    assert codes(plan) == ["elective_not_installed", "electives_not_chosen"]
    assert plan.chosen[1].key == "retired" and plan.chosen[1].state == "not-installed"


def test_an_elective_that_became_essential_is_flagged():
    plan = build_plan(FOUR, {}, ["closing", "teaching"], RULES)
    assert codes(plan)[0] == "elective_not_installed" and "now an essential module" in plan.warnings[0].message


def test_missing_essentials_and_too_few_electives_are_warned():
    plan = build_plan([FOUR[0], FOUR[2]], {}, ["teaching"], RULES)
    assert codes(plan) == ["essentials_missing", "electives_unavailable"]
    assert "needs 2 essential modules, but only 1 is installed" in plan.warnings[0].message
    assert "needs 2 electives, but only 1 is available" in plan.warnings[1].message
    assert build_plan([], {}, [], RULES).warnings[0].message.startswith("The qualification needs 2 essential")


def test_the_rule_numbers_come_from_the_rules():
    one_elective = parse_rules(
        DEFAULT_RULES_FILE.read_text().replace("elective_modules_required = 2", "elective_modules_required = 1")
    )
    plan = build_plan(FOUR, {}, ["change"], one_elective)
    assert plan.can_complete and plan.modules_required == 3


def test_an_elective_choice_is_checked_against_the_offer():
    plan = build_plan(FOUR, {}, [], RULES)
    assert check_elective_choice(["change", " teaching "], plan) == ["change", "teaching"]
    for keys, message in (
        ([], "at least one"),
        (["change", "change"], "only once"),
        (["change", "teaching", "closing"], "no more than 2 electives; you chose 3"),
        (["closing"], "not one of the electives"),
    ):
        with pytest.raises(ChoiceError, match=message):
            check_elective_choice(keys, plan)


# -- the timeline ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2025, 1, 15), 18, date(2026, 7, 15)),
        (date(2025, 8, 31), 6, date(2026, 2, 28)),  # clamped to the end of February
        (date(2023, 8, 31), 6, date(2024, 2, 29)),  # a leap year
        (date(2025, 12, 1), 1, date(2026, 1, 1)),
    ],
)
def test_add_months_keeps_the_day_or_clamps_it(start, months, expected):
    assert add_months(start, months) == expected


def test_whole_months_count_only_complete_months():
    assert whole_months_between(date(2025, 1, 15), date(2025, 3, 14)) == 1
    assert whole_months_between(date(2025, 1, 15), date(2025, 3, 15)) == 2
    # A month after 31 January is 28 February, as the target date is counted.
    assert whole_months_between(date(2025, 1, 31), date(2025, 2, 28)) == 1
    assert whole_months_between(date(2025, 1, 31), date(2025, 2, 27)) == 0
    assert whole_months_between(date(2025, 3, 1), date(2025, 1, 1)) == 0


def test_a_timeline_in_progress():
    line = timeline(date(2025, 1, 15), date(2025, 11, 20), 18, warn_months_remaining=3)
    assert line.target == date(2026, 7, 15)
    assert (line.months_elapsed, line.months_remaining, line.overdue, line.short_of_time) == (10, 7, False, False)
    assert line.started and 0 < line.percent_elapsed < 100


def test_the_last_months_are_short_of_time_and_after_the_target_overdue():
    short = timeline(date(2025, 1, 15), date(2026, 5, 1), 18, warn_months_remaining=3)
    assert short.months_remaining == 2 and short.short_of_time and not short.overdue
    last_day = timeline(date(2025, 1, 15), date(2026, 7, 15), 18)
    assert not last_day.overdue and last_day.days_remaining == 0
    late = timeline(date(2025, 1, 15), date(2026, 10, 20), 18, warn_months_remaining=3)
    assert late.overdue and late.months_overdue == 3 and not late.short_of_time
    assert (late.months_elapsed, late.months_remaining, late.percent_elapsed) == (18, 0, 100)


def test_a_start_date_in_the_future_has_not_started():
    line = timeline(date(2026, 9, 1), date(2026, 8, 1), 18)
    assert not line.started and line.months_elapsed == 0 and line.percent_elapsed == 0
    assert line.months_remaining == 19


def test_a_target_of_no_months_is_refused():
    with pytest.raises(ValueError):
        timeline(date(2025, 1, 1), date(2025, 1, 1), 0)
