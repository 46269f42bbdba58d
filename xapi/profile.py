"""The NPQSL xAPI Profile, served at its own IRI so that every statement's category resolves.

``config/xapi-profile.jsonld`` is written under ``vocabulary.FALLBACK_BASE``; it is served with
that prefix replaced by the installation's base URL, the same base its statements use. The
profile's IRI and its version's IRI both answer with the whole document; a concept, template or
pattern IRI under them answers with that one entry.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app

from lti_tool.paths import CONFIG_DIR

from .vocabulary import FALLBACK_BASE, Vocabulary

PROFILE_FILE = CONFIG_DIR / "xapi-profile.jsonld"
MEDIA_TYPE = "application/ld+json"
PROFILE_CONTEXT = "https://w3id.org/xapi/profiles/context"

bp = Blueprint("xapi_profile", __name__)


def _rebase(value: Any, base: str) -> Any:
    if isinstance(value, str):
        # Anywhere in the string: template rules name extension IRIs inside JSONPath.
        return value.replace(FALLBACK_BASE, base)
    if isinstance(value, list):
        return [_rebase(item, base) for item in value]
    if isinstance(value, dict):
        return {key: _rebase(item, base) for key, item in value.items()}
    return value


@lru_cache(maxsize=8)
def _document(base: str) -> str:
    return json.dumps(_rebase(json.loads(PROFILE_FILE.read_text(encoding="utf-8")), base), ensure_ascii=False)


def profile_document(vocab: Vocabulary) -> dict:
    """The profile as this installation publishes it."""
    return json.loads(_document(vocab.base))


def _vocab() -> Vocabulary:
    return Vocabulary.from_settings(current_app.extensions["npqsl_lti"].settings)


def _json(data: dict, status: int = 200) -> Response:
    response = Response(json.dumps(data, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/xapi/profile")
@bp.get("/xapi/profile/v1")
def profile() -> Response:
    """The whole profile document."""
    return _json(profile_document(_vocab()))


@bp.get("/xapi/profile/<path:concept>")
def concept(concept: str) -> Response:
    """One concept, statement template or pattern of the profile, by its IRI."""
    vocab = _vocab()
    document = profile_document(vocab)
    wanted = vocab.concept(concept)
    for section in ("concepts", "templates", "patterns"):
        for entry in document.get(section, []):
            if entry.get("id") == wanted:
                return _json({"@context": PROFILE_CONTEXT, **entry})
    response = _json({"error": f"the NPQSL profile defines nothing at {wanted}"}, 404)
    response.mimetype = "application/json"
    return response
