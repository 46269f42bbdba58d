"""Settings: ``config/default.toml``, an optional site file, then ``NPQSL_*`` environment variables.

Everything an operator can change is read and validated here, once, at start-up. A bad value
stops the process with one line naming the setting and what is wrong with it, rather than a
traceback minutes later in the middle of a launch.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates

from .paths import DEFAULT_CONFIG_FILE

ENV_PREFIX = "NPQSL_"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the setting."""


def _url_with_scheme(*schemes: str):
    def check(value: str) -> None:
        if not value:
            return
        parts = urlsplit(value)
        needs_host = parts.scheme not in ("simple", "null")
        if parts.scheme not in schemes or (needs_host and not parts.netloc):
            raise ValidationError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")

    return check


class _LaunchSchema(Schema):
    leeway_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=600))
    login_ttl_seconds = fields.Integer(required=True, validate=validate.Range(min=30, max=3600))
    max_id_token_bytes = fields.Integer(required=True, validate=validate.Range(min=1024, max=1_048_576))
    session_ttl_seconds = fields.Integer(required=True, validate=validate.Range(min=60, max=7 * 86400))


class _JwksSchema(Schema):
    cache_ttl_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=7 * 86400))
    refetch_min_interval_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=3600))


class _HttpSchema(Schema):
    timeout_seconds = fields.Float(required=True, validate=validate.Range(min=0.1, max=120))


class _KeysSchema(Schema):
    rotation_grace_days = fields.Integer(required=True, validate=validate.Range(min=0, max=365))


class _RegistrationSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(["invite", "open"]))
    auto_approve = fields.Boolean(required=True)
    invite_ttl_days = fields.Integer(required=True, validate=validate.Range(min=1, max=365))
    tool_name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    tool_description = fields.String(required=True, validate=validate.Length(max=1024))


class _PrivacySchema(Schema):
    keep_names = fields.Boolean(required=True)
    keep_emails = fields.Boolean(required=True)


class _NrpsSchema(Schema):
    roster_ttl_seconds = fields.Integer(required=True, validate=validate.Range(min=0, max=86400))
    max_pages = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))
    max_members = fields.Integer(required=True, validate=validate.Range(min=1, max=1_000_000))


class _InlineWorkerField(fields.Boolean):
    """A boolean, or "auto": on in development, off in production."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        return super()._deserialize(value, attr, data, **kwargs)


class _OutboxSchema(Schema):
    inline_worker = _InlineWorkerField(required=True, allow_none=True)
    poll_interval_seconds = fields.Float(required=True, validate=validate.Range(min=0.01, max=3600))
    batch_size = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    lease_seconds = fields.Float(required=True, validate=validate.Range(min=1, max=86400))
    backoff_base_seconds = fields.Float(required=True, validate=validate.Range(min=0.001, max=3600))
    backoff_max_seconds = fields.Float(required=True, validate=validate.Range(min=0.001, max=7 * 86400))
    max_attempts = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))


class _ForwardLrsSchema(Schema):
    name = fields.String(
        required=True, validate=validate.Regexp(r"^[a-z][a-z0-9-]{0,15}$", error="must be 1-16 of a-z, 0-9, -")
    )
    url = fields.String(required=True, validate=_url_with_scheme("http", "https"))
    username = fields.String(load_default="")
    password = fields.String(load_default="")
    version = fields.String(load_default="1.0.3", validate=validate.OneOf(["1.0.3", "2.0.0"]))
    batch_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class _ForwardListField(fields.List):
    """A list of external LRSs; from the environment, a JSON array (NPQSL_XAPI_FORWARD)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            try:
                value = json.loads(value or "[]")
            except ValueError as exc:
                raise ValidationError("must be a JSON array of {name, url, username, password, version}") from exc
        return super()._deserialize(value, attr, data, **kwargs)


class _XapiSchema(Schema):
    lrs_enabled = fields.Boolean(required=True)
    actor_names = fields.Boolean(required=True)
    actor_emails = fields.Boolean(required=True)
    language = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"))
    forward = _ForwardListField(fields.Nested(_ForwardLrsSchema), required=True)


