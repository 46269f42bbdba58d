"""Why a launch was refused, in words for the person in the iframe and hints for their administrator.

Every refusal has a short code (used in logs and tests), a plain sentence for the candidate and
a hint for the administrator who can fix it. The page shows a reference id that is also logged,
so a support request can be matched to the exact failure.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    message: str
    hint: str
    status: int = 400


REASONS: dict[str, Reason] = {
    "missing_id_token": Reason(
        "The launch arrived without its identity token.",
        "The platform must POST id_token and state to the tool's launch URL (/lti/launch).",
    ),
    "id_token_too_large": Reason(
        "The launch's identity token is larger than this tool accepts.",
        "Check the platform is not sending unusually large custom parameters; the limit is "
        "NPQSL_LAUNCH_MAX_ID_TOKEN_BYTES.",
        413,
    ),
    "malformed_id_token": Reason(
        "The launch's identity token could not be read.",
        "The id_token must be a signed JWT (three base64url parts). Check the platform's LTI 1.3 set-up.",
    ),
    "unsigned_token": Reason(
        "The launch's identity token was not signed.",
        "Tokens with alg 'none' are never accepted. The platform must sign with RS256.",
        401,
    ),
    "algorithm_not_allowed": Reason(
        "The launch's identity token was signed in a way this tool does not accept.",
        "Only RS256 signatures are accepted, as LTI 1.3 requires. Check the platform's key settings.",
        401,
    ),
    "missing_kid": Reason(
        "The launch's identity token does not say which key signed it.",
        "The platform must put a 'kid' in the id_token header that matches a key in its JWKS.",
        401,
    ),
    "missing_state": Reason(
        "The launch arrived without the state this tool gave at login.",
        "The platform must return the OIDC 'state' parameter unchanged with the id_token.",
    ),
    "unknown_state": Reason(
        "This launch does not match a login started by this tool.",
        "Start the activity again from the course page. If it keeps happening, check the "
        "platform's login URL points at this tool's /lti/login.",
    ),
    "login_expired": Reason(
        "This launch took too long to arrive and has expired.",
        "Start the activity again from the course page. The login must complete within "
        "NPQSL_LAUNCH_LOGIN_TTL_SECONDS.",
    ),
    "state_mismatch": Reason(
        "This launch was started in a different browser window.",
        "Start the activity again from the course page, in the same browser.",
        401,
    ),
    "state_cookie_missing": Reason(
        "Your browser blocked the cookie this tool needs inside the course page.",
        "Browsers that block third-party cookies need the activity opened in a new window. "
        "Setting the activity to open in a new window in the VLE avoids this.",
        401,
    ),
    "platform_not_approved": Reason(
        "This VLE's registration with the tool is waiting for approval.",
        "An administrator approves it with `npqsl-lti platform approve`.",
        403,
    ),
    "jwks_unavailable": Reason(
        "The tool could not fetch the VLE's public keys to check this launch.",
        "Check the platform's key set URL is reachable from the tool (`npqsl-lti platform show`).",
        502,
    ),
    "unknown_kid": Reason(
        "The launch was signed with a key the VLE does not publish.",
        "The id_token's 'kid' is not in the platform's JWKS, even after fetching it again. "
        "Check the key set URL registered for this platform.",
        401,
    ),
    "bad_signature": Reason(
        "The launch's signature is not valid.",
        "The id_token was not signed by the platform's published key. Check the key set URL "
        "registered for this platform, or whether the token was altered on the way.",
        401,
    ),
    "token_expired": Reason(
        "The launch arrived after its identity token expired.",
        "Start the activity again. If it keeps happening, check the clocks of the platform and "
        "the tool (NTP); the allowed skew is NPQSL_LAUNCH_LEEWAY_SECONDS.",
        401,
    ),
    "token_not_yet_valid": Reason(
        "The launch's identity token claims to be issued in the future.",
        "Check the clocks of the platform and the tool (NTP); the allowed skew is NPQSL_LAUNCH_LEEWAY_SECONDS.",
        401,
    ),
    "missing_claim": Reason(
        "The launch's identity token is missing a required field.",
        "LTI 1.3 requires iss, aud, exp, iat, nonce and the LTI claims. Check the platform's LTI version.",
    ),
    "wrong_issuer": Reason(
        "The launch came from a different VLE than the one that started it.",
        "The id_token's 'iss' must equal the issuer registered for this platform.",
        401,
    ),
    "wrong_audience": Reason(
        "The launch was meant for a different tool.",
        "The id_token's 'aud' must contain the client ID registered for this tool.",
        401,
    ),
    "missing_azp": Reason(
        "The launch names several audiences but not which one it is for.",
        "When 'aud' lists several audiences, the id_token must carry 'azp' equal to this tool's client ID.",
        401,
    ),
    "wrong_azp": Reason(
        "The launch was authorised for a different tool.",
        "The id_token's 'azp' must equal the client ID registered for this tool.",
        401,
    ),
    "missing_nonce": Reason(
        "The launch's identity token has no nonce.",
        "The platform must copy the nonce from the login request into the id_token.",
        401,
    ),
    "nonce_mismatch": Reason(
        "The launch does not belong to the login that started it.",
        "The id_token's nonce differs from the one the tool sent at login.",
        401,
    ),
    "replayed_launch": Reason(
        "This launch has already been used.",
        "Each launch can be used once (the nonce is single-use). Start the activity again from "
        "the course page; a repeated launch can also mean someone is replaying a captured one.",
        401,
    ),
    "wrong_version": Reason(
        "The launch uses an LTI version this tool does not speak.",
        "The LTI version claim must be 1.3.0.",
    ),
    "wrong_message_type": Reason(
        "The launch asked for something this tool does not offer.",
        "Supported message types: LtiResourceLinkRequest and LtiDeepLinkingRequest.",
    ),
    "unknown_deployment": Reason(
        "This VLE deployment of the tool is not registered.",
        "Add the deployment ID shown in the log with `npqsl-lti platform add` (it is Moodle's "
        "tool type id), or check the platform registration.",
        403,
    ),
    "target_link_uri_mismatch": Reason(
        "The launch is for a different address than the one asked for at login.",
        "The id_token's target_link_uri must equal the target_link_uri of the login request.",
        401,
    ),
    "invalid_message": Reason(
        "The launch is missing information this tool needs.",
        "The LTI message is incomplete for its type (see the log for the missing claim).",
    ),
    "anonymous_launch": Reason(
        "This activity needs to know who you are, but the VLE launched it anonymously.",
        "Anonymous launches (no 'sub') are not supported: set the VLE's privacy options for "
        "this tool to share the user's identity.",
        403,
    ),
    "unknown_platform": Reason(
        "This VLE is not registered with the tool.",
        "Register it with dynamic registration or `npqsl-lti platform add`, using the issuer "
        "and client ID the VLE shows for this tool.",
        403,
    ),
    "bad_login_request": Reason(
        "The VLE's request to start the activity was incomplete.",
        "An OIDC login initiation needs iss, login_hint and target_link_uri.",
    ),
    "bad_target_link_uri": Reason(
        "The VLE asked to open an address that is not part of this tool.",
        "target_link_uri must point at this tool (the same host as the login URL).",
    ),
    "deep_linking_not_allowed": Reason(
        "Only people who edit this course can add activities to it.",
        "Deep linking is open to the VLE's Instructor, Content Developer and Administrator roles.",
        403,
    ),
    "plugin_not_installed": Reason(
        "This activity's type is not installed on the tool any more.",
        "The resource link names a plugin the tool does not have (see the log and "
        "`npqsl-lti plugins list`). Reinstall the plugin or place the activity again.",
        404,
    ),
    "role_not_admitted": Reason(
        "Your role in this course does not give access to this activity.",
        "The plugin admits only some roles; check the person's role in the VLE course.",
        403,
    ),
    "bad_selection": Reason(
        "The activities chosen could not be added.",
        "Reload the picker and choose again (see the log for the detail).",
    ),
    "launch_expired": Reason(
        "Your session in this activity has ended.",
        "Open the activity again from the course page.",
        401,
    ),
}


def new_reference() -> str:
    """A short id for one failure, shown to the person and written to the log."""
    return secrets.token_hex(6)


class LaunchError(Exception):
    """A launch (or login) refused for a known reason; carries the code and any detail to log."""

    def __init__(self, code: str, detail: str = ""):
        if code not in REASONS:
            raise KeyError(f"unknown launch error code {code!r}")
        self.code = code
        self.detail = detail
        self.reference = new_reference()
        super().__init__(f"{code}: {detail}" if detail else code)

    @property
    def reason(self) -> Reason:
        return REASONS[self.code]
