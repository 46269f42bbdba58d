"""The ``npqsl-lti`` command: serve, migrate, rotate keys, manage platform registrations."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from functools import wraps

import click
from sqlalchemy import inspect

from . import keys as tool_keys
from .db import Database
from .platforms import (
    RegistryError,
    add_platform,
    approve_platform,
    list_platforms,
    remove_platform,
    resolve,
)
from .settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _database(settings: Settings | None = None, *, migrated: bool = True) -> Database:
    """The tool's database; unless told otherwise, refuse one `db upgrade` has not prepared."""
    database = Database((settings or _settings()).database_url)
    if migrated and not inspect(database.engine).has_table("tool_keys"):
        shown = database.engine.url.render_as_string(hide_password=True)
        raise click.ClickException(
            f"NPQSL_DATABASE_URL: database {shown} has no tables yet; run `npqsl-lti db upgrade` first"
        )
    return database


def _registry_errors(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group()
def main() -> None:
    """NPQSL-aligned LTI 1.3 tool."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=int,
    help="gunicorn workers (production)",
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the tool (Werkzeug in development, gunicorn in production)."""
    settings = _settings()
    from .app import create_app

    try:
        app = create_app(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.is_development:
        click.echo(f"npqsl-lti (development) on http://{host}:{port}")
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self):
            return app

    _Gunicorn().run()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations and create the first signing key if there is none."""
    database = _database(migrated=False)
    database.upgrade(revision)
    created = tool_keys.ensure_signing_key(database) if revision == "head" else False
    click.echo(f"database at revision {database.current_revision()}")
    if created:
        click.echo("generated the tool's first signing key")


@db.command("purge")
def db_purge() -> None:
    """Delete launches that expired more than a day ago (run it daily)."""
    from .maintenance import purge_expired

    click.echo(f"purged {purge_expired(_database())} expired launch(es)")


@main.group()
def keys() -> None:
    """The tool's signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; older keys stay published for the grace period."""
    settings = _settings()
    database = _database(settings)
    kid = tool_keys.rotate(database)
    purged = tool_keys.purge_expired(database, timedelta(days=settings.key_grace_days))
    click.echo(f"new signing key {kid}; previous keys stay in the JWKS for {settings.key_grace_days} days")
    if purged:
        click.echo(f"removed {purged} key(s) past their grace period")


@keys.command("list")
def keys_list() -> None:
    """Show every key: current, retired (still published) and when."""
    settings = _settings()
    ring = tool_keys.KeyRing(_database(settings), timedelta(days=settings.key_grace_days))
    published = {k.kid for k in ring.published()}
    current = ring.current.kid
    for key in ring.all():
        status = "current" if key.kid == current else ("published" if key.kid in published else "expired")
        retired = key.retired_at.isoformat(timespec="seconds") if key.retired_at else "-"
        click.echo(
            f"{key.kid}  {status:9}  created {key.created_at.isoformat(timespec='seconds')}  retired {retired}"
        )


@main.group()
def platform() -> None:
    """Platform (VLE) registrations."""


@platform.command("add")
@click.option("--issuer", required=True, help="The platform's issuer (Moodle: its site URL)")
@click.option("--client-id", required=True)
@click.option(
    "--deployment-id",
    "deployment_ids",
    multiple=True,
    required=True,
    help="Repeat for several",
)
@click.option("--auth-url", required=True, help="OIDC authentication request URL")
@click.option("--token-url", required=True, help="OAuth2 access token URL")
@click.option("--keyset-url", required=True, help="Public keyset (JWKS) URL")
@click.option("--name", default="", help="A name for people (default: the issuer's host)")
@click.option(
    "--audience",
    default=None,
    help="Token endpoint audience, if the platform wants one",
)
@_registry_errors
def platform_add(issuer, client_id, deployment_ids, auth_url, token_url, keyset_url, name, audience) -> None:
    """Register a platform (or add deployments to an existing registration)."""
    info = add_platform(
        _database(),
        issuer=issuer,
        client_id=client_id,
        deployment_ids=list(deployment_ids),
        auth_login_url=auth_url,
        auth_token_url=token_url,
        key_set_url=keyset_url,
        name=name,
        auth_audience=audience,
    )
    click.echo(
        f"platform {info.id}: {info.issuer} client {info.client_id} deployments {', '.join(info.deployment_ids)}"
    )


@platform.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def platform_list(as_json: bool) -> None:
    """List registrations."""
    platforms = list_platforms(_database())
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in platforms], indent=2))
        return
    if not platforms:
        click.echo("no platforms registered (add one with `npqsl-lti platform add`)")
    for p in platforms:
        state = "approved" if p.approved else "PENDING"
        click.echo(
            f"{p.id:>4}  {state:8}  {p.issuer}  client={p.client_id}  deployments={','.join(p.deployment_ids)}"
        )