class _SettingsSchema(Schema):
    env = fields.String(required=True, validate=validate.OneOf(["development", "production"]))
    instance_path = fields.String(required=True)
    database_url = fields.String(required=True)
    cache_url = fields.String(required=True, validate=_url_with_scheme("simple", "null", "redis", "rediss"))
    public_url = fields.String(required=True, validate=_url_with_scheme("http", "https"))
    secret_key = fields.String(required=True)
    log_level = fields.String(required=True, validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))
    launch = fields.Nested(_LaunchSchema, required=True)
    jwks = fields.Nested(_JwksSchema, required=True)
    http = fields.Nested(_HttpSchema, required=True)
    keys = fields.Nested(_KeysSchema, required=True)
    privacy = fields.Nested(_PrivacySchema, required=True)
    outbox = fields.Nested(_OutboxSchema, required=True)
    nrps = fields.Nested(_NrpsSchema, required=True)
    registration = fields.Nested(_RegistrationSchema, required=True)
    xapi = fields.Nested(_XapiSchema, required=True)

    @validates("database_url")
    def _check_database_url(self, value: str, **_: Any) -> None:
        if not value:
            return
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValidationError("is not a database URL (e.g. postgresql+psycopg2://user@host/db)") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValidationError(f"uses {url.get_backend_name()!r}; only sqlite and postgresql are supported")

    @validates("secret_key")
    def _check_secret_key(self, value: str, **_: Any) -> None:
        if value and len(value) < 32:
            raise ValidationError(
                "must be at least 32 characters (try: python -c 'import secrets; print(secrets.token_hex(32))')"
            )


@dataclass(frozen=True)
class LaunchSettings:
    leeway_seconds: int
    login_ttl_seconds: int
    max_id_token_bytes: int
    session_ttl_seconds: int


@dataclass(frozen=True)
class JwksSettings:
    cache_ttl_seconds: int
    refetch_min_interval_seconds: int


@dataclass(frozen=True)
class RegistrationSettings:
    mode: str
    auto_approve: bool
    invite_ttl_days: int
    tool_name: str
    tool_description: str


@dataclass(frozen=True)
class NrpsSettings:
    roster_ttl_seconds: int
    max_pages: int
    max_members: int


@dataclass(frozen=True)
class OutboxSettings:
    inline_worker: bool
    poll_interval_seconds: float
    batch_size: int
    lease_seconds: float
    backoff_base_seconds: float
    backoff_max_seconds: float
    max_attempts: int


@dataclass(frozen=True)
class ForwardLrs:
    """An external LRS that receives a copy of every statement."""

    name: str
    url: str
    username: str
    password: str
    version: str
    batch_size: int


@dataclass(frozen=True)
class XapiSettings:
    lrs_enabled: bool
    actor_names: bool
    actor_emails: bool
    language: str
    forward: tuple[ForwardLrs, ...]


@dataclass(frozen=True)
class Settings:
    """The validated settings of one running tool."""

    env: str
    instance_path: Path
    database_url: str
    cache_url: str
    public_url: str
    secret_key: str
    log_level: str
    launch: LaunchSettings
    jwks: JwksSettings
    http_timeout: float
    key_grace_days: int
    keep_names: bool
    keep_emails: bool
    registration: RegistrationSettings
    outbox: OutboxSettings
    nrps: NrpsSettings
    xapi: XapiSettings

    @property
    def is_development(self) -> bool:
        return self.env == "development"


def _deep_merge(base: dict, override: Mapping) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path, setting: str) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SettingsError(f"{setting}: no such file {path}") from exc
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path} ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{setting}: {path} is not valid TOML ({exc})") from exc


def _env_overrides(defaults: Mapping, environ: Mapping[str, str]) -> dict:
    """Map NPQSL_KEY and NPQSL_SECTION_KEY onto the keys the defaults declare."""
    overrides: dict = {}
    for key, value in defaults.items():
        if isinstance(value, Mapping):
            for sub in value:
                name = f"{ENV_PREFIX}{key}_{sub}".upper()
                if name in environ:
                    overrides.setdefault(key, {})[sub] = environ[name]
        else:
            name = f"{ENV_PREFIX}{key}".upper()
            if name in environ:
                overrides[key] = environ[name]
    return overrides


