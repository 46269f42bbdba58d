"""Small helpers views share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, g

if TYPE_CHECKING:
    from plugins.contract import HeaderLink

    from ..app import Tool


def tool() -> Tool:
    """The running tool's services (database, keys, settings, validator)."""
    return current_app.extensions["npqsl_lti"]


def header_links() -> list[tuple[str, HeaderLink]]:
    """(plugin key, link) for the header of this page: what each plugin offers the request's launch."""
    context = g.get("launch_context")
    if context is None:
        return []
    links = []
    for plugin in tool().plugins:
        offer = getattr(plugin, "header_link", None)  # plugins written before the hook lack it
        link = offer(context) if offer is not None else None
        if link is not None:
            links.append((plugin.key, link))
    return links
