"""The demo platform's gradebook (AGS) and class list (NRPS), over real HTTP.

A newcomer places Closing the Gap from /demo, completes it as the demo candidate, and sees the
score in the demo gradebook while the tool's own in-process worker delivers it, as under
``make run``; the demo coach's roster lists the demo course's candidates from its class list.
The services check what a VLE's would: the tool's client assertion at the token endpoint, the
bearer token's scopes on every call, and each score's shape and timestamp.
"""

from __future__ import annotations

import re
import time
import uuid
from html import unescape

import jwt
import lxml.html
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from lti_tool.demo import CLIENT_ID
from lti_tool.demo_gradebook import DemoLineItem, DemoScore
from lti_tool.grades import (
    AGS_CLAIM,
    LINEITEM_MEDIA_TYPE,
    LINEITEM_SCOPE,
    RESULT_READ_SCOPE,
    SCORE_MEDIA_TYPE,
    SCORE_SCOPE,
)
from lti_tool.models import Launch
from lti_tool.roster import NRPS_CLAIM, NRPS_SCOPE

from .browser import Browser, auto_post_form
from .test_demo import follow_demo
from .test_done_when_programme import COMPLETED, DemoLearner, complete_module, pack
from .tool_server import tool_settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CANDIDATE = "demo-candidate"


# -- helpers --------------------------------------------------------------------------------------
def assertion(server, *, key=None, kid=None, **claims) -> str:
    """A client assertion as the tool makes one; ``claims`` override (None drops a claim)."""
    now = int(time.time())
    body = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": server.base_url + "/demo/token",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    if key is None:
        return server.tool.keyring.sign(body)
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid or server.tool.keyring.current.kid})


def ask_token(server, scopes: list[str], **form) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(server),
        "scope": " ".join(scopes),
        **form,
    }
    return requests.post(server.base_url + "/demo/token", data=data, timeout=10)


def bearer(server, *scopes: str) -> dict[str, str]:
    answer = ask_token(server, list(scopes))
    assert answer.status_code == 200, answer.text
    return {"Authorization": "Bearer " + answer.json()["access_token"]}


def lineitems_url(server) -> str:
    return server.base_url + "/demo/ags/demo-course/lineitems"


def new_line_item(server, **fields) -> dict:
    body = {"label": "Reflective essay", "scoreMaximum": 20, **fields}
    made = requests.post(
        lineitems_url(server),
        json=body,
        headers={**bearer(server, LINEITEM_SCOPE), "Content-Type": LINEITEM_MEDIA_TYPE},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    return made.json()


def post_score(server, item: dict, body, *, content_type=SCORE_MEDIA_TYPE, headers=None) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else None
    return requests.post(
        item["id"] + "/scores",
        json=None if data is not None else body,
        data=data,
        headers={**(headers or bearer(server, SCORE_SCOPE)), "Content-Type": content_type},
        timeout=10,
    )


def score(user_id=CANDIDATE, timestamp="2026-03-01T09:00:00.000+00:00", **fields) -> dict:
    return {
        "userId": user_id,
        "scoreGiven": 15,
        "scoreMaximum": 20,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": timestamp,
        **fields,
    }


def results(server, item: dict, **params) -> list[dict]:
    answer = requests.get(
        item["id"] + "/results", params=params, headers=bearer(server, RESULT_READ_SCOPE), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def gradebook_rows(server) -> tuple[int, int]:
    with server.db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(DemoLineItem)),
            session.scalar(select(func.count()).select_from(DemoScore)),
        )


def grade_cell(page_text: str, sub: str, item_id: int) -> str:
    doc = lxml.html.fromstring(page_text)
    [cell] = doc.xpath(f"//tr[@data-learner='{sub}']/td[@data-line-item='{item_id}']")
    return " ".join(cell.text_content().split())


def place_module(browser: Browser, server, item: str) -> None:
    """As the demo administrator, add ``item`` to the demo course by deep linking."""
    picker = follow_demo(browser, server, role="administrator", action="deeplink")
    form = auto_post_form(picker.text, server.base_url)
    returned = browser.post(
        server.base_url + "/lti/deep-link", data={"launch": form.fields["launch"], "item": item}
    )
    back = auto_post_form(returned.text, server.base_url)
    assert "1 activity added" in browser.post(back.action, data=back.fields).text


