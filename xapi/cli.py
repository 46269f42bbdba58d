"""The command groups `npqsl-lti lrs ...` (LRS credentials) and `npqsl-lti xapi ...` (exports)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from . import export


def _database():
    from lti_tool.cli import _database as tool_database

    return tool_database()


@click.group()
def lrs() -> None:
    """The embedded learning record store: its credentials."""


@lrs.group()
def key() -> None:
    """HTTP Basic keys for the LRS's xAPI resources."""


@key.command("create")
@click.option("--scope", type=click.Choice(["read", "write", "all"]), required=True)
@click.option("--name", default="", help="Who the key is for (shown in lists and in statement authorities)")
def key_create(scope: str, name: str) -> None:
    """Create a key; its secret is printed once and never stored."""
    from .lrs.auth import create_key

    new_key, secret = create_key(_database(), scope, name)
    click.echo(f"key:    {new_key}")
    click.echo(f"secret: {secret}")
    click.echo("Keep the secret now: only its hash is stored.", err=True)


@key.command("list")
def key_list() -> None:
    """List keys (never their secrets)."""
    from .lrs.auth import list_keys

    for credential in list_keys(_database()):
        state = f"revoked {credential.revoked_at:%Y-%m-%d %H:%M}" if credential.revoked_at else "active"
        click.echo(f"{credential.key}  {credential.scope:<5}  {state:<24}  {credential.name}")


@key.command("revoke")
@click.argument("key_id", metavar="KEY")
def key_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on (within 5 seconds)."""
    from .lrs.auth import UnknownKey, revoke_key

    try:
        revoke_key(_database(), key_id)
    except UnknownKey as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {key_id}")


@click.group(name="xapi")
def xapi_group() -> None:
    """xAPI statements: exports for analytics."""


class Instant(click.ParamType):
    """An ISO 8601 date or date-time; a date is its midnight UTC, a time without offset is UTC."""

    name = "ISO-8601"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or date-time (for example 2026-03-01 or 2026-03-01T09:30:00Z)",
                param,
                ctx,
            )
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@xapi_group.command("export")
@click.option(
    "--since", type=Instant(), help="First stored instant to include (ISO 8601; UTC unless an offset is given)"
)
@click.option(
    "--until", type=Instant(), help="Stored instant to stop before (excluded: periods chain without gaps)"
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(export.FORMATS),
    required=True,
    help="jsonl: statements as stored; csv: the common fields",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of standard output"
)
@click.option(
    "--include-voided", is_flag=True, help="Also export statements that were voided (left out by default)"
)
def export_command(since, until, fmt: str, out: str | None, include_voided: bool) -> None:
    """Export stored statements, oldest first, in constant memory.

    The file appears only once the export is complete (it is written as FILE.part first).
    """
    from lti_tool.cli import _settings

    from .projection import Extensions
    from .vocabulary import Vocabulary

    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    extensions = Extensions.of(Vocabulary.from_settings(_settings()))
    database = _database()
    target = Path(out) if out else None
    show_bar = sys.stderr.isatty() and (target is not None or not sys.stdout.isatty())
    total = export.count(database, since, until, include_voided) if show_bar else 0
    bar = click.progressbar(length=total, label="Exporting", file=sys.stderr) if show_bar else nullcontext()
    try:
        with _output(target) as stream, bar as progress:
            written = export.write(
                database,
                stream,
                fmt,
                since=since,
                until=until,
                include_voided=include_voided,
                extensions=extensions,
                advance=progress.update if progress is not None else None,
            )
    finally:
        database.dispose()
    click.echo(f"exported {written} statement(s){f' to {target}' if target else ''}", err=True)


@contextmanager
def _output(target: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``target`` written as ``target.part`` and renamed once complete."""
    if target is None:
        yield click.get_text_stream("stdout")
        return
    part = target.with_name(target.name + ".part")
    try:
        stream = part.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise click.ClickException(f"--out: cannot write {target}: {exc.strerror}") from None
    try:
        with stream:
            yield stream
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(target)
