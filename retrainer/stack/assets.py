"""Find the files in deploy/local (pom.xml, log4j2.xml, the broker config template)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
# A wheel carries them inside the package; a source checkout keeps them in deploy/local.
_CANDIDATES = (_HERE / "assets", _HERE.parents[1] / "deploy" / "local")


def asset(name: str) -> Path:
    for folder in _CANDIDATES:
        path = folder / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"stack asset {name!r} not found in {[str(c) for c in _CANDIDATES]}")