# -- the newcomer's path ------------------------------------------------------------------------------
def test_a_module_completed_from_the_demo_lands_in_its_gradebook_and_on_the_coachs_roster(make_tool):
    server = make_tool(outbox={"inline_worker": True})  # as under `make run`
    browser = Browser()
    course = browser.get(server.base_url + "/demo/")
    assert 'href="/demo/gradebook"' in course.text
    place_module(browser, server, f"modules:{COMPLETED}")
    module = pack(COMPLETED)

    # Placing it made its column, tied to the new link, empty for every learner.
    empty = browser.get(server.base_url + "/demo/gradebook")
    assert empty.status_code == 200
    doc = lxml.html.fromstring(empty.text)
    [header] = doc.xpath("//table[@data-gradebook]//thead//th[@data-line-item]")
    item_id = int(header.get("data-line-item"))
    assert " ".join(header.text_content().split()) == f"{module.title} (out of 100)"
    assert doc.xpath("//tr[@data-learner]/@data-learner") == [CANDIDATE, "demo-classmate-1", "demo-classmate-2"]
    assert grade_cell(empty.text, CANDIDATE, item_id) == "– No grade"

    launched = follow_demo(browser, server, role="candidate", action="launch", item="0")
    assert launched.status_code == 200 and "0% complete" in launched.text
    # The launch offered both services: the link's own line item, and the course's class list.
    with server.db.sessions() as session:
        claims = session.scalars(select(Launch.claims).order_by(Launch.created_at.desc()).limit(1)).one()
    assert claims[AGS_CLAIM]["lineitem"] == f"{server.base_url}/demo/ags/demo-course/lineitems/{item_id}"
    assert set(claims[AGS_CLAIM]["scope"]) == {LINEITEM_SCOPE, RESULT_READ_SCOPE, SCORE_SCOPE}
    assert claims[NRPS_CLAIM]["context_memberships_url"] == server.base_url + "/demo/nrps/demo-course/memberships"

    casey = DemoLearner(server, browser, launched, COMPLETED)
    complete_module(casey, module)
    assert "You completed this module" in casey.get("").text

    # The tool's in-process worker delivers the score; the newcomer reloads the gradebook.
    deadline = time.monotonic() + 60
    while True:
        page = browser.get(server.base_url + "/demo/gradebook")
        if grade_cell(page.text, CANDIDATE, item_id) == "100" or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert grade_cell(page.text, CANDIDATE, item_id) == "100", page.text
    assert grade_cell(page.text, "demo-classmate-1", item_id) == "– No grade"

    # The same grade through the demo's AGS, as another tool would read it.
    item = {"id": f"{server.base_url}/demo/ags/demo-course/lineitems/{item_id}"}
    [result] = results(server, item)
    assert (result["userId"], result["resultScore"], result["resultMaximum"]) == (CANDIDATE, 100, 100)
    found = requests.get(
        lineitems_url(server),
        params={"resource_id": f"modules:{COMPLETED}"},
        headers=bearer(server, LINEITEM_SCOPE),
        timeout=10,
    ).json()
    assert [(i["id"], i["tag"], i["scoreMaximum"], i["label"]) for i in found] == [
        (item["id"], "module", 100, module.title)
    ]

    # The demo coach's roster comes from the demo course's class list, with Casey's completion.
    coach = Browser()
    landing = follow_demo(coach, server, role="coach", action="launch")
    link = re.search(r'<a href="([^"]+)" data-programme-link>', landing.text)
    assert link, landing.text[:2000]
    roster = coach.get(server.base_url + unescape(link.group(1)))
    assert roster.status_code == 200 and "Your candidates</h1>" in roster.text
    assert "data-roster-error" not in roster.text
    assert re.findall(r'data-candidate="([^"]+)"', roster.text) == [
        CANDIDATE,
        "demo-classmate-1",
        "demo-classmate-2",
    ]
    cards = roster.text.split('data-candidate="')[1:]
    assert "data-modules-done>1 of 4 completed" in cards[0], cards[0]
    assert all("data-modules-done>0 of 4 completed" in card for card in cards[1:])


