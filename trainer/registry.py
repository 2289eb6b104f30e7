"""The model registry in PostgreSQL: versions, their artifacts, and which one is champion.

Versions are never overwritten. A promotion (retire the champion, crown another) happens in one
transaction under a per-family advisory lock, so there is never a half-written champion, and only
for a version whose artifacts verify, so the registry never names a champion scorers would refuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from schemas import artifacts
from schemas.artifacts import CLASSIFIER, ISOLATION_FOREST, Artifact, ArtifactIntegrityError
from schemas.base import ModelFamily
from schemas.model_updated import ModelUpdated
from trainer.errors import RegistryError
from trainer.versions import base_version, unique_version

if TYPE_CHECKING:  # decoding models needs XGBoost and scikit-learn: imported where it happens
    from schemas.bundles import ModelBundle

PRIMARY_ROLES: tuple[str, ...] = (CLASSIFIER, ISOLATION_FOREST)
"""The artifact a model-updated event names: the model every version of its family has."""


class VersionStatus:
    """model_versions.status values."""

    CANDIDATE = "candidate"
    CHAMPION = "champion"
    REJECTED = "rejected"
    RETIRED = "retired"


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact's row without its bytes."""

    artifact_id: str
    role: str
    format: str
    sha256: str
    size_bytes: int

    @property
    def name(self) -> str:
        """The role, or `role.format` for a second encoding of the same model."""
        return artifacts.artifact_name(self.role, self.format)


@dataclass(frozen=True)
class VersionRecord:
    """One row of model_versions with its artifacts' descriptions."""

    version: str
    family: ModelFamily
    status: str
    status_reason: str | None
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    samples: int
    data_start: datetime | None
    data_cutoff: datetime
    code_version: str
    request_id: UUID | None
    created_at: datetime
    promoted_at: datetime | None
    artifacts: tuple[ArtifactInfo, ...]

    @property
    def primary_artifact(self) -> ArtifactInfo:
        """The canonical artifact of the primary role (never a second encoding)."""
        for role in PRIMARY_ROLES:
            for artifact in self.artifacts:
                if artifact.role == role and artifact.name == role:
                    return artifact
        if not self.artifacts:
            raise RegistryError(f"version {self.version} has no artifacts")
        return self.artifacts[0]

    def model_updated(self) -> ModelUpdated:
        """The event announcing this version as champion."""
        if self.promoted_at is None:
            raise RegistryError(f"version {self.version} was never promoted")
        primary = self.primary_artifact
        return ModelUpdated(
            occurred_at=self.promoted_at,
            family=self.family,
            version=self.version,
            artifact_id=primary.artifact_id,
            sha256=primary.sha256,
            metrics=dict(self.metrics),
            samples=self.samples,
            data_cutoff=self.data_cutoff,
            request_id=self.request_id,
            promoted_at=self.promoted_at,
        )


