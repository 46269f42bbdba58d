"""Helpers for the module-engine tests: install test packs the way pip does, launch a learner."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import lxml.html
from sqlalchemy import select

from lti_tool import launch as launches
from lti_tool.models import LearningEventRow

from .browser import Browser
from .platform_emulator import LEARNER, LaunchSpec

PACKS = Path(__file__).parent / "module_packs"
GOOD = {
    "test-basics": "tests.module_packs:good/test-basics",
    "test-lenient": "tests.module_packs:good/test-lenient",
}
BROKEN = {p.name: f"tests.module_packs:broken/{p.name}" for p in sorted((PACKS / "broken").iterdir())}


def install_packs(site: Path, packs: dict[str, str], name: str = "npqsl-test-packs") -> None:
    """A dist-info declaring ``packs`` in the entry-point group npqsl_lti.module_packs."""
    dist = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in packs.items())
    (dist / "entry_points.txt").write_text(f"[npqsl_lti.module_packs]\n{lines}\n")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))


def uninstall_packs(site: Path) -> None:
    while str(site) in sys.path:
        sys.path.remove(str(site))


class Learner:
    """One person's browser (no JavaScript), launched into a module from the test platform."""

    def __init__(self, server, platform, module="test-basics", sub="cand-1", roles=None, link=None, **spec):
        self.server = server
        self.platform = platform
        self.sub = sub
        self.module = module
        self.browser = Browser()
        self.spec = LaunchSpec(
            sub=sub,
            roles=roles or [LEARNER],
            resource_link={"id": link or f"rl-{module}", "title": module},
            custom={"npqsl_plugin": "modules", "npqsl_activity": module},
            **spec,
        )
        self.page = self.browser.launch(server, platform, self.spec)
        self.token = self.launch_of(self.page)

    @staticmethod
    def launch_of(page) -> str | None:
        doc = lxml.html.fromstring(page.text)
        found = doc.xpath("//*[@data-launch]/@data-launch")
        return found[0] if found else None

    def url(self, path: str) -> str:
        return f"{self.server.base_url}/p/modules/{self.module}/{path}"

    def get(self, path: str, **params):
        return self.browser.get(self.url(path), params={"launch": self.token, **params})

    def post(self, path: str, data: dict | list, json: bool = False, **kwargs):
        headers = {"X-Requested-With": "fetch", "Accept": "application/json"} if json else {}
        if isinstance(data, dict):
            data = {"launch": self.token, **data}
        else:
            data = [("launch", self.token), *data]
        return self.browser.post(self.url(path), data=data, headers=headers, allow_redirects=not json, **kwargs)

    def visit(self, unit: str):
        page = self.get(unit)
        assert page.status_code == 200, page.text[:500]
        return page

    def reflect(self, unit: str, key: str, text: str, version: int | None = None):
        if version is None:
            version = self.version_of(unit, key)
        return self.post(f"{unit}/reflections/{key}", {"text": text, "version": str(version)}, json=True)

    def version_of(self, unit: str, key: str) -> int:
        doc = lxml.html.fromstring(self.visit(unit).text)
        form = doc.xpath(f"//section[@id='reflection-{key}']//form[@data-autosave]")[0]
        return int(form.xpath(".//input[@name='version']/@value")[0])

    def answer(self, unit: str, check: str, answers: dict[str, list[int]]):
        data = [(q, str(i)) for q, chosen in answers.items() for i in chosen]
        return self.post(f"{unit}/checks/{check}", data)

    @property
    def context(self):
        return launches.load(self.server.db, self.server.tool.launch_tokens.read(self.token))


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def events(server, kind: str | None = None, sub: str | None = None) -> list[LearningEventRow]:
    from lti_tool.models import User

    with server.db.sessions() as session:
        query = select(LearningEventRow).where(LearningEventRow.plugin_key == "modules")
        if kind:
            query = query.where(LearningEventRow.kind == kind)
        if sub:
            query = query.join(User, User.id == LearningEventRow.user_id).where(User.sub == sub)
        return list(session.scalars(query.order_by(LearningEventRow.recorded_at)))
