"""The LRS's statement storage on both backends: ids, idempotence, voiding, filters, paging, hooks.

Each test takes ``database`` and so runs on SQLite and (marked ``postgres``) on PostgreSQL.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, insert, select

from xapi.lrs.models import LrsStatement, LrsStatementTerm
from xapi.lrs.store import StatementConflict, StatementError, StatementQuery, StatementStore
from xapi.lrs.terms import ACTIVITY, AGENT, REGISTRATION, RELATED_ACTIVITY, RELATED_AGENT, VERB, term_hash

AUTHORITY = {"objectType": "Agent", "account": {"homePage": "https://tool.example", "name": "tool"}}
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def statement(n: int = 0, *, verb: str = "http://adlnet.gov/expapi/verbs/experienced", **extra) -> dict:
    body = {
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://vle.example", "name": f"learner-{n % 3}"},
        },
        "verb": {"id": verb, "display": {"en-GB": "did"}},
        "object": {"id": f"https://tool.example/activity/{n % 5}", "definition": {"name": {"en-GB": f"A{n}"}}},
    }
    body.update(extra)
    return body


def ids_of(page) -> list[str]:
    return [json.loads(text)["id"] for text in page.statements]


def count(database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(LrsStatement))


def test_store_assigns_what_the_lrs_adds_and_keeps_the_rest_exactly(database):
    store = StatementStore(database)
    sent = statement(1, context={"contextActivities": {"parent": {"id": "https://tool.example/module/1"}}})
    (statement_id,) = store.store([sent], authority=AUTHORITY, version="2.0.0")
    kept = store.get(statement_id)
    assert uuid.UUID(statement_id) and kept.statement["id"] == statement_id
    assert kept.statement["authority"] == AUTHORITY
    assert kept.statement["version"] == "2.0.0"
    assert kept.statement["timestamp"] == kept.statement["stored"]
    assert kept.statement["stored"].endswith("Z") and len(kept.statement["stored"]) == 24
    # A single context activity is kept as the array the spec returns; the rest as sent.
    assert kept.statement["context"]["contextActivities"]["parent"] == [{"id": "https://tool.example/module/1"}]
    assert {k: kept.statement[k] for k in ("actor", "verb", "object")} == {
        k: sent[k] for k in ("actor", "verb", "object")
    }
    assert json.loads(kept.json) == kept.statement


def test_text_with_escapes_and_any_script_comes_back_exactly(database):
    # PostgreSQL receives rows through COPY, where backslashes, tabs and newlines are special.
    store = StatementStore(database)
    awkward = 'back\\slash \\N \\. tab\t new\nline\r "quoted" \u00e9\u4e2d\U0001f600 \\t'
    sent = statement(2, result={"response": awkward, "extensions": {"https://x.example/e": {"k": awkward}}})
    (statement_id,) = store.store([sent], authority=AUTHORITY)
    kept = store.get(statement_id)
    assert kept.statement["result"] == sent["result"]
    assert store.query(StatementQuery(terms=[(term_hash(VERB, sent["verb"]["id"]),)])).statements == [kept.json]


def test_an_identical_resend_is_a_no_op_and_a_different_one_conflicts(database):
    store = StatementStore(database)
    statement_id = str(uuid.uuid4())
    first = statement(1, id=statement_id, timestamp="2026-01-01T10:00:00.000Z")
    store.store([first], authority=AUTHORITY)
    stored_before = store.get(statement_id).json
    # The same instant written another way, another authority: still the same statement.
    again = {**first, "id": statement_id.upper(), "timestamp": "2026-01-01T11:00:00+01:00"}
    assert store.store([again], authority={**AUTHORITY, "name": "other"}) == [statement_id]
    assert store.get(statement_id).json == stored_before
    with pytest.raises(StatementConflict):
        store.store(
            [statement(2), {**first, "verb": {"id": "http://adlnet.gov/expapi/verbs/passed"}}], authority=AUTHORITY
        )
    assert count(database) == 1  # the batch's other statement was not stored either


def test_voiding_hides_the_target_and_a_voiding_statement_cannot_be_voided(database):
    store = StatementStore(database)
    (target,) = store.store([statement(1)], authority=AUTHORITY)
    (voider,) = store.store(
        [statement(2, verb=VOIDED, object={"objectType": "StatementRef", "id": target})], authority=AUTHORITY
    )
    assert store.get(target).voided and not store.get(voider).voided
    assert target not in ids_of(store.query(StatementQuery()))
    with pytest.raises(StatementError, match="itself a voiding statement"):
        store.store(
            [statement(3, verb=VOIDED, object={"objectType": "StatementRef", "id": voider})], authority=AUTHORITY
        )
    assert count(database) == 2


def test_filters_match_terms_and_statement_refs_inherit_their_targets_terms(database):
    store = StatementStore(database)
    registration = str(uuid.uuid4())
    passed = "http://adlnet.gov/expapi/verbs/passed"
    (a,) = store.store([statement(0, verb=passed, context={"registration": registration})], authority=AUTHORITY)
    (ref,) = store.store(
        [
            statement(
                1, verb="http://adlnet.gov/expapi/verbs/commented", object={"objectType": "StatementRef", "id": a}
            )
        ],
        authority=AUTHORITY,
    )
    store.store([statement(n) for n in range(2, 12)], authority=AUTHORITY)

    def matching(*terms) -> set[str]:
        accepted = [term if isinstance(term, tuple) else (term,) for term in terms]
        return set(ids_of(store.query(StatementQuery(terms=accepted))))

    assert matching(term_hash(VERB, passed)) == {a, ref}
    assert matching(term_hash(REGISTRATION, registration.upper().lower())) == {a, ref}
    actor = "account|https://vle.example|learner-0"
    assert a in matching(term_hash(AGENT, actor), term_hash(VERB, passed))
    activity = "https://tool.example/activity/2"
    # A statement's object is in its related activities, through its own term (not repeated).
    assert matching(term_hash(ACTIVITY, activity)) == matching(
        (term_hash(ACTIVITY, activity), term_hash(RELATED_ACTIVITY, activity))
    )
    assert matching(term_hash(ACTIVITY, activity)) and not matching(term_hash(RELATED_ACTIVITY, activity))


def test_pages_follow_the_cursor_without_gaps_or_repeats_while_statements_arrive(database):
    store = StatementStore(database)
    first_ids = store.store([statement(n) for n in range(25)], authority=AUTHORITY)
    seen: list[str] = []
    query = StatementQuery(limit=10)
    while True:
        page = store.query(query)
        seen += ids_of(page)
        store.store([statement(99)], authority=AUTHORITY)  # newer ones never join a running query
        if page.next_seq is None:
            break
        query.after_seq = page.next_seq
    assert seen == list(reversed(first_ids))
    ascending = store.query(StatementQuery(limit=3, ascending=True))
    assert ids_of(ascending) == first_ids[:3]


def test_since_and_until_select_by_stored_time(database):
    store = StatementStore(database)
    (early,) = store.store([statement(1)], authority=AUTHORITY)
    stored_ms = store.get(early).stored_ms
    (late,) = store.store([statement(2)], authority=AUTHORITY)
    late_ms = store.get(late).stored_ms
    assert ids_of(store.query(StatementQuery(until_ms=stored_ms))) == [early]
    if late_ms > stored_ms:
        assert ids_of(store.query(StatementQuery(since_ms=stored_ms))) == [late]


def test_after_store_sees_only_new_rows_in_the_same_transaction_and_can_veto_the_batch(database):
    store = StatementStore(database)
    calls: list[list[str]] = []

    def record(session, rows):
        # Inside the transaction the rows are already visible.
        assert session.scalar(select(func.count()).select_from(LrsStatement)) >= len(rows)
        calls.append([row.id for row in rows])

    store.after_store.append(record)
    kept = store.store([statement(1), statement(2)], authority=AUTHORITY)
    store.store([store.get(kept[0]).statement], authority=AUTHORITY)  # identical re-send: nothing new
    assert calls == [kept]

    def veto(session, rows):
        raise RuntimeError("projection refused")

    store.after_store.append(veto)
    with pytest.raises(RuntimeError):
        store.store([statement(3)], authority=AUTHORITY)
    assert count(database) == 2


def test_a_related_agent_filter_pages_through_actors_and_other_roles_once_each_in_order(database):
    store = StatementStore(database)
    ifi = "account|https://vle.example|learner-0"
    coach = {"objectType": "Agent", "account": {"homePage": "https://vle.example", "name": "learner-0"}}
    # learner-0 acts in n = 0, 3, 6, 9 and instructs in 1 (and in 3, where it also acts).
    ids = [
        store.store([statement(n, context={"instructor": coach} if n in (1, 3) else {})], authority=AUTHORITY)[0]
        for n in range(10)
    ]
    expected = [ids[n] for n in (9, 6, 3, 1, 0)]
    # A statement stored before the related terms stopped repeating the actor's has both terms.
    with database.transaction() as session:
        seq = session.scalar(select(LrsStatement.seq).where(LrsStatement.id == ids[6]))
        session.execute(insert(LrsStatementTerm).values(term=term_hash(RELATED_AGENT, ifi), seq=seq))

    related = (term_hash(AGENT, ifi), term_hash(RELATED_AGENT, ifi))
    for ascending in (False, True):
        pages, after = [], None
        while True:
            page = store.query(StatementQuery(terms=[related], limit=2, ascending=ascending, after_seq=after))
            pages.append(ids_of(page))
            if page.next_seq is None:
                break
            after = page.next_seq
        assert [i for p in pages for i in p] == (expected[::-1] if ascending else expected)
        assert all(len(p) <= 2 for p in pages)
    # With a second filter the related one is checked, not scanned.
    assert ids_of(
        store.query(StatementQuery(terms=[(term_hash(ACTIVITY, "https://tool.example/activity/1"),), related]))
    ) == [ids[6], ids[1]]
