"""The schema at start: each release upgrades the database to its own alembic revision if the current
one is older, and tolerates a newer one (a later release may have migrated it; ``alembic downgrade -1``
is the operator's way back). Tables outside the versioned chain are created idempotently, as the TS
drill's STANDING_SCHEMA is, so they do not shift the revisions the release drills move between.

Everything runs in one transaction holding the migration advisory lock, so api replicas that start
together neither race each other nor the alembic command line (which takes no lock, as alembic never
does; an operator runs it by hand).

The admin endpoints /v1/admin/migrations (status, downgrade, upgrade) are the TS drill's
(drill/src/migrations.ts) on top of alembic: versions are the revision ids as integers ('0003' → 3),
and the history with its ``applied_at`` is read from ``alembic_version_history``, which
src/backend/migrations/env.py keeps on every upgrade and downgrade step.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from .db import Database
from .jsonjs import iso_ms

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "src" / "backend" / "config" / "alembic.ini"
MIGRATION_LOCK = 7_402_311
#: The running service needs at least this schema; downgrades below it are refused (as in the TS drill).
MIN_SCHEMA_VERSION = 2
#: The replica's own record of when each revision was applied (kept by env.py's on_version_apply hook).
HISTORY_TABLE = "alembic_version_history"

STANDING_SCHEMA = """
  CREATE TABLE IF NOT EXISTS billing_resets (
    id bigserial PRIMARY KEY,
    period_start date NOT NULL UNIQUE,
    ran_at timestamptz NOT NULL DEFAULT now(),
    users_reset int NOT NULL DEFAULT 0,
    trigger text NOT NULL DEFAULT 'cron'
  );
  CREATE TABLE IF NOT EXISTS billing_settings (
    id int PRIMARY KEY CHECK (id = 1),
    cron_enabled boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  INSERT INTO billing_settings (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
  INSERT INTO billing_resets (period_start, users_reset, trigger)
    SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date, 0, 'baseline'
    WHERE NOT EXISTS (SELECT 1 FROM billing_resets);
"""


def target_revision() -> str:
    """The revision this release migrates to at start: the head of the migrations its image ships.

    Each release image carries the migrations up to its own (drill/releases.tsv: 1.0.0 ships 0001-0002,
    1.1.0 0001-0003, the 1.2 releases 0001-0004), as a real release does: an older release does not
    know the revisions a newer one brought, so only the newer one's code can downgrade them."""
    return _script().get_current_head() or "base"


def version_number(revision: Optional[str]) -> int:
    """An alembic revision id as the TS drill's schema version: '0003' → 3, no revision → 0."""
    return _order(revision)


def target_version() -> int:
    """targetVersion(): the schema version this release migrates to at start."""
    return version_number(target_revision())


def revision_name(doc: Optional[str]) -> str:
    """A revision's name as the TS drill's MIGRATIONS call it: its docstring up to the first colon."""
    return (doc or "").split(":", 1)[0].strip()


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def known_revisions() -> list[dict[str, Any]]:
    """``known``: the revisions this code ships, oldest first, as ``{version, name}``."""
    scripts = sorted(_script().walk_revisions("base", "heads"), key=lambda s: _order(s.revision))
    return [{"version": version_number(s.revision), "name": revision_name(s.doc)} for s in scripts]


class MigrationRefused(Exception):
    """A downgrade the service refuses (409), as the TS drill's MigrationRefused."""


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig(str(ALEMBIC_INI))
    # The api logs in logfmt; alembic's file logging config must not replace its handlers.
    cfg.attributes["configure_logger"] = False
    return cfg


def _order(revision: Optional[str]) -> int:
    """Revisions are a linear chain 0001 … 0004: their numbers order them (None is the empty schema)."""
    if revision is None:
        return 0
    try:
        return int(revision)
    except ValueError:
        return 10**9  # an unknown (newer) revision: tolerated, never downgraded


def upgrade_to_release(db: Database) -> list[str]:
    """Upgrades to the release's revision if the database is older; returns the revisions applied.

    An error (a failed statement, a missing privilege on alembic_version) rolls the whole run back and
    is raised to the caller."""
    target = target_revision()
    cfg = alembic_config()
    script = _script()
    with db.engine.connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.exec_driver_sql(STANDING_SCHEMA)
            current = MigrationContext.configure(conn).get_current_revision()
            if _order(current) >= _order(target):
                applied: list[str] = []
            else:
                applied = [
                    rev.revision
                    for rev in reversed(list(script.iterate_revisions(target, current or "base")))
                ]
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
    return applied


def downgrade_steps(db: Database, steps: int) -> list[int]:
    """migrateDown(): reverts the newest ``steps`` revisions (newest first in the answer), one alembic
    downgrade in one transaction under the migration lock. Refuses (MigrationRefused) to go below
    MIN_SCHEMA_VERSION or to revert a revision this code does not know; nothing is reverted then."""
    cfg = alembic_config()
    script = _script()
    with db.engine.connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            current_rev = MigrationContext.configure(conn).get_current_revision()
            reverted: list[int] = []
            rev = current_rev
            for _ in range(steps):
                current = version_number(rev)
                if current - 1 < MIN_SCHEMA_VERSION:
                    raise MigrationRefused(f"schema version {current} is the minimum this service runs on")
                try:
                    known = script.get_revision(rev)
                except Exception:  # noqa: BLE001 - alembic's ResolutionError: a revision of a newer release
                    known = None
                if known is None:
                    raise MigrationRefused(f"no down migration known for version {current}")
                reverted.append(current)
                rev = known.down_revision  # a linear chain: one parent
            if reverted:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, rev or "base")
    return reverted


def _history_rows(conn: Any) -> list[dict[str, Any]]:
    exists = conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": HISTORY_TABLE}).scalar()
    if not exists:
        return []
    result = conn.execute(text(f"SELECT version_num, description, applied_at FROM {HISTORY_TABLE}"))
    return [dict(r) for r in result.mappings()]


def migration_status(db: Database) -> dict[str, Any]:
    """migrationStatus(): ``{current, history}``. ``current`` is alembic_version's revision (0 when none);
    ``history`` is alembic_version_history joined with the revisions alembic knows, as
    ``{version, name, applied_at}`` in version order, ``applied_at`` as toISOString writes it (a revision this code does not know keeps the
    name recorded when it was applied)."""
    names = {r["version"]: r["name"] for r in known_revisions()}
    with db.tx() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        recorded = _history_rows(conn)
    history: list[dict[str, Any]] = []
    for row in recorded:
        rev = row["version_num"]
        if not rev.isdigit():
            continue  # not one of the numbered revisions: no version to report it as
        version = int(rev)
        applied_at: datetime = row["applied_at"]
        history.append({"version": version, "name": names.get(version) or revision_name(row["description"]),
                        "applied_at": iso_ms(applied_at)})
    history.sort(key=lambda h: h["version"])
    return {"current": version_number(current), "history": history}
