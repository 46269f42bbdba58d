"""Forged and malformed launches, each sent over real HTTP, each refused for its own reason.

Every case runs the real flow (login at the tool, authorization at the test platform, form post
of the id_token) with one thing made wrong: a claim, the header, the signing key, the token's
shape, the posted form, the state cookie or the login request. Each must show its own reason code
and a reference id, and must leave the stored data exactly as it was: no person, course,
resource link or launch written, and the login it answered still unused (so a refused
attempt never burns the nonce). Two tolerated variations are checked to still launch, so the
matrix cannot pass by refusing everything.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import func, select

from lti_tool import id_token as lti
from lti_tool import login_states
from lti_tool.errors import REASONS
from lti_tool.launch import state_cookie_name
from lti_tool.models import Course, Launch, ResourceLink, User
from lti_tool.platforms import remove_platform

from .browser import Browser, FormPost
from .platform_emulator import (
    ADMIN,
    LaunchSpec,
    TestPlatform,
    b64url,
    hs256_token,
    unsigned_token,
)
from .tool_server import ToolServer

COUNTED = {
    "users": User,
    "courses": Course,
    "resource_links": ResourceLink,
    "launches": Launch,
}
REFERENCE = re.compile(r"<code data-reference>([0-9a-f]{12})</code>")

# Keys that are not the platform's: generated once, they sign the forgeries.
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())


def table_counts(tool: ToolServer) -> dict[str, int]:
    with tool.db.sessions() as session:
        return {name: session.scalar(select(func.count()).select_from(model)) for name, model in COUNTED.items()}


def login_used(tool: ToolServer, state: str) -> bool:
    return login_states.was_used(tool.db, login_states.state_id(state))


# -- token shaping ------------------------------------------------------------------------------
def b64json(data) -> str:
    return b64url(json.dumps(data).encode())


def unb64json(part: str):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def rs256_by_hand(header: dict, claims: dict, key: rsa.RSAPrivateKey) -> str:
    """A correctly RS256-signed JWT with any header at all (PyJWT validates some header fields)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def with_claims(changes: dict | None = None, drop: tuple[str, ...] = ()) -> Callable[[dict], None]:
    def mutate(claims: dict) -> None:
        claims.update(changes or {})
        for name in drop:
            claims.pop(name, None)

    return mutate


def shifted_times(iat: int, exp: int) -> Callable[[dict], None]:
    """iat/exp relative to the moment the platform signs the token."""

    def mutate(claims: dict) -> None:
        now = int(time.time())
        claims["iat"], claims["exp"] = now + iat, now + exp

    return mutate


def several_audiences(azp: str | None = None, *, azp_is_ours: bool = False) -> Callable[[dict], None]:
    """``aud`` as a list naming our client and another one, with or without an ``azp``."""

    def mutate(claims: dict) -> None:
        ours = claims["aud"]
        claims["aud"] = [ours, "another-client"]
        if azp_is_ours:
            claims["azp"] = ours
        elif azp is not None:
            claims["azp"] = azp

    return mutate


def tamper_payload(token: str) -> str:
    """Promote the learner to administrator after signing, keeping the original signature."""
    head, body, signature = token.split(".")
    claims = unb64json(body)
    claims[lti.ROLES] = [ADMIN]
    return f"{head}.{b64json(claims)}.{signature}"


def replace_header(token: str, header_part: str) -> str:
    return header_part + token[token.index(".") :]


# -- the attacks --------------------------------------------------------------------------------
class Env:
    """One attempt: the real tool and platform, a fresh browser, and what to compare against."""

    def __init__(self, tool: ToolServer, platform: TestPlatform, browser: Browser, request):
        self.tool = tool
        self.platform = platform
        self.browser = browser
        self.request = request
        self.state: str | None = None
        self.before: dict[str, int] | None = None

    def form(self, spec: LaunchSpec | None = None) -> FormPost:
        """Log in and collect the form the platform would auto-post (the login row now exists)."""
        form = self.browser.platform_post(self.tool, self.platform, spec)
        self.state = form.fields["state"]
        return form

    def post(self, form: FormPost) -> requests.Response:
        self.before = table_counts(self.tool)
        return self.browser.post(form.action, data=form.fields)

    def login(self, platform: TestPlatform | None = None, **params: str | None) -> requests.Response:
        """A login initiation from the platform, with some parameters changed (None drops one)."""
        platform = platform or self.platform
        hint = platform.prepare()
        self.before = table_counts(self.tool)
        login_params = platform.login_params(self.tool.launch_url, hint, **params)
        return self.browser.get(self.tool.login_url, params=login_params)


