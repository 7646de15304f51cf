"""Background jobs on RQ's queue ``default`` (Redis list ``rq:queue:default``, job hashes ``rq:job:<id>``).

The api enqueues ``app.jobs.apply_transfer(transfer_id)`` for each transfer it accepts; the worker role
(app/worker.py) is an RQ worker that runs it. The job function needs the database: the worker binds
its own pool here at start; a plain ``rq worker`` would get one built from DATABASE_URL on first use.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Iterable, Optional

import redis
from rq import Queue, get_current_job

from .db import Database
from .log import log

QUEUE_NAME = "default"
QUEUE_KEY = f"rq:queue:{QUEUE_NAME}"
APPLY_TRANSFER = "app.jobs.apply_transfer"
#: Results are kept as long as RQ keeps them by default; the worker stores none that matter.
RESULT_TTL_S = 500


@dataclass
class WorkerStats:
    processed: int = 0
    failed: int = 0


class _Runtime:
    """The worker process's singletons the job function uses (bound once by app.worker)."""

    def __init__(self) -> None:
        self.db: Optional[Database] = None
        self.stats = WorkerStats()
        self.lock = threading.Lock()

    def database(self) -> Database:
        with self.lock:
            if self.db is None:
                from .config import load_config

                cfg = load_config("worker")
                self.db = Database(cfg.database_url, 3, "alfred-worker")
            return self.db


runtime = _Runtime()


def bind(db: Database) -> None:
    runtime.db = db


def new_job_id() -> str:
    return f"job_{secrets.token_hex(6)}"


def queue(connection: redis.Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection)


def enqueue_transfer(connection: redis.Redis, transfer_id: int, job_id: Optional[str] = None) -> str:
    job = queue(connection).enqueue(
        APPLY_TRANSFER, transfer_id, job_id=job_id or new_job_id(), result_ttl=RESULT_TTL_S,
    )
    return job.id


def enqueue_transfers(connection: redis.Redis, transfer_ids: Iterable[int], prefix: str = "job_drill_") -> int:
    """Many jobs in one pipeline (the queue-backlog drill queues 1,500 at once)."""
    q = queue(connection)
    datas = [
        Queue.prepare_data(APPLY_TRANSFER, (tid,), job_id=f"{prefix}{tid}", result_ttl=RESULT_TTL_S)
        for tid in transfer_ids
    ]
    total = 0
    for start in range(0, len(datas), 500):
        with connection.pipeline() as pipe:
            total += len(q.enqueue_many(datas[start:start + 500], pipeline=pipe))
            pipe.execute()
    return total


def apply_transfer(transfer_id: int) -> bool:
    """Marks a pending transfer applied; a transfer no longer pending is skipped (a replayed job)."""
    db = runtime.database()
    job = get_current_job()
    found = db.query(
        """UPDATE token_transfers SET status = 'applied', applied_at = now()
            WHERE id = :id AND status = 'pending' RETURNING id""",
        {"id": transfer_id},
    )
    if not found:
        log("warn", "transfer not pending; job skipped", job_id=job.id if job else None, transfer_id=transfer_id)
    with runtime.lock:
        runtime.stats.processed += 1
    return bool(found)
