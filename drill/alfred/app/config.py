"""Settings of the service, read once from the environment the containers are given (drill/src/config.ts)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Mapping, Optional

Role = Literal["api", "worker", "proxy"]
ROLES: tuple[str, ...] = ("api", "worker", "proxy")


@dataclass(frozen=True)
class Config:
    role: Role
    version: str
    bad_release: bool
    #: A release whose key verification is broken: every user key is refused (INC-06 bad deploy).
    auth_bug: bool
    database_url: str
    redis_url: str
    admin_key: str
    jwt_secret: str
    port: int
    #: Where the proxy finds the api (another container under compose).
    api_host: str
    # Address the api and the worker's health endpoint listen on: loopback on the host network of the
    # local stack, 0.0.0.0 where other containers reach them over a compose network.
    bind_host: str
    worker_port: int
    tls_port: int
    tls_dir: str
    rate_limit_per_minute: int
    sso_required: bool
    pool_max: int

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.database_url)


def _int(value: Optional[str], fallback: int) -> int:
    """parseInt semantics of the TS drill: a positive integer prefix, else the fallback."""
    text = (value or "").strip()
    digits = ""
    for i, ch in enumerate(text):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        n = int(digits)
    except ValueError:
        return fallback
    return n if n > 0 else fallback


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy 1.4 refuses the ``postgres://`` scheme libpq (and the TS drill) accept."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    return url


def libpq_url(url: str) -> str:
    """A DSN psycopg2 can open directly (no SQLAlchemy driver suffix)."""
    url = sqlalchemy_url(url)
    if url.startswith("postgresql+"):
        return "postgresql://" + url.split("://", 1)[1]
    return url


def parse_role(value: Optional[str]) -> Optional[Role]:
    return value if value in ROLES else None  # type: ignore[return-value]


def load_config(role: Role, env: Mapping[str, str] = os.environ) -> Config:
    return Config(
        role=role,
        version=env.get("APP_VERSION", "0.0.0-dev"),
        bad_release=env.get("DRILL_BAD_RELEASE") == "1",
        auth_bug=env.get("DRILL_AUTH_BUG") == "1",
        database_url=env.get("DATABASE_URL", "postgres://alfred@127.0.0.1:55432/alfred"),
        redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379"),
        admin_key=env.get("ADMIN_KEY", ""),
        jwt_secret=env.get("JWT_SECRET", ""),
        port=_int(env.get("PORT"), 58000),
        api_host=env.get("API_HOST", "127.0.0.1"),
        bind_host=env.get("BIND_HOST", "127.0.0.1"),
        worker_port=_int(env.get("WORKER_PORT"), 58001),
        tls_port=_int(env.get("TLS_PORT"), 58443),
        tls_dir=env.get("TLS_DIR", "/tls"),
        rate_limit_per_minute=_int(env.get("RATE_LIMIT_PER_MINUTE"), 60),
        sso_required=env.get("SSO_REQUIRED") == "true",
        pool_max=_int(env.get("DB_POOL_MAX"), 10),
    )
