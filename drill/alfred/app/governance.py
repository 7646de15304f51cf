"""Governance settings and IP blocks, stored in PostgreSQL (Redis keeps no data across restarts) and
mirrored in memory so traffic decisions keep working while the database is away
(drill/src/governance.ts)."""
from __future__ import annotations

import threading
from typing import Any, Mapping, Optional

from .db import Database
from .http import is_number
from .metrics import PROVIDERS
from .seed import DEFAULT_SETTINGS


def normalise_settings(raw: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    s = {**DEFAULT_SETTINGS, **(raw or {})}
    threshold = s.get("cache_similarity_threshold")
    providers = s.get("disabled_providers")
    return {
        "cache_only_mode": s.get("cache_only_mode") is True,
        "maintenance_mode": s.get("maintenance_mode") is True,
        "cache_similarity_threshold": threshold if is_number(threshold) else DEFAULT_SETTINGS["cache_similarity_threshold"],
        "disabled_providers": [p for p in providers if p in PROVIDERS] if isinstance(providers, list) else [],
        "reason": s["reason"] if isinstance(s.get("reason"), str) else None,
    }


class Governance:
    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()
        self.settings: dict[str, Any] = normalise_settings(None)
        self.blocked: dict[str, Optional[str]] = {}

    def refresh(self) -> None:
        found = self._db.query("SELECT settings FROM governance_settings WHERE id = 1")
        blocks = self._db.query("SELECT ip, reason FROM ip_blocks")
        with self._lock:
            self.settings = normalise_settings(found[0]["settings"] if found else None)
            self.blocked = {b["ip"]: b["reason"] for b in blocks}

    def block(self, ip: str, reason: Optional[str]) -> None:
        with self._lock:
            self.blocked = {**self.blocked, ip: reason}

    def unblock(self, ip: str) -> None:
        with self._lock:
            self.blocked = {k: v for k, v in self.blocked.items() if k != ip}


def bump_counter(db: Database, name: str, by: int = 1) -> None:
    """Side-effect counters the drill tests read to assert an action happened exactly once."""
    db.query(
        """INSERT INTO drill_counters (name, value) VALUES (:n, :by)
           ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + :by""",
        {"n": name, "by": by},
    )


BUMP_SQL = """INSERT INTO drill_counters (name, value) VALUES (:n, 1)
              ON CONFLICT (name) DO UPDATE SET value = drill_counters.value + 1"""