Attack = Callable[[Env], requests.Response]


@dataclass(frozen=True)
class Forgery:
    name: str
    code: str
    status: int
    attack: Attack
    # Only a replay finds its login consumed: by the first, genuine, use of the same form.
    login_consumed: bool = False


def token(make_spec: Callable[[Env], LaunchSpec]) -> Attack:
    """An id_token shaped by the spec's forgery hooks, posted as the platform would post it."""
    return lambda env: env.post(env.form(make_spec(env)))


def spec(**fields) -> Attack:
    return token(lambda env: LaunchSpec(**fields))


def edited_form(edit: Callable[[dict[str, str], Env], None]) -> Attack:
    def attack(env: Env) -> requests.Response:
        form = env.form()
        edit(form.fields, env)
        return env.post(form)

    return attack


def replayed(env: Env) -> requests.Response:
    form = env.form()
    first = env.browser.post(form.action, data=form.fields)
    assert first.status_code == 200, first.text[:500]
    return env.post(form)


def replayed_with_its_cookie(env: Env) -> requests.Response:
    """The same form posted again with the state cookie put back: every check passes but one."""
    form = env.form()
    name = state_cookie_name(form.fields["state"])
    secret = env.browser.session.cookies[name]
    first = env.browser.post(form.action, data=form.fields)
    assert first.status_code == 200, first.text[:500]
    env.browser.session.cookies.set(name, secret)
    return env.post(form)


def tampered_state_cookie(env: Env) -> requests.Response:
    form = env.form()
    name = state_cookie_name(form.fields["state"])
    cookie = next(c for c in env.browser.session.cookies if c.name == name)
    cookie.value = secrets.token_urlsafe(32)
    return env.post(form)


def expired_login(env: Env) -> requests.Response:
    """A login the tool itself signed, issued longer ago than a login lives, otherwise perfect."""
    states = env.tool.tool.login_states
    registration = env.tool.tool.platforms.find(env.platform.issuer, env.platform.client_id)
    login = states.start(
        platform_id=registration.id,
        login_params=env.platform.login_params(env.tool.launch_url, env.platform.prepare()),
        storage_target=None,
        now=time.time() - states.ttl_seconds - 1,
    )
    env.browser.session.cookies.set(state_cookie_name(login.id), login.browser_secret)
    env.state = login.state
    id_token = env.platform.id_token(LaunchSpec(), nonce=login.nonce, target_link_uri=env.tool.launch_url)
    return env.post(FormPost(env.tool.launch_url, {"id_token": id_token, "state": login.state}))


def edited_state(env: Env) -> requests.Response:
    """The state's payload swapped for one naming another target, its signature kept."""
    form = env.form()
    login_id, body, mac = form.fields["state"].split(".")
    payload = unb64json(body)
    payload[2]["target_link_uri"] = env.tool.base_url + "/lti/launch?next=elsewhere"
    form.fields["state"] = f"{login_id}.{b64json(payload)}.{mac}"
    return env.post(form)


def oversized(env: Env) -> requests.Response:
    limit = env.tool.settings.launch.max_id_token_bytes
    padding_claim = {"https://example.org/padding": "x" * (limit + 4096)}
    form = env.form(LaunchSpec(extra_claims=padding_claim))
    size = len(form.fields["id_token"])
    # Over the id_token limit, but well under Flask's request limit: the tool itself must refuse it.
    assert limit < size < env.tool.app.config["MAX_CONTENT_LENGTH"] - 4096
    return env.post(form)


def unapproved_platform_login(env: Env) -> requests.Response:
    return env.login(env.request.getfixturevalue("unapproved_platform"))