def _setting_name(path: tuple) -> str:
    return ENV_PREFIX + "_".join(str(p) for p in path).upper()


def _first_error(messages: Mapping, path: tuple = ()) -> tuple[tuple, str]:
    for key, value in messages.items():
        # marshmallow files errors about a whole section (not a table, say) under "_schema".
        here = path if key == "_schema" else path + (key,)
        if isinstance(value, Mapping):
            return _first_error(value, here)
        text = value[0] if isinstance(value, list) else str(value)
        if text == "Unknown field.":
            text = "is not a known setting"
        return here, text
    return path, "is invalid"


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read, merge and validate the settings; raise SettingsError naming the first bad one."""
    environ = os.environ if environ is None else environ
    raw = _read_toml(DEFAULT_CONFIG_FILE, "built-in defaults")
    site_file = environ.get(f"{ENV_PREFIX}CONFIG")
    if site_file:
        raw = _deep_merge(raw, _read_toml(Path(site_file), f"{ENV_PREFIX}CONFIG"))
    raw = _deep_merge(raw, _env_overrides(raw, environ))
    if overrides:
        raw = _deep_merge(raw, overrides)

    try:
        data = _SettingsSchema().load(raw)
    except ValidationError as exc:
        path, text = _first_error(exc.messages)
        shown = _setting_name(path)
        raise SettingsError(f"{shown}: {text}") from None

    instance_path = Path(data["instance_path"] or "instance").resolve()
    public_url = data["public_url"].rstrip("/")
    secret_key = data["secret_key"]
    if data["env"] == "production":
        if not secret_key:
            raise SettingsError(f"{ENV_PREFIX}SECRET_KEY must be set in production (32+ random characters)")
        if public_url and not public_url.startswith("https://"):
            raise SettingsError(f"{ENV_PREFIX}PUBLIC_URL must use https:// in production (platforms require it)")
    if not secret_key:
        secret_key = _instance_secret(instance_path)

    database_url = data["database_url"] or f"sqlite:///{instance_path / 'npqsl-lti.sqlite3'}"
    return Settings(
        env=data["env"],
        instance_path=instance_path,
        database_url=database_url,
        cache_url=data["cache_url"],
        public_url=public_url,
        secret_key=secret_key,
        log_level=data["log_level"],
        launch=LaunchSettings(**data["launch"]),
        jwks=JwksSettings(**data["jwks"]),
        http_timeout=data["http"]["timeout_seconds"],
        key_grace_days=data["keys"]["rotation_grace_days"],
        keep_names=data["privacy"]["keep_names"],
        keep_emails=data["privacy"]["keep_emails"],
        registration=RegistrationSettings(**data["registration"]),
        outbox=_outbox_settings(data["outbox"], data["env"], data["http"]["timeout_seconds"]),
        nrps=NrpsSettings(**data["nrps"]),
        xapi=_xapi_settings(data["xapi"]),
    )


def _outbox_settings(data: dict, env: str, http_timeout: float) -> OutboxSettings:
    if data["backoff_max_seconds"] < data["backoff_base_seconds"]:
        raise SettingsError(f"{ENV_PREFIX}OUTBOX_BACKOFF_MAX_SECONDS: must not be below backoff_base_seconds")
    # A worker renews its lease between deliveries; one delivery (one HTTP call) must fit in half.
    if data["lease_seconds"] < 2 * http_timeout:
        raise SettingsError(
            f"{ENV_PREFIX}OUTBOX_LEASE_SECONDS: must be at least twice NPQSL_HTTP_TIMEOUT_SECONDS ({http_timeout:g})"
        )
    inline = data["inline_worker"]
    return OutboxSettings(**{**data, "inline_worker": env == "development" if inline is None else inline})


def _xapi_settings(data: dict) -> XapiSettings:
    forward = tuple(ForwardLrs(**item) for item in data["forward"])
    names = [lrs.name for lrs in forward]
    if len(set(names)) != len(names):
        raise SettingsError(f"{ENV_PREFIX}XAPI_FORWARD: two external LRSs share a name")
    return XapiSettings(**{**data, "forward": forward})


def _instance_secret(instance_path: Path) -> str:
    """A development secret generated once and kept (mode 0600) in the instance folder."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()
