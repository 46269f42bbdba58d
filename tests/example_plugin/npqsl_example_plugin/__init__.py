"""A tiny plugin used by the tests: two offers (one graded), a launch page, one form that scores."""

from __future__ import annotations

from html import escape

from flask import Blueprint, request

from plugins.contract import (
    CANDIDATE,
    COACH,
    LaunchContext,
    LearningEvent,
    Offer,
    Plugin,
    Result,
    current_launch,
    launch_reference,
    record,
)


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
        with record(context, self) as rec:
            rec.emit(LearningEvent("launched", activity))
        prompt = context.custom.get("prompt", "")
        token = launch_reference(context)
        return (
            '<!doctype html><html lang="en-GB"><head><title>Example</title></head><body><main>'
            f"<h1>Example plugin: {escape(activity)}</h1><p data-prompt>{escape(prompt)}</p>"
            f"<p data-user>{escape(context.sub)}</p><p data-launch>{escape(token)}</p></main></body></html>"
        )

    def blueprint(self):
        bp = Blueprint("example_reflection", __name__)

        @bp.post("/score")
        def score():
            """Record a quiz score: state and the 'scored' event commit together."""
            context = current_launch()
            raw = float(request.form["score"])
            with record(context, self) as rec:
                rec.save("quiz", "attempts", {"last": raw})
                rec.emit(LearningEvent("scored", "quiz", Result(score_raw=raw, score_max=10, completion=True)))
            return {"ok": True}

        return bp


plugin = ExamplePlugin()


class Misdeclared(Plugin):
    key = "Not A Valid Key"
    title = "Misdeclared"
    kind = "example"


misdeclared = Misdeclared()