def family_lock_key(family: ModelFamily) -> int:
    """A stable 63-bit advisory lock key per family."""
    digest = hashlib.sha256(f"retrainer.registry.{family.value}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


async def lock_family(conn: asyncpg.Connection, family: ModelFamily) -> None:
    """Serialise promotions of one family until the current transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", family_lock_key(family))


# Every query below interpolates only this constant column list (hence the S608 waivers).
_VERSION_COLUMNS = """
    v.version, v.family, v.status, v.status_reason, v.metrics::text AS metrics,
    v.params::text AS params, v.samples, v.data_start, v.data_cutoff, v.code_version,
    v.request_id, v.created_at, v.promoted_at,
    coalesce((SELECT json_agg(json_build_object(
                 'artifact_id', a.artifact_id, 'role', a.role, 'format', a.format,
                 'sha256', a.sha256, 'size_bytes', a.size_bytes) ORDER BY a.role, a.format)
              FROM model_artifacts a WHERE a.version = v.version), '[]')::text AS artifacts
"""


def _record(row: asyncpg.Record) -> VersionRecord:
    return VersionRecord(
        version=row["version"],
        family=ModelFamily(row["family"]),
        status=row["status"],
        status_reason=row["status_reason"],
        metrics=json.loads(row["metrics"]),
        params=json.loads(row["params"]),
        samples=row["samples"],
        data_start=row["data_start"],
        data_cutoff=row["data_cutoff"],
        code_version=row["code_version"],
        request_id=row["request_id"],
        created_at=row["created_at"],
        promoted_at=row["promoted_at"],
        artifacts=tuple(ArtifactInfo(**a) for a in json.loads(row["artifacts"])),
    )


async def champion(conn: asyncpg.Connection, family: ModelFamily) -> VersionRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions v "  # noqa: S608
        "WHERE v.family = $1 AND v.status = 'champion'",
        family.value,
    )
    return _record(row) if row is not None else None


async def get_version(conn: asyncpg.Connection, version: str) -> VersionRecord:
    row = await conn.fetchrow(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions v WHERE v.version = $1",  # noqa: S608
        version,
    )
    if row is None:
        raise RegistryError(f"no model version {version!r} in the registry")
    return _record(row)


async def list_versions(
    conn: asyncpg.Connection, family: ModelFamily | None = None, limit: int = 50
) -> list[VersionRecord]:
    rows = await conn.fetch(
        f"SELECT {_VERSION_COLUMNS} FROM model_versions v "  # noqa: S608
        "WHERE $1::text IS NULL OR v.family = $1 ORDER BY v.created_at DESC, v.version DESC "
        "LIMIT $2",
        family.value if family else None,
        limit,
    )
    return [_record(row) for row in rows]


async def load_bundle(conn: asyncpg.Connection, record: VersionRecord) -> ModelBundle:
    """The version's models, each verified against its stored sha256 before it is decoded.

    The trainer decodes the canonical forms (scikit-learn's own objects, with everything the
    reports read from them); scorers prefer treelite's (streams.models)."""
    rows = await conn.fetch(
        "SELECT role, format, sha256, content FROM model_artifacts WHERE version = $1",
        record.version,
    )
    if not rows:
        raise RegistryError(f"version {record.version} has no artifacts")
    from schemas.bundles import ModelBundle

    return ModelBundle.from_artifacts(
        record.family,
        record.params,
        [(row["role"], row["format"], row["sha256"], row["content"]) for row in rows],
    )


async def verify_artifacts(conn: asyncpg.Connection, version: str) -> dict[str, bool]:
    """Artifact name (the role; `role.format` for a second encoding) -> whether the stored
    bytes still hash to the stored sha256."""
    rows = await conn.fetch(
        "SELECT role, format, sha256, content FROM model_artifacts WHERE version = $1", version
    )
    return {
        artifacts.artifact_name(row["role"], row["format"]): (
            artifacts.sha256_of(row["content"]) == row["sha256"].strip()
        )
        for row in rows
    }


async def _taken_versions(conn: asyncpg.Connection, base: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT version FROM model_versions WHERE version = $1 OR version LIKE $2",
        base,
        base + "\\_%",
    )
    return {row["version"] for row in rows}


async def save_version(
    conn: asyncpg.Connection,
    *,
    bundle: ModelBundle,
    stored: Sequence[Artifact],
    status: str,
    status_reason: str,
    metrics: Mapping[str, float],
    samples: int,
    data_start: datetime | None,
    data_cutoff: datetime,
    code_version: str,
    request_id: UUID | None,
    trained_at: datetime,
    promoted_at: datetime | None,
    gate_evidence: str | None = None,
) -> VersionRecord:
    """Insert a new version and its artifacts under a fresh unique id (inside a transaction).

    `gate_evidence` (what the gate decided on) is stored in the params beside the bundle's."""
    taken = await _taken_versions(conn, base_version(trained_at))
    version = unique_version(trained_at, taken)
    await conn.execute(
        """
        INSERT INTO model_versions (version, family, status, status_reason, metrics, params,
            samples, data_start, data_cutoff, code_version, request_id, promoted_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10, $11, $12)
        """,
        version,
        bundle.family.value,
        status,
        status_reason,
        json.dumps(dict(metrics)),
        json.dumps(
            bundle.params
            if gate_evidence is None
            else bundle.params | {"gate_evidence": gate_evidence}
        ),
        samples,
        data_start,
        data_cutoff,
        code_version,
        request_id,
        promoted_at,
    )
    await conn.executemany(
        """
        INSERT INTO model_artifacts
            (artifact_id, version, role, format, sha256, size_bytes, content)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        [
            (
                f"{version}/{a.name}",
                version,
                a.role,
                a.format.value,
                a.sha256,
                len(a.content),
                a.content,
            )
            for a in stored
        ],
    )
    return await get_version(conn, version)


async def save_report(conn: asyncpg.Connection, version: str, page: str) -> None:
    """Store (or replace) the HTML report of `version`."""
    await conn.execute(
        "INSERT INTO model_reports (version, html) VALUES ($1, $2) "
        "ON CONFLICT (version) DO UPDATE SET html = excluded.html, created_at = now()",
        version,
        page,
    )


async def report(conn: asyncpg.Connection, version: str) -> str:
    """The HTML report of `version`; RegistryError for an unknown version or one without."""
    row = await conn.fetchrow(
        "SELECT r.html FROM model_versions v LEFT JOIN model_reports r ON r.version = v.version "
        "WHERE v.version = $1",
        version,
    )
    if row is None:
        raise RegistryError(f"no model version {version!r} in the registry")
    if row["html"] is None:
        raise RegistryError(
            f"version {version} has no report (trained before reports were kept, or its report "
            "could not be drawn: the trainer's log says why)"
        )
    page: str = row["html"]
    return page


async def retire_champion(conn: asyncpg.Connection, family: ModelFamily, reason: str) -> str | None:
    """Retire the family's champion (inside a transaction); returns its version, if any."""
    version: str | None = await conn.fetchval(
        "UPDATE model_versions SET status = 'retired', status_reason = $2 "
        "WHERE family = $1 AND status = 'champion' RETURNING version",
        family.value,
        reason,
    )
    return version


@dataclass(frozen=True)
class ChampionChange:
    """A family's champion after a promotion or rollback, and the one it replaced.

    `replaced` is the version that was champion before (None when there was none); when the
    version was champion already, `replaced` is that same version and nothing changed.
    """

    champion: VersionRecord
    replaced: VersionRecord | None

    @property
    def changed(self) -> bool:
        return self.replaced is None or self.replaced.version != self.champion.version


async def artifact_problem(conn: asyncpg.Connection, record: VersionRecord) -> str | None:
    """Why the version's models cannot be served (bytes off their sha256, undecodable), or None."""
    verified = await verify_artifacts(conn, record.version)
    if not verified:
        return f"{record.version} has no artifacts"
    failing = sorted(name for name, ok in verified.items() if not ok)
    if len(failing) == 1:
        return f"artifact {failing[0]} of {record.version} fails its sha256 check"
    if failing:
        return f"artifacts {', '.join(failing)} of {record.version} fail their sha256 check"
    try:
        await load_bundle(conn, record)
    except ArtifactIntegrityError as exc:
        return f"{record.version} cannot be loaded: {exc}"
    return None


async def promote(
    conn: asyncpg.Connection,
    version: str,
    reason: str,
    at: datetime,
    *,
    allow_rejected: bool = False,
) -> ChampionChange:
    """Make `version` its family's champion, retiring the current one, in one transaction.

    The version's artifacts are verified first: one that scorers would refuse never becomes
    champion. Promoting the champion again changes nothing (and is not an error).
    """
    async with conn.transaction():
        record = await get_version(conn, version)
        await lock_family(conn, record.family)
        record = await get_version(conn, version)
        if record.status == VersionStatus.REJECTED and not allow_rejected:
            raise RegistryError(
                f"{version} was rejected ({record.status_reason}); promote it with --force"
            )
        problem = await artifact_problem(conn, record)
        if problem is not None:
            raise RegistryError(f"cannot promote {version}: {problem}; nothing changed")
        if record.status == VersionStatus.CHAMPION:
            return ChampionChange(record, record)
        current = await champion(conn, record.family)
        await retire_champion(conn, record.family, f"replaced by {version}")
        await conn.execute(
            "UPDATE model_versions SET status = 'champion', status_reason = $2, promoted_at = $3, "
            "rolled_back_at = NULL WHERE version = $1",
            version,
            reason if current is None else f"{reason} (replaced {current.version})",
            at,
        )
        return ChampionChange(await get_version(conn, version), current)


async def _rollback_target(
    conn: asyncpg.Connection, family: ModelFamily, current: VersionRecord, to: str | None
) -> VersionRecord:
    if to is None:
        previous: str | None = await conn.fetchval(
            "SELECT version FROM model_versions WHERE family = $1 AND status = 'retired' "
            "AND promoted_at IS NOT NULL AND rolled_back_at IS NULL AND version <> $2 "
            "ORDER BY promoted_at DESC, version DESC LIMIT 1",
            family.value,
            current.version,
        )
        if previous is None:
            raise RegistryError(
                f"{family.value}: no earlier champion to roll back to from {current.version}"
            )
        return await get_version(conn, previous)
    target = await get_version(conn, to)
    if target.version == current.version:
        raise RegistryError(f"{to} is already the {family.value} champion; nothing to roll back")
    if target.promoted_at is None or target.status != VersionStatus.RETIRED:
        raise RegistryError(
            f"{to} was never {family.value} champion ({target.status}); "
            f"`retrainer models promote {to}` makes it champion"
        )
    return target


async def rollback(
    conn: asyncpg.Connection, family: ModelFamily, at: datetime, *, to: str | None = None
) -> ChampionChange:
    """Retire the champion and bring back an earlier one: `to`, or the one champion before it.

    The earlier version's artifacts are verified before anything changes: a rollback to a
    version scorers would refuse is refused, and the champion stays.
    """
    async with conn.transaction():
        if to is not None:
            asked = await get_version(conn, to)
            if asked.family != family:
                raise RegistryError(
                    f"{to} is a version of {asked.family.value}, not {family.value}"
                )
        await lock_family(conn, family)
        current = await champion(conn, family)
        if current is None:
            raise RegistryError(f"{family.value} has no champion to roll back")
        target = await _rollback_target(conn, family, current, to)
        problem = await artifact_problem(conn, target)
        if problem is not None:
            raise RegistryError(
                f"cannot roll back {family.value} to {target.version}: {problem}; nothing "
                f"changed, {current.version} is still champion"
            )
        await retire_champion(conn, family, f"rolled back to {target.version}")
        # A version rolled back from is never a rollback target again (until promoted anew).
        await conn.execute(
            "UPDATE model_versions SET rolled_back_at = $2 WHERE version = $1", current.version, at
        )
        await conn.execute(
            "UPDATE model_versions SET status = 'champion', "
            "status_reason = $2, promoted_at = $3, rolled_back_at = NULL WHERE version = $1",
            target.version,
            f"restored by rollback from {current.version}",
            at,
        )
        return ChampionChange(await get_version(conn, target.version), current)
