"""Housekeeping removes only what nobody can use any more."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from lti_tool.maintenance import purge_expired
from lti_tool.models import Launch, LoginState, utcnow

from .platform_emulator import LaunchSpec, TestPlatform


def test_purge_removes_long_expired_logins_and_launches_and_keeps_live_ones(make_tool, browser):
    platform = TestPlatform().start()
    try:
        server = make_tool()
        server.register(platform)
        for sub in ("old", "live"):
            assert browser.launch(server, platform, LaunchSpec(sub=sub)).status_code == 200
        browser.platform_post(server, platform)  # a pending login that is still live
        long_ago = utcnow() - timedelta(days=3)
        with server.db.transaction() as session:
            old_launch = session.scalars(select(Launch).order_by(Launch.created_at)).first()
            session.execute(update(Launch).where(Launch.id == old_launch.id).values(expires_at=long_ago))
            first_login = session.scalars(select(LoginState).order_by(LoginState.created_at)).first()
            session.execute(
                update(LoginState).where(LoginState.state == first_login.state).values(expires_at=long_ago)
            )
        purged = purge_expired(server.db)
        assert (purged.logins, purged.launches) == (1, 1)
        with server.db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Launch)) == 1
            assert session.scalar(select(func.count()).select_from(LoginState)) == 2
    finally:
        platform.stop()