def test_placing_an_activity_whose_line_item_is_malformed_adds_nothing(tool, browser):
    browser.get(tool.base_url + "/demo/")
    before = gradebook_rows(tool)
    now = int(time.time())
    token = tool.tool.keyring.sign(
        {
            "iss": CLIENT_ID,
            "aud": tool.base_url + "/demo",
            "iat": now,
            "exp": now + 60,
            "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": [
                {
                    "type": "ltiResourceLink",
                    "title": "Broken",
                    "lineItem": {"label": "Broken", "scoreMaximum": "lots"},
                }
            ],
        }
    )
    answer = browser.post(tool.base_url + "/demo/deep-link-return", data={"JWT": token})
    assert answer.status_code == 400
    assert "scoreMaximum is required: a number above 0" in unescape(answer.text)
    assert gradebook_rows(tool) == before
    assert "Broken" not in browser.get(tool.base_url + "/demo/").text


# -- the token endpoint ---------------------------------------------------------------------------------
def _other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("how", "status", "error"),
    [
        ("forged", 401, "invalid_client"),
        ("unknown_kid", 401, "invalid_client"),
        ("expired", 401, "invalid_client"),
        ("wrong_audience", 401, "invalid_client"),
        ("wrong_issuer", 401, "invalid_client"),
        ("wrong_subject", 401, "invalid_client"),
        ("no_expiry", 401, "invalid_client"),
        ("no_jti", 401, "invalid_client"),
        ("not_a_jwt", 401, "invalid_client"),
        ("wrong_grant", 400, "unsupported_grant_type"),
        ("wrong_assertion_type", 400, "invalid_request"),
        ("no_scope_offered", 400, "invalid_scope"),
    ],
)
def test_a_bad_client_assertion_is_refused_and_changes_nothing(tool, how, status, error):
    tool_url = tool.base_url
    form: dict[str, str] = {}
    made = {
        "forged": lambda: assertion(tool, key=_other_key()),
        "unknown_kid": lambda: assertion(tool, key=_other_key(), kid="not-a-tool-key"),
        "expired": lambda: assertion(tool, iat=int(time.time()) - 600, exp=int(time.time()) - 300),
        "wrong_audience": lambda: assertion(tool, aud=tool_url + "/lti/token"),
        "wrong_issuer": lambda: assertion(tool, iss="someone-else"),
        "wrong_subject": lambda: assertion(tool, sub="someone-else"),
        "no_expiry": lambda: assertion(tool, exp=None),
        "no_jti": lambda: assertion(tool, jti=None),
        "not_a_jwt": lambda: "not.a.jwt",
    }
    if how in made:
        form["client_assertion"] = made[how]()
    elif how == "wrong_grant":
        form["grant_type"] = "password"
    elif how == "wrong_assertion_type":
        form["client_assertion_type"] = "urn:example:secret"
    before = gradebook_rows(tool)
    scopes = ["https://example.com/scope/everything"] if how == "no_scope_offered" else [SCORE_SCOPE]
    answer = ask_token(tool, scopes, **form)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error and body["error_description"] and "access_token" not in body
    assert gradebook_rows(tool) == before


def test_a_client_assertion_buys_one_token_only(tool):
    used = assertion(tool)
    first = ask_token(tool, [SCORE_SCOPE], client_assertion=used)
    assert first.status_code == 200, first.text
    again = ask_token(tool, [SCORE_SCOPE], client_assertion=used)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert "used before" in again.json()["error_description"] and "access_token" not in again.json()
    assert ask_token(tool, [SCORE_SCOPE]).status_code == 200  # a fresh assertion is fine


def test_an_assertion_refused_for_its_scope_can_still_be_used(tool):
    kept = assertion(tool)
    assert ask_token(tool, ["https://example.com/scope/everything"], client_assertion=kept).status_code == 400
    assert ask_token(tool, [SCORE_SCOPE], client_assertion=kept).status_code == 200


