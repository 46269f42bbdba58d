"""axe-core in the real browser: run it on a page or a frame and keep the violations that matter.

The axe-core script comes from a locally installed package (``axe-playwright-python``, in the
test extra, bundles ``axe.min.js``), so the check runs offline once the test extra is installed.
It is injected with ``evaluate`` rather than a script tag, so the tool's pages need no change to
their Content-Security-Policy. Usage::

    from .axe import assert_accessible
    assert_accessible(page.frame_locator("iframe#tool"))   # or a Page, or a Frame
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

# WCAG 2.0/2.1 A and AA rules; "best-practice" rules are left out on purpose.
WCAG_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING_IMPACTS = ("serious", "critical")


@cache
def axe_source() -> str:
    """The text of axe.min.js from the installed package."""
    return files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def _frame(scope: Any):
    """A Playwright Page or Frame to evaluate in; a FrameLocator is resolved to its frame."""
    if hasattr(scope, "owner"):  # FrameLocator: the element that holds the frame
        return scope.owner.element_handle().content_frame()
    return scope


def run_axe(scope: Any, tags: tuple[str, ...] = WCAG_AA_TAGS) -> list[dict]:
    """All axe violations of the document in ``scope`` for the WCAG ``tags``."""
    frame = _frame(scope)
    if not frame.evaluate("() => typeof window.axe === 'object'"):
        frame.evaluate(axe_source())
    options = json.dumps({"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]})
    return frame.evaluate(f"() => window.axe.run(document, {options}).then(r => r.violations)")


def blocking(violations: list[dict]) -> list[dict]:
    """The serious and critical violations."""
    return [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict]) -> str:
    """One line per violation and offending element, readable in a test failure."""
    lines = []
    for violation in violations:
        for node in violation.get("nodes", []):
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {target}")
    return "\n".join(lines)


def assert_accessible(scope: Any, tags: tuple[str, ...] = WCAG_AA_TAGS) -> list[dict]:
    """Fail on any serious or critical violation; return the minor ones for the caller to look at."""
    violations = run_axe(scope, tags)
    serious = blocking(violations)
    assert not serious, "axe-core found serious or critical violations:\n" + describe(serious)
    return violations