@platform.command("show")
@click.argument("ref")
@_registry_errors
def platform_show(ref: str) -> None:
    """Show one registration (by id or issuer)."""
    p = resolve(_database(), ref)
    for label, value in (
        ("id", p.id),
        ("name", p.name),
        ("issuer", p.issuer),
        ("client id", p.client_id),
        ("deployments", ", ".join(p.deployment_ids)),
        ("auth login URL", p.auth_login_url),
        ("token URL", p.auth_token_url),
        ("key set URL", p.key_set_url),
        ("token audience", p.auth_audience or "(token URL)"),
        ("status", "approved" if p.approved else "waiting for approval"),
    ):
        click.echo(f"{label:>15}: {value}")


@platform.command("invite")
@click.option("--auto-approve", is_flag=True, help="Approve the registration this link makes at once")
@click.option("--note", default="", help="Who the link is for (kept with the invite)")
def platform_invite(auto_approve: bool, note: str) -> None:
    """Print a one-time dynamic registration URL for a VLE administrator."""
    from .registration import create_invite

    settings = _settings()
    token = create_invite(
        _database(settings),
        ttl_days=settings.registration.invite_ttl_days,
        auto_approve=auto_approve,
        note=note,
    )
    base = settings.public_url or "http://127.0.0.1:5000"
    click.echo(f"{base}/lti/register?invite={token}")
    click.echo(f"valid once, for {settings.registration.invite_ttl_days} days", err=True)


@platform.command("approve")
@click.argument("ref")
@_registry_errors
def platform_approve(ref: str) -> None:
    """Approve a registration that is waiting (dynamic registration)."""
    database = _database()
    p = resolve(database, ref)
    approve_platform(database, p.id)
    click.echo(f"platform {p.id} ({p.issuer}) approved")


@platform.command("remove")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@_registry_errors
def platform_remove(ref: str, yes: bool) -> None:
    """Remove a registration and every record of that platform's users and courses."""
    database = _database()
    p = resolve(database, ref)
    if not yes:
        click.confirm(f"Remove platform {p.id} ({p.issuer}) and all its data?", abort=True)
    remove_platform(database, p.id)
    click.echo(f"platform {p.id} removed")


@main.group()
def plugins() -> None:
    """Installed activity plugins."""


@plugins.command("list")
def plugins_list() -> None:
    """Show installed plugins (key, kind, version, offers) and any that failed to load."""
    from .plugin_registry import load_plugins

    registry = load_plugins()
    if not registry.plugins:
        click.echo("no plugins installed")
    for plugin in registry:
        offers = ", ".join(o.activity for o in plugin.offers()) or "-"
        click.echo(f"{plugin.key}  {plugin.kind}  {plugin.version}  {plugin.title}  offers: {offers}")
        click.echo(f"    from {registry.sources[plugin.key]}")
    for failure in registry.failures:
        click.echo(f"FAILED {failure.name}  from {failure.source}: {failure.reason}")