def test_a_token_grants_only_the_scopes_offered_and_asked_for(tool):
    answer = ask_token(tool, [SCORE_SCOPE, "https://example.com/scope/everything", NRPS_SCOPE])
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["scope"] == f"{SCORE_SCOPE} {NRPS_SCOPE}"
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 3600


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "invalid_token"),
        ({"Authorization": "Bearer made-up"}, 401, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "invalid_token"),
        ("nrps-only", 403, "insufficient_scope"),
    ],
)
def test_the_services_need_a_live_token_with_the_right_scope(tool, headers, status, error):
    if headers == "nrps-only":
        headers = bearer(tool, NRPS_SCOPE)
    listed = requests.get(lineitems_url(tool), headers=headers, timeout=10)
    assert listed.status_code == status and listed.json()["error"] == error
    if status == 401:
        assert listed.headers["WWW-Authenticate"].startswith("Bearer")


# -- line items and scores ----------------------------------------------------------------------------
def test_line_items_are_created_read_and_found_by_their_fields(tool):
    item = new_line_item(tool, resourceId="essay-1", tag="essay", resourceLinkId="link-9")
    assert item["id"].startswith(lineitems_url(tool) + "/")
    assert {k: item[k] for k in ("label", "scoreMaximum", "resourceId", "tag", "resourceLinkId")} == {
        "label": "Reflective essay",
        "scoreMaximum": 20,
        "resourceId": "essay-1",
        "tag": "essay",
        "resourceLinkId": "link-9",
    }
    read = requests.get(item["id"], headers=bearer(tool, LINEITEM_SCOPE), timeout=10)
    assert read.status_code == 200 and read.json() == item
    assert read.headers["Content-Type"].startswith(LINEITEM_MEDIA_TYPE)
    found = requests.get(
        lineitems_url(tool),
        params={"tag": "essay", "resource_link_id": "link-9"},
        headers=bearer(tool, LINEITEM_SCOPE),
        timeout=10,
    )
    assert [i["id"] for i in found.json()] == [item["id"]]
    missing = requests.get(lineitems_url(tool) + "/999999", headers=bearer(tool, LINEITEM_SCOPE), timeout=10)
    assert missing.status_code == 404 and "no line item 999999" in missing.json()["error_description"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scoreMaximum": 10}, "label is required"),
        ({"label": "X", "scoreMaximum": 0}, "scoreMaximum is required: a number above 0"),
        ({"label": "X", "scoreMaximum": True}, "scoreMaximum is required: a number above 0"),
        ({"label": "X", "scoreMaximum": 5, "tag": ["a"]}, "tag must be a string"),
    ],
)
def test_a_bad_line_item_is_refused_with_a_clear_message(tool, body, message):
    before = gradebook_rows(tool)
    refused = requests.post(
        lineitems_url(tool),
        json=body,
        headers={**bearer(tool, LINEITEM_SCOPE), "Content-Type": LINEITEM_MEDIA_TYPE},
        timeout=10,
    )
    assert refused.status_code == 400 and message in refused.json()["error_description"]
    assert gradebook_rows(tool) == before


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (score(user_id=None), 400, "userId is required"),
        (score(user_id="demo-coach"), 400, "'demo-coach' is not a learner in the demo course"),
        (score(user_id="nobody"), 400, "'nobody' is not a learner in the demo course"),
        (score(timestamp="yesterday"), 400, "timestamp is required: an ISO 8601 date and time with a zone"),
        (
            score(timestamp="2026-03-01T09:00:00"),
            400,
            "timestamp is required: an ISO 8601 date and time with a zone",
        ),
        (score(activityProgress="Done"), 400, "activityProgress must be one of Initialized, Started"),
        (score(gradingProgress="Graded"), 400, "gradingProgress must be one of FullyGraded"),
        (score(scoreMaximum=None), 400, "scoreMaximum is required with scoreGiven"),
        (score(scoreGiven=-1), 400, "scoreGiven must be a number of 0 or more"),
        (score(scoreGiven="15"), 400, "scoreGiven must be a number of 0 or more"),
        ([score()], 400, "the score must be a JSON object"),
        ("{not json", 400, "the body is not JSON"),
    ],
)
def test_a_bad_score_is_refused_with_a_clear_message_and_stores_nothing(tool, body, status, message):
    item = new_line_item(tool)
    before = gradebook_rows(tool)
    refused = post_score(tool, item, body)
    assert refused.status_code == status, refused.text
    assert message in refused.json()["error_description"]
    assert gradebook_rows(tool) == before and results(tool, item) == []


