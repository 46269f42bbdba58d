"""Validation of xAPI statements and their parts, by the rules of xAPI 1.0.3 and 2.0 (IEEE 9274.1.1).

Every statement the tool emits and every statement the embedded LRS receives passes through
``validate_statement``. The checks are plain functions over the decoded JSON rather than
marshmallow field machinery because the LRS must ingest thousands of statements a second and a
nested marshmallow load costs more than a whole statement's budget; ``StatementSchema`` and
``AgentSchema`` wrap the same checks for code that wants a marshmallow schema (nesting, ``load``).

Nothing here changes the data it checks: normalising (``contextActivities`` to arrays, UTC
timestamps, ``stored``/``authority``) is the LRS's job. Each failure raises
``XapiValidationError`` whose message starts with the path of the offending field, for example
``statement.actor.mbox: must be a mailto: IRI with an email address``.

The modules, smallest first: ``errors`` (the error and JSON type checks), ``formats`` (IRIs,
UUIDs, language tags, timestamps, durations, versions), ``actors``, ``activities`` (verbs,
activities, statement references), ``statements`` (results, contexts, attachments, statements),
``marshmallow_schemas``.
"""

from .actors import validate_agent
from .errors import XapiValidationError
from .formats import (
    is_v2,
    validate_activity_id,
    validate_duration,
    validate_iri,
    validate_language_map,
    validate_language_tag,
    validate_timestamp,
    validate_uuid,
    validate_version,
)
from .marshmallow_schemas import AgentSchema, StatementSchema
from .statements import validate_statement, validate_statements

__all__ = [
    "AgentSchema",
    "StatementSchema",
    "XapiValidationError",
    "is_v2",
    "validate_activity_id",
    "validate_agent",
    "validate_duration",
    "validate_iri",
    "validate_language_map",
    "validate_language_tag",
    "validate_statement",
    "validate_statements",
    "validate_timestamp",
    "validate_uuid",
    "validate_version",
]
