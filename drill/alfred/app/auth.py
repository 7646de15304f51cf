"""Who is calling: any user key (looked up by its sha256), or the bootstrap admin (ADMIN_KEY, checked
without the database so operators keep access during a database outage)."""
from __future__ import annotations

from dataclasses import dataclass

from .http import Ctx, HttpError
from .keys import ADMIN_EMAIL, bearer_token, hash_key, same_hash
from .log import log
from .services import Services


@dataclass(frozen=True)
class Principal:
    id: str
    email: str
    is_admin: bool
    personal_quota: int
    used_tokens: int


def bearer(ctx: Ctx) -> str:
    key = bearer_token(ctx.header("authorization"))
    if key is None:
        raise HttpError(401, "missing or malformed Authorization header")
    return key


def require_schema(svc: Services) -> None:
    if not svc.schema_ready.is_set():
        raise HttpError(503, "service starting: database not ready")


def sso_gate(svc: Services, ctx: Ctx) -> None:
    if svc.cfg.sso_required and svc.faults.active("sso-down"):
        log("warn", "auth failed", reason="sso_provider_unreachable", path=ctx.path, client_ip=ctx.client_ip)
        raise HttpError(401, "authentication failed: SSO provider unavailable")


def auth_user(svc: Services, ctx: Ctx) -> Principal:
    key = bearer(ctx)
    sso_gate(svc, ctx)
    require_schema(svc)
    # The auth-bug release hashes the key with a stray newline, so no stored hash ever matches.
    digest = hash_key(f"{key}\n" if svc.cfg.auth_bug else key)
    found = svc.db.query(
        """SELECT id::text AS id, email, is_admin, api_key_hash, personal_quota, used_tokens
             FROM users WHERE api_key_hash = :h""",
        {"h": digest},
    )
    row = found[0] if found else None
    if row is None or not same_hash(row["api_key_hash"], digest):
        log("warn", "auth failed", reason="unknown_key", path=ctx.path, client_ip=ctx.client_ip)
        raise HttpError(401, "invalid api key")
    ctx.log_fields["user_id"] = row["id"]
    return Principal(row["id"], row["email"], row["is_admin"], int(row["personal_quota"]), int(row["used_tokens"]))


def auth_admin(svc: Services, ctx: Ctx, sso: bool = True) -> Principal:
    key = bearer(ctx)
    if sso:
        sso_gate(svc, ctx)
    if svc.admin_hash and same_hash(hash_key(key), svc.admin_hash):
        ctx.log_fields["user_id"] = "1"
        return Principal("1", ADMIN_EMAIL, True, 0, 0)
    if not sso:
        log("warn", "auth failed", reason="not_bootstrap_admin", path=ctx.path, client_ip=ctx.client_ip)
        raise HttpError(401, "invalid api key")
    user = auth_user(svc, ctx)
    if not user.is_admin:
        raise HttpError(403, "admin only")
    return user
