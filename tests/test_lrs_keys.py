"""`npqsl-lti lrs key ...`, run as the real console script: secrets shown once, stored hashed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
from sqlalchemy import select

from lti_tool.db import Database
from xapi.lrs.models import LrsKey

CLI = Path(sys.executable).with_name("npqsl-lti")


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_keys_are_created_listed_and_revoked_and_only_a_hash_is_stored(tmp_path, make_tool):
    database_url = f"sqlite:///{tmp_path / 'lrs.sqlite3'}"
    server = make_tool(database_url)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(tmp_path / "instance"),
        "NPQSL_DATABASE_URL": database_url,
        "NPQSL_OUTBOX_INLINE_WORKER": "false",
    }
    created = run(env, "lrs", "key", "create", "--scope", "read", "--name", "Analytics team")
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.splitlines())
    key, secret = fields["key"].strip(), fields["secret"].strip()

    with Database(database_url).sessions() as session:
        row = session.execute(select(LrsKey).where(LrsKey.key == key)).scalar_one()
    assert secret not in (row.secret_hash, row.name) and len(row.secret_hash) == 64

    listed = run(env, "lrs", "key", "list").stdout
    assert key in listed and "read" in listed and "Analytics team" in listed and secret not in listed

    headers = {"X-Experience-API-Version": "2.0.0"}
    url = server.base_url + "/xapi/statements"
    assert requests.get(url, auth=(key, secret), headers=headers, timeout=10).status_code == 200

    assert run(env, "lrs", "key", "revoke", key).returncode == 0
    assert "revoked" in run(env, "lrs", "key", "list").stdout
    again = run(env, "lrs", "key", "revoke", key)
    assert again.returncode != 0 and "no active LRS key" in again.stderr

    bad_scope = run(env, "lrs", "key", "create", "--scope", "admin")
    assert bad_scope.returncode != 0 and "Traceback" not in bad_scope.stderr
