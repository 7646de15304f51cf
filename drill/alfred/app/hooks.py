"""Faults that live inside the api process, switched by the fault injector through
POST /v1/drill/faults (drill/src/drill-hooks.ts). Conditions outside the process (a provider outage,
the SSO provider, a billing bug shipped in config, a paused worker) are kept in Redis so they survive
a restart of the api; conditions of the process itself (a leaked pool, runaway queries, a memory
leak) end with it."""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Optional

import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import jsonjs
from .config import libpq_url
from .db import Database
from .http import HttpError, is_number
from .log import UNSET, err_text, log
from .metrics import PROVIDERS
from .redis_conn import RedisConn

FAULTS_KEY = "alfred:drill:faults"
WORKER_PAUSED_KEY = "alfred:drill:worker-paused"

PERSISTED_FAULTS = ("provider-errors", "sso-down", "cost-bug", "pii-in-logs")
PROCESS_FAULTS = ("exhaust-pool", "slow-queries", "memory-growth")
HOOK_FAULTS = (*PERSISTED_FAULTS, *PROCESS_FAULTS, "worker-paused")

MB = 1024 * 1024
CARDS = ("4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009")


def log_pii(email: str, i: int = 0, api_key: Optional[str] = None) -> None:
    """A debug statement left in by mistake: with ``api_key`` it leaks the caller's credential as well."""
    log(
        "debug",
        "billing profile loaded",
        user_email=email,
        card_number=CARDS[i % len(CARDS)],
        authorization=f"Bearer {api_key}" if api_key else UNSET,
    )


class _SlowQuery:
    def __init__(self, conn: Any, pid: int):
        self.conn = conn
        self.pid = pid


