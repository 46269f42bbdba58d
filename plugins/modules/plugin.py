"""The ``modules`` plugin object: offers one activity per loaded pack, and serves their pages."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint

from plugins.contract import LaunchContext, Offer, Plugin

from .packs import PackSet, load_packs


class ModulesPlugin(Plugin):
    """Every installed module pack, as one plugin of kind "module".

    The entry point names this class, so each registry (each app, each ``plugins list``) builds
    its own instance and reads the packs afresh.
    """

    key = "modules"
    title = "NPQSL modules"
    kind = "module"
    version = "1.0.0"
    xapi_activity_type = "http://adlnet.gov/expapi/activities/module"

    def __init__(self, packs: PackSet | None = None):
        self.packs = packs if packs is not None else load_packs()

    def offers(self) -> Sequence[Offer]:
        return tuple(
            Offer(
                pack.key,
                pack.title,
                f"{pack.status.capitalize()} module, about {pack.estimated_hours:g} hours. {pack.summary}",
                score_maximum=100,
            )
            for pack in self.packs
        )

    def load_problems(self) -> Sequence[tuple[str, str, str]]:
        """Packs that failed to load: (name, source, reason naming file and field)."""
        return tuple((f"{self.key}/{f.name}", f.source, f.reason) for f in self.packs.failures)

    def blueprint(self) -> Blueprint:
        from .views import make_blueprint

        return make_blueprint(self)

    def launch(self, context: LaunchContext, activity: str):
        from .views import launch_page

        return launch_page(self, context, activity)
