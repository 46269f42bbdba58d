"""Housekeeping removes only what nobody can use any more."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from lti_tool.maintenance import purge_expired
from lti_tool.models import Launch, utcnow

from .platform_emulator import LaunchSpec, TestPlatform


def test_purge_removes_long_expired_launches_and_keeps_live_ones(make_tool, browser):
    platform = TestPlatform().start()
    try:
        server = make_tool()
        server.register(platform)
        for sub in ("old", "live"):
            assert browser.launch(server, platform, LaunchSpec(sub=sub)).status_code == 200
        with server.db.transaction() as session:
            old_launch = session.scalars(select(Launch).order_by(Launch.created_at)).first()
            session.execute(
                update(Launch).where(Launch.id == old_launch.id).values(expires_at=utcnow() - timedelta(days=3))
            )
        assert purge_expired(server.db) == 1
        with server.db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Launch)) == 1
    finally:
        platform.stop()


def test_purge_keeps_a_launch_as_long_as_its_login_could_be_replayed(make_tool, browser):
    """The launch row is what makes its login single-use: no retention setting purges it sooner."""
    platform = TestPlatform().start()
    try:
        server = make_tool()
        server.register(platform)
        form = browser.platform_post(server, platform, LaunchSpec(sub="short-session"))
        assert browser.post(form.action, data=form.fields).status_code == 200
        with server.db.transaction() as session:
            session.execute(update(Launch).values(expires_at=utcnow() - timedelta(minutes=10)))
        assert purge_expired(server.db, retain=timedelta(0)) == 0

        replay = browser.post(form.action, data=form.fields)
        assert replay.status_code == 401 and "replayed_launch" in replay.text
    finally:
        platform.stop()