class DrillFaults:
    def __init__(self, db: Database, redis: RedisConn):
        self._db = db
        self._redis = redis
        self._lock = threading.Lock()
        self._persisted: dict[str, dict[str, Any]] = {}
        self._worker_paused: Optional[dict[str, Any]] = None
        self._held: list[tuple[Connection, Any]] = []
        self._slow: list[_SlowQuery] = []
        self._slow_params: Optional[dict[str, Any]] = None
        self._memory: list[bytes] = []
        self._memory_params: Optional[dict[str, Any]] = None
        self._memory_thread: Optional[threading.Thread] = None

    # ---------- state read by the request pipeline ----------
    def refresh(self) -> None:
        """Re-reads the persisted faults; keeps the last known state while Redis is unreachable."""
        if not self._redis.ready:
            return
        try:
            raw_all = self._redis.call(lambda r: r.hgetall(FAULTS_KEY))
            paused = self._redis.call(lambda r: r.get(WORKER_PAUSED_KEY))
        except Exception:  # noqa: BLE001 - /health reports Redis trouble; the snapshot stays in force
            return
        nxt: dict[str, dict[str, Any]] = {}
        for name, raw in raw_all.items():  # type: ignore[union-attr]
            try:
                value = jsonjs.loads(raw.decode())
                nxt[name.decode()] = value if isinstance(value, dict) else {}
            except ValueError:
                nxt[name.decode()] = {}
        try:
            worker_paused = jsonjs.loads(paused.decode()) if paused else None  # type: ignore[union-attr]
        except ValueError:
            worker_paused = {}
        with self._lock:
            self._persisted = nxt
            self._worker_paused = worker_paused

    def failing_providers(self) -> Optional[dict[str, Any]]:
        p = self._persisted.get("provider-errors")
        if p is None:
            return None
        providers = p.get("providers") if isinstance(p.get("providers"), list) else []
        return {"providers": providers, "no_failover": p.get("no_failover") is True}

    def active(self, name: str) -> bool:
        return name in self._persisted

    def list(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self._persisted)
        if self._worker_paused:
            out["worker-paused"] = self._worker_paused
        if self._held:
            out["exhaust-pool"] = {"held": len(self._held)}
        if self._slow_params:
            out["slow-queries"] = {**self._slow_params, "running": len(self._slow)}
        if self._memory_params:
            out["memory-growth"] = {**self._memory_params, "allocated_mb": len(self._memory)}
        return out

    # ---------- switching ----------
    def set(self, fault: str, on: bool, body: Mapping[str, Any]) -> dict[str, Any]:
        if fault == "provider-errors":
            if not on:
                return self._set_persisted(fault, False, {})
            raw = body.get("providers", list(PROVIDERS))
            if raw is None:
                raw = list(PROVIDERS)
            if not isinstance(raw, list) or any(p not in PROVIDERS for p in raw):
                raise HttpError(400, f"providers must be a list drawn from {', '.join(PROVIDERS)}")
            return self._set_persisted(fault, on, {"providers": list(dict.fromkeys(raw)),
                                                   "no_failover": body.get("no_failover") is True})
        if fault in ("sso-down", "cost-bug"):
            return self._set_persisted(fault, on, {})
        if fault == "pii-in-logs":
            if on:
                self._leak_pii()
            return self._set_persisted(fault, on, {})
        if fault == "worker-paused":
            return self._set_worker_paused(on, body)
        if fault == "exhaust-pool":
            return self._exhaust_pool() if on else self._release_pool()
        if fault == "slow-queries":
            return self._start_slow_queries(body) if on else self._stop_slow_queries()
        if fault == "memory-growth":
            return self._start_memory_growth(body) if on else self._stop_memory_growth()
        raise HttpError(400, f"unknown fault {jsonjs.dumps(fault)[:60]}; known: {', '.join(HOOK_FAULTS)}")

    def _set_persisted(self, name: str, on: bool, params: dict[str, Any]) -> dict[str, Any]:
        if not self._redis.ready:
            raise HttpError(503, "redis unavailable: fault state cannot be stored")
        if on:
            self._redis.call(lambda r: r.hset(FAULTS_KEY, name, jsonjs.dumps(params)))
            with self._lock:
                self._persisted = {**self._persisted, name: params}
        else:
            self._redis.call(lambda r: r.hdel(FAULTS_KEY, name))
            with self._lock:
                self._persisted = {k: v for k, v in self._persisted.items() if k != name}
        log("warn" if on else "info", "drill fault enabled" if on else "drill fault cleared", fault=name)
        return {"fault": name, "on": on, "params": params}

    def _set_worker_paused(self, on: bool, body: Mapping[str, Any]) -> dict[str, Any]:
        if not self._redis.ready:
            raise HttpError(503, "redis unavailable: fault state cannot be stored")
        slow = body.get("slow_ms")
        slow_ms = min(slow, 60000) if is_number(slow) and slow > 0 else None
        # scope "running": only the workers running now hang; a worker started later (a replica) consumes.
        if slow_ms:
            params: dict[str, Any] = {"slow_ms": slow_ms}
        elif body.get("scope") == "running":
            params = {"paused": True, "before": int(time.time() * 1000)}
        else:
            params = {"paused": True}
        if on:
            self._redis.call(lambda r: r.set(WORKER_PAUSED_KEY, jsonjs.dumps(params)))
        else:
            self._redis.call(lambda r: r.delete(WORKER_PAUSED_KEY))
        with self._lock:
            self._worker_paused = params if on else None
        return {"fault": "worker-paused", "on": on, "params": params}

    def _exhaust_pool(self) -> dict[str, Any]:
        want = self._db.max - len(self._held)
        for _ in range(want):
            try:
                conn = self._db.engine.connect()
                # An open transaction left behind, as a leaked session would: "idle in transaction".
                trans = conn.begin()
                conn.execute(text("SELECT 1"))
            except Exception as exc:  # noqa: BLE001
                log("warn", "exhaust-pool could not check out a connection", err=err_text(exc))
                break
            with self._lock:
                self._held.append((conn, trans))
        log("warn", "drill fault enabled", fault="exhaust-pool", held=len(self._held), pool_max=self._db.max)
        return {"fault": "exhaust-pool", "on": True, "held": len(self._held), "pool_max": self._db.max}

    def _release_pool(self) -> dict[str, Any]:
        with self._lock:
            held, self._held = self._held, []
        for conn, trans in held:
            try:
                trans.rollback()
            except Exception:  # noqa: BLE001 - a connection the server dropped is discarded below
                conn.invalidate()
            finally:
                conn.close()
        if held:
            log("info", "drill fault cleared", fault="exhaust-pool", released=len(held))
        return {"fault": "exhaust-pool", "on": False, "released": len(held)}

    def _start_slow_queries(self, body: Mapping[str, Any]) -> dict[str, Any]:
        count_raw, seconds_raw = body.get("count"), body.get("seconds")
        count = min(20, max(1, int(count_raw // 1) if is_number(count_raw) else 3))
        seconds = min(3600, max(1, seconds_raw if is_number(seconds_raw) else 300))
        if self._slow_params:
            return {"fault": "slow-queries", "on": True, "already": True, "running": len(self._slow)}
        self._slow_params = {"count": count, "seconds": seconds}
        for _ in range(count):
            # Separate connections outside the pool, so they show in pg_stat_activity as long active queries.
            try:
                conn = psycopg2.connect(libpq_url(self._db.url), application_name="alfred-api", connect_timeout=3)
                conn.autocommit = True
            except Exception as exc:  # noqa: BLE001
                log("warn", "slow-queries could not connect", err=err_text(exc))
                continue
            entry = _SlowQuery(conn, conn.get_backend_pid())
            with self._lock:
                self._slow.append(entry)
            threading.Thread(target=self._run_slow, args=(entry, seconds), name="slow-query", daemon=True).start()
        log("warn", "drill fault enabled", fault="slow-queries", count=len(self._slow), seconds=seconds)
        return {"fault": "slow-queries", "on": True, "running": len(self._slow), "seconds": seconds}

    def _run_slow(self, entry: _SlowQuery, seconds: float) -> None:
        try:
            with entry.conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(%s) /* report_rollup */", (seconds,))
        except Exception:  # noqa: BLE001 - cancelled by the undo, or the server went away
            pass
        finally:
            with self._lock:
                self._slow = [q for q in self._slow if q is not entry]
                if not self._slow:
                    self._slow_params = None
            try:
                entry.conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _stop_slow_queries(self) -> dict[str, Any]:
        with self._lock:
            running = list(self._slow)
        pids = [q.pid for q in running]
        if pids:
            try:
                self._db.query("SELECT pg_cancel_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid", {"p": pids})
            except Exception as exc:  # noqa: BLE001
                log("warn", "slow-queries cancel failed", err=err_text(exc))
        with self._lock:
            self._slow = []
            self._slow_params = None
        return {"fault": "slow-queries", "on": False, "cancelled": len(pids)}

    def _start_memory_growth(self, body: Mapping[str, Any]) -> dict[str, Any]:
        rate, cap = body.get("mbPerSecond"), body.get("maxMb")
        mb_per_second = min(100, max(1, rate if is_number(rate) else 5))
        max_mb = min(4096, max(1, cap if is_number(cap) else 768))
        self._memory_params = {"mbPerSecond": mb_per_second, "maxMb": max_mb}
        if self._memory_thread is None:
            self._memory_thread = threading.Thread(target=self._grow_memory, name="memory-growth", daemon=True)
            self._memory_thread.start()
        log("warn", "drill fault enabled", fault="memory-growth", mb_per_second=mb_per_second, max_mb=max_mb)
        return {"fault": "memory-growth", "on": True, "mbPerSecond": mb_per_second, "maxMb": max_mb}

    def _grow_memory(self) -> None:
        while True:
            time.sleep(1)
            params = self._memory_params
            if params is None:
                if self._memory_thread is not threading.current_thread():
                    return
                continue
            i = 0
            while i < params["mbPerSecond"] and len(self._memory) < params["maxMb"]:
                # Filled, so the pages are really resident rather than lazily mapped.
                self._memory.append(b"a" * MB)
                i += 1

    def _stop_memory_growth(self) -> dict[str, Any]:
        self._memory_params = None
        self._memory_thread = None
        freed = len(self._memory)
        self._memory = []
        return {"fault": "memory-growth", "on": False, "freed_mb": freed}

    def _leak_pii(self) -> None:
        emails = ["alice@example.com", "bob@example.com"]
        try:
            found = self._db.query("SELECT email FROM users WHERE NOT is_admin ORDER BY id LIMIT 3")
            if found:
                emails = [r["email"] for r in found]
        except Exception:  # noqa: BLE001 - the sample emails are enough for the drill
            pass
        for i, email in enumerate(emails):
            log_pii(email, i)
