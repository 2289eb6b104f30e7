"""The build labels both services export: package version, Python, git commit when known."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PathDistribution, version
from pathlib import Path

from schemas.build import SOURCE_ROOT, UNKNOWN, _installed_from_vcs, build_labels


def test_run_from_this_checkout_the_labels_name_its_head() -> None:
    head = subprocess.run(
        ["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert build_labels() == {
        "version": version("retrainer"),
        "python": platform.python_version(),
        "commit": head,
    }


def _installed(tmp_path: Path, direct_url: object | None) -> PathDistribution:
    info = tmp_path / "retrainer-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: retrainer\nVersion: 1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return PathDistribution(info)


def test_installed_from_git_the_commit_pip_recorded(tmp_path: Path) -> None:
    recorded = {
        "url": "https://example.invalid/retrainer.git",
        "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5},
    }
    assert _installed_from_vcs(_installed(tmp_path, recorded)) == "0123abcd" * 5


def test_installed_otherwise_the_commit_is_unknown(tmp_path: Path) -> None:
    for case, direct_url in enumerate(
        [None, {"url": "file:///src", "dir_info": {"editable": True}}, ["not", "an", "object"]]
    ):
        assert _installed_from_vcs(_installed(tmp_path / str(case), direct_url)) == UNKNOWN
