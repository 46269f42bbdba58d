"""Content-pack validation: good packs load; each kind of broken pack is reported and stops no other."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from plugins.modules.packs import BUILTIN_PACKS, KnowledgeCheck, Reflection, WorkplaceTask, load_pack, load_packs
from plugins.modules.plugin import ModulesPlugin

from .browser import Browser, auto_post_form
from .modules_harness import BROKEN, GOOD, PACKS, install_packs, uninstall_packs
from .platform_emulator import INSTRUCTOR, LaunchSpec
from .registration_platform import RegisteringPlatform

CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"


def folders(*kinds: str):
    return [(p.name, p) for kind in kinds for p in sorted((PACKS / kind).iterdir()) if p.is_dir()]


def test_a_good_pack_loads_into_units_and_activities():
    pack = load_pack(PACKS / "good" / "test-basics")
    assert (pack.key, pack.title, pack.status, pack.estimated_hours) == (
        "test-basics",
        "Testing the Basics",
        "essential",
        2,
    )
    assert [u.key for u in pack.units] == ["first-steps", "second-steps"]
    first = pack.units[0]
    assert [type(a) for a in first.activities] == [Reflection, WorkplaceTask, KnowledgeCheck]
    assert first.activities[1].feeds_final_project is True
    check = first.activities[2]
    assert [q.multiple for q in check.questions] == [False, True]
    assert [o.correct for o in check.questions[1].options] == [True, False, True]
    assert "## Why this unit exists" in first.content
    assert pack.completion.knowledge_check_threshold == 0.8 and pack.completion.every_reflection_answered
    lenient = load_pack(PACKS / "good" / "test-lenient")
    assert lenient.completion.knowledge_check_threshold == 0.5 and not lenient.completion.every_reflection_answered


@pytest.mark.parametrize(
    ("name", "file", "field", "reason"),
    [
        ("bad-yaml", "module.yaml", "(file)", "not valid YAML: line 3"),
        ("missing-field", "module.yaml", "title", "Missing data for required field"),
        ("wrong-type", "module.yaml", "estimated_hours", "Not a valid number"),
        (
            "two-correct",
            "units/01-only-unit.yaml",
            "activities.2.questions.0.options",
            "exactly one correct option, found 2",
        ),
        ("unknown-behaviour", "module.yaml", "behaviours.0", "'bravery' is not a known behaviour"),
        ("unit-file-missing", "units/02-ghost-unit.yaml", "(file)", "file is missing"),
    ],
)
def test_each_kind_of_broken_pack_names_file_field_and_reason(name, file, field, reason):
    found = load_packs(folders("good", "broken"))
    assert sorted(found.packs) == ["test-basics", "test-lenient"]  # the others still load
    [failure] = [f for f in found.failures if f.name == name]
    [problem] = failure.problems
    assert (problem.file, problem.field) == (file, field)
    assert reason in problem.reason
    assert f"{file}: {field}: " in failure.reason


def test_every_problem_in_a_pack_is_listed_not_just_the_first(tmp_path):
    pack = tmp_path / "many-faults"
    (pack / "units").mkdir(parents=True)
    (pack / "module.yaml").write_text(
        "key: many-faults\ntitle: Faulty\nstatus: mandatory\nsummary: s\nestimated_hours: 1\n"
        "content_areas: [leading-with-impact]\nbehaviours: [respect]\nunits: [01-a, 2-b]\nsurprise: 1\n"
    )
    found = load_packs([("test", pack)])
    [failure] = found.failures
    fields = {p.field for p in failure.problems}
    assert {"status", "units.1", "surprise"} <= fields


def test_a_unit_needs_a_reflection_and_a_workplace_task(tmp_path):
    import shutil

    pack = tmp_path / "test-lenient"
    shutil.copytree(PACKS / "good" / "test-lenient", pack)
    unit = pack / "units" / "01-only-unit.yaml"
    text = unit.read_text()
    unit.write_text(
        text.replace(
            "  - type: reflection\n    key: optional\n",
            "  - type: workplace_task\n    key: optional\n    title: t\n    instructions: i\n",
        ).replace("    prompt: This reflection does not count towards completion.\n", "")
    )
    [failure] = load_packs([("test", pack)]).failures
    assert "a unit needs at least one reflection" in failure.reason


def test_the_four_builtin_modules_load():
    found = load_packs([(p.name, p) for p in sorted(BUILTIN_PACKS.iterdir()) if (p / "module.yaml").exists()])
    assert [f.reason for f in found.failures] == []
    assert {p.key: p.status for p in found} == {
        "succeeding-in-senior-leadership": "essential",
        "closing-the-gap": "essential",
        "improving-the-quality-of-teaching": "elective",
        "leading-change-for-improvement": "elective",
    }
    for pack in found:
        assert len(pack.units) >= 5, pack.key
        questions = sum(len(c.questions) for u in pack.units for c in u.of_type(KnowledgeCheck))
        assert questions >= 10, pack.key


@pytest.fixture
def packs_installed(tmp_path):
    install_packs(tmp_path / "site", {**GOOD, **BROKEN})
    yield
    uninstall_packs(tmp_path / "site")


def test_broken_packs_from_other_packages_are_listed_by_plugins_list(packs_installed, tmp_path):
    plugin = ModulesPlugin()
    assert {"test-basics", "test-lenient"} <= set(plugin.packs.packs)
    problems = {name: reason for name, _, reason in plugin.load_problems()}
    assert set(BROKEN) <= {name.removeprefix("modules/") for name in problems}
    env = {
        **os.environ,
        "NPQSL_ENV": "development",
        "NPQSL_INSTANCE_PATH": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    cli = os.path.join(os.path.dirname(sys.executable), "npqsl-lti")
    out = subprocess.run([cli, "plugins", "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "modules  module" in out and "test-basics" in out and "test-lenient" in out
    assert "FAILED modules/wrong-type  from tests.module_packs:broken/wrong-type (npqsl-test-packs 0.1.0)" in out
    assert "module.yaml: estimated_hours: Not a valid number." in out


def test_the_picker_offers_each_module_graded_out_of_100_and_shows_broken_packs(packs_installed, make_tool):
    platform = RegisteringPlatform().start()
    try:
        server = make_tool()
        server.register(platform)
        spec = LaunchSpec(sub="designer", roles=[INSTRUCTOR], message_type="LtiDeepLinkingRequest")
        browser = Browser()
        page = browser.launch(server, platform, spec)
        assert 'value="modules:test-basics"' in page.text and "graded out of 100" in page.text
        assert "modules/two-correct" in page.text and "exactly one correct option" in page.text
        form = auto_post_form(page.text, server.base_url)
        returned = browser.post(
            server.base_url + "/lti/deep-link",
            data={"launch": form.fields["launch"], "item": ["modules:test-basics"]},
        )
        token = auto_post_form(returned.text, server.base_url).fields["JWT"]
        [item] = jwt.decode(token, options={"verify_signature": False})[CONTENT_ITEMS]
        assert item["custom"] == {"npqsl_plugin": "modules", "npqsl_activity": "test-basics"}
        assert item["lineItem"]["scoreMaximum"] == 100 and item["lineItem"]["resourceId"] == "modules:test-basics"
    finally:
        platform.stop()
