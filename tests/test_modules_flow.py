"""The module engine over real HTTP: launch from the test platform, units, reflections, checks, tasks."""

from __future__ import annotations

import lxml.html
import pytest

from .modules_harness import GOOD, Learner, events, install_packs, uninstall_packs
from .platform_emulator import TestPlatform


@pytest.fixture
def modules(make_tool, tmp_path):
    install_packs(tmp_path / "site", GOOD)
    platform = TestPlatform().start()
    server = make_tool()
    server.register(platform)
    yield server, platform
    platform.stop()
    uninstall_packs(tmp_path / "site")


def text_of(page) -> str:
    return " ".join(lxml.html.fromstring(page.text).text_content().split())


def test_a_launch_shows_the_module_overview_and_records_launched(modules):
    server, platform = modules
    alex = Learner(server, platform)
    assert alex.page.status_code == 200, alex.page.text[:800]
    text = text_of(alex.page)
    assert "Testing the Basics" in text and "0% complete" in text
    assert "First steps" in text and "Second steps" in text
    assert "Strategy and improvement" in text and "Personal drive" in text
    [launched] = events(server, "launched")
    assert launched.activity == "test-basics" and launched.extensions == {"module": "test-basics"}