def test_a_score_in_another_media_type_is_refused(tool):
    item = new_line_item(tool)
    refused = post_score(tool, item, score(), content_type="application/json")
    assert refused.status_code == 415
    assert "send the body as application/vnd.ims.lis.v1.score+json" in refused.json()["error_description"]
    assert results(tool, item) == []


def test_the_latest_score_is_kept_and_an_older_one_refused(tool):
    item = new_line_item(tool)
    assert post_score(tool, item, score(scoreGiven=12, timestamp="2026-03-01T10:00:00.500Z")).status_code == 204
    for stale in ("2026-03-01T10:00:00.500Z", "2026-03-01T09:59:59.999+00:00"):
        older = post_score(tool, item, score(scoreGiven=20, timestamp=stale))
        assert (
            older.status_code == 409 and "only a later timestamp replaces it" in older.json()["error_description"]
        )
    [kept] = results(tool, item, user_id=CANDIDATE)
    assert (kept["resultScore"], kept["resultMaximum"]) == (12, 20)
    # A later one replaces it, scaled to the column's maximum.
    later = score(scoreGiven=45, scoreMaximum=50, timestamp="2026-03-01T10:00:01+00:00", comment="Well argued.")
    assert post_score(tool, item, later).status_code == 204
    [kept] = results(tool, item, user_id=CANDIDATE)
    assert (kept["resultScore"], kept["comment"]) == (18, "Well argued.")
    assert kept["timestamp"].startswith("2026-03-01T10:00:01")
    # A score still being graded shows no grade; another learner's score is theirs alone.
    pending = score(gradingProgress="Pending", activityProgress="Submitted", timestamp="2026-03-02T08:00:00Z")
    assert post_score(tool, item, pending).status_code == 204
    other = score(user_id="demo-classmate-1", scoreGiven=7, timestamp="2026-03-02T08:00:00Z")
    assert post_score(tool, item, other).status_code == 204
    by_user = {r["userId"]: r for r in results(tool, item)}
    assert "resultScore" not in by_user[CANDIDATE] and by_user["demo-classmate-1"]["resultScore"] == 7
    page = requests.get(tool.base_url + "/demo/gradebook", timeout=10).text
    item_id = int(item["id"].rsplit("/", 1)[1])
    assert grade_cell(page, CANDIDATE, item_id) == "– No grade (Submitted, Pending)"
    assert grade_cell(page, "demo-classmate-1", item_id) == "7"


# -- the class list -------------------------------------------------------------------------------------
def test_the_class_list_lists_the_demo_course_with_roles(tool):
    url = tool.base_url + "/demo/nrps/demo-course/memberships"
    answer = requests.get(url, headers=bearer(tool, NRPS_SCOPE), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
    body = answer.json()
    assert body["context"]["id"] == "demo-course"
    roles = {m["user_id"]: m["roles"] for m in body["members"]}
    assert set(roles) == {
        "demo-candidate",
        "demo-coach",
        "demo-assessor",
        "demo-admin",
        "demo-classmate-1",
        "demo-classmate-2",
    }
    assert roles["demo-candidate"] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
    assert "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor" in roles["demo-coach"]
    learners = requests.get(url, params={"role": "Learner"}, headers=bearer(tool, NRPS_SCOPE), timeout=10).json()
    assert {m["user_id"] for m in learners["members"]} == {
        "demo-candidate",
        "demo-classmate-1",
        "demo-classmate-2",
    }
    other = requests.get(
        tool.base_url + "/demo/nrps/another-course/memberships", headers=bearer(tool, NRPS_SCOPE), timeout=10
    )
    assert other.status_code == 404
    assert requests.get(url, headers=bearer(tool, SCORE_SCOPE), timeout=10).status_code == 403


def test_the_demo_services_are_absent_in_production(tmp_path):
    from lti_tool.app import create_app
    from lti_tool.db import Database

    settings = tool_settings(tmp_path, env="production", secret_key="p" * 40, public_url="https://tool.example")
    Database(settings.database_url).upgrade()
    client = create_app(settings).test_client()
    for path in ("/demo/gradebook", "/demo/ags/demo-course/lineitems", "/demo/nrps/demo-course/memberships"):
        assert client.get(path).status_code == 404, path
    assert client.post("/demo/token").status_code == 404