def signed_by(key, algorithm: str) -> Callable[[dict, dict], str]:
    return lambda claims, header: jwt.encode(claims, key, algorithm=algorithm, headers=header)


def platform_signed(algorithm: str) -> Attack:
    return token(lambda env: LaunchSpec(signer=signed_by(env.platform.signing_key.private_key, algorithm)))


def without_kid(env: Env) -> LaunchSpec:
    key = env.platform.signing_key.private_key
    return LaunchSpec(
        signer=lambda claims, header: jwt.encode(
            claims, key, algorithm="RS256", headers={k: v for k, v in header.items() if k != "kid"}
        )
    )


def embedded_attacker_jwk(env: Env) -> LaunchSpec:
    """The platform's kid, the attacker's key, and the attacker's public key offered in the header."""
    attacker_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(ATTACKER_RSA.public_key()))
    return LaunchSpec(
        header={"jwk": attacker_jwk, "jku": "https://attacker.example/jwks"},
        signer=lambda claims, header: rs256_by_hand({"alg": "RS256", **header}, claims, ATTACKER_RSA),
    )


def other_target(env: Env) -> LaunchSpec:
    return LaunchSpec(
        mutate_claims=with_claims({lti.TARGET_LINK_URI: env.tool.base_url + "/lti/launch?next=elsewhere"})
    )


