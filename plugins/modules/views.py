"""The module pages: overview, unit, reflection history, and the forms candidates post.

Every link and form carries the launch reference (``launch``); cookies may be refused inside the
VLE's iframe. Reflections autosave through ``fetch`` with the same reference, and the plain form
posts work without JavaScript. Candidates' work is saved; coaches and others see the pages to
preview them, without forms that save.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from lti_tool.errors import LaunchError
from plugins.contract import CANDIDATE, LaunchContext, current_launch, launch_reference

from . import engine
from .markdown import render as render_markdown
from .packs import BEHAVIOURS, CONTENT_AREAS, KnowledgeCheck, Pack, Reflection, Unit, WorkplaceTask
from .plugin import ModulesPlugin

LABELS = {
    **{key: key.replace("-", " ").capitalize() for key in CONTENT_AREAS + BEHAVIOURS},
    "personal-drive": "Personal drive",
}
EXPIRED_MESSAGE = (
    "Your session with the tool has ended, so this was not saved. Your text is still here: "
    "reopen the activity from your course page, and it will be saved from there."
)


@dataclass(frozen=True)
class Page:
    """What every module page knows: the plugin, the launch, its reference, the pack."""

    plugin: ModulesPlugin
    context: LaunchContext
    token: str
    pack: Pack

    @property
    def saves(self) -> bool:
        return self.context.role == CANDIDATE

    def url(self, endpoint: str, **values) -> str:
        return url_for(f"modules.{endpoint}", module=self.pack.key, launch=self.token, **values)


def when(iso: str | None) -> str:
    """An ISO 8601 time as people read it (UTC, as stored)."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%-d %b %Y, %H:%M UTC")


def _wants_json() -> bool:
    return (
        request.headers.get("X-Requested-With") == "fetch" or request.accept_mimetypes.best == "application/json"
    )


def _render(name: str, page: Page | None, status: int = 200, **values):
    return (
        render_template(
            f"modules/{name}.html",
            page=page,
            labels=LABELS,
            static=lambda f: url_for("modules.static", filename=f),
            when=when,
            **values,
        ),
        status,
    )


def _pack_or_404(plugin: ModulesPlugin, key: str) -> Pack:
    pack = plugin.packs.get(key)
    if pack is None:
        abort(404)
    return pack


def _unit_or_404(pack: Pack, key: str) -> Unit:
    unit = pack.unit(key)
    if unit is None:
        abort(404)
    return unit


def _activity_or_404(unit: Unit, kind: type, key: str):
    found = next((a for a in unit.of_type(kind) if a.key == key), None)
    if found is None:
        abort(404)
    return found


def launch_page(plugin: ModulesPlugin, context: LaunchContext, activity: str):
    """A launch from the VLE: the module's overview (or a clear page when the pack is gone)."""
    pack = plugin.packs.get(activity)
    if pack is None:
        failure = next((f for f in plugin.packs.failures if f.name == activity), None)
        return _render("missing", None, 404, module=activity, failure=failure)
    engine.launched(plugin, context, pack)
    return overview(Page(plugin, context, launch_reference(context), pack))


def overview(page: Page):
    progress = engine.read_progress(page.plugin, page.context, page.pack)
    state = engine.read(page.plugin, page.context, page.pack, engine.PROGRESS)[0]
    return _render("overview", page, progress=progress, visited=state.get("visited") or {})


def _expired(error: LaunchError, text: str | None = None):
    if _wants_json():
        return jsonify(error="launch_expired", message=EXPIRED_MESSAGE), 401
    return _render("expired", None, 401, message=EXPIRED_MESSAGE, text=text, code=error.code)


def _refused(message: str, status: int = 400):
    return jsonify(error="refused", message=message), status


