"""Launch references: what pages carry instead of cookies. Signed, expiring, and still readable
in the format an earlier release issued."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from lti_tool.errors import LaunchError
from lti_tool.launch_tokens import SALT, LaunchTokens

SECRET = "s" * 40


def refused(tokens: LaunchTokens, token: str | None) -> str:
    with pytest.raises(LaunchError) as caught:
        tokens.read(token)
    assert caught.value.code == "launch_expired"
    return caught.value.detail


def test_a_reference_names_its_launch_and_is_url_safe():
    tokens = LaunchTokens(SECRET, 60)
    token = tokens.issue("0b6a9f5e-3c1d-4b8e-9f00-1234567890ab")
    assert tokens.read(token) == "0b6a9f5e-3c1d-4b8e-9f00-1234567890ab"
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def test_a_changed_launch_id_or_mac_or_another_key_is_refused():
    tokens = LaunchTokens(SECRET, 60)
    token = tokens.issue("launch-a")
    signed, _, mac = token.rpartition(".")
    assert "signature" in refused(tokens, token.replace("launch-a", "launch-b"))
    assert "signature" in refused(tokens, signed + "." + ("A" if mac[0] != "A" else "B") + mac[1:])
    assert "signature" in refused(tokens, signed + ".")
    assert "signature" in refused(LaunchTokens("t" * 40, 60), token)
    assert "no launch reference" in refused(tokens, "")
    assert "no launch reference" in refused(tokens, None)


def test_a_reference_expires_after_max_age_and_one_from_the_future_is_refused(monkeypatch):
    tokens = LaunchTokens(SECRET, 60)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 61)
    old = tokens.issue("launch-old")
    monkeypatch.setattr(time, "time", lambda: now + 600)
    future = tokens.issue("launch-future")
    monkeypatch.setattr(time, "time", lambda: now)
    assert "expired" in refused(tokens, old)
    assert "expired" in refused(tokens, future)


def test_references_in_the_earlier_format_are_read_until_they_expire(monkeypatch):
    tokens = LaunchTokens(SECRET, 60)
    legacy = URLSafeTimedSerializer(SECRET, salt=SALT).dumps("launch-before-upgrade")
    assert tokens.read(legacy) == "launch-before-upgrade"
    assert "signature" in refused(tokens, URLSafeTimedSerializer("t" * 40, salt=SALT).dumps("x"))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    assert "expired" in refused(tokens, legacy)
