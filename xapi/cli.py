"""The command groups `npqsl-lti lrs ...` (LRS credentials) and `npqsl-lti xapi ...` (exports)."""

from __future__ import annotations

import click


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