FORGERIES = [
    # Signature and algorithm.
    Forgery(
        "bad_signature_other_key_same_kid",
        "bad_signature",
        401,
        spec(signer=signed_by(ATTACKER_RSA, "RS256")),
    ),
    Forgery("tampered_payload_keeps_signature", "bad_signature", 401, spec(token_transform=tamper_payload)),
    Forgery("embedded_jwk_header_is_ignored", "bad_signature", 401, token(embedded_attacker_jwk)),
    Forgery("alg_none", "unsigned_token", 401, spec(signer=lambda c, h: unsigned_token(c, h))),
    Forgery(
        "signature_stripped",
        "unsigned_token",
        401,
        spec(token_transform=lambda t: t.rsplit(".", 1)[0] + "."),
    ),
    Forgery(
        "hs256_with_public_pem_as_secret",
        "algorithm_not_allowed",
        401,
        token(lambda env: LaunchSpec(signer=lambda c, h: hs256_token(c, env.platform.signing_key.public_pem, h))),
    ),
    Forgery("alg_rs512", "algorithm_not_allowed", 401, platform_signed("RS512")),
    Forgery("alg_ps256", "algorithm_not_allowed", 401, platform_signed("PS256")),
    Forgery("alg_es256", "algorithm_not_allowed", 401, spec(signer=signed_by(ATTACKER_EC, "ES256"))),
    Forgery("unknown_kid", "unknown_kid", 401, spec(header={"kid": "no-such-kid"})),
    Forgery("missing_kid", "missing_kid", 401, token(without_kid)),
    Forgery(
        "kid_not_a_string",
        "missing_kid",
        401,
        token(
            lambda env: LaunchSpec(
                signer=lambda c, h: rs256_by_hand(
                    {"alg": "RS256", "kid": 123}, c, env.platform.signing_key.private_key
                )
            )
        ),
    ),
    # Who the token is from and for.
    Forgery("wrong_iss", "wrong_issuer", 401, spec(mutate_claims=with_claims({"iss": "https://evil.example"}))),
    Forgery("wrong_aud", "wrong_audience", 401, spec(mutate_claims=with_claims({"aud": "another-client"}))),
    Forgery("aud_not_a_string", "wrong_audience", 401, spec(mutate_claims=with_claims({"aud": 42}))),
    Forgery("aud_list_without_azp", "missing_azp", 401, spec(mutate_claims=several_audiences())),
    Forgery(
        "aud_list_with_wrong_azp",
        "wrong_azp",
        401,
        spec(mutate_claims=several_audiences(azp="another-client")),
    ),
    Forgery(
        "single_aud_with_wrong_azp",
        "wrong_azp",
        401,
        spec(mutate_claims=with_claims({"azp": "another-client"})),
    ),
    # Time.
    Forgery("expired", "token_expired", 401, spec(mutate_claims=shifted_times(iat=-600, exp=-300))),
    Forgery(
        "iat_in_future_beyond_leeway", "token_not_yet_valid", 401, spec(mutate_claims=shifted_times(3600, 3660))
    ),
    Forgery(
        "nbf_in_future_beyond_leeway",
        "token_not_yet_valid",
        401,
        spec(mutate_claims=lambda claims: claims.update(nbf=int(time.time()) + 3600)),
    ),
    Forgery("exp_not_a_number", "malformed_id_token", 400, spec(mutate_claims=with_claims({"exp": "tomorrow"}))),
    Forgery("exp_a_boolean", "malformed_id_token", 400, spec(mutate_claims=with_claims({"exp": True}))),
    Forgery("missing_exp", "missing_claim", 400, spec(mutate_claims=with_claims(drop=("exp",)))),
    Forgery("missing_iat", "missing_claim", 400, spec(mutate_claims=with_claims(drop=("iat",)))),
    # Nonce and state.
    Forgery("replayed_nonce", "replayed_launch", 401, replayed, login_consumed=True),
    Forgery("replayed_with_its_cookie", "replayed_launch", 401, replayed_with_its_cookie, login_consumed=True),
    Forgery("missing_nonce", "missing_nonce", 401, spec(mutate_claims=with_claims(drop=("nonce",)))),
    Forgery("nonce_mismatch", "nonce_mismatch", 401, spec(mutate_claims=with_claims({"nonce": "not-our-nonce"}))),
    Forgery(
        "unknown_state",
        "unknown_state",
        400,
        edited_form(lambda f, env: f.update(state=secrets.token_urlsafe(24))),
    ),
    Forgery(
        "overlong_state",
        "unknown_state",
        400,
        edited_form(lambda f, env: f.update(state="s" * (login_states.MAX_STATE_LENGTH + 1))),
    ),
    Forgery("edited_state_payload", "unknown_state", 400, edited_state),
    Forgery(
        "state_signed_by_another_tool",
        "unknown_state",
        400,
        edited_form(
            lambda f, env: f.update(
                state=login_states.LoginStates("another tool's secret", 300)
                .start(platform_id=1, login_params={"target_link_uri": env.tool.launch_url}, storage_target=None)
                .state
            )
        ),
    ),
    Forgery("missing_state", "missing_state", 400, edited_form(lambda f, env: f.pop("state"))),
    Forgery("state_cookie_mismatch", "state_mismatch", 401, tampered_state_cookie),
    Forgery("expired_login", "login_expired", 400, expired_login),
    # LTI claims.
    Forgery("wrong_deployment_id", "unknown_deployment", 403, spec(deployment_id="deploy-unknown")),
    Forgery(
        "missing_deployment_id",
        "unknown_deployment",
        403,
        spec(mutate_claims=with_claims(drop=(lti.DEPLOYMENT_ID,))),
    ),
    Forgery(
        "wrong_message_type",
        "wrong_message_type",
        400,
        spec(mutate_claims=with_claims({lti.MESSAGE_TYPE: "LtiStartProctoring"})),
    ),
    Forgery("wrong_version", "wrong_version", 400, spec(mutate_claims=with_claims({lti.VERSION: "1.1"}))),
    Forgery("wrong_target_link_uri", "target_link_uri_mismatch", 401, token(other_target)),
    Forgery("missing_sub", "anonymous_launch", 403, spec(sub=None)),
    Forgery("missing_resource_link_id", "invalid_message", 400, spec(resource_link={"title": "No id"})),
    Forgery("missing_roles_claim", "invalid_message", 400, spec(mutate_claims=with_claims(drop=(lti.ROLES,)))),
    Forgery(
        "deep_linking_without_settings",
        "invalid_message",
        400,
        spec(
            message_type=lti.DEEP_LINKING_REQUEST,
            mutate_claims=with_claims(drop=(lti.DEEP_LINKING_SETTINGS,)),
        ),
    ),
    # The token's shape.
    Forgery("oversized_token", "id_token_too_large", 413, oversized),
    Forgery("garbage_token", "malformed_id_token", 400, spec(token_transform=lambda t: "not-a-jwt")),
    Forgery(
        "token_with_two_parts",
        "malformed_id_token",
        400,
        spec(token_transform=lambda t: t.rsplit(".", 1)[0]),
    ),
    Forgery(
        "non_json_header",
        "malformed_id_token",
        400,
        spec(token_transform=lambda t: replace_header(t, b64url(b"{not json"))),
    ),
    Forgery(
        "header_is_a_json_list",
        "malformed_id_token",
        400,
        spec(token_transform=lambda t: replace_header(t, b64json(["RS256"]))),
    ),
    Forgery("empty_id_token", "missing_id_token", 400, edited_form(lambda f, env: f.update(id_token=""))),
    Forgery("no_id_token_field", "missing_id_token", 400, edited_form(lambda f, env: f.pop("id_token"))),
    # Refused at login, before any state is written.
    Forgery("login_unknown_issuer", "unknown_platform", 403, lambda env: env.login(iss="https://unknown.example")),
    Forgery("login_missing_login_hint", "bad_login_request", 400, lambda env: env.login(login_hint=None)),
    Forgery(
        "login_target_on_another_host",
        "bad_target_link_uri",
        400,
        lambda env: env.login(target_link_uri="https://evil.example/lti/launch"),
    ),
    Forgery(
        "login_unknown_deployment",
        "unknown_deployment",
        403,
        lambda env: env.login(lti_deployment_id="deploy-unknown"),
    ),
    Forgery("login_platform_not_approved", "platform_not_approved", 403, unapproved_platform_login),
]


