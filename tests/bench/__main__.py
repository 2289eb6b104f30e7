"""Run every benchmark, print `BENCH <name> <value> <unit>` lines and write them to a JSON file."""

from __future__ import annotations

import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from retrainer.stack.settings import StackSettings
from tests.bench.harness import BenchContext, Figure

ROOT = Path(__file__).resolve().parents[2]


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return out.stdout.strip() or "unknown"


def main(argv: list[str]) -> int:
    only = set(argv)
    settings = StackSettings()
    figures: list[Figure] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="retrainer-bench-") as tmp:
        ctx = BenchContext(bootstrap=settings.bootstrap, dsn=settings.dsn, workdir=Path(tmp))
        try:
            for path in sorted(Path(__file__).parent.glob("bench_*.py")):
                module = importlib.import_module(f"tests.bench.{path.stem}")
                for name in sorted(dir(module)):
                    if not name.startswith("bench_") or (only and name not in only):
                        continue
                    began = time.monotonic()
                    try:
                        for figure in getattr(module, name)(ctx):
                            figures.append(figure)
                            print(
                                f"BENCH {figure.name} {figure.value:.6g} {figure.unit}", flush=True
                            )
                    except Exception:  # noqa: BLE001 - report and go on to the next benchmark
                        failures.append(name)
                        traceback.print_exc()
                    print(f"# {name} took {time.monotonic() - began:.1f}s", file=sys.stderr)
        finally:
            ctx.cleanup()
    out_dir = ROOT / ".bench"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = _commit()
    out = out_dir / f"bench-{stamp}-{commit}.json"
    out.write_text(
        json.dumps(
            {
                "commit": commit,
                "at": stamp,
                "machine": {"python": platform.python_version(), "cpus": _cpus()},
                "figures": [f.__dict__ for f in figures],
                "failed": failures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"bench results written to {out}")
    return 1 if failures else 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