def _outcomes_line(outcomes) -> str:
    return (
        f"delivered {outcomes['delivered']}, to retry {outcomes['retry']}, "
        f"refused {outcomes['failed']}, dead {outcomes['dead']}"
    )


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (cron, scripts)")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Workers in this process (each claims its own rows)",
)
def worker(once: bool, concurrency: int) -> None:
    """Deliver the outbox (xAPI statements, AGS scores) until stopped with Ctrl-C or SIGTERM.

    Run as many as you like, on as many machines: a row is delivered by one worker only.
    """
    import signal

    from .app import create_app
    from .worker import WorkerThreads

    settings = _settings()
    try:
        app = create_app(settings, start_worker=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    workers = WorkerThreads(app, concurrency)
    if once:
        click.echo(_outcomes_line(workers.drain()))
        return
    stop = workers.stop_event
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    workers.start()
    click.echo(f"npqsl-lti worker: {concurrency} worker(s) delivering the outbox; stop with Ctrl-C", err=True)
    while not stop.wait(1.0) and workers.alive:
        pass
    workers.stop()
    click.echo(f"npqsl-lti worker stopped: {_outcomes_line(workers.outcomes())}", err=True)


@main.group()
def outbox() -> None:
    """Deliveries owed to the LRS and the VLE gradebooks: see, re-drive, purge."""


@outbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def outbox_status(as_json: bool) -> None:
    """Counts per receiver and status, the oldest pending row, and the dead rows with their answer."""
    from . import outbox as rows

    state = rows.status(_database())
    if as_json:
        click.echo(json.dumps(state.as_json(), indent=2))
        return
    if not state.counts:
        click.echo("the outbox is empty")
        return
    click.echo(f"{'receiver':16}  {'pending':>8}  {'delivered':>9}  {'dead':>6}")
    for receiver, counts in state.counts.items():
        click.echo(
            f"{receiver:16}  {counts[rows.PENDING]:>8}  {counts[rows.DELIVERED]:>9}  {counts[rows.DEAD]:>6}"
        )
    oldest = state.oldest_pending
    if oldest is None:
        click.echo("nothing pending")
    else:
        line = (
            f"oldest pending: {rows.format_age(state.oldest_pending_age)} old "
            f"(#{oldest.id} {oldest.receiver}, {oldest.attempts} attempt(s)"
        )
        if oldest.answer:
            line += f", last answer: {oldest.answer}"
        click.echo(line + ")")
    for row in state.dead:
        click.echo(
            f"dead #{row.id} {row.receiver} platform {row.platform_id} event {row.event_id} "
            f"after {row.attempts} attempt(s): {row.answer or '-'}"
        )
    if state.dead_total > len(state.dead):
        click.echo(f"... and {state.dead_total - len(state.dead)} more dead row(s)")


@outbox.command("retry")
@click.option("--id", "ids", type=int, multiple=True, help="A dead row's id (repeat for several)")
@click.option("--receiver", help="Every dead row of this receiver (e.g. ags, xapi)")
@click.option("--all-dead", is_flag=True, help="Every dead row")
def outbox_retry(ids: tuple[int, ...], receiver: str | None, all_dead: bool) -> None:
    """Put dead rows back to pending, attempts reset; a running worker delivers them."""
    from . import outbox as rows

    if sum(map(bool, (ids, receiver, all_dead))) != 1:
        raise click.UsageError("choose one of --id, --receiver or --all-dead")
    retried = rows.retry_dead(_database(), ids=ids, receiver=receiver)
    click.echo(
        f"{len(retried)} dead row(s) back to pending" + (f": {', '.join(map(str, retried))}" if retried else "")
    )
    missing = sorted(set(ids) - set(retried))
    if missing:
        raise click.ClickException(f"not dead (or no such row): {', '.join(map(str, missing))}")


@outbox.command("purge")
@click.option(
    "--delivered-older-than",
    "days",
    required=True,
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Delete rows delivered more than DAYS ago",
)
def outbox_purge(days: float) -> None:
    """Delete delivered rows older than DAYS (the learning events themselves are kept)."""
    from . import outbox as rows

    purged = rows.purge_delivered(_database(), timedelta(days=days))
    click.echo(f"purged {purged} delivered row(s) older than {days:g} day(s)")


def _add_xapi_commands() -> None:
    from xapi.cli import lrs, xapi_group

    main.add_command(lrs)
    main.add_command(xapi_group)


_add_xapi_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