@pytest.fixture(scope="module")
def unapproved_platform(tool):
    """A second platform registered with the shared tool but not yet approved."""
    other = TestPlatform(client_id="tool-client-unapproved").start()
    registration = tool.register(other, approved=False)
    yield other
    remove_platform(tool.db, registration.id)
    other.stop()


def test_forgery_matrix_is_large_and_names_real_reasons():
    names = [f.name for f in FORGERIES]
    assert len(names) == len(set(names)) and len(names) >= 28
    for forgery in FORGERIES:
        assert forgery.code in REASONS, forgery.name
        assert REASONS[forgery.code].status == forgery.status, forgery.name


@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.name for f in FORGERIES])
def test_forged_launch_is_refused_and_stores_nothing(forgery, tool, platform, browser, request, caplog):
    caplog.set_level(logging.WARNING, logger="lti_tool.refused")
    env = Env(tool, platform, browser, request)

    response = forgery.attack(env)

    assert response.status_code == forgery.status, response.text[:800]
    assert f"<code>{forgery.code}</code>" in response.text, response.text[:800]
    reference = REFERENCE.search(response.text)
    assert reference, "the refusal page should show a reference id"
    assert any(
        f"code={forgery.code} ref={reference.group(1)}" in record.getMessage() for record in caplog.records
    ), "the reference shown should be the one logged"
    assert env.before is not None
    assert table_counts(tool) == env.before, "a refused launch must not store anything"
    if env.state is not None:
        assert login_used(tool, env.state) == forgery.login_consumed


TOLERATED = [
    pytest.param(
        LaunchSpec(mutate_claims=several_audiences(azp_is_ours=True)),
        id="aud_list_with_our_client_and_matching_azp",
    ),
    pytest.param(
        LaunchSpec(mutate_claims=shifted_times(iat=5, exp=65)), id="iat_slightly_in_future_within_leeway"
    ),
]


@pytest.mark.parametrize("launch_spec", TOLERATED)
def test_tolerated_token_variation_still_launches(launch_spec, tool, platform, browser):
    form = browser.platform_post(tool, platform, launch_spec)
    before = table_counts(tool)

    response = browser.post(form.action, data=form.fields)

    assert response.status_code == 200, response.text[:800]
    assert "Closing the Gap" in response.text
    assert table_counts(tool)["launches"] == before["launches"] + 1
    assert login_used(tool, form.fields["state"])
