"""Alembic environment of Alfred.

Two callers: the ``alembic`` command line (an operator, a playbook), which connects with DATABASE_URL
from the environment, and the api (app/schema.py: at start and from /v1/admin/migrations/*), which
hands over its own connection inside the transaction that holds the migration advisory lock, so
replicas starting together do not race.

Alembic keeps no timestamps, so this environment also keeps the replica's own bookkeeping table
``alembic_version_history`` (one row per applied revision, with ``applied_at``), through alembic's
``on_version_apply`` hook: a revision's row is inserted when it is upgraded to and deleted when it is
downgraded, in the migration's own transaction. Every caller goes through here, so the command line
keeps it as the api does. ``GET /v1/admin/migrations`` reads it.
"""
from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any, Callable

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import bindparam, create_engine, pool, text

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set: alembic reads the database from the environment")
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


HISTORY_TABLE = "alembic_version_history"
HISTORY_DDL = f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
  version_num text PRIMARY KEY,
  description text,
  applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _version_history_hook() -> Callable[..., None]:
    """The ``on_version_apply`` callback: keeps alembic_version_history in step with alembic_version.

    It runs after alembic has updated alembic_version for the step, on the same connection and in
    the same transaction, so a failed migration leaves neither table changed. The table is created
    (idempotently) by the first step that needs it; read-only commands (current, history) write
    nothing. An upgrade records the revisions it applied (a stamp records the revisions it stamps);
    a downgrade (or a stamp downwards) removes every known revision that is no longer at or
    below the new heads.
    """
    ready = False

    def hook(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: Any) -> None:
        nonlocal ready
        if not ready:
            ctx.execute(text(HISTORY_DDL))
            ready = True
        revisions = step.revision_map
        if step.is_upgrade:
            for rev_id in step.up_revision_ids:
                script = revisions.get_revision(rev_id)
                ctx.execute(
                    text(
                        f"INSERT INTO {HISTORY_TABLE} (version_num, description) VALUES (:v, :d) "
                        "ON CONFLICT (version_num) DO UPDATE SET description = EXCLUDED.description, applied_at = now()"
                    ).bindparams(bindparam("v", rev_id), bindparam("d", getattr(script, "doc", None) or ""))
                )
            return
        applied = {r.revision for r in revisions.iterate_revisions(tuple(heads), "base")} if heads else set()
        known = [r.revision for r in revisions.iterate_revisions("heads", "base")]
        for rev_id in known:
            if rev_id not in applied:
                ctx.execute(text(f"DELETE FROM {HISTORY_TABLE} WHERE version_num = :v").bindparams(bindparam("v", rev_id)))

    return hook


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=None, literal_binds=True, transactional_ddl=True,
                      on_version_apply=_version_history_hook())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # The api's connection, already in a transaction that the api commits.
        context.configure(connection=connection, target_metadata=None, transactional_ddl=True,
                          on_version_apply=_version_history_hook())
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool, future=True,
                           connect_args={"application_name": "alembic"})
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=None, transactional_ddl=True,
                          on_version_apply=_version_history_hook())
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
