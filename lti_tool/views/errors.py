"""Refusal pages: plain words for the person in the iframe, a hint and a reference for the admin."""

from __future__ import annotations

import logging

from flask import render_template, request

from ..errors import LaunchError

log = logging.getLogger("lti_tool.refused")


def render_launch_error(error: LaunchError):
    """Log the refusal with its reference id and show a page the iframe can display."""
    reason = error.reason
    log.warning(
        "refused code=%s ref=%s path=%s detail=%s",
        error.code,
        error.reference,
        request.path,
        error.detail,
    )
    page = render_template(
        "launch_error.html",
        code=error.code,
        message=reason.message,
        hint=reason.hint,
        reference=error.reference,
    )
    return page, reason.status
