"""Storage on both backends: migrations, the platform registry, tenant isolation, single-use logins.

Every test here that takes ``database_url`` (or ``database``) runs twice: on a SQLite file, and on
a fresh PostgreSQL schema under ``make test-postgres``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from lti_tool import login_states
from lti_tool.db import Base, Database
from lti_tool.errors import LaunchError
from lti_tool.launch import ValidatedLaunch, record
from lti_tool.login_states import LoginStates
from lti_tool.models import (
    Course,
    Deployment,
    Launch,
    Platform,
    ResourceLink,
    ToolKey,
    User,
    utcnow,
)
from lti_tool.platforms import (
    RegistryError,
    add_platform,
    approve_platform,
    find_platform,
    get_platform,
    list_platforms,
    remove_platform,
    resolve,
)

from .browser import Browser
from .platform_emulator import LEARNER, LaunchSpec, TestPlatform
from .tool_server import tool_settings

# Rows that only exist for one platform: they carry it (NOT NULL) and go when it is removed.
TENANT_TABLES = {"users", "courses", "resource_links", "launches", "deployments"}
# The registry itself, the tool's own keys, Alembic's bookkeeping: no platform to carry.
GLOBAL_TABLES = {"platforms", "tool_keys", "alembic_version"}
# The embedded LRS's statements and documents carry platform_id; these do not hold one tenant's
# rows: LRS credentials (issued by the operator), filter terms (child rows of lrs_statements,
# deleted with them), content-addressed attachments and canonical activity definitions (shared by
# every statement naming them), and the LRS's single clock row.
GLOBAL_TABLES |= {"lrs_keys", "lrs_statement_terms", "lrs_attachments", "lrs_activities", "lrs_clock"}


def register(db: Database, issuer: str = "https://moodle.school-a.example", **kwargs):
    values = {
        "client_id": "client-a",
        "deployment_ids": ["1"],
        "auth_login_url": f"{issuer}/mod/lti/auth.php",
        "auth_token_url": f"{issuer}/mod/lti/token.php",
        "key_set_url": f"{issuer}/mod/lti/certs.php",
    }
    values.update(kwargs)
    return add_platform(db, issuer=issuer, **values)


def seed_tenant(db: Database, platform_id: int) -> None:
    """A person, course, activity and launch for one platform."""
    now = utcnow()
    with db.transaction() as session:
        user = User(platform_id=platform_id, sub="student-1", name="Pat")
        course = Course(platform_id=platform_id, deployment_id="1", context_id="course-1")
        session.add_all([user, course])
        session.flush()
        link = ResourceLink(platform_id=platform_id, course_id=course.id, resource_link_id="rl-1")
        session.add(link)
        session.flush()
        session.add(
            Launch(
                id=str(uuid.uuid4()),
                platform_id=platform_id,
                user_id=user.id,
                course_id=course.id,
                resource_link_id=link.id,
                deployment_id="1",
                message_type="LtiResourceLinkRequest",
                role="candidate",
                expires_at=now + timedelta(hours=1),
            )
        )


STATES = LoginStates("storage tests' secret key", ttl_seconds=300)
TARGET = "https://tool.example/lti/launch"


def new_login(platform_id: int, now: float | None = None) -> login_states.NewLogin:
    return STATES.start(
        platform_id=platform_id,
        login_params={"iss": "https://moodle.school-a.example", "login_hint": "2", "target_link_uri": TARGET},
        storage_target=None,
        now=now,
    )


def count_rows(db: Database, model, platform_id: int) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(model.platform_id == platform_id))


# -- schema ----------------------------------------------------------------------------------------


def head_revision(db: Database) -> str:
    return ScriptDirectory.from_config(db.alembic_config()).get_current_head()


def test_migrations_apply_to_an_empty_database_and_match_the_models(database_url):
    db = Database(database_url)
    try:
        assert db.current_revision() is None
        assert not inspect(db.engine).get_table_names()
        db.upgrade()
        assert db.current_revision() == head_revision(db)
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.dispose()


def test_upgrading_twice_changes_nothing(database):
    before = sorted(inspect(database.engine).get_table_names())
    database.upgrade()
    assert sorted(inspect(database.engine).get_table_names()) == before
    assert database.current_revision() == head_revision(database)


def test_every_table_that_holds_tenant_data_carries_its_platform(database):
    inspector = inspect(database.engine)
    tables = set(inspector.get_table_names())
    assert TENANT_TABLES <= tables
    # Any table beyond the global ones, including tables added later, must say whose data it is.
    for table in tables - GLOBAL_TABLES:
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        assert "platform_id" in columns, f"{table} holds tenant data but has no platform_id"
        to_platforms = [
            fk
            for fk in inspector.get_foreign_keys(table)
            if fk["constrained_columns"] == ["platform_id"] and fk["referred_table"] == "platforms"
        ]
        assert to_platforms, f"{table}.platform_id does not reference platforms"
        if table in TENANT_TABLES:
            assert not columns["platform_id"]["nullable"], f"{table}.platform_id may be NULL"
            assert to_platforms[0]["options"].get("ondelete", "").upper() == "CASCADE", table


# -- platform registry -----------------------------------------------------------------------------


def test_a_registered_platform_can_be_listed_fetched_and_found(database):
    added = register(database, name="School A", deployment_ids=["1", "7"], auth_audience="https://aud.example")
    assert added.deployment_ids == ("1", "7")
    assert added.approved and added.name == "School A"
    assert list_platforms(database) == [added]
    assert get_platform(database, added.id) == added
    assert find_platform(database, added.issuer) == added
    assert find_platform(database, added.issuer, "client-a") == added
    assert find_platform(database, added.issuer, "other-client") is None
    assert find_platform(database, "https://unknown.example") is None
    assert get_platform(database, added.id + 100) is None
    assert resolve(database, str(added.id)) == added
    assert resolve(database, added.issuer) == added


def test_a_platform_is_named_after_its_issuer_host_by_default(database):
    assert register(database).name == "moodle.school-a.example"


def test_adding_an_existing_issuer_and_client_adds_its_new_deployments_only(database):
    first = register(database, deployment_ids=["1"])
    again = register(
        database,
        deployment_ids=["1", "2", "2"],
        key_set_url="https://moodle.school-a.example/new-certs.php",
    )
    assert again.id == first.id
    assert again.deployment_ids == ("1", "2")
    assert again.key_set_url == "https://moodle.school-a.example/new-certs.php"
    assert len(list_platforms(database)) == 1
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 2


def test_one_issuer_with_two_clients_is_found_only_by_client_id(database):
    a = register(database, client_id="client-a")
    b = register(database, client_id="client-b")
    assert a.id != b.id
    assert find_platform(database, a.issuer) is None
    assert find_platform(database, a.issuer, "client-b") == b
    with pytest.raises(RegistryError, match="no platform"):
        resolve(database, a.issuer)


def test_a_platform_waiting_for_approval_is_approved(database):
    pending = register(database, approved=False)
    assert not get_platform(database, pending.id).approved
    approve_platform(database, pending.id)
    assert get_platform(database, pending.id).approved


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": ""}, "issuer is required"),
        ({"client_id": ""}, "client_id is required"),
        ({"deployment_ids": []}, "deployment id"),
        ({"deployment_ids": ["1", ""]}, "deployment id"),
        ({"auth_login_url": "moodle.school-a.example/auth"}, "auth login URL"),
        ({"auth_token_url": "ftp://moodle.school-a.example/token"}, "token URL"),
        ({"key_set_url": "https://"}, "key set URL"),
    ],
)
def test_an_invalid_registration_is_refused_and_nothing_is_stored(database, change, message):
    values = {
        "issuer": "https://moodle.school-a.example",
        "client_id": "client-a",
        "deployment_ids": ["1"],
        "auth_login_url": "https://moodle.school-a.example/auth",
        "auth_token_url": "https://moodle.school-a.example/token",
        "key_set_url": "https://moodle.school-a.example/certs",
        **change,
    }
    with pytest.raises(RegistryError, match=message):
        add_platform(database, **values)
    assert list_platforms(database) == []


def test_removing_or_approving_an_unknown_platform_is_refused(database):
    with pytest.raises(RegistryError, match="no platform with id 42"):
        remove_platform(database, 42)
    with pytest.raises(RegistryError, match="no platform with id 42"):
        approve_platform(database, 42)
    with pytest.raises(RegistryError, match="no platform '42'"):
        resolve(database, "42")


def test_removing_a_platform_deletes_its_tenant_data_and_no_one_elses(database):
    a = register(database, "https://moodle.school-a.example", deployment_ids=["1", "2"])
    b = register(database, "https://moodle.school-b.example")
    seed_tenant(database, a.id)
    seed_tenant(database, b.id)
    models = (User, Course, ResourceLink, Launch, Deployment)
    for model in models:
        assert count_rows(database, model, a.id) >= 1, model.__tablename__

    remove_platform(database, a.id)

    assert get_platform(database, a.id) is None
    for model in models:
        assert count_rows(database, model, a.id) == 0, f"{model.__tablename__} kept rows of a removed platform"
        assert count_rows(database, model, b.id) >= 1, f"{model.__tablename__} lost another platform's rows"
    assert [p.id for p in list_platforms(database)] == [b.id]


# -- logins ----------------------------------------------------------------------------------------


def test_a_login_is_read_back_with_what_it_was_started_with():
    new = new_login(platform_id=7)
    pending = STATES.read(new.state)
    assert (pending.id, pending.nonce, pending.platform_id) == (new.id, new.nonce, 7)
    assert pending.target_link_uri == TARGET and pending.login_params["login_hint"] == "2"
    assert pending.bound_to(new.browser_secret)
    assert not pending.bound_to("someone-else")
    assert not pending.bound_to(None)
    # Nonce and browser secret are the tool's to compute, not readable from the state.
    assert new.nonce not in new.state and new.browser_secret not in new.state
    assert new_login(platform_id=7).nonce != new.nonce


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda state: state[:-2] + ("AA" if not state.endswith("AA") else "BB"), id="mac_changed"),
        pytest.param(lambda state: str(uuid.uuid4()) + state[state.index(".") :], id="another_login_id"),
        pytest.param(
            lambda state: (
                LoginStates("another secret", 300)
                .start(platform_id=7, login_params={"target_link_uri": TARGET}, storage_target=None)
                .state
            ),
            id="another_tools_key",
        ),
        pytest.param(lambda state: "no-such-state", id="not_a_state"),
        pytest.param(lambda state: state.rpartition(".")[0], id="mac_missing"),
    ],
)
def test_a_state_the_tool_did_not_sign_as_it_is_is_refused(forge):
    with pytest.raises(LaunchError) as refused:
        STATES.read(forge(new_login(platform_id=7).state))
    assert refused.value.code == "unknown_state"


def test_an_expired_login_is_refused():
    state = new_login(platform_id=7, now=time.time() - STATES.ttl_seconds - 1).state
    with pytest.raises(LaunchError) as refused:
        STATES.read(state)
    assert refused.value.code == "login_expired"


def test_a_login_with_parameters_too_long_for_a_state_is_refused():
    with pytest.raises(LaunchError) as refused:
        STATES.start(
            platform_id=7,
            login_params={"target_link_uri": TARGET, "lti_message_hint": "x" * login_states.MAX_STATE_LENGTH},
            storage_target=None,
        )
    assert refused.value.code == "bad_login_request"


def validated_launch(platform, login: login_states.PendingLogin) -> ValidatedLaunch:
    claims = {
        "iss": platform.issuer,
        "sub": "racer",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "1",
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/roles": [LEARNER],
        "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-1", "title": "Cohort"},
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
    }
    return ValidatedLaunch(platform, login, claims, json.dumps(claims))


def test_a_login_launches_exactly_once_when_eight_launches_race(database, tmp_path):
    platform = register(database)
    settings = tool_settings(tmp_path, database.url)
    launch = validated_launch(platform, STATES.read(new_login(platform.id).state))
    racers = 8
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            record(database, launch, settings)
            outcome = "launched"
        except LaunchError as exc:
            outcome = exc.code
        except Exception as exc:  # noqa: BLE001 - recorded so the assertion shows it
            outcome = f"{exc.__class__.__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["launched"] + ["replayed_launch"] * (racers - 1)
    assert login_states.was_used(database, launch.login.id)
    with database.sessions() as session:
        assert [row.id for row in session.scalars(select(Launch))] == [launch.login.id]
        assert session.scalar(select(func.count()).select_from(User)) == 1


# -- unique constraints ----------------------------------------------------------------------------


def _insert(db: Database, *rows) -> None:
    with db.transaction() as session:
        session.add_all(rows)


def test_unique_constraints_are_enforced_by_the_database(database):
    a = register(database, "https://moodle.school-a.example")
    b = register(database, "https://moodle.school-b.example")
    seed_tenant(database, a.id)
    duplicates = [
        Platform(
            issuer=a.issuer,
            client_id=a.client_id,
            auth_login_url="https://x.example/a",
            auth_token_url="https://x.example/t",
            key_set_url="https://x.example/k",
        ),
        Deployment(platform_id=a.id, deployment_id="1"),
        User(platform_id=a.id, sub="student-1"),
        Course(platform_id=a.id, deployment_id="1", context_id="course-1"),
        ResourceLink(platform_id=a.id, resource_link_id="rl-1"),
    ]
    for row in duplicates:
        with pytest.raises(IntegrityError):
            _insert(database, row)

    # The same identifiers under another platform are another tenant's, and allowed (b also has
    # deployment "1").
    _insert(
        database,
        User(platform_id=b.id, sub="student-1"),
        Course(platform_id=b.id, deployment_id="1", context_id="course-1"),
        ResourceLink(platform_id=b.id, resource_link_id="rl-1"),
    )


def test_a_tool_key_id_is_unique(database):
    _insert(database, ToolKey(kid="kid-1", private_pem="pem"))
    with pytest.raises(IntegrityError):
        _insert(database, ToolKey(kid="kid-1", private_pem="other pem"))


def test_a_row_for_a_platform_that_does_not_exist_is_refused(database):
    with pytest.raises(IntegrityError):
        _insert(database, User(platform_id=999, sub="ghost"))


# -- launches on PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_launch_on_postgresql_is_recorded_and_its_replay_refused(make_tool, postgres_schema_url):
    platform = TestPlatform(client_id="pg-client", deployment_id="pg-deploy").start()
    try:
        tool = make_tool(database_url=postgres_schema_url)
        assert tool.db.engine.dialect.name == "postgresql"
        tool.register(platform)
        browser = Browser()
        form = browser.platform_post(tool, platform, LaunchSpec(sub="pg-candidate", name="Robin Head"))
        response = browser.post(form.action, data=form.fields)
        assert response.status_code == 200, response.text
        assert "Welcome, Robin Head" in response.text

        replay = browser.post(form.action, data=form.fields)
        assert replay.status_code == 401
        assert "replayed_launch" in replay.text

        with tool.db.sessions() as session:
            user = session.scalar(select(User).where(User.sub == "pg-candidate"))
            assert user is not None
            launches = session.scalars(select(Launch).where(Launch.user_id == user.id)).all()
            assert len(launches) == 1
        assert login_states.was_used(tool.db, login_states.state_id(form.fields["state"]))
    finally:
        platform.stop()


def test_the_sqlite_file_holding_the_keys_is_private(tmp_path):
    import stat

    from lti_tool.db import Database

    database = Database(f"sqlite:///{tmp_path}/private/npqsl.sqlite3")
    database.upgrade()
    database.dispose()
    for name in ("npqsl.sqlite3", "npqsl.sqlite3-wal"):
        path = tmp_path / "private" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
