"""The tamper-evident audit chain (drill/src/audit-chain.ts). Each row stores

    hash = sha256_hex(previous_hash + canonical_json(content))

where content is {action, actor_user_id, created_at (ISO-8601 UTC, ms), details, id (string),
target_id, target_type} with keys sorted at every level and serialised as JSON.stringify does, and
previous_hash is the hash of the row before it by id (GENESIS_HASH for the first row). Rows written
by the TS drill, by this service and by the TS fault injector verify alike.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping, Optional

from sqlalchemy.engine import Connection

from . import jsonjs
from .db import Database, execute, rows

GENESIS_HASH = "0" * 64
CHAIN_LOCK = 7_402_312

BreakKind = Literal["missing_hash", "content_mismatch", "previous_hash_race", "previous_hash_mismatch"]


def _created_at(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return jsonjs.iso_ms(value)
    return jsonjs.iso_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))


def canonical_content(row: Mapping[str, Any]) -> str:
    actor = row.get("actor_user_id")
    details = row.get("details")
    return jsonjs.dumps(
        {
            "action": row["action"],
            "actor_user_id": None if actor is None else str(actor),
            "created_at": _created_at(row["created_at"]),
            "details": {} if details is None else details,
            "id": str(row["id"]),
            "target_id": row.get("target_id"),
            "target_type": row.get("target_type"),
        },
        sort_keys=True,
    )


def audit_hash(previous_hash: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256((previous_hash + canonical_content(row)).encode("utf-8")).hexdigest()


def _truncate_ms(value: datetime) -> datetime:
    """Millisecond precision, so the timestamp reads back exactly as hashed."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


def append_audit(
    conn: Connection,
    *,
    actor_user_id: Optional[int | str],
    action: str,
    target_type: Optional[str] = None,
    target_id: Optional[int | str] = None,
    details: Optional[Mapping[str, Any]] = None,
    created_at: Optional[datetime] = None,
) -> dict[str, str]:
    """Appends one entry inside the caller's transaction; the lock serialises writers on the chain head."""
    execute(conn, "SELECT pg_advisory_xact_lock(:k)", {"k": CHAIN_LOCK})
    head = rows(conn, "SELECT hash FROM audit_logs ORDER BY id DESC LIMIT 1")
    previous = (head[0]["hash"] if head else None) or GENESIS_HASH
    new_id = rows(conn, "SELECT nextval(pg_get_serial_sequence('audit_logs', 'id'))::text AS id")[0]["id"]
    at = _truncate_ms(created_at or datetime.now(timezone.utc))
    content = {
        "id": new_id,
        "actor_user_id": None if actor_user_id is None else str(actor_user_id),
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "details": dict(details or {}),
        "created_at": at,
    }
    digest = audit_hash(previous, content)
    execute(
        conn,
        """INSERT INTO audit_logs (id, actor_user_id, action, target_type, target_id, details, created_at,
                                   previous_hash, hash)
           VALUES (CAST(:id AS bigint), CAST(:actor AS bigint), :action, :target_type, :target_id,
                   CAST(:details AS jsonb), :created_at, :previous, :hash)""",
        {
            "id": new_id,
            "actor": content["actor_user_id"],
            "action": action,
            "target_type": target_type,
            "target_id": content["target_id"],
            "details": jsonjs.dumps(content["details"]),
            "created_at": at,
            "previous": previous,
            "hash": digest,
        },
    )
    return {"id": new_id, "hash": digest}


@dataclass
class VerifyResult:
    valid: bool
    checked: int
    total: int
    first_break_at: Optional[str]
    break_kind: Optional[BreakKind]
    breaks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "total": self.total,
            "first_break_at": self.first_break_at,
            "break_kind": self.break_kind,
            "breaks": self.breaks,
        }


_ROW_SQL = """SELECT id::text AS id, actor_user_id::text AS actor_user_id, action, target_type, target_id, details,
       created_at, previous_hash, hash
  FROM audit_logs WHERE audit_logs.id > CAST(:last AS bigint) ORDER BY audit_logs.id LIMIT 1000"""


def verify_chain(db: Database) -> VerifyResult:
    """Walks the whole chain by id; reports the first break and how it looks."""
    last_id = "0"
    prev_stored_hash: str = GENESIS_HASH
    prev_stored_previous: Optional[str] = None
    total = breaks = 0
    first: Optional[tuple[str, BreakKind]] = None
    while True:
        batch = db.query(_ROW_SQL, {"last": last_id})
        if not batch:
            break
        for row in batch:
            total += 1
            kind: Optional[BreakKind] = None
            if row["hash"] is None or row["previous_hash"] is None:
                kind = "missing_hash"
            elif row["previous_hash"] != prev_stored_hash:
                kind = "previous_hash_race" if row["previous_hash"] == prev_stored_previous else "previous_hash_mismatch"
            elif audit_hash(row["previous_hash"], row) != row["hash"]:
                kind = "content_mismatch"
            if kind:
                breaks += 1
                if first is None:
                    first = (row["id"], kind)
            prev_stored_hash = row["hash"] or ""
            prev_stored_previous = row["previous_hash"]
            last_id = row["id"]
    return VerifyResult(
        valid=breaks == 0,
        checked=total,
        total=total,
        first_break_at=first[0] if first else None,
        break_kind=first[1] if first else None,
        breaks=breaks,
    )
