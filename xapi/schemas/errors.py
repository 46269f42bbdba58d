"""The error every xAPI check raises, and the JSON type checks all the others build on."""

from __future__ import annotations

import math
from typing import Any


class XapiValidationError(ValueError):
    """A statement (or a query parameter) breaks an xAPI rule; ``field`` is the path to the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def expected(field: str, what: str, value: object) -> XapiValidationError:
    return XapiValidationError(field, f"must be {what}, not {_type_name(value)}")


def string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise expected(field, "a string", value)
    return value


def boolean(value: object, field: str) -> bool:
    if type(value) is not bool:
        raise expected(field, "a boolean (true or false)", value)
    return value


def number(value: object, field: str) -> float:
    if type(value) is not int and type(value) is not float:
        raise expected(field, "a number", value)
    if type(value) is float and not math.isfinite(value):
        raise XapiValidationError(field, "must be a finite number")
    return value


def json_object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise expected(field, "an object", value)
    return value


def array(value: object, field: str) -> list:
    if not isinstance(value, list):
        raise expected(field, "an array", value)
    return value


def only(obj: dict, allowed: frozenset[str], field: str) -> None:
    """Reject properties the spec does not define (keys are case-sensitive) and null values."""
    for key, value in obj.items():
        if key not in allowed:
            raise XapiValidationError(f"{field}.{key}", "is not a property defined by xAPI here")
        if value is None:
            raise XapiValidationError(f"{field}.{key}", "must not be null")


def require(obj: dict, key: str, field: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise XapiValidationError(f"{field}.{key}", "is required") from None
