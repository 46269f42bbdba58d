"""The programme dashboard: a candidate's whole programme on one page, and the coach view.

A candidate sees the qualification rule applied to them (the essential modules and the
electives they choose), the completion timeline from their start date, the face-to-face event
days and the final assessment's status. Coaches see the course roster from the VLE with each
candidate's progress and shared reflections, leave feedback, and record event-day dates and
attendance. The programme's rules are data (``programme.toml``); module progress comes from
the module engine (``plugins.modules.progress``).
"""

from __future__ import annotations

from flask import redirect, request, url_for

from plugins.contract import (
    ADMINISTRATOR,
    CANDIDATE,
    COACH,
    HeaderLink,
    LaunchContext,
    Offer,
    Plugin,
    launch_reference,
)

from .rules import Rules, load_rules


class ProgrammePlugin(Plugin):
    key = "programme"
    title = "Programme dashboard"
    kind = "programme"
    version = "0.1.0"
    launch_roles = frozenset({CANDIDATE, COACH, ADMINISTRATOR})

    def __init__(self, rules: Rules | None = None):
        self.rules = rules or load_rules()

    def offers(self):
        return (
            Offer(
                "dashboard",
                "Programme dashboard",
                "Each candidate's modules, electives, timeline and event days; coaches see their candidates.",
            ),
        )

    def blueprint(self):
        from .views import make_blueprint

        return make_blueprint(self, self.rules)

    def launch(self, context: LaunchContext, activity: str):
        """Every activity of this plugin opens the dashboard (or the coach view, for coaches)."""
        return redirect(url_for("programme.index", launch=launch_reference(context)), code=303)

    def header_link(self, context: LaunchContext) -> HeaderLink | None:
        """The way to the dashboard, on every page of a launch in a course, for the roles it serves."""
        if context.course_pk is None or context.message_type != "LtiResourceLinkRequest":
            return None
        if context.role == CANDIDATE:
            label = "Your programme dashboard"
        elif context.role in (COACH, ADMINISTRATOR):
            label = "Your candidates' progress"
        else:
            return None
        return HeaderLink(
            label,
            url_for("programme.index", launch=launch_reference(context)),
            current=request.blueprint == "programme",
        )


plugin = ProgrammePlugin()