def make_blueprint(plugin: ModulesPlugin) -> Blueprint:
    bp = Blueprint("modules", __name__, template_folder="templates", static_folder="static")

    def page_for(module: str) -> Page:
        context = current_launch()
        return Page(plugin, context, request.values.get("launch", ""), _pack_or_404(plugin, module))

    def unit_page(page: Page, unit: Unit, **values):
        before, after = page.pack.neighbours(unit.key)
        reflections = {
            r.key: engine.read(plugin, page.context, page.pack, engine.reflection_record(unit.key, r.key))
            for r in unit.of_type(Reflection)
        }
        checks = {
            c.key: engine.read(plugin, page.context, page.pack, engine.check_record(unit.key, c.key))[0]
            for c in unit.of_type(KnowledgeCheck)
        }
        tasks = {
            t.key: engine.read(plugin, page.context, page.pack, engine.task_record(unit.key, t.key))[0]
            for t in unit.of_type(WorkplaceTask)
        }
        return _render(
            "unit",
            page,
            unit=unit,
            number=page.pack.units.index(unit) + 1,
            content=render_markdown(unit.content),
            before=before,
            after=after,
            reflections=reflections,
            checks=checks,
            tasks=tasks,
            installed=plugin_installed,
            mark=engine.mark,
            **values,
        )

    def plugin_installed(key: str) -> bool:
        return current_app.extensions["npqsl_lti"].plugins.get(key) is not None

    @bp.errorhandler(LaunchError)
    def _launch_error(error: LaunchError):
        text = request.form.get("text") if request.method == "POST" else None
        return _expired(error, text)

    @bp.get("/<module>/")
    def module_overview(module: str):
        return overview(page_for(module))

    @bp.get("/<module>/<unit>")
    def unit(module: str, unit: str):
        page = page_for(module)
        found = _unit_or_404(page.pack, unit)
        if page.saves:
            engine.visit_unit(plugin, page.context, page.pack, found)
        return unit_page(
            page,
            found,
            checked=request.args.get("checked"),
            logged=request.args.get("logged"),
            saved=request.args.get("saved"),
        )

    def candidate_page(module: str) -> Page:
        page = page_for(module)
        if not page.saves:
            message = f"Only candidates' work is saved here; you opened this as {page.context.role}."
            abort(make_response(jsonify(error="not_a_candidate", message=message), 403))
        return page

    @bp.post("/<module>/<unit>/reflections/<key>")
    def save_reflection(module: str, unit: str, key: str):
        page = candidate_page(module)
        found = _unit_or_404(page.pack, unit)
        reflection = _activity_or_404(found, Reflection, key)
        text = request.form.get("text", "").replace("\r\n", "\n")
        try:
            base = int(request.form.get("version", "0"))
            saved = engine.save_reflection(plugin, page.context, page.pack, found, reflection, text, base)
        except ValueError as error:
            message = str(error) if isinstance(error, engine.ActivityError) else "The form was not complete."
            if _wants_json():
                return _refused(message)
            return unit_page(page, found, errors={key: message}, drafts={key: text})[0], 400
        if _wants_json():
            return jsonify(
                version=saved.version,
                saved_at=saved.saved_at,
                conflict=saved.conflict,
                other_text=saved.other_text,
            )
        return redirect(page.url("unit", unit=unit, saved=key) + f"#reflection-{key}", 303)

    @bp.post("/<module>/<unit>/reflections/<key>/share")
    def share_reflection(module: str, unit: str, key: str):
        page = candidate_page(module)
        found = _unit_or_404(page.pack, unit)
        reflection = _activity_or_404(found, Reflection, key)
        shared = request.form.get("shared") == "1"
        engine.share_reflection(plugin, page.context, page.pack, found, reflection, shared)
        if _wants_json():
            return jsonify(shared=shared)
        return redirect(page.url("unit", unit=unit, saved=key) + f"#reflection-{key}", 303)

    @bp.get("/<module>/<unit>/reflections/<key>/history")
    def reflection_history(module: str, unit: str, key: str):
        page = page_for(module)
        found = _unit_or_404(page.pack, unit)
        reflection = _activity_or_404(found, Reflection, key)
        data, _ = engine.read(plugin, page.context, page.pack, engine.reflection_record(unit, key))
        return _render("history", page, unit=found, reflection=reflection, history=data.get("history", [])[::-1])

    @bp.post("/<module>/<unit>/checks/<key>")
    def submit_check(module: str, unit: str, key: str):
        page = candidate_page(module)
        found = _unit_or_404(page.pack, unit)
        check = _activity_or_404(found, KnowledgeCheck, key)
        chosen = {q.key: request.form.getlist(q.key) for q in check.questions}
        try:
            answers = engine.parse_answers(check, chosen)
        except engine.ActivityError as error:
            return unit_page(page, found, errors={key: str(error)}, choices={key: chosen})[0], 400
        engine.submit_check(plugin, page.context, page.pack, found, check, answers)
        return redirect(page.url("unit", unit=unit, checked=key) + f"#check-{key}", 303)

    @bp.post("/<module>/<unit>/tasks/<key>")
    def log_task(module: str, unit: str, key: str):
        page = candidate_page(module)
        found = _unit_or_404(page.pack, unit)
        task = _activity_or_404(found, WorkplaceTask, key)
        did, evidence = request.form.get("did", ""), request.form.get("evidence", "")
        try:
            engine.log_task(plugin, page.context, page.pack, found, task, did, evidence)
        except engine.ActivityError as error:
            drafts = {key: {"did": did, "evidence": evidence}}
            return unit_page(page, found, errors={key: str(error)}, task_drafts=drafts)[0], 400
        return redirect(page.url("unit", unit=unit, logged=key) + f"#task-{key}", 303)

    return bp
