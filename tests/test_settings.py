"""Settings: defaults, NPQSL_* overrides, and one clear line for every bad value."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lti_tool.settings import SettingsError, load_settings

SECRET = "s" * 32
CLI = Path(sys.executable).with_name("npqsl-lti")


def dev_environ(instance: Path, **extra: str) -> dict[str, str]:
    return {"NPQSL_ENV": "development", "NPQSL_INSTANCE_PATH": str(instance), **extra}


def test_the_defaults_load(tmp_path):
    settings = load_settings(environ={"NPQSL_SECRET_KEY": SECRET, "NPQSL_INSTANCE_PATH": str(tmp_path)})
    assert settings.env == "production" and not settings.is_development
    assert settings.instance_path == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'npqsl-lti.sqlite3'}"
    assert settings.cache_url == "simple://"
    assert settings.public_url == ""
    assert settings.secret_key == SECRET
    assert settings.log_level == "INFO"
    assert settings.launch.leeway_seconds == 60
    assert settings.launch.login_ttl_seconds == 300
    assert settings.launch.max_id_token_bytes == 65536
    assert settings.launch.session_ttl_seconds == 28800
    assert settings.jwks.cache_ttl_seconds == 3600
    assert settings.jwks.refetch_min_interval_seconds == 30
    assert settings.http_timeout == 10
    assert settings.key_grace_days == 7
    assert settings.keep_names is True and settings.keep_emails is False
    assert not any(tmp_path.iterdir()), "a production start must not write a secret"


def test_environment_variables_override_top_level_and_nested_settings(tmp_path):
    settings = load_settings(
        environ=dev_environ(
            tmp_path,
            NPQSL_DATABASE_URL="postgresql+psycopg2://lti@db.internal:5432/npqsl",
            NPQSL_CACHE_URL="redis://cache.internal:6379/0",
            NPQSL_PUBLIC_URL="https://tool.example.org/",
            NPQSL_SECRET_KEY=SECRET,
            NPQSL_LOG_LEVEL="DEBUG",
            NPQSL_LAUNCH_LEEWAY_SECONDS="5",
            NPQSL_LAUNCH_LOGIN_TTL_SECONDS="120",
            NPQSL_JWKS_CACHE_TTL_SECONDS="0",
            NPQSL_HTTP_TIMEOUT_SECONDS="2.5",
            NPQSL_KEYS_ROTATION_GRACE_DAYS="14",
            NPQSL_PRIVACY_KEEP_EMAILS="true",
            NPQSL_PRIVACY_KEEP_NAMES="false",
        )
    )
    assert settings.is_development
    assert settings.database_url == "postgresql+psycopg2://lti@db.internal:5432/npqsl"
    assert settings.cache_url == "redis://cache.internal:6379/0"
    assert settings.public_url == "https://tool.example.org"
    assert settings.secret_key == SECRET
    assert settings.log_level == "DEBUG"
    assert settings.launch.leeway_seconds == 5
    assert settings.launch.login_ttl_seconds == 120
    assert settings.launch.max_id_token_bytes == 65536
    assert settings.jwks.cache_ttl_seconds == 0
    assert settings.http_timeout == 2.5
    assert settings.key_grace_days == 14
    assert settings.keep_emails is True and settings.keep_names is False


def test_a_site_file_overrides_the_defaults_and_the_environment_overrides_the_site_file(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('public_url = "https://site.example"\n[launch]\nleeway_seconds = 10\nlogin_ttl_seconds = 90\n')
    settings = load_settings(
        environ=dev_environ(tmp_path, NPQSL_CONFIG=str(site), NPQSL_LAUNCH_LEEWAY_SECONDS="20"),
    )
    assert settings.public_url == "https://site.example"
    assert settings.launch.login_ttl_seconds == 90
    assert settings.launch.leeway_seconds == 20
    assert settings.launch.session_ttl_seconds == 28800


def test_production_accepts_an_https_public_url_and_a_real_secret(tmp_path):
    settings = load_settings(
        environ={
            "NPQSL_INSTANCE_PATH": str(tmp_path),
            "NPQSL_SECRET_KEY": SECRET,
            "NPQSL_PUBLIC_URL": "https://lti.school.example",
        }
    )
    assert settings.env == "production" and settings.public_url == "https://lti.school.example"


INVALID = [
    ("bad env", {"NPQSL_ENV": "staging"}, "NPQSL_ENV", "development, production"),
    ("bad int", {"NPQSL_LAUNCH_LEEWAY_SECONDS": "soon"}, "NPQSL_LAUNCH_LEEWAY_SECONDS", "integer"),
    ("out of range", {"NPQSL_LAUNCH_LEEWAY_SECONDS": "9999"}, "NPQSL_LAUNCH_LEEWAY_SECONDS", "600"),
    ("negative", {"NPQSL_KEYS_ROTATION_GRACE_DAYS": "-1"}, "NPQSL_KEYS_ROTATION_GRACE_DAYS", "0"),
    ("bad number", {"NPQSL_HTTP_TIMEOUT_SECONDS": "fast"}, "NPQSL_HTTP_TIMEOUT_SECONDS", "number"),
    ("bad boolean", {"NPQSL_PRIVACY_KEEP_EMAILS": "perhaps"}, "NPQSL_PRIVACY_KEEP_EMAILS", "boolean"),
    ("bad log level", {"NPQSL_LOG_LEVEL": "LOUD"}, "NPQSL_LOG_LEVEL", "DEBUG"),
    ("bad DB URL", {"NPQSL_DATABASE_URL": "not a url"}, "NPQSL_DATABASE_URL", "not a database URL"),
    (
        "unsupported backend",
        {"NPQSL_DATABASE_URL": "mysql+pymysql://lti@db/npqsl"},
        "NPQSL_DATABASE_URL",
        "only sqlite and postgresql",
    ),
    ("bad cache URL", {"NPQSL_CACHE_URL": "memcached://cache:11211"}, "NPQSL_CACHE_URL", "redis://"),
    ("cache URL without host", {"NPQSL_CACHE_URL": "redis://"}, "NPQSL_CACHE_URL", "redis://"),
    ("public URL without scheme", {"NPQSL_PUBLIC_URL": "tool.example"}, "NPQSL_PUBLIC_URL", "https://"),
    ("short secret", {"NPQSL_SECRET_KEY": "too-short"}, "NPQSL_SECRET_KEY", "at least 32 characters"),
    ("production without secret", {"NPQSL_ENV": "production"}, "NPQSL_SECRET_KEY", "production"),
    (
        "production with http public URL",
        {"NPQSL_ENV": "production", "NPQSL_SECRET_KEY": SECRET, "NPQSL_PUBLIC_URL": "http://tool.example"},
        "NPQSL_PUBLIC_URL",
        "https://",
    ),
    ("unknown NPQSL_CONFIG file", {"NPQSL_CONFIG": "/nonexistent/npqsl.toml"}, "NPQSL_CONFIG", "no such file"),
]


@pytest.mark.parametrize(("case", "env", "setting", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_each_invalid_setting_is_reported_in_one_line_naming_it(tmp_path, case, env, setting, words):
    with pytest.raises(SettingsError) as error:
        load_settings(environ=dev_environ(tmp_path, **env))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(setting), message
    assert words in message, message


@pytest.mark.parametrize(
    ("case", "toml", "setting", "words"),
    [
        ("invalid TOML", "[launch\nleeway_seconds = 5\n", "NPQSL_CONFIG", "not valid TOML"),
        ("unknown key", "[launch]\nleway_seconds = 5\n", "NPQSL_LAUNCH_LEWAY_SECONDS", "not a known setting"),
        ("unknown top-level key", 'colour = "red"\n', "NPQSL_COLOUR", "not a known setting"),
        ("wrong type", '[launch]\nleeway_seconds = "a minute"\n', "NPQSL_LAUNCH_LEEWAY_SECONDS", "integer"),
        ("section that is not a table", "launch = 5\n", "NPQSL_LAUNCH:", "Invalid"),
    ],
)
def test_each_invalid_site_file_is_reported_in_one_line_naming_the_setting(tmp_path, case, toml, setting, words):
    site = tmp_path / "site.toml"
    site.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings(environ=dev_environ(tmp_path, NPQSL_CONFIG=str(site)))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(setting), message
    assert words in message, message


def test_a_site_file_path_that_is_a_directory_is_reported_not_raised(tmp_path):
    with pytest.raises(SettingsError) as error:
        load_settings(environ=dev_environ(tmp_path, NPQSL_CONFIG=str(tmp_path)))
    assert str(error.value).startswith("NPQSL_CONFIG: cannot read")


def test_the_development_secret_is_generated_once_private_and_reused(tmp_path):
    first = load_settings(environ=dev_environ(tmp_path))
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    assert path.read_text().strip() == first.secret_key
    again = load_settings(environ=dev_environ(tmp_path))
    assert again.secret_key == first.secret_key
    elsewhere = load_settings(environ=dev_environ(tmp_path / "other"))
    assert elsewhere.secret_key != first.secret_key


def test_a_given_secret_is_used_and_none_is_written(tmp_path):
    settings = load_settings(environ=dev_environ(tmp_path, NPQSL_SECRET_KEY=SECRET))
    assert settings.secret_key == SECRET
    assert not (tmp_path / "secret_key").exists()


# -- the real command ------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env}
    return subprocess.run(
        [str(CLI), *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"NPQSL_LAUNCH_LEEWAY_SECONDS": "soon"}, "NPQSL_LAUNCH_LEEWAY_SECONDS"),
        ({"NPQSL_DATABASE_URL": "oracle://db/npqsl"}, "NPQSL_DATABASE_URL"),
        ({"NPQSL_ENV": "production"}, "NPQSL_SECRET_KEY"),
    ],
)
def test_serve_with_a_bad_setting_exits_with_one_line_naming_it(tmp_path, env, setting):
    result = run_cli("serve", env={**dev_environ(tmp_path), **env}, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_unmigrated_database_and_says_how_to_migrate(tmp_path):
    result = run_cli("serve", "--port", "0", env=dev_environ(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "NPQSL_DATABASE_URL" in lines[0]
    assert "npqsl-lti db upgrade" in lines[0]
