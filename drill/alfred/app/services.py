"""The api process's singletons, created once at start and reached from handlers through the app."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from fastapi import Request

from .config import Config
from .db import Database
from .governance import Governance
from .hooks import DrillFaults
from .keys import hash_key
from .metrics import Metrics
from .redis_conn import RedisConn


@dataclass
class Services:
    cfg: Config
    db: Database
    redis: RedisConn
    metrics: Metrics
    faults: DrillFaults
    gov: Governance
    admin_hash: str
    #: Set once the schema is migrated and seeded; until then the data endpoints answer 503.
    schema_ready: threading.Event = field(default_factory=threading.Event)
    #: Per-minute counters of the rate limiter while Redis is down.
    mem_limiter: dict[str, int] = field(default_factory=dict)
    mem_limiter_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Health probes run here, apart from the request threads, so a hung database cannot starve them.
    probes: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe"))

    @classmethod
    def create(cls, cfg: Config) -> "Services":
        db = Database(cfg.database_url, cfg.pool_max, "alfred-api")
        redis = RedisConn(cfg.redis_url, "alfred-api")
        return cls(
            cfg=cfg,
            db=db,
            redis=redis,
            metrics=Metrics(),
            faults=DrillFaults(db, redis),
            gov=Governance(db),
            admin_hash=hash_key(cfg.admin_key) if cfg.admin_key else "",
        )


def services(request: Request) -> Services:
    svc: Optional[Services] = getattr(request.app.state, "services", None)
    if svc is None:
        raise RuntimeError("services not started")
    return svc
