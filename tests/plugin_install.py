"""Install test plugins the way pip does: a dist-info with entry points, on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE_SOURCE = Path(__file__).parent / "example_plugin"


def install(site: Path, entry_points: dict[str, str], name: str = "npqsl-example-plugins") -> None:
    """Write a dist-info declaring ``entry_points`` in group npqsl_lti.plugins into ``site``."""
    dist = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[npqsl_lti.plugins]\n{lines}\n")
    for path in (str(site), str(EXAMPLE_SOURCE)):
        if path not in sys.path:
            sys.path.insert(0, path)


def uninstall(site: Path) -> None:
    for path in (str(site), str(EXAMPLE_SOURCE)):
        while path in sys.path:
            sys.path.remove(path)
