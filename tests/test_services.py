"""Service calls (the OAuth2 client-credentials exchange) against the test platform over HTTP."""

from __future__ import annotations

import jwt
import pytest
from pylti1p3.exception import LtiServiceException

from lti_tool import keys
from lti_tool.platforms import find_platform

from .platform_emulator import TestPlatform

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


@pytest.fixture
def own_platform(make_tool):
    platform = TestPlatform().start()
    server = make_tool()
    server.register(platform)
    yield server, platform
    platform.stop()


def connector(server, platform):
    with server.app.app_context():
        return server.tool.service_connector(find_platform(server.db, platform.issuer))


def test_access_token_is_obtained_with_an_assertion_the_platform_verifies(own_platform):
    server, platform = own_platform
    token = connector(server, platform).get_access_token([NRPS_SCOPE])
    assert token.startswith("at-")
    request = platform.token_requests[-1]
    assert request["scope"] == NRPS_SCOPE
    header = jwt.get_unverified_header(request["client_assertion"])
    assert header["kid"] == server.tool.keyring.current.kid


def test_access_token_is_cached_per_platform_and_scope(own_platform):
    server, platform = own_platform
    service = connector(server, platform)
    first = service.get_access_token([NRPS_SCOPE])
    assert service.get_access_token([NRPS_SCOPE]) == first
    assert len(platform.token_requests) == 1
    service.forget_access_token([NRPS_SCOPE])
    assert service.get_access_token([NRPS_SCOPE]) != first
    assert len(platform.token_requests) == 2


def test_assertion_after_key_rotation_uses_the_new_key(own_platform):
    server, platform = own_platform
    new_kid = keys.rotate(server.db)
    server.tool.keyring.reload()
    connector(server, platform).get_access_token(["scope-after-rotation"])
    assert jwt.get_unverified_header(platform.token_requests[-1]["client_assertion"])["kid"] == new_kid


def test_service_request_reads_the_roster_with_a_bearer_token(own_platform):
    server, platform = own_platform
    platform.members = [{"user_id": "u1", "roles": ["Learner"], "status": "Active"}]
    response = connector(server, platform).make_service_request(
        [NRPS_SCOPE], platform.base_url + "/nrps/memberships"
    )
    assert response["body"]["members"][0]["user_id"] == "u1"


def test_platform_refusing_the_assertion_raises_a_service_error(own_platform):
    server, platform = own_platform
    platform.client_id = "someone-else"  # the platform now expects another client
    with pytest.raises(LtiServiceException):
        connector(server, platform).get_access_token([NRPS_SCOPE])
