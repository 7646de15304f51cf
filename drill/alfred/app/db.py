"""PostgreSQL through a SQLAlchemy engine whose QueuePool holds at most DB_POOL_MAX connections.

The pool reconnects on demand (pre-ping), so a database that comes back is picked up by itself. The
pool gauges of /metrics (alfred_db_pool_{total,idle,waiting,max}) are read from it, which is why the
pool counts the threads that wait for a connection.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

import sqlalchemy.exc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from .config import sqlalchemy_url
from .log import err_text

#: Wait this long for a pooled connection (and for a new one to connect) before giving up.
POOL_TIMEOUT_S = 3
#: A query stuck behind a dead or locked server must not hang a request forever.
STATEMENT_TIMEOUT_MS = 15000
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


class DatabaseUnavailable(Exception):
    """A connection-level failure (as opposed to an SQL error): the database cannot be reached. Logged as
    its cause (``sqlalchemy.exc.OperationalError: …``), the exception the playbooks know."""

    log_message_only = True

    def __init__(self, cause: BaseException):
        super().__init__(err_text(cause))
        self.cause = cause


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # QueuePool limit reached
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            code = getattr(exc.orig, "pgcode", None)
            return code is None or any(code.startswith(p) for p in _CONNECTION_SQLSTATES)
    return False


class GaugedQueuePool(QueuePool):
    """A QueuePool that also counts the checkouts waiting for a connection (pg's waitingCount)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def _do_get(self) -> Any:
        full = self._overflow >= self._max_overflow and self._pool.empty()
        if not full:
            return super()._do_get()
        with self._waiting_lock:
            self._waiting += 1
        try:
            return super()._do_get()
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    @property
    def waiting(self) -> int:
        return self._waiting


@dataclass(frozen=True)
class PoolStats:
    total: int
    idle: int
    waiting: int
    max: int


class Database:
    def __init__(self, url: str, pool_max: int, app_name: str):
        self.max = pool_max
        self.url = url
        self.engine: Engine = create_engine(
            sqlalchemy_url(url),
            future=True,
            poolclass=GaugedQueuePool,
            pool_size=pool_max,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT_S,
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={
                "connect_timeout": POOL_TIMEOUT_S,
                "application_name": app_name,
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )

    @property
    def pool(self) -> GaugedQueuePool:
        return self.engine.pool  # type: ignore[return-value]

    def pool_stats(self) -> PoolStats:
        pool = self.pool
        idle = pool.checkedin()
        return PoolStats(total=idle + pool.checkedout(), idle=idle, waiting=pool.waiting, max=self.max)

    def query(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
        """One statement in its own transaction; rows as dicts (empty for statements without rows)."""
        with self.tx() as conn:
            result = conn.execute(text(sql), dict(params or {}))
            return [dict(r) for r in result.mappings()] if result.returns_rows else []

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A transaction on a pooled connection: committed on success, rolled back on any error."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if is_connection_error(exc) and not isinstance(exc, DatabaseUnavailable):
                raise DatabaseUnavailable(exc) from exc
            raise

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def rows(conn: Connection, sql: str, params: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
    """Rows of one statement inside the caller's transaction."""
    result = conn.execute(text(sql), dict(params or {}))
    return [dict(r) for r in result.mappings()] if result.returns_rows else []


def execute(conn: Connection, sql: str, params: Optional[Mapping[str, Any]] = None) -> int:
    """Runs one statement inside the caller's transaction; returns its row count."""
    return conn.execute(text(sql), dict(params or {})).rowcount
