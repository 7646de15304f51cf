"""A Redis client that fails fast while Redis is down and notices by itself when it returns.

ioredis in the TS drill keeps a connection state ("ready"); redis-py connects per command. This wrapper
restores the state: after a connection error, commands are skipped at once (no request waits for a
dead Redis) and a background probe pings with backoff until Redis answers again.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

import redis

from .log import err_text, log

_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisUnavailable(Exception):
    """Raised instead of trying a command while the connection is known to be down; it carries the last
    connection error's text (``redis.exceptions.ConnectionError: …``) as its message."""

    log_message_only = True


class RedisConn:
    def __init__(self, url: str, name: str, timeout_s: float = 2.0):
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            client_name=name,
            decode_responses=False,
        )
        self._ready = False
        self._was_down = False
        self.last_error: Optional[str] = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._probe_loop, name=f"redis-probe-{name}", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._ready

    def on_ready(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def mark_down(self, exc: BaseException) -> None:
        """Called by users of the client when a command failed on the connection."""
        with self._lock:
            self.last_error = err_text(exc)
            if not self._was_down:
                log("error", "redis connection error", err=self.last_error)
            self._was_down = True
            self._ready = False
        self._wake.set()

    def require(self) -> redis.Redis:
        if not self._ready:
            raise RedisUnavailable(self.last_error or "redis connection not ready")
        return self.client

    def call(self, fn: Callable[[redis.Redis], object]) -> object:
        """Runs ``fn(client)``; a connection error marks the connection down and propagates."""
        client = self.require()
        try:
            return fn(client)
        except _CONNECTION_ERRORS as exc:
            self.mark_down(exc)
            raise

    def ping(self) -> bool:
        if not self._ready:
            return False
        try:
            return bool(self.client.ping())
        except _CONNECTION_ERRORS as exc:
            self.mark_down(exc)
            return False
        except redis.exceptions.RedisError:
            return False

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self.client.close()

    def _probe_loop(self) -> None:
        attempt = 0
        while not self._stopping:
            if self._ready:
                self._wake.wait()
                self._wake.clear()
                attempt = 0
                continue
            try:
                self.client.ping()
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                with self._lock:
                    self.last_error = err_text(exc)
                    if not self._was_down:
                        log("error", "redis connection error", err=self.last_error)
                    self._was_down = True
                attempt += 1
                time.sleep(min(0.2 * attempt, 2.0))
                continue
            with self._lock:
                if self._was_down:
                    log("info", "redis connection restored")
                self._was_down = False
                self._ready = True
            for fn in list(self._listeners):
                try:
                    fn()
                except Exception:  # noqa: BLE001 - a listener must not stop the probe
                    pass


def is_redis_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, _CONNECTION_ERRORS + (RedisUnavailable,))
