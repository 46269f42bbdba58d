"""Documents other systems fetch: the tool's JWKS and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from .helpers import tool

bp = Blueprint("wellknown", __name__)


@bp.get("/.well-known/jwks.json")
def jwks():
    """The tool's public keys: the current signing key and recently retired ones."""
    response = jsonify(tool().keyring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/healthz")
def healthz():
    """Liveness and readiness: the database answers and a signing key exists."""
    checks = {}
    try:
        with tool().db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        checks["signing_key"] = "ok" if tool().keyring.current.kid else "missing"
    except RuntimeError:
        checks["signing_key"] = "missing"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", checks=checks), 200 if healthy else 503
