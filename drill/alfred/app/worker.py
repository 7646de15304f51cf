"""Role ``worker``: an RQ worker on the queue ``default`` that applies token transfers, plus
``GET /health`` on WORKER_PORT (drill/src/worker.ts).

It runs jobs in its own process (rq's SimpleWorker: no fork per job, one database pool), and keeps the
TS worker's behaviour where RQ's own differs:

* the drill's pause (Redis key ``alfred:drill:worker-paused``): a paused worker stops taking jobs and a
  job it popped meanwhile goes back to the head of the queue. ``{"before": <ms>}`` holds only workers
  started before that instant, so a replica started later consumes (the queue-backlog drill);
  ``{"slow_ms": n}`` delays each job instead;
* a job that fails is put back at the head of the queue after a second instead of being dropped into
  the failed registry for good (the TS worker requeues every failed job);
* a Redis outage does not end the process: the worker waits for Redis and starts a new RQ worker.

Run:  python3 -m app.worker   (or python3 -m app worker)
"""
from __future__ import annotations

import http.server
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry

from . import jobs
from .config import Config, load_config
from .db import Database
from .governance import bump_counter
from .hooks import WORKER_PAUSED_KEY
from .log import UNSET, err_text, log, set_log_base

POLL_S = 0.5
#: RQ blocks in BLPOP for worker_ttl - 15 s; a short TTL keeps the heartbeat and stop checks frequent.
WORKER_TTL_S = 30
#: When this process started: a pause "before" a later instant does not hold it.
PROCESS_STARTED_MS = int(time.time() * 1000)


@dataclass(frozen=True)
class PauseState:
    paused: bool
    slow_ms: float = 0


def read_pause(client: redis.Redis) -> PauseState:
    raw = client.get(WORKER_PAUSED_KEY)
    if not raw:
        return PauseState(False)
    try:
        value = json.loads(raw)
    except ValueError:
        return PauseState(True)
    if not isinstance(value, dict):
        return PauseState(True)
    slow = value.get("slow_ms")
    if isinstance(slow, (int, float)) and not isinstance(slow, bool):
        return PauseState(False, float(slow))
    before = value.get("before")
    held = not isinstance(before, (int, float)) or isinstance(before, bool) or PROCESS_STARTED_MS < before
    return PauseState(held)


class _LogfmtHandler(logging.Handler):
    """RQ's own warnings and errors as logfmt lines, so the worker's log stays one format."""

    def emit(self, record: logging.LogRecord) -> None:
        level = {"WARNING": "warn", "CRITICAL": "error"}.get(record.levelname, record.levelname.lower())
        message = record.getMessage().split("\n", 1)[0]
        args = record.args if isinstance(record.args, tuple) else ()
        cause = next((a for a in args if isinstance(a, BaseException)), None)
        log(level, message[:500], logger=record.name, err=err_text(cause) if cause is not None else UNSET)


