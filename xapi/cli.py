"""The command groups `npqsl-lti lrs ...` (LRS credentials) and `npqsl-lti xapi ...` (exports)."""

from __future__ import annotations

import click


@click.group()
def lrs() -> None:
    """The embedded learning record store: its credentials."""


@click.group(name="xapi")
def xapi_group() -> None:
    """xAPI statements: exports for analytics."""
