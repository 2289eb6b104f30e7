"""The model registry as the worker reads it: a version's rows and artifacts, the versions that
have been champion (the fallbacks of a worker whose champion does not load), and reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.base import ModelFamily
from streams.store.sheets import Queryable

_VERSION = """
SELECT v.family, v.params, v.request_id, a.role, a.artifact_id, a.format, a.sha256, a.content
FROM model_versions v JOIN model_artifacts a ON a.version = v.version
WHERE v.version = $1
"""


_FALLBACKS = """
SELECT version FROM model_versions
WHERE family = $1 AND promoted_at IS NOT NULL AND rolled_back_at IS NULL
  AND status IN ('champion', 'retired') AND version <> ALL($2::text[])
ORDER BY promoted_at DESC, version DESC
"""
"""A family's versions that have been champion, newest promotion first; none rolled back from."""


_REPORT = """
SELECT r.html FROM model_versions v LEFT JOIN model_reports r ON r.version = v.version
WHERE v.version = $1
"""


@dataclass(frozen=True)
class StoredReport:
    """Whether the registry knows a version, and its HTML report if it has one."""

    known: bool
    html: str | None


@dataclass(frozen=True)
class StoredVersion:
    """A version's rows as read from the registry, not yet decoded."""

    family: ModelFamily
    version: str
    params: dict[str, Any]
    request_id: str | None
    artifacts: list[tuple[str, str, str, bytes]]
    digests: dict[str, str]


async def stored_version(conn: asyncpg.Connection, version: str) -> StoredVersion | None:
    """The rows of `version`; None when the registry has no such version with artifacts."""
    rows = await conn.fetch(_VERSION, version)
    if not rows:
        return None
    first = rows[0]
    params = first["params"]
    return StoredVersion(
        family=ModelFamily(first["family"]),
        version=version,
        params=json.loads(params) if isinstance(params, str) else dict(params),
        request_id=str(first["request_id"]) if first["request_id"] else None,
        artifacts=[
            (r["role"], r["format"], r["sha256"].strip(), bytes(r["content"])) for r in rows
        ],
        digests={r["artifact_id"]: r["sha256"].strip() for r in rows},
    )


async def champion_versions(
    conn: asyncpg.Connection, family: ModelFamily, refused: str
) -> list[str]:
    """The family's versions that have been champion, newest promotion first, except
    `refused` and any rolled back from."""
    return [row["version"] for row in await conn.fetch(_FALLBACKS, family.value, [refused])]


async def version_report(db: Queryable, version: str) -> StoredReport:
    """The HTML report of `version` (the trainer writes one with every version it trains)."""
    row = await db.fetchrow(_REPORT, version)
    if row is None:
        return StoredReport(known=False, html=None)
    return StoredReport(known=True, html=row["html"])
