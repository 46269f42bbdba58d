"""The xAPI statement rules, version by version: good statements pass unchanged, bad ones name their field."""

from __future__ import annotations

import copy

import pytest
from marshmallow import Schema, ValidationError, fields

from xapi.schemas import (
    AgentSchema,
    StatementSchema,
    XapiValidationError,
    validate_activity_id,
    validate_agent,
    validate_duration,
    validate_language_map,
    validate_statement,
    validate_statements,
    validate_timestamp,
    validate_uuid,
    validate_version,
)

V1 = "1.0.3"
V2 = "2.0.0"
BOTH = (V1, V2)

UUID = "6f1a3c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
SHA256 = "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a"
VERB = {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-GB": "completed"}}
LEARNER = {"objectType": "Agent", "account": {"homePage": "https://vle.school.example", "name": "learner-17"}}
TUTOR = {"mbox": "mailto:tutor@school.example", "name": "A Tutor"}
ACTIVITY = {
    "objectType": "Activity",
    "id": "https://npqsl.example/activities/unit-3",
    "definition": {
        "name": {"en-GB": "Unit 3: leading change"},
        "description": {"en-GB": "Implementation planning"},
        "type": "http://adlnet.gov/expapi/activities/lesson",
        "moreInfo": "https://npqsl.example/units/3",
        "extensions": {"https://npqsl.example/ext/week": 4},
    },
}
STATEMENT = {
    "id": UUID,
    "actor": LEARNER,
    "verb": VERB,
    "object": ACTIVITY,
    "result": {
        "score": {"scaled": 0.75, "raw": 15, "min": 0, "max": 20},
        "success": True,
        "completion": True,
        "response": "option-b",
        "duration": "PT12M30.5S",
        "extensions": {"https://npqsl.example/ext/attempt": 2},
    },
    "context": {
        "registration": "0b8c4a5e-1f2d-4c3b-8a9e-7d6c5b4a3f21",
        "instructor": TUTOR,
        "team": {"objectType": "Group", "name": "Cohort A", "member": [TUTOR]},
        "contextActivities": {
            "parent": [{"id": "https://npqsl.example/modules/implementation"}],
            "grouping": [{"id": "https://npqsl.example/npqsl", "objectType": "Activity"}],
            "category": [{"id": "https://npqsl.example/profile"}],
            "other": {"id": "https://vle.school.example/course/9"},
        },
        "revision": "2",
        "platform": "Moodle",
        "language": "en-GB",
        "statement": {"objectType": "StatementRef", "id": "9a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"},
        "extensions": {"https://npqsl.example/ext/lti-context": "course-9"},
    },
    "timestamp": "2024-03-01T09:30:00.123Z",
    "stored": "2024-03-01T09:30:01.000Z",
    "authority": {"objectType": "Agent", "account": {"homePage": "https://npqsl.example", "name": "tool"}},
    "version": "1.0.3",
    "attachments": [
        {
            "usageType": "http://adlnet.gov/expapi/attachments/signature",
            "display": {"en-GB": "Signature"},
            "description": {"en-GB": "A signed copy"},
            "contentType": "application/octet-stream",
            "length": 4235,
            "sha2": SHA256,
            "fileUrl": "https://npqsl.example/files/1",
        }
    ],
}
CONTEXT_AGENTS = [
    {
        "objectType": "contextAgent",
        "agent": TUTOR,
        "relevantTypes": ["https://npqsl.example/roles/coach"],
    }
]
CONTEXT_GROUPS = [
    {
        "objectType": "contextGroup",
        "group": {"objectType": "Group", "mbox": "mailto:cohort-a@school.example"},
        "relevantTypes": ["https://npqsl.example/roles/cohort"],
    }
]
SUBSTATEMENT = {
    "objectType": "SubStatement",
    "actor": LEARNER,
    "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
    "object": {"id": "https://npqsl.example/activities/unit-4"},
    "timestamp": "2024-03-01T09:30:00Z",
}
_MISSING = object()


def changed(path: str, value: object = _MISSING, base: dict = STATEMENT) -> dict:
    """A copy of ``base`` with the dotted ``path`` set to ``value`` (or removed)."""
    statement = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = statement
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _MISSING:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = copy.deepcopy(value)
    else:
        node[last] = copy.deepcopy(value)
    return statement


def with_object(obj: dict, **top: object) -> dict:
    statement = changed("object", obj)
    del statement["context"]["revision"], statement["context"]["platform"]
    statement.update(top)
    return statement


GOOD = [
    ("the full statement", STATEMENT, BOTH),
    (
        "only actor, verb and object",
        {"actor": LEARNER, "verb": {"id": VERB["id"]}, "object": {"id": ACTIVITY["id"]}},
        BOTH,
    ),
    ("an agent without objectType", changed("actor", TUTOR), BOTH),
    (
        "an mbox_sha1sum agent",
        changed("actor", {"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"}),
        BOTH,
    ),
    ("an openid agent", changed("actor", {"openid": "http://openid.example.org/12345"}), BOTH),
    ("an anonymous group", changed("actor", {"objectType": "Group", "member": [TUTOR, LEARNER]}), BOTH),
    (
        "an identified group without members",
        changed("actor", {"objectType": "Group", "account": LEARNER["account"]}),
        BOTH,
    ),
    (
        "an identified group with members",
        changed("actor", {"objectType": "Group", "openid": "https://id.example/g", "member": [TUTOR]}),
        BOTH,
    ),
    ("an empty anonymous group", changed("actor", {"objectType": "Group", "member": []}), BOTH),
    ("a group instructor", changed("context.instructor", {"objectType": "Group", "member": [TUTOR]}), BOTH),
    ("an agent object", with_object({"objectType": "Agent", "mbox": "mailto:a@b.example"}), BOTH),
    ("a group object", with_object({"objectType": "Group", "member": [TUTOR]}), BOTH),
    ("a statement reference object", with_object({"objectType": "StatementRef", "id": UUID}), BOTH),
    ("a substatement object", with_object(SUBSTATEMENT), BOTH),
    ("an activity without objectType", changed("object.objectType"), BOTH),
    ("an activity without definition", changed("object.definition"), BOTH),
    ("an empty definition", changed("object.definition", {}), BOTH),
    ("an empty language map", changed("verb.display", {}), BOTH),
    ("an upper-case UUID", changed("id", UUID.upper()), BOTH),
    ("a nil UUID", changed("id", "00000000-0000-0000-0000-000000000000"), BOTH),
    (
        "a single context activity",
        changed("context.contextActivities.parent", {"id": "https://x.example/p"}),
        BOTH,
    ),
    ("an empty context activities array", changed("context.contextActivities.category", []), BOTH),
    (
        "null, empty and object extension values",
        changed(
            "result.extensions", {"http://x.example/a": None, "http://x.example/b": "", "http://x.example/c": {}}
        ),
        BOTH,
    ),
    ("empty extensions", changed("context.extensions", {}), BOTH),
    ("scaled -1", changed("result.score", {"scaled": -1.0}), BOTH),
    ("scaled 1", changed("result.score", {"scaled": 1}), BOTH),
    ("raw equal to max", changed("result.score", {"raw": 20, "min": 0, "max": 20}), BOTH),
    ("raw with only min", changed("result.score", {"raw": 5.5, "min": 1}), BOTH),
    ("weeks duration", changed("result.duration", "P4W"), BOTH),
    ("years duration", changed("result.duration", "P3Y1M29DT4H35M59.14S"), BOTH),
    ("seconds-only duration", changed("result.duration", "PT16559.14S"), BOTH),
    ("a fractional last component", changed("result.duration", "P1DT0.5H"), BOTH),
    ("fine duration", changed("result.duration", "P1DT12H36M0.12567S"), BOTH),
    ("a +00:00 offset", changed("timestamp", "2008-09-15T15:53:00.601+00:00"), BOTH),
    ("a -05:00 offset", changed("timestamp", "2023-05-04T12:00:00-05:00"), BOTH),
    ("a timestamp with microseconds", changed("timestamp", "2024-03-01T09:30:00.123456Z"), BOTH),
    ("a space between date and time", changed("timestamp", "2008-09-15 15:53:00.601+00:00"), BOTH),
    ("a leap second", changed("timestamp", "2016-12-31T23:59:60Z"), BOTH),
    ("an ISO 8601 basic timestamp", changed("timestamp", "20240301T093000Z"), (V1,)),
    ("a timestamp without an offset", changed("timestamp", "2024-03-01T09:30:00.123"), (V1,)),
    ("version 1.0", changed("version", "1.0"), BOTH),
    ("version 1.0.9", changed("version", "1.0.9"), BOTH),
    ("version 2.0.0", changed("version", "2.0.0"), (V2,)),
    (
        "an authority group of two agents",
        changed("authority", {"objectType": "Group", "member": [TUTOR, LEARNER]}),
        BOTH,
    ),
    (
        "a voiding statement",
        with_object(
            {"objectType": "StatementRef", "id": UUID}, verb={"id": "http://adlnet.gov/expapi/verbs/voided"}
        ),
        BOTH,
    ),
    ("revision without object objectType", changed("object.objectType"), BOTH),
    ("a three-letter language", changed("context.language", "cmn"), BOTH),
    (
        "a script and region tag",
        changed("verb.display", {"zh-Hans-CN": "x", "sr-Latn-RS": "y", "es-419": "z"}),
        BOTH,
    ),
    (
        "a private-use and extension tag",
        changed("verb.display", {"en-a-bbb-x-private": "x", "x-whatever": "y", "i-klingon": "z"}),
        BOTH,
    ),
    ("a URN activity id", changed("object.id", "urn:uuid:" + UUID), BOTH),
    ("an IRI with non-ASCII letters", changed("object.id", "https://例え.example/パス/ü"), BOTH),
    ("a percent-encoded IRI", changed("object.id", "https://x.example/a%20b"), BOTH),
    ("an attachment without fileUrl", changed("attachments.0.fileUrl"), BOTH),
    (
        "contextAgents and contextGroups",
        changed("context.contextGroups", CONTEXT_GROUPS, changed("context.contextAgents", CONTEXT_AGENTS)),
        (V2,),
    ),
    (
        "a contextAgent without relevantTypes",
        changed("context.contextAgents", [{"objectType": "contextAgent", "agent": TUTOR}]),
        (V2,),
    ),
    ("unicode names", changed("actor", {"name": "Zoë Ōsaka", "mbox": "mailto:zoe@school.example"}), BOTH),
]

INTERACTIONS = [
    ("true-false", {"correctResponsesPattern": ["true"]}),
    (
        "choice",
        {"correctResponsesPattern": ["a[,]b"], "choices": [{"id": "a", "description": {"en": "A"}}, {"id": "b"}]},
    ),
    ("fill-in", {"correctResponsesPattern": ["{case_matters=false}Leading"]}),
    ("long-fill-in", {"correctResponsesPattern": ["{lang=en}Essay"]}),
    ("matching", {"correctResponsesPattern": ["a[.]1"], "source": [{"id": "a"}], "target": [{"id": "1"}]}),
    ("performance", {"correctResponsesPattern": ["s1[.]x"], "steps": [{"id": "s1", "description": {"ja": "一"}}]}),
    ("sequencing", {"correctResponsesPattern": ["b[,]a"], "choices": [{"id": "a"}, {"id": "b"}]}),
    ("likert", {"correctResponsesPattern": ["l3"], "scale": [{"id": "l3", "description": {"en-US": "Very"}}]}),
    ("numeric", {"correctResponsesPattern": ["4[:]"]}),
    ("other", {"correctResponsesPattern": ["(35.9,-86.7)"]}),
]
for interaction, parts in INTERACTIONS:
    GOOD.append(
        (
            f"a {interaction} interaction",
            changed("object.definition", {"interactionType": interaction, **parts}),
            BOTH,
        )
    )


def cases(table: list) -> list:
    return [
        pytest.param(statement, version, *rest, id=f"{version}: {name}")
        for name, statement, versions, *rest in table
        for version in versions
    ]


@pytest.mark.parametrize(("statement", "version"), cases(GOOD))
def test_valid_statements_pass_unchanged(statement, version):
    if version == V2 and statement.get("version") == "1.0.3":
        statement = changed("version", "2.0.0", statement)
    before = copy.deepcopy(statement)
    assert validate_statement(statement, version) is statement
    assert statement == before


NOT_UUID = "AA97B177-9383-4934-8543-0F91A7A028368"
BAD_LETTER_UUID = "MA97B177-9383-4934-8543-0F91A7A02836"
BAD = [
    # the statement itself
    ("an unknown top-level property", changed("colour", "blue"), BOTH, "statement.colour"),
    ("a wrongly cased key", changed("Actor", LEARNER, changed("actor")), BOTH, "statement.Actor"),
    ("a missing actor", changed("actor"), BOTH, "statement.actor"),
    ("a missing verb", changed("verb"), BOTH, "statement.verb"),
    ("a missing object", changed("object"), BOTH, "statement.object"),
    ("a null context", changed("context", None), BOTH, "statement.context"),
    ("an id with too many digits", changed("id", NOT_UUID), BOTH, "statement.id"),
    ("an id with a non-hex letter", changed("id", BAD_LETTER_UUID), BOTH, "statement.id"),
    ("a numeric id", changed("id", 12345), BOTH, "statement.id"),
    ("an id without hyphens", changed("id", UUID.replace("-", "")), BOTH, "statement.id"),
    ("an empty id", changed("id", ""), BOTH, "statement.id"),
    # actors
    (
        "an actor objectType in lower case",
        changed("actor.objectType", "agent"),
        BOTH,
        "statement.actor.objectType",
    ),
    ("a numeric actor objectType", changed("actor.objectType", 123), BOTH, "statement.actor.objectType"),
    (
        "a numeric actor name",
        changed("actor", {"name": 123, **TUTOR} | {"name": 123}),
        BOTH,
        "statement.actor.name",
    ),
    ("an agent without identifier", changed("actor", {"name": "Nobody"}), BOTH, "statement.actor"),
    (
        "an agent with two identifiers",
        changed("actor", {"mbox": "mailto:a@b.example", "openid": "https://id.example/a"}),
        BOTH,
        "statement.actor",
    ),
    (
        "a group with two identifiers",
        changed("actor", {"objectType": "Group", "mbox": "mailto:a@b.example", "account": LEARNER["account"]}),
        BOTH,
        "statement.actor",
    ),
    ("an mbox without mailto:", changed("actor", {"mbox": "tutor@school.example"}), BOTH, "statement.actor.mbox"),
    (
        "an mbox that is a web address",
        changed("actor", {"mbox": "http://should.fail.com"}),
        BOTH,
        "statement.actor.mbox",
    ),
    ("an mbox without an @", changed("actor", {"mbox": "mailto:should.fail.com"}), BOTH, "statement.actor.mbox"),
    ("a short mbox_sha1sum", changed("actor", {"mbox_sha1sum": "cd9b00a5"}), BOTH, "statement.actor.mbox_sha1sum"),
    ("a numeric mbox_sha1sum", changed("actor", {"mbox_sha1sum": 12}), BOTH, "statement.actor.mbox_sha1sum"),
    (
        "an openid that is not a URI",
        changed("actor", {"openid": "ab=c://should.fail.com"}),
        BOTH,
        "statement.actor.openid",
    ),
    ("an account without homePage", changed("actor.account.homePage"), BOTH, "statement.actor.account.homePage"),
    ("an account without name", changed("actor.account.name"), BOTH, "statement.actor.account.name"),
    (
        "an account homePage that is not an IRL",
        changed("actor.account.homePage", "ab=c://should.fail.com"),
        BOTH,
        "statement.actor.account.homePage",
    ),
    (
        "an account name that is an object",
        changed("actor.account.name", {"key": "x"}),
        BOTH,
        "statement.actor.account.name",
    ),
    ("an unknown account property", changed("actor.account.email", "x"), BOTH, "statement.actor.account.email"),
    ("an agent with members", changed("actor.member", [TUTOR]), BOTH, "statement.actor.member"),
    (
        "an anonymous group without members",
        changed("actor", {"objectType": "Group", "name": "G"}),
        BOTH,
        "statement.actor.member",
    ),
    (
        "a group whose member is not an array",
        changed("actor", {"objectType": "Group", "member": TUTOR}),
        BOTH,
        "statement.actor.member",
    ),
    (
        "a group whose member is a group",
        changed("actor", {"objectType": "Group", "member": [{"objectType": "Group", "member": [TUTOR]}]}),
        BOTH,
        "statement.actor.member[0].objectType",
    ),
    (
        "a group member without identifier",
        changed("actor", {"objectType": "Group", "member": [{"name": "x"}]}),
        BOTH,
        "statement.actor.member[0]",
    ),
    ("an actor that is a string", changed("actor", "learner"), BOTH, "statement.actor"),
    # verb
    ("a verb without id", changed("verb.id"), BOTH, "statement.verb.id"),
    ("a verb id that is not an IRI", changed("verb.id", "ab=c://should.fail.com"), BOTH, "statement.verb.id"),
    ("a verb id without scheme", changed("verb.id", "completed"), BOTH, "statement.verb.id"),
    ("a verb id with a space", changed("verb.id", "http://x.example/a b"), BOTH, "statement.verb.id"),
    (
        "a verb id without its scheme",
        changed("verb.id", "adlnet.gov/expapi/verbs/completed"),
        BOTH,
        "statement.verb.id",
    ),
    ("an IRI with a bidi override", changed("verb.id", "http://x.example/\u202eevil"), BOTH, "statement.verb.id"),
    ("an IRI with a lone surrogate", changed("verb.id", "http://x.example/\ud800"), BOTH, "statement.verb.id"),
    ("a bad percent escape", changed("verb.id", "http://x.example/a%zz"), BOTH, "statement.verb.id"),
    ("a string verb display", changed("verb.display", "completed"), BOTH, "statement.verb.display"),
    ("a numeric verb display", changed("verb.display", 12345), BOTH, "statement.verb.display"),
    ("a nine-letter language", changed("verb.display", {"something": "besucht"}), BOTH, "statement.verb.display"),
    ("a language with digits", changed("verb.display", {"a12345": "x"}), BOTH, "statement.verb.display"),
    (
        "a language with an over-long subtag",
        changed("verb.display", {"en-something-AU": "x"}),
        BOTH,
        "statement.verb.display",
    ),
    (
        "a repeated extension singleton",
        changed("verb.display", {"zh-z-aaa-z-bbb-c-ccc": "x"}),
        BOTH,
        "statement.verb.display",
    ),
    ("a repeated variant", changed("verb.display", {"de-1996-1996": "x"}), BOTH, "statement.verb.display"),
    ("a null language map value", changed("verb.display", {"en-US": None}), BOTH, "statement.verb.display.en-US"),
    ("a numeric language map value", changed("verb.display", {"en-US": 1}), BOTH, "statement.verb.display.en-US"),
    ("an unknown verb property", changed("verb.name", "x"), BOTH, "statement.verb.name"),
    (
        "voiding a non-reference",
        changed("verb", {"id": "http://adlnet.gov/expapi/verbs/voided"}),
        BOTH,
        "statement.object.objectType",
    ),
    # objects
    ("an activity without id", changed("object.id"), BOTH, "statement.object.id"),
    ("an activity id that is not an IRI", changed("object.id", "should error"), BOTH, "statement.object.id"),
    (
        "a lower-case activity objectType",
        changed("object.objectType", "activity"),
        BOTH,
        "statement.object.objectType",
    ),
    ("an unknown objectType", changed("object.objectType", "Thing"), BOTH, "statement.object.objectType"),
    ("a definition that is a string", changed("object.definition", "lesson"), BOTH, "statement.object.definition"),
    (
        "a string definition name",
        changed("object.definition.name", "Unit"),
        BOTH,
        "statement.object.definition.name",
    ),
    (
        "a numeric definition description",
        changed("object.definition.description", 5),
        BOTH,
        "statement.object.definition.description",
    ),
    (
        "a definition type that is not an IRI",
        changed("object.definition.type", "ab=c://should.fail.com"),
        BOTH,
        "statement.object.definition.type",
    ),
    (
        "a moreInfo that is not an IRL",
        changed("object.definition.moreInfo", "ab=c://should.fail.com"),
        BOTH,
        "statement.object.definition.moreInfo",
    ),
    ("a null moreInfo", changed("object.definition.moreInfo", None), BOTH, "statement.object.definition.moreInfo"),
    (
        "extensions that are a string",
        changed("object.definition.extensions", "x"),
        BOTH,
        "statement.object.definition.extensions",
    ),
    (
        "an extension key that is not an IRI",
        changed("object.definition.extensions", {"should fail": True}),
        BOTH,
        "statement.object.definition.extensions",
    ),
    (
        "an unknown definition property",
        changed("object.definition.title", {"en": "x"}),
        BOTH,
        "statement.object.definition.title",
    ),
    (
        "an interactionType in the wrong case",
        changed("object.definition.interactionType", "true-faLse"),
        BOTH,
        "statement.object.definition.interactionType",
    ),
    (
        "a numeric interactionType",
        changed("object.definition.interactionType", 12345),
        BOTH,
        "statement.object.definition.interactionType",
    ),
    (
        "an IRI interactionType",
        changed("object.definition.interactionType", "http://x.example/choice"),
        BOTH,
        "statement.object.definition.interactionType",
    ),
    (
        "a correctResponsesPattern without interactionType",
        changed("object.definition.correctResponsesPattern", ["a"]),
        BOTH,
        "statement.object.definition.interactionType",
    ),
    (
        "choices without interactionType",
        changed("object.definition.choices", [{"id": "a"}]),
        BOTH,
        "statement.object.definition.interactionType",
    ),
    (
        "a correctResponsesPattern that is a string",
        changed("object.definition", {"interactionType": "other", "correctResponsesPattern": "a"}),
        BOTH,
        "statement.object.definition.correctResponsesPattern",
    ),
    (
        "a numeric response pattern",
        changed("object.definition", {"interactionType": "numeric", "correctResponsesPattern": [4]}),
        BOTH,
        "statement.object.definition.correctResponsesPattern[0]",
    ),
    (
        "choices on a likert",
        changed("object.definition", {"interactionType": "likert", "choices": [{"id": "a"}]}),
        BOTH,
        "statement.object.definition.choices",
    ),
    (
        "a component without id",
        changed("object.definition", {"interactionType": "choice", "choices": [{"description": {"en": "A"}}]}),
        BOTH,
        "statement.object.definition.choices[0].id",
    ),
    (
        "repeated component ids",
        changed("object.definition", {"interactionType": "choice", "choices": [{"id": "a"}, {"id": "a"}]}),
        BOTH,
        "statement.object.definition.choices[1].id",
    ),
    (
        "a component with a bad description",
        changed(
            "object.definition",
            {"interactionType": "performance", "steps": [{"id": "a", "description": {"en_GB": "A"}}]},
        ),
        BOTH,
        "statement.object.definition.steps[0].description",
    ),
    (
        "an unknown component property",
        changed("object.definition", {"interactionType": "likert", "scale": [{"id": "a", "score": 1}]}),
        BOTH,
        "statement.object.definition.scale[0].score",
    ),
    (
        "an agent object without objectType",
        with_object({"mbox": "mailto:a@b.example"}),
        BOTH,
        "statement.object.objectType",
    ),
    ("a group object without objectType", with_object({"member": [TUTOR]}), BOTH, "statement.object.objectType"),
    ("a statement reference without id", with_object({"objectType": "StatementRef"}), BOTH, "statement.object.id"),
    (
        "a statement reference with a bad id",
        with_object({"objectType": "StatementRef", "id": NOT_UUID}),
        BOTH,
        "statement.object.id",
    ),
    (
        "a statement reference with a definition",
        with_object({"objectType": "StatementRef", "id": UUID, "definition": {}}),
        BOTH,
        "statement.object.definition",
    ),
    (
        "a substatement without actor",
        with_object(changed("actor", base=SUBSTATEMENT)),
        BOTH,
        "statement.object.actor",
    ),
    (
        "a substatement without verb",
        with_object(changed("verb", base=SUBSTATEMENT)),
        BOTH,
        "statement.object.verb",
    ),
    (
        "a substatement without object",
        with_object(changed("object", base=SUBSTATEMENT)),
        BOTH,
        "statement.object.object",
    ),
    ("a substatement with an id", with_object(changed("id", UUID, SUBSTATEMENT)), BOTH, "statement.object.id"),
    (
        "a substatement with stored",
        with_object(changed("stored", "2024-03-01T09:30:00Z", SUBSTATEMENT)),
        BOTH,
        "statement.object.stored",
    ),
    (
        "a substatement with version",
        with_object(changed("version", "1.0.0", SUBSTATEMENT)),
        BOTH,
        "statement.object.version",
    ),
    (
        "a substatement with authority",
        with_object(changed("authority", TUTOR, SUBSTATEMENT)),
        BOTH,
        "statement.object.authority",
    ),
    (
        "a nested substatement",
        with_object(changed("object", SUBSTATEMENT, SUBSTATEMENT)),
        BOTH,
        "statement.object.object.objectType",
    ),
    (
        "a substatement with a bad timestamp",
        with_object(changed("timestamp", "01/011/2015", SUBSTATEMENT)),
        BOTH,
        "statement.object.timestamp",
    ),
    (
        "a substatement whose agent object lacks an identifier",
        with_object(changed("object", {"objectType": "Agent"}, SUBSTATEMENT)),
        BOTH,
        "statement.object.object",
    ),
    # result
    ("a string success", changed("result.success", "true"), BOTH, "statement.result.success"),
    ("a string completion", changed("result.completion", "false"), BOTH, "statement.result.completion"),
    ("a numeric response", changed("result.response", 12345), BOTH, "statement.result.response"),
    ("a numeric duration", changed("result.duration", 12345), BOTH, "statement.result.duration"),
    ("a duration that is not ISO 8601", changed("result.duration", "PA1H0M0S"), BOTH, "statement.result.duration"),
    ("weeks mixed with days", changed("result.duration", "P4W1D"), BOTH, "statement.result.duration"),
    (
        "a fraction before the last component",
        changed("result.duration", "PT1.5H30M"),
        BOTH,
        "statement.result.duration",
    ),
    ("a negative duration", changed("result.duration", "-PT5S"), BOTH, "statement.result.duration"),
    ("a bare P", changed("result.duration", "P"), BOTH, "statement.result.duration"),
    ("a bare T", changed("result.duration", "P1DT"), BOTH, "statement.result.duration"),
    (
        "the alternative duration format",
        changed("result.duration", "P0003-01-29T04:35:59"),
        BOTH,
        "statement.result.duration",
    ),
    ("a score that is a number", changed("result.score", 5), BOTH, "statement.result.score"),
    ("a string raw score", changed("result.score.raw", "15"), BOTH, "statement.result.score.raw"),
    ("a boolean scaled score", changed("result.score", {"scaled": True}), BOTH, "statement.result.score.scaled"),
    ("scaled above 1", changed("result.score", {"scaled": 1.01}), BOTH, "statement.result.score.scaled"),
    ("scaled below -1", changed("result.score", {"scaled": -1.00001}), BOTH, "statement.result.score.scaled"),
    ("raw above max", changed("result.score.raw", 21), BOTH, "statement.result.score.raw"),
    ("raw below min", changed("result.score.raw", -1), BOTH, "statement.result.score.raw"),
    ("min above max", changed("result.score", {"min": 10, "max": 5}), BOTH, "statement.result.score.min"),
    ("min equal to max", changed("result.score", {"min": 5, "max": 5}), BOTH, "statement.result.score.min"),
    ("an unknown score property", changed("result.score.percent", 50), BOTH, "statement.result.score.percent"),
    ("numeric result extensions", changed("result.extensions", 5), BOTH, "statement.result.extensions"),
    ("an unknown result property", changed("result.grade", "A"), BOTH, "statement.result.grade"),
    # context
    (
        "a registration that is not a UUID",
        changed("context.registration", "should fail"),
        BOTH,
        "statement.context.registration",
    ),
    (
        "an object registration",
        changed("context.registration", {"key": "x"}),
        BOTH,
        "statement.context.registration",
    ),
    ("a string instructor", changed("context.instructor", "tutor"), BOTH, "statement.context.instructor"),
    (
        "an instructor without identifier",
        changed("context.instructor", {"key": "x"}),
        BOTH,
        "statement.context.instructor.key",
    ),
    ("an agent team", changed("context.team", TUTOR), BOTH, "statement.context.team.objectType"),
    ("a string team", changed("context.team", "cohort"), BOTH, "statement.context.team"),
    (
        "string contextActivities",
        changed("context.contextActivities", "x"),
        BOTH,
        "statement.context.contextActivities",
    ),
    (
        "an unknown contextActivities key",
        changed("context.contextActivities.sibling", [{"id": "https://x.example"}]),
        BOTH,
        "statement.context.contextActivities.sibling",
    ),
    (
        "a context activity that is not an activity",
        changed("context.contextActivities.parent", [{"key": "x"}]),
        BOTH,
        "statement.context.contextActivities.parent[0].key",
    ),
    (
        "a string context activity",
        changed("context.contextActivities.grouping", "https://x.example"),
        BOTH,
        "statement.context.contextActivities.grouping",
    ),
    ("a numeric revision", changed("context.revision", 2), BOTH, "statement.context.revision"),
    ("an object platform", changed("context.platform", {"key": "x"}), BOTH, "statement.context.platform"),
    (
        "a revision with an agent object",
        changed("context.revision", "1", with_object({"objectType": "Agent", "mbox": "mailto:a@b.example"})),
        BOTH,
        "statement.context.revision",
    ),
    (
        "a platform with a statement reference",
        changed("context.platform", "Moodle", with_object({"objectType": "StatementRef", "id": UUID})),
        BOTH,
        "statement.context.platform",
    ),
    (
        "a platform with a substatement",
        changed("context.platform", "Moodle", with_object(SUBSTATEMENT)),
        BOTH,
        "statement.context.platform",
    ),
    ("a numeric language", changed("context.language", 12345), BOTH, "statement.context.language"),
    ("an invalid language", changed("context.language", "something"), BOTH, "statement.context.language"),
    (
        "a context statement without objectType",
        changed("context.statement", {"id": UUID}),
        BOTH,
        "statement.context.statement.objectType",
    ),
    (
        "a context statement with a bad id",
        changed("context.statement.id", NOT_UUID),
        BOTH,
        "statement.context.statement.id",
    ),
    (
        "a context extension key that is not an IRI",
        changed("context.extensions", {"lti-context": "x"}),
        BOTH,
        "statement.context.extensions",
    ),
    ("an unknown context property", changed("context.course", "x"), BOTH, "statement.context.course"),
    (
        "contextAgents under 1.0.3",
        changed("context.contextAgents", CONTEXT_AGENTS),
        (V1,),
        "statement.context.contextAgents",
    ),
    (
        "contextGroups under 1.0.3",
        changed("context.contextGroups", CONTEXT_GROUPS),
        (V1,),
        "statement.context.contextGroups",
    ),
    (
        "a contextAgent of the wrong objectType",
        changed("context.contextAgents", [{**CONTEXT_AGENTS[0], "objectType": "Agent"}]),
        (V2,),
        "statement.context.contextAgents[0].objectType",
    ),
    (
        "a contextAgent with a bad agent",
        changed("context.contextAgents", [{**CONTEXT_AGENTS[0], "agent": {"name": "x"}}]),
        (V2,),
        "statement.context.contextAgents[0].agent",
    ),
    (
        "a contextAgent holding a group",
        changed("context.contextAgents", [{**CONTEXT_AGENTS[0], "agent": CONTEXT_GROUPS[0]["group"]}]),
        (V2,),
        "statement.context.contextAgents[0].agent.objectType",
    ),
    (
        "a contextAgent with empty relevantTypes",
        changed("context.contextAgents", [{**CONTEXT_AGENTS[0], "relevantTypes": []}]),
        (V2,),
        "statement.context.contextAgents[0].relevantTypes",
    ),
    (
        "a contextAgent with a non-IRI relevantType",
        changed("context.contextAgents", [{**CONTEXT_AGENTS[0], "relevantTypes": ["coach"]}]),
        (V2,),
        "statement.context.contextAgents[0].relevantTypes[0]",
    ),
    (
        "contextAgents that are an object",
        changed("context.contextAgents", CONTEXT_AGENTS[0]),
        (V2,),
        "statement.context.contextAgents",
    ),
    (
        "a contextGroup of the wrong objectType",
        changed("context.contextGroups", [{**CONTEXT_GROUPS[0], "objectType": "contextAgent"}]),
        (V2,),
        "statement.context.contextGroups[0].objectType",
    ),
    (
        "a contextGroup holding an agent",
        changed("context.contextGroups", [{**CONTEXT_GROUPS[0], "group": TUTOR}]),
        (V2,),
        "statement.context.contextGroups[0].group.objectType",
    ),
    (
        "a contextGroup with empty relevantTypes",
        changed("context.contextGroups", [{**CONTEXT_GROUPS[0], "relevantTypes": []}]),
        (V2,),
        "statement.context.contextGroups[0].relevantTypes",
    ),
    (
        "a contextGroup with a non-IRI relevantType",
        changed("context.contextGroups", [{**CONTEXT_GROUPS[0], "relevantTypes": [5]}]),
        (V2,),
        "statement.context.contextGroups[0].relevantTypes[0]",
    ),
    # timestamps, stored, authority, version
    ("a timestamp that is words", changed("timestamp", "should fail"), BOTH, "statement.timestamp"),
    ("a slashed date", changed("timestamp", "01/011/2015"), BOTH, "statement.timestamp"),
    ("a -00 offset", changed("timestamp", "2008-09-15T15:53:00.601-00"), BOTH, "statement.timestamp"),
    ("a -0000 offset", changed("timestamp", "2008-09-15T15:53:00.601-0000"), BOTH, "statement.timestamp"),
    ("a -00:00 offset", changed("timestamp", "2008-09-15T15:53:00.601-00:00"), BOTH, "statement.timestamp"),
    ("a 13th month", changed("timestamp", "2024-13-01T09:30:00Z"), BOTH, "statement.timestamp"),
    ("the 30th of February", changed("timestamp", "2024-02-30T09:30:00Z"), BOTH, "statement.timestamp"),
    ("an hour of 25", changed("timestamp", "2024-02-01T25:30:00Z"), BOTH, "statement.timestamp"),
    ("a numeric timestamp", changed("timestamp", 1709285400000), BOTH, "statement.timestamp"),
    ("a date without time", changed("timestamp", "2024-03-01"), BOTH, "statement.timestamp"),
    (
        "a timestamp without an offset",
        changed("timestamp", "2024-03-01T09:30:00.123"),
        (V2,),
        "statement.timestamp",
    ),
    ("an ISO 8601 basic timestamp", changed("timestamp", "20240301T093000Z"), (V2,), "statement.timestamp"),
    ("a stored that is not a timestamp", changed("stored", "yesterday"), BOTH, "statement.stored"),
    ("an authority without identifier", changed("authority", {"name": "x"}), BOTH, "statement.authority"),
    (
        "an identified group authority",
        changed("authority", {"objectType": "Group", "mbox": "mailto:g@x.example", "member": [TUTOR, LEARNER]}),
        BOTH,
        "statement.authority",
    ),
    (
        "a one-member group authority",
        changed("authority", {"objectType": "Group", "member": [TUTOR]}),
        BOTH,
        "statement.authority.member",
    ),
    (
        "a three-member group authority",
        changed("authority", {"objectType": "Group", "member": [TUTOR, LEARNER, {"mbox": "mailto:c@x.example"}]}),
        BOTH,
        "statement.authority.member",
    ),
    ("version 1.1.0", changed("version", "1.1.0"), BOTH, "statement.version"),
    ("version 0.9.9", changed("version", "0.9.9"), BOTH, "statement.version"),
    ("a version that is words", changed("version", "should fail"), BOTH, "statement.version"),
    ("a numeric version", changed("version", 1.0), BOTH, "statement.version"),
    ("version 2.0.0 under 1.0.3", changed("version", "2.0.0"), (V1,), "statement.version"),
    # attachments
    (
        "attachments that are an object",
        changed("attachments", STATEMENT["attachments"][0]),
        BOTH,
        "statement.attachments",
    ),
    ("a numeric attachment", changed("attachments", [12345]), BOTH, "statement.attachments[0]"),
    (
        "a usageType that is not an IRI",
        changed("attachments.0.usageType", "should fail"),
        BOTH,
        "statement.attachments[0].usageType",
    ),
    ("a missing usageType", changed("attachments.0.usageType"), BOTH, "statement.attachments[0].usageType"),
    ("a missing display", changed("attachments.0.display"), BOTH, "statement.attachments[0].display"),
    ("a string display", changed("attachments.0.display", "Signature"), BOTH, "statement.attachments[0].display"),
    (
        "an invalid description language",
        changed("attachments.0.description", {"something": "x"}),
        BOTH,
        "statement.attachments[0].description",
    ),
    (
        "a numeric contentType",
        changed("attachments.0.contentType", 12345),
        BOTH,
        "statement.attachments[0].contentType",
    ),
    (
        "a contentType that is not a media type",
        changed("attachments.0.contentType", "text"),
        BOTH,
        "statement.attachments[0].contentType",
    ),
    ("a missing contentType", changed("attachments.0.contentType"), BOTH, "statement.attachments[0].contentType"),
    ("a string length", changed("attachments.0.length", "27"), BOTH, "statement.attachments[0].length"),
    ("a fractional length", changed("attachments.0.length", 2.5), BOTH, "statement.attachments[0].length"),
    ("a missing length", changed("attachments.0.length"), BOTH, "statement.attachments[0].length"),
    (
        "a sha2 that is not hex",
        changed("attachments.0.sha2", "should fail"),
        BOTH,
        "statement.attachments[0].sha2",
    ),
    ("a missing sha2", changed("attachments.0.sha2"), BOTH, "statement.attachments[0].sha2"),
    (
        "a fileUrl that is not an IRL",
        changed("attachments.0.fileUrl", "should fail"),
        BOTH,
        "statement.attachments[0].fileUrl",
    ),
    (
        "a signature that is not a JWS",
        changed(
            "attachments.0.contentType",
            "text/plain",
            changed("attachments.0.usageType", "http://adlnet.gov/expapi/attachments/signature"),
        ),
        BOTH,
        "statement.attachments[0].contentType",
    ),
    ("an unknown attachment property", changed("attachments.0.name", "x"), BOTH, "statement.attachments[0].name"),
]


@pytest.mark.parametrize(("statement", "version", "field"), cases(BAD))
def test_invalid_statements_are_rejected_naming_the_field(statement, version, field):
    if version == V2 and statement.get("version") == "1.0.3":
        statement = changed("version", "2.0.0", statement)
    before = copy.deepcopy(statement)
    with pytest.raises(XapiValidationError) as raised:
        validate_statement(statement, version)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert statement == before


def test_a_statement_must_be_an_object():
    for value in (None, "statement", 5, [STATEMENT]):
        with pytest.raises(XapiValidationError, match=r"^statement: must be an object"):
            validate_statement(value)


def test_a_batch_is_a_statement_or_an_array_of_statements():
    assert validate_statements(STATEMENT) == [STATEMENT]
    assert validate_statements([STATEMENT, STATEMENT], V2 and V1) == [STATEMENT, STATEMENT]
    assert validate_statements([]) == []
    with pytest.raises(XapiValidationError) as raised:
        validate_statements([STATEMENT, changed("verb.id", "nope")])
    assert raised.value.field == "statements[1].verb.id"
    with pytest.raises(XapiValidationError, match=r"^statements: must be a Statement or an array"):
        validate_statements("[]")


def test_agent_parameter_takes_an_agent_or_identified_group():
    assert validate_agent(TUTOR, V1) == TUTOR
    group = {"objectType": "Group", "account": LEARNER["account"]}
    assert validate_agent(group, V2) == group
    with pytest.raises(XapiValidationError, match=r"^agent: must be an Agent or an identified Group"):
        validate_agent({"objectType": "Group", "member": [TUTOR]}, V1)
    with pytest.raises(XapiValidationError) as raised:
        validate_agent({"mbox": "bob@x.example"}, V2, field="agent")
    assert raised.value.field == "agent.mbox"
    with pytest.raises(XapiValidationError, match=r"^agent: must be an object"):
        validate_agent("mailto:bob@x.example", V1)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (lambda v: validate_uuid(v, field="registration"), UUID, ["", NOT_UUID, BAD_LETTER_UUID, 5, None]),
        (lambda v: validate_activity_id(v), "https://npqsl.example/a", ["npqsl", "", 5, "http://x.example/ b"]),
        (lambda v: validate_duration(v, field="d"), "PT0.5S", ["", "1H", "PT", 5]),
        (
            lambda v: validate_language_map(v, field="m"),
            {"en": "x"},
            [{"en_GB": "x"}, "en", {"en": 5}, {"e": "x"}],
        ),
        (
            lambda v: validate_timestamp(v, field="since"),
            "2024-03-01T09:30:00+01:00",
            ["now", "2024-03-01T09:30:00-00:00", 0],
        ),
        (
            lambda v: validate_timestamp(v, field="since", version=V2),
            "2024-03-01T09:30:00Z",
            ["2024-03-01T09:30:00", "2024-03-01T09:30Z", "2024-03-01T09:30:00+0100"],
        ),
    ],
)
def test_scalar_checks_used_by_query_parameters(check, good, bad):
    assert check(good) == good
    for value in bad:
        with pytest.raises(XapiValidationError):
            check(value)


