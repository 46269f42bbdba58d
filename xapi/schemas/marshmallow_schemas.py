"""marshmallow faces of the xAPI checks, for code that wants a Schema (``load``, ``fields.Nested``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError

from .actors import validate_agent
from .errors import XapiValidationError, array
from .statements import validate_statement


class _XapiSchema(Schema):
    """A marshmallow schema whose ``load`` runs one of the xAPI checks, for a given xAPI version.

    Errors come back as marshmallow's ``ValidationError`` keyed by the field path, so the schema
    can sit inside other marshmallow schemas (``fields.Nested``) like any other.
    """

    def __init__(self, *args: Any, version: str = "1.0.3", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.xapi_version = version

    def check(self, data: object) -> Any:  # pragma: no cover - each subclass defines it
        raise NotImplementedError

    def load(self, data: Any, *, many: bool | None = None, **_kwargs: Any) -> Any:
        many = self.many if many is None else many
        try:
            if many:
                return [self.check(item) for item in array(data, "items")]
            return self.check(data)
        except XapiValidationError as error:
            raise ValidationError({error.field: [error.message]}) from error


class StatementSchema(_XapiSchema):
    """A Statement, as marshmallow sees it; ``load`` returns the statement unchanged."""

    def check(self, data: object) -> object:
        return validate_statement(data, self.xapi_version)


class AgentSchema(_XapiSchema):
    """An Agent or identified Group (the agent of the documents APIs and queries)."""

    def check(self, data: object) -> object:
        return validate_agent(data, self.xapi_version)
