"""The administrators' analytics page: what learners did on this platform, as charts and tables.

Reached like the outbox page, with the launch reference of an administrator's launch; shows the
launching platform's statements only. Charts are SVG drawn here, each followed by its figures as
a table, so the page needs no JavaScript and reads the same to a screen reader.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template, request

from lti_tool.errors import LaunchError
from lti_tool.views.admin import admin_launch
from lti_tool.views.errors import render_launch_error
from lti_tool.views.helpers import tool

from . import analytics, charts

bp = Blueprint("xapi_analytics", __name__, url_prefix="/admin", template_folder="templates")

DEFAULT_PERIOD = 30


@bp.get("/analytics")
def analytics_page():
    """Statements per day, the completion funnel per activity, the distribution of scores."""
    try:
        context = admin_launch()
    except LaunchError as error:
        return render_launch_error(error)
    days = request.args.get("days", DEFAULT_PERIOD, type=int)
    if days not in analytics.PERIODS:
        days = DEFAULT_PERIOD
    today = datetime.now(UTC).date()
    since = analytics.period_start(days, today)
    platform_id = context.platform_pk
    with tool().db.sessions() as session:
        overview = analytics.overview(session, platform_id, since)
        per_day = analytics.statements_per_day(session, platform_id, days, today)
        funnel = analytics.completion_funnel(session, platform_id, since)
        scored = analytics.scored_activities(session, platform_id, since)
        chosen = request.args.get("activity") or ""
        names = dict(scored)
        if chosen not in names:
            chosen = ""
        scores = analytics.score_distribution(session, platform_id, since, chosen or None)
    scores_of = names.get(chosen, "all activities")
    return render_template(
        "xapi_analytics.html",
        days=days,
        periods=analytics.PERIODS,
        overview=overview,
        per_day=per_day,
        per_day_chart=charts.column_chart(
            "per-day",
            f"Statements per day, last {days} days",
            _per_day_summary(per_day),
            [day.strftime("%d %b") for day, _ in per_day],
            [count for _, count in per_day],
            unit="statements",
            label_every=max(1, len(per_day) // 8),
        ),
        funnel=funnel,
        funnel_chart=charts.grouped_bars(
            "funnel",
            f"Completion funnel per activity, last {days} days",
            "For each activity, the number of people who did anything in it, who completed it and who "
            "passed it. The table after the chart gives the same figures.",
            [step.name for step in funnel],
            [
                charts.Series("Started", [step.started for step in funnel]),
                charts.Series("Completed", [step.completed for step in funnel]),
                charts.Series("Passed", [step.passed for step in funnel]),
            ],
        )
        if funnel
        else None,
        scored=scored,
        chosen=chosen,
        scores=scores,
        scores_chart=charts.column_chart(
            "scores",
            f"Scaled scores of {scores_of}, last {days} days",
            f"How many scores fell in each band of the scaled score, {sum(n for _, n in scores)} scores "
            "in all. The table after the chart gives the same figures.",
            [label for label, _ in scores],
            [count for _, count in scores],
            unit="scores",
        ),
        launch_token=tool().launch_tokens.issue(context.launch_id),
    )


def _per_day_summary(per_day) -> str:
    total = sum(count for _, count in per_day)
    if not total:
        return "No statements in this period."
    busiest_day, busiest = max(per_day, key=lambda item: item[1])
    return (
        f"{total} statements from {per_day[0][0]:%d %B} to {per_day[-1][0]:%d %B %Y}; the busiest day was "
        f"{busiest_day:%d %B} with {busiest}. The table after the chart gives every day."
    )