@pytest.mark.parametrize("header", ["1.0", "1.0.0", "1.0.3", "2.0", "2.0.0", "2.0.12"])
def test_supported_version_headers(header):
    assert validate_version(header) == header


@pytest.mark.parametrize("header", ["", "0.95", "1.1", "1.1.0", "2.1.0", "3.0.0", "2.0.0-beta", " 2.0.0"])
def test_unsupported_version_headers_are_rejected(header):
    with pytest.raises(XapiValidationError, match="^X-Experience-API-Version: must be 1.0.x or 2.0.x"):
        validate_version(header)


def test_marshmallow_schema_loads_statements_and_reports_fields():
    assert StatementSchema(version=V2).load(changed("version", "2.0.0")) == changed("version", "2.0.0")
    with pytest.raises(ValidationError) as raised:
        StatementSchema().load(changed("result.success", "yes"))
    assert raised.value.messages == {
        "statement.result.success": ["must be a boolean (true or false), not a string"]
    }
    assert StatementSchema(many=True).load([STATEMENT]) == [STATEMENT]


def test_marshmallow_schemas_nest_inside_other_schemas():
    class Envelope(Schema):
        statement = fields.Nested(StatementSchema(version=V1), required=True)
        agent = fields.Nested(AgentSchema(), required=True)

    loaded = Envelope().load({"statement": STATEMENT, "agent": TUTOR})
    assert loaded == {"statement": STATEMENT, "agent": TUTOR}
    with pytest.raises(ValidationError) as raised:
        Envelope().load({"statement": changed("context.contextAgents", CONTEXT_AGENTS), "agent": TUTOR})
    assert "statement" in raised.value.messages
