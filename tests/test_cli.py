"""The real ``npqsl-lti`` console script, run as a subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import func, select, update

from lti_tool.app import create_app
from lti_tool.db import Database
from lti_tool.models import ToolKey, utcnow
from lti_tool.platforms import add_platform
from lti_tool.settings import load_settings

CLI = Path(sys.executable).with_name("npqsl-lti")
ISSUER = "https://moodle.school-a.example"


@dataclass
class Cli:
    """The command with a development environment of its own (instance folder, database)."""

    env: dict[str, str]
    cwd: Path
    database_url: str

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(CLI), *args],
            env=self.env,
            cwd=self.cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"npqsl-lti {' '.join(args)}: {result.stderr}"
        return result.stdout

    def error(self, *args: str) -> str:
        """The one line a failing command prints."""
        result = self.run(*args)
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]

    def database(self) -> Database:
        return Database(self.database_url)

    def settings(self):
        return load_settings(environ=self.env)


@pytest.fixture
def cli(tmp_path, database_url):
    assert CLI.exists(), f"{CLI} is missing: run `make test` (it installs the package)"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(tmp_path / "instance"),
        "NPQSL_DATABASE_URL": database_url,
        # Apps built here would otherwise poll the outbox from a thread until the run ends.
        "NPQSL_OUTBOX_INLINE_WORKER": "false",
    }
    return Cli(env, tmp_path, database_url)


@pytest.fixture
def migrated(cli):
    cli.ok("db", "upgrade")
    return cli


def add_args(issuer: str = ISSUER, *deployments: str, **urls: str) -> list[str]:
    args = ["platform", "add", "--issuer", issuer, "--client-id", "client-a"]
    for deployment in deployments or ("1",):
        args += ["--deployment-id", deployment]
    args += ["--auth-url", urls.get("auth", f"{issuer}/mod/lti/auth.php")]
    args += ["--token-url", urls.get("token", f"{issuer}/mod/lti/token.php")]
    args += ["--keyset-url", urls.get("keyset", f"{issuer}/mod/lti/certs.php")]
    return args


def tool_keys(cli: Cli) -> list[ToolKey]:
    db = cli.database()
    try:
        with db.sessions() as session:
            return list(session.scalars(select(ToolKey).order_by(ToolKey.id)))
    finally:
        db.dispose()


def published_kids(cli: Cli) -> list[str]:
    """The kids the tool's JWKS endpoint publishes, from a freshly built app."""
    app = create_app(cli.settings())
    try:
        response = app.test_client().get("/.well-known/jwks.json")
        assert response.status_code == 200
        return [key["kid"] for key in response.get_json()["keys"]]
    finally:
        app.extensions["npqsl_lti"].db.dispose()


# -- db upgrade ------------------------------------------------------------------------------------


def test_db_upgrade_migrates_and_creates_the_first_key_once(cli):
    first = cli.ok("db", "upgrade")
    assert "database at revision" in first
    assert "generated the tool's first signing key" in first
    second = cli.ok("db", "upgrade")
    assert "database at revision" in second
    assert "signing key" not in second
    assert len(tool_keys(cli)) == 1
    db = cli.database()
    try:
        assert db.current_revision() is not None
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "command", [("platform", "list"), ("keys", "rotate"), ("keys", "list"), ("platform", "show", "1")]
)
def test_commands_on_an_unmigrated_database_say_to_run_db_upgrade(cli, command):
    line = cli.error(*command)
    assert "NPQSL_DATABASE_URL" in line and "npqsl-lti db upgrade" in line


# -- platforms -------------------------------------------------------------------------------------


def test_a_platform_is_added_listed_shown_and_removed(migrated):
    cli = migrated
    assert "no platforms registered" in cli.ok("platform", "list")

    added = cli.ok(*add_args(ISSUER, "1", "2"))
    assert added.strip() == f"platform 1: {ISSUER} client client-a deployments 1, 2"

    listed = cli.ok("platform", "list")
    assert ISSUER in listed and "approved" in listed and "deployments=1,2" in listed
    [entry] = json.loads(cli.ok("platform", "list", "--json"))
    assert entry == {
        "id": 1,
        "issuer": ISSUER,
        "client_id": "client-a",
        "name": "moodle.school-a.example",
        "auth_login_url": f"{ISSUER}/mod/lti/auth.php",
        "auth_token_url": f"{ISSUER}/mod/lti/token.php",
        "key_set_url": f"{ISSUER}/mod/lti/certs.php",
        "auth_audience": None,
        "approved": True,
        "deployment_ids": ["1", "2"],
    }

    by_id = cli.ok("platform", "show", "1")
    assert by_id == cli.ok("platform", "show", ISSUER)
    assert f"issuer: {ISSUER}" in by_id
    assert "deployments: 1, 2" in by_id
    assert "status: approved" in by_id

    assert cli.ok("platform", "remove", ISSUER, "--yes").strip() == "platform 1 removed"
    assert json.loads(cli.ok("platform", "list", "--json")) == []