class _DropJobTraceback(logging.Filter):
    """RQ logs a failed job with its traceback; the worker writes its own one-line "job failed" instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "exception raised while executing" not in record.getMessage()


class AlfredWorker(SimpleWorker):
    """An RQ worker that honours the drill's pause and never drops a failed transfer job."""

    #: Reconnect to a returning Redis within 2 s, as the TS worker does (RQ's default backs off to 60 s).
    max_connection_wait_time = 2.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.push_exc_handler(self._requeue_failed)
        #: The signal that asked this process to stop (RQ's warm shutdown does not always record it).
        self.stop_signal: Optional[str] = None

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stop_signal = signal.Signals(signum).name
        super().request_stop(signum, frame)

    def subscribe(self) -> None:
        """RQ's command channel (stop-job, shutdown), kept alive across a Redis outage: the listener
        thread waits and resubscribes instead of dying with a traceback."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})

        def on_error(exc: BaseException, pubsub: Any, thread: Any) -> None:
            time.sleep(1)

        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=0.2, daemon=True, exception_handler=on_error)

    def pause_state(self) -> PauseState:
        try:
            return read_pause(self.connection)
        except redis.exceptions.RedisError:
            return PauseState(False)

    def _hold_while_paused(self) -> None:
        while self.pause_state().paused and not self._stop_requested:
            self.heartbeat()
            time.sleep(POLL_S)

    def dequeue_job_and_maintain_ttl(self, timeout: Optional[int], *args: Any, **kwargs: Any):  # type: ignore[override]
        while True:
            self._hold_while_paused()
            result = super().dequeue_job_and_maintain_ttl(timeout, *args, **kwargs)
            if result is None or not self.pause_state().paused:
                return result
            # Paused while the BLPOP was waiting: hand the job back to the head of the queue.
            job, queue = result
            queue.push_job_id(job.id, at_front=True)

    def execute_job(self, job: Job, queue: Queue) -> None:
        slow_ms = self.pause_state().slow_ms
        if slow_ms:
            time.sleep(slow_ms / 1000)
        super().execute_job(job, queue)

    def _requeue_failed(self, job: Job, exc_type: type, exc_value: BaseException, tb: Any) -> bool:
        transfer_id = job.args[0] if job.args else None
        log("error", "job failed; requeued", job_id=job.id, transfer_id=transfer_id, err=err_text(exc_value))
        with jobs.runtime.lock:
            jobs.runtime.stats.failed += 1
        try:
            FailedJobRegistry(queue=Queue(job.origin, connection=self.connection)).requeue(job, at_front=True)
        except Exception:  # noqa: BLE001 - Redis went away with the job
            log("error", "requeue failed; job lost", job_id=job.id)
        time.sleep(1)
        return False


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    server: "_HealthServer"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] != "/health":
            return self._send(404, {"error": "not found"})
        srv = self.server
        db_ok = srv.db.ping()
        redis_ok = False
        depth: Optional[int] = None
        paused = False
        try:
            redis_ok = bool(srv.redis.ping())
            depth = int(srv.redis.llen(jobs.QUEUE_KEY))
            paused = read_pause(srv.redis).paused
        except redis.exceptions.RedisError:
            pass
        with jobs.runtime.lock:
            stats = jobs.runtime.stats
            processed, failed = stats.processed, stats.failed
        ok = db_ok and redis_ok
        self._send(200 if ok else 503, {
            "status": "ok" if ok else "degraded",
            "version": srv.version,
            "queue_depth": depth,
            "processed": processed,
            "failed": failed,
            "paused": paused,
            "database": "healthy" if db_ok else "unhealthy",
            "redis": "healthy" if redis_ok else "unhealthy",
        })

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class _HealthServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, db: Database, client: redis.Redis, version: str):
        self.db, self.redis, self.version = db, client, version
        super().__init__((host, port), _HealthHandler)


def _start_health(cfg: Config, db: Database, client: redis.Redis) -> None:
    try:
        server = _HealthServer(cfg.bind_host, cfg.worker_port, db, client, cfg.version)
    except OSError as exc:
        # Replicas on the host network share the port: they consume without a health endpoint of their own.
        if exc.errno == 98:
            log("warn", "health port in use; running without a health endpoint", port=cfg.worker_port)
            return
        raise
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log("info", "alfred worker listening", port=cfg.worker_port, queue=jobs.QUEUE_KEY)


def _count_start(db: Database) -> None:
    while True:
        try:
            bump_counter(db, "starts_worker")
            return
        except Exception:  # noqa: BLE001 - the database may not be up yet
            time.sleep(2)


def main() -> None:
    set_log_base(role="worker")
    cfg = load_config("worker")
    rq_logger = logging.getLogger("rq.worker")
    handler = _LogfmtHandler()
    handler.addFilter(_DropJobTraceback())
    rq_logger.addHandler(handler)
    rq_logger.setLevel(logging.WARNING)
    rq_logger.propagate = False

    db = Database(cfg.database_url, 3, "alfred-worker")
    jobs.bind(db)
    # RQ sets its own socket timeout on this connection (longer than its BLPOP); health checks use another.
    connection = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2, client_name="alfred-worker")
    health_client = redis.Redis.from_url(cfg.redis_url, socket_timeout=1, socket_connect_timeout=1,
                                         client_name="alfred-worker-health")
    _start_health(cfg, db, health_client)
    threading.Thread(target=_count_start, args=(db,), name="count-start", daemon=True).start()

    stop_signal: dict[str, Optional[str]] = {"name": None}

    def stop(signum: int, _frame: Any) -> None:
        """Between two RQ workers (Redis down): nothing is running, stop at once."""
        log("info", "shutting down", signal=signal.Signals(signum).name)
        db.dispose()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    down_logged = False
    while True:
        try:
            connection.ping()
        except redis.exceptions.RedisError as exc:
            if not down_logged:
                log("error", "redis connection error", err=err_text(exc))
                down_logged = True
            time.sleep(1)
            continue
        if down_logged:
            log("info", "redis connection restored")
            down_logged = False
        worker = AlfredWorker([jobs.QUEUE_NAME], connection=connection, default_worker_ttl=WORKER_TTL_S,
                              log_job_description=False, disable_default_exception_handler=False)
        try:
            worker.work(logging_level="WARNING", with_scheduler=False)
        except redis.exceptions.RedisError as exc:
            log("error", "queue error", err=err_text(exc))
        except Exception as exc:  # noqa: BLE001 - keep consuming whatever happened to one RQ worker
            log("error", "queue error", err=err_text(exc))
        # RQ installs its own SIGTERM/SIGINT handlers in work(); ours apply between two RQ workers.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if worker.stop_signal is not None:
            stop_signal["name"] = worker.stop_signal
            break
        time.sleep(1)
    log("info", "shutting down", signal=stop_signal["name"])
    db.dispose()


if __name__ == "__main__":
    main()
