"""The embedded LRS over real HTTP: credentials, statements, queries, documents, syntax, CORS."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
import requests

from xapi.lrs.auth import create_key, revoke_key

V2 = {"X-Experience-API-Version": "2.0.0"}
V1 = {"X-Experience-API-Version": "1.0.3"}
PASSED = "http://adlnet.gov/expapi/verbs/passed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


@pytest.fixture(scope="module")
def lrs(tmp_path_factory):
    from .tool_server import ToolServer

    server = ToolServer(tmp_path_factory.mktemp("lrs")).start()
    server.keys = {scope: create_key(server.db, scope, f"{scope} tests") for scope in ("all", "read", "write")}
    server.xapi = server.base_url + "/xapi"
    yield server
    server.stop()


def call(lrs, method: str, path: str, *, scope: str = "all", headers=None, **kwargs) -> requests.Response:
    return requests.request(
        method, lrs.xapi + path, auth=lrs.keys[scope], headers={**V2, **(headers or {})}, timeout=10, **kwargs
    )


def statement(**extra) -> dict:
    body = {
        "actor": {"objectType": "Agent", "mbox": f"mailto:{uuid.uuid4().hex[:8]}@school.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-GB": "experienced"}},
        "object": {"id": f"https://tool.example/a/{uuid.uuid4()}"},
    }
    body.update(extra)
    return body


def get_ids(lrs, **params) -> list[str]:
    response = call(lrs, "GET", "/statements", params=params)
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["statements"]]


# -- credentials and versions ----------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, ("nobody", "wrong"), "revoked"])
def test_missing_wrong_or_revoked_credentials_get_401_in_the_error_shape(lrs, auth):
    if auth == "revoked":
        auth = create_key(lrs.db, "all")
        revoke_key(lrs.db, auth[0])
    response = requests.get(lrs.xapi + "/statements", auth=auth, headers=V2, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["error"]["code"] == 401
    assert "Authorization" in response.json()["error"]["message"]


def test_a_read_key_cannot_write_and_a_write_key_cannot_read(lrs):
    assert call(lrs, "POST", "/statements", scope="read", json=statement()).status_code == 403
    assert call(lrs, "GET", "/statements", scope="write").status_code == 403
    assert call(lrs, "POST", "/statements", scope="write", json=statement()).status_code == 200
    assert call(lrs, "GET", "/statements", scope="read").status_code == 200


def test_the_version_header_is_required_and_echoed_and_about_lists_versions(lrs):
    missing = requests.get(lrs.xapi + "/statements", auth=lrs.keys["all"], timeout=10)
    assert missing.status_code == 400 and "X-Experience-API-Version" in missing.json()["error"]["message"]
    assert call(lrs, "GET", "/statements", headers={"X-Experience-API-Version": "3.0.0"}).status_code == 400
    assert call(lrs, "GET", "/statements", headers=V1).headers["X-Experience-API-Version"] == "1.0.3"
    about = requests.get(lrs.xapi + "/about", timeout=10)
    assert about.status_code == 200 and {"1.0.3", "2.0.0"} <= set(about.json()["version"])


def test_a_browser_preflight_is_answered_without_credentials(lrs):
    response = requests.options(
        lrs.xapi + "/statements",
        headers={"Origin": "https://dashboard.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://dashboard.example"
    assert "X-Experience-API-Version" in response.headers["Access-Control-Allow-Headers"]
    assert "X-Experience-API-Consistent-Through" in response.headers["Access-Control-Expose-Headers"]


# -- statements ------------------------------------------------------------------------------------


def test_a_posted_statement_comes_back_exactly_with_what_the_lrs_added(lrs):
    sent = statement(result={"score": {"scaled": 0.75}, "duration": "PT1M2.5S"})
    response = call(lrs, "POST", "/statements", json=sent)
    assert response.status_code == 200
    (statement_id,) = response.json()
    got = call(lrs, "GET", "/statements", params={"statementId": statement_id})
    assert got.status_code == 200 and got.headers["Last-Modified"]
    assert got.headers["X-Experience-API-Consistent-Through"].endswith("Z")
    body = got.json()
    assert {k: body[k] for k in sent} == sent
    assert body["id"] == statement_id and body["version"] == "2.0.0"
    assert body["authority"]["account"] == {"homePage": lrs.xapi, "name": lrs.keys["all"][0]}


def test_put_is_idempotent_and_a_conflicting_reuse_of_the_id_is_409(lrs):
    statement_id = str(uuid.uuid4())
    sent = statement()
    assert call(lrs, "PUT", "/statements", params={"statementId": statement_id}, json=sent).status_code == 204
    assert call(lrs, "PUT", "/statements", params={"statementId": statement_id}, json=sent).status_code == 204
    other = {**sent, "verb": {"id": PASSED}}
    conflict = call(lrs, "PUT", "/statements", params={"statementId": statement_id}, json=other)
    assert conflict.status_code == 409
    kept = call(lrs, "GET", "/statements", params={"statementId": statement_id}).json()
    assert kept["verb"] == sent["verb"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"actor": {"mbox": "not-an-email"}}, "actor.mbox"),
        ({"verb": {"id": "passed"}}, "verb.id"),
        ({"object": {"id": "https://x.example", "definition": {"name": "plain"}}}, "object.definition.name"),
        ({"result": {"score": {"scaled": 2}}}, "result.score.scaled"),
    ],
)
def test_a_batch_with_one_bad_statement_is_400_naming_the_field_and_stores_nothing(lrs, bad, field):
    registration = str(uuid.uuid4())
    good = statement(context={"registration": registration})
    wrong = {**statement(context={"registration": registration}), **bad}
    response = call(lrs, "POST", "/statements", json=[good, wrong])
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert get_ids(lrs, registration=registration) == []


def test_queries_filter_by_agent_verb_activity_and_registration(lrs):
    registration = str(uuid.uuid4())
    parent = f"https://tool.example/module/{uuid.uuid4()}"
    one = statement(verb={"id": PASSED}, context={"registration": registration})
    two = statement(context={"registration": registration, "contextActivities": {"parent": [{"id": parent}]}})
    ids = call(lrs, "POST", "/statements", json=[one, two]).json()
    assert get_ids(lrs, registration=registration) == list(reversed(ids))
    assert get_ids(lrs, registration=registration, verb=PASSED) == [ids[0]]
    assert get_ids(lrs, agent=json.dumps(two["actor"])) == [ids[1]]
    assert get_ids(lrs, activity=one["object"]["id"]) == [ids[0]]
    assert get_ids(lrs, activity=parent) == []
    assert get_ids(lrs, activity=parent, related_activities="true") == [ids[1]]
    assert get_ids(lrs, registration=registration, ascending="true") == ids


def test_more_pages_through_every_match_once(lrs):
    registration = str(uuid.uuid4())
    ids = call(
        lrs, "POST", "/statements", json=[statement(context={"registration": registration}) for _ in range(7)]
    ).json()
    seen, url = [], f"/statements?registration={registration}&limit=3"
    while url:
        page = requests.get(
            lrs.base_url + url if url.startswith("/xapi") else lrs.xapi + url,
            auth=lrs.keys["all"],
            headers=V2,
            timeout=10,
        ).json()
        seen += [s["id"] for s in page["statements"]]
        url = page["more"]
    assert seen == list(reversed(ids))


def test_voided_statements_are_found_only_by_voided_statement_id(lrs):
    (target,) = call(lrs, "POST", "/statements", json=statement()).json()
    voiding = statement(
        verb={"id": VOIDED, "display": {"en": "voided"}}, object={"objectType": "StatementRef", "id": target}
    )
    (voider,) = call(lrs, "POST", "/statements", json=voiding).json()
    assert call(lrs, "GET", "/statements", params={"statementId": target}).status_code == 404
    assert call(lrs, "GET", "/statements", params={"voidedStatementId": target}).json()["id"] == target
    assert target not in get_ids(lrs, limit=50)
    void_the_voider = {**voiding, "object": {"objectType": "StatementRef", "id": voider}}
    refused = call(lrs, "POST", "/statements", json=void_the_voider)
    assert refused.status_code == 400 and "voiding statement" in refused.json()["error"]["message"]


def test_attachments_go_in_and_come_back_as_multipart(lrs):
    content = b"reflection notes\n"
    sha2 = hashlib.sha256(content).hexdigest()
    sent = statement(
        attachments=[
            {
                "usageType": "https://tool.example/attachment/reflection",
                "display": {"en-GB": "Reflection"},
                "contentType": "text/plain",
                "length": len(content),
                "sha2": sha2,
            }
        ]
    )
    boundary = "npqsl-boundary"
    body = (
        (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(sent)}\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    multipart = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    (statement_id,) = call(lrs, "POST", "/statements", headers=multipart, data=body).json()
    got = call(lrs, "GET", "/statements", params={"statementId": statement_id, "attachments": "true"})
    assert got.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    assert f"X-Experience-API-Hash: {sha2}".encode() in got.content and content in got.content
    as_json = call(lrs, "POST", "/statements", json=sent)
    assert as_json.status_code == 400 and "multipart" in as_json.json()["error"]["message"]


def test_format_ids_reduces_agents_activities_and_verbs(lrs):
    sent = statement(object={"id": "https://tool.example/x", "definition": {"name": {"en-GB": "X"}}})
    sent["actor"]["name"] = "Pat"
    (statement_id,) = call(lrs, "POST", "/statements", json=sent).json()
    got = call(lrs, "GET", "/statements", params={"statementId": statement_id, "format": "ids"}).json()
    assert got["actor"] == {"objectType": "Agent", "mbox": sent["actor"]["mbox"]}
    assert got["verb"] == {"id": sent["verb"]["id"]}
    assert got["object"] == {"id": "https://tool.example/x"}


def test_bad_query_parameters_are_400_naming_the_parameter(lrs):
    for params, name in [
        ({"agent": "{not json"}, "agent"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "-5"}, "limit"),
        ({"statementId": str(uuid.uuid4()), "verb": PASSED}, "verb"),
        ({"colour": "blue"}, "colour"),
    ]:
        response = call(lrs, "GET", "/statements", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["message"].startswith(name), response.text


# -- documents, activities, agents -----------------------------------------------------------------


def test_state_documents_use_etags_and_post_merges_json(lrs):
    params = {
        "activityId": "https://tool.example/a/state",
        "agent": json.dumps({"mbox": "mailto:state@school.example"}),
        "stateId": f"bookmark-{uuid.uuid4()}",
    }
    assert call(lrs, "POST", "/activities/state", params=params, json={"page": 1}).status_code == 204
    assert call(lrs, "POST", "/activities/state", params=params, json={"done": True}).status_code == 204
    got = call(lrs, "GET", "/activities/state", params=params)
    assert got.json() == {"page": 1, "done": True}
    etag = got.headers["ETag"]
    assert etag.startswith('"') and etag == f'"{hashlib.sha1(got.content).hexdigest()}"'
    stale = call(lrs, "PUT", "/activities/state", params=params, json={"page": 9}, headers={"If-Match": '"0000"'})
    assert stale.status_code == 412
    assert call(lrs, "PUT", "/activities/state", params=params, json={"page": 2}).status_code == 409
    fresh = call(lrs, "PUT", "/activities/state", params=params, json={"page": 2}, headers={"If-Match": etag})
    assert fresh.status_code == 204
    assert call(lrs, "GET", "/activities/state", params=params).json() == {"page": 2}
    not_json = call(
        lrs, "POST", "/activities/state", params=params, data=b"plain", headers={"Content-Type": "text/plain"}
    )
    assert not_json.status_code == 400
    listing = {k: v for k, v in params.items() if k != "stateId"}
    assert params["stateId"] in call(lrs, "GET", "/activities/state", params=listing).json()
    assert call(lrs, "DELETE", "/activities/state", params=listing).status_code == 204
    assert call(lrs, "GET", "/activities/state", params=params).status_code == 404


def test_activities_return_the_merged_definition_and_agents_a_person(lrs):
    activity_id = f"https://tool.example/a/{uuid.uuid4()}"
    call(
        lrs,
        "POST",
        "/statements",
        json=statement(object={"id": activity_id, "definition": {"name": {"en-GB": "Unit"}}}),
    )
    call(
        lrs,
        "POST",
        "/statements",
        json=statement(object={"id": activity_id, "definition": {"name": {"cy": "Uned"}}}),
    )
    got = call(lrs, "GET", "/activities", params={"activityId": activity_id}).json()
    assert got == {
        "objectType": "Activity",
        "id": activity_id,
        "definition": {"name": {"en-GB": "Unit", "cy": "Uned"}},
    }
    agent = {"objectType": "Agent", "name": "Pat", "mbox": "mailto:pat@school.example"}
    person = call(lrs, "GET", "/agents", params={"agent": json.dumps(agent)}).json()
    assert person == {"objectType": "Person", "name": ["Pat"], "mbox": ["mailto:pat@school.example"]}


# -- the 1.0.3 alternate request syntax ------------------------------------------------------------


def test_the_alternate_syntax_works_in_1_0_3_and_is_refused_in_2_0(lrs):
    statement_id = str(uuid.uuid4())
    user, secret = lrs.keys["all"]
    form = {
        "statementId": statement_id,
        "content": json.dumps(statement()),
        "Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode(),
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
    }
    put = requests.post(lrs.xapi + "/statements?method=PUT", data=form, timeout=10)
    assert put.status_code == 204, put.text
    assert call(lrs, "GET", "/statements", params={"statementId": statement_id}).status_code == 200
    refused = requests.post(
        lrs.xapi + "/statements?method=PUT", data={**form, "X-Experience-API-Version": "2.0.0"}, timeout=10
    )
    assert refused.status_code == 400


def test_the_lrs_is_not_served_when_disabled(make_tool):
    server = make_tool(xapi={"lrs_enabled": False})
    assert requests.get(server.base_url + "/xapi/about", timeout=10).status_code == 404
