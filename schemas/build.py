"""Which build of retrainer a process runs: package version, Python and git commit.

Both services export it as `retrainer_build_info`, so a dashboard or an alert can tell which code
produced a series. Nothing here raises: what cannot be found is reported as "unknown".
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from functools import cache
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

UNKNOWN = "unknown"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The directory holding the `schemas` package: a git checkout when run from source."""


@cache
def build_labels() -> dict[str, str]:
    """{version, python, commit} of the running code (read once per process)."""
    try:
        installed: Distribution | None = distribution("retrainer")
    except PackageNotFoundError:
        installed = None
    commit = _checkout()
    if commit == UNKNOWN and installed is not None:
        commit = _installed_from_vcs(installed)
    return {
        "version": installed.version if installed is not None else UNKNOWN,
        "python": platform.python_version(),
        "commit": commit,
    }


def _checkout() -> str:
    """HEAD of the git checkout the code is imported from, when it is one."""
    git = shutil.which("git")
    if git is None or not (SOURCE_ROOT / ".git").exists():
        return UNKNOWN
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command on our own source tree
            [git, "-C", str(SOURCE_ROOT), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else UNKNOWN


def _installed_from_vcs(installed: Distribution) -> str:
    """The commit pip recorded (PEP 610 direct_url.json) when installed from a git URL."""
    text = installed.read_text("direct_url.json")
    try:
        recorded = json.loads(text) if text else {}
    except ValueError:
        return UNKNOWN
    vcs = recorded.get("vcs_info") if isinstance(recorded, dict) else None
    commit = vcs.get("commit_id") if isinstance(vcs, dict) else None
    return commit if isinstance(commit, str) and commit else UNKNOWN
