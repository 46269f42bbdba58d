"""Finding plugins: every entry point in ``npqsl_lti.plugins``, built-in or pip-installed alike.

A plugin that fails to import or declares something invalid is recorded with the reason and
left out; the tool starts without it, and the failure is shown to administrators.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from plugins.contract import Plugin, PluginError, validate_plugin

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "npqsl_lti.plugins"


@dataclass(frozen=True)
class PluginFailure:
    name: str
    source: str
    reason: str


@dataclass
class PluginRegistry:
    plugins: dict[str, Plugin] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str | None) -> Plugin | None:
        return self.plugins.get(key or "")

    def add(self, plugin: Plugin, source: str) -> None:
        """Register a plugin object (entry-point loading comes through here too)."""
        try:
            validate_plugin(plugin)
        except PluginError as exc:
            self.failures.append(PluginFailure(getattr(plugin, "key", "?") or "?", source, str(exc)))
            log.error("plugin from %s refused: %s", source, exc)
            return
        if plugin.key in self.plugins:
            reason = f"key {plugin.key!r} already taken by {self.sources[plugin.key]}"
            self.failures.append(PluginFailure(plugin.key, source, reason))
            log.error("plugin from %s refused: %s", source, reason)
            return
        self.plugins[plugin.key] = plugin
        self.sources[plugin.key] = source
        problems = getattr(plugin, "load_problems", None)
        for name, part_source, reason in problems() if callable(problems) else ():
            self.failures.append(PluginFailure(name, part_source, reason))
            log.error("%s from %s left out: %s", name, part_source, reason)

    def __iter__(self):
        return iter(sorted(self.plugins.values(), key=lambda p: (p.kind, p.title)))


def _entry_point_source(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"{ep.value} ({where})"


def load_plugins(found: Iterable[EntryPoint] | None = None) -> PluginRegistry:
    """Load every plugin entry point; failures are recorded, never raised."""
    registry = PluginRegistry()
    for ep in found if found is not None else entry_points(group=ENTRY_POINT_GROUP):
        source = _entry_point_source(ep)
        try:
            loaded = ep.load()
            plugin = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the tool
            registry.failures.append(PluginFailure(ep.name, source, f"{exc.__class__.__name__}: {exc}"))
            log.error("plugin %s failed to load: %s", ep.name, exc)
            continue
        registry.add(plugin, source)
    return registry
