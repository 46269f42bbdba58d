"""A tiny plugin used by the tests: two offers (one graded), one launch page."""

from __future__ import annotations

from html import escape

from plugins.contract import CANDIDATE, COACH, LaunchContext, Offer, Plugin


class ExamplePlugin(Plugin):
    key = "example-reflection"
    title = "Example reflection"
    kind = "example"
    version = "0.1.0"
    launch_roles = frozenset({CANDIDATE, COACH})

    def offers(self):
        return (
            Offer("quiz", "Example knowledge check", "Five questions on the example unit.", score_maximum=10),
            Offer("journal", "Example reflective journal", custom={"prompt": "What went well?"}),
        )

    def launch(self, context: LaunchContext, activity: str):
        prompt = context.custom.get("prompt", "")
        return (
            '<!doctype html><html lang="en-GB"><head><title>Example</title></head><body><main>'
            f"<h1>Example plugin: {escape(activity)}</h1><p data-prompt>{escape(prompt)}</p>"
            f"<p data-user>{escape(context.sub)}</p></main></body></html>"
        )


plugin = ExamplePlugin()


class Misdeclared(Plugin):
    key = "Not A Valid Key"
    title = "Misdeclared"
    kind = "example"


misdeclared = Misdeclared()