def test_adding_the_same_platform_again_adds_only_its_new_deployments(migrated):
    cli = migrated
    cli.ok(*add_args(ISSUER, "1"))
    again = cli.ok(*add_args(ISSUER, "1", "3"))
    assert again.strip() == f"platform 1: {ISSUER} client client-a deployments 1, 3"
    [entry] = json.loads(cli.ok("platform", "list", "--json"))
    assert entry["deployment_ids"] == ["1", "3"]


def test_a_platform_waiting_for_approval_is_approved(migrated):
    cli = migrated
    db = cli.database()
    try:
        pending = add_platform(
            db,
            issuer=ISSUER,
            client_id="client-a",
            deployment_ids=["1"],
            auth_login_url=f"{ISSUER}/auth",
            auth_token_url=f"{ISSUER}/token",
            key_set_url=f"{ISSUER}/certs",
            approved=False,
        )
    finally:
        db.dispose()
    assert "PENDING" in cli.ok("platform", "list")
    assert "waiting for approval" in cli.ok("platform", "show", str(pending.id))
    assert cli.ok("platform", "approve", ISSUER).strip() == f"platform {pending.id} ({ISSUER}) approved"
    assert json.loads(cli.ok("platform", "list", "--json"))[0]["approved"] is True


def test_remove_without_yes_asks_and_keeps_the_platform_when_refused(migrated):
    cli = migrated
    cli.ok(*add_args())
    result = cli.run("platform", "remove", "1", input="n\n")
    assert result.returncode != 0
    assert "Remove platform 1" in result.stdout
    assert len(json.loads(cli.ok("platform", "list", "--json"))) == 1


BAD_URLS = [
    ("auth", "moodle.school-a.example/auth", "auth login URL"),
    ("token", "ftp://moodle.school-a.example/token", "token URL"),
    ("keyset", "https://", "key set URL"),
]


def test_platform_add_with_a_bad_url_is_refused_and_stores_nothing(migrated):
    for option, value, named in BAD_URLS:
        line = migrated.error(*add_args(ISSUER, "1", **{option: value}))
        assert named in line and "http(s) URL" in line and value in line
    assert json.loads(migrated.ok("platform", "list", "--json")) == []


def test_show_approve_and_remove_of_an_unknown_platform_error_clearly(migrated):
    for ref in ("42", "https://unknown.example"):
        line = migrated.error("platform", "show", ref)
        assert f"no platform {ref!r}" in line and "npqsl-lti platform list" in line
    for command in (("platform", "approve", "42"), ("platform", "remove", "42", "--yes")):
        assert "no platform '42'" in migrated.error(*command)


# -- keys ------------------------------------------------------------------------------------------


def test_keys_rotate_publishes_both_keys_and_signs_with_the_new_one(migrated):
    cli = migrated
    [old] = tool_keys(cli)
    out = cli.ok("keys", "rotate")
    new_kid = out.split()[3].rstrip(";")
    assert out.startswith(f"new signing key {new_kid}; previous keys stay in the JWKS for 7 days")
    assert new_kid != old.kid

    assert sorted(published_kids(cli)) == sorted([old.kid, new_kid])

    app = create_app(cli.settings())
    try:
        ring = app.extensions["npqsl_lti"].keyring
        token = ring.sign({"iss": "client-a", "aud": "https://platform.example/token"})
        assert jwt.get_unverified_header(token)["kid"] == new_kid
        jwk = next(k for k in ring.jwks()["keys"] if k["kid"] == new_kid)
        claims = jwt.decode(
            token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="https://platform.example/token"
        )
        assert claims["iss"] == "client-a"
    finally:
        app.extensions["npqsl_lti"].db.dispose()

    listing = cli.ok("keys", "list").splitlines()
    assert len(listing) == 2
    assert listing[0].startswith(f"{old.kid}  published")
    assert listing[1].startswith(f"{new_kid}  current")
    assert "retired -" in listing[1] and "retired -" not in listing[0]


def test_a_key_retired_past_the_grace_period_is_unpublished_then_purged_on_the_next_rotate(migrated):
    cli = migrated
    [oldest] = tool_keys(cli)
    cli.ok("keys", "rotate")
    db = cli.database()
    try:
        with db.transaction() as session:
            session.execute(
                update(ToolKey).where(ToolKey.kid == oldest.kid).values(retired_at=utcnow() - timedelta(days=8))
            )
    finally:
        db.dispose()

    assert oldest.kid not in published_kids(cli)
    assert f"{oldest.kid}  expired" in cli.ok("keys", "list")

    out = cli.ok("keys", "rotate")
    assert "removed 1 key(s) past their grace period" in out
    kids = [k.kid for k in tool_keys(cli)]
    assert oldest.kid not in kids and len(kids) == 2
    assert len(published_kids(cli)) == 2


def test_keys_list_shows_the_current_key(migrated):
    [key] = tool_keys(migrated)
    [line] = migrated.ok("keys", "list").splitlines()
    assert line.startswith(f"{key.kid}  current")
    assert "retired -" in line


def test_db_upgrade_does_not_add_a_key_after_a_rotation(migrated):
    migrated.ok("keys", "rotate")
    migrated.ok("db", "upgrade")
    db = migrated.database()
    try:
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ToolKey)) == 2
            assert (
                session.scalar(select(func.count()).select_from(ToolKey).where(ToolKey.retired_at.is_(None))) == 1
            )
    finally:
        db.dispose()
