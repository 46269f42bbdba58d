"""Refusals of the LRS as JSON: {"error": {"code": 400, "message": "<field>: <why>"}}."""

from __future__ import annotations

from flask import Response, json


class LrsError(Exception):
    """A request the LRS refuses; nothing it asked to store has been stored."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> LrsError:
    return LrsError(400, message)


def error_response(error: LrsError) -> Response:
    body = json.dumps({"error": {"code": error.status, "message": error.message}})
    return Response(body, status=error.status, mimetype="application/json")
