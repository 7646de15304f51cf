"""Users and admin endpoints: who am I, the audit chain check, key rotation, GDPR erasure, the schema
migrations (on top of alembic, app/schema.py) and the billing period (drill/src/api.ts,
drill/src/billing.ts)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends

from .audit_chain import append_audit, verify_chain
from .auth import auth_admin, auth_user, require_schema
from .billing import manual_reset, period_start, read_billing_status
from .db import execute, rows
from .governance import BUMP_SQL
from .http import Ctx, HttpError, id_param, is_integer, opt_number, opt_string, request_ctx
from .keys import ADMIN_EMAIL, hash_key, new_api_key
from .log import log
from .schema import (MigrationRefused, downgrade_steps, known_revisions, migration_status, target_version,
                     upgrade_to_release, version_number)
from .services import services

router = APIRouter()


@router.get("/v1/users/me")
def users_me(ctx: Ctx = Depends(request_ctx)) -> Any:
    user = auth_user(services(ctx.request), ctx)
    return {"id": int(user.id), "email": user.email, "is_admin": user.is_admin}


@router.post("/v1/admin/audit-logs/verify")
def verify_audit(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    require_schema(svc)
    return verify_chain(svc.db).as_dict()


@router.post("/v1/admin/users/{id}/rotate-key")
def rotate_key(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    user_id = id_param(ctx.params, "id")
    body = ctx.body_or_empty()
    reason = opt_string(body, "reason")
    key = new_api_key()
    with svc.db.tx() as c:
        u = rows(c, "SELECT email FROM users WHERE id = CAST(:id AS bigint) FOR UPDATE", {"id": user_id})
        if not u:
            raise HttpError(404, "user not found")
        if u[0]["email"] == ADMIN_EMAIL:
            raise HttpError(409, "the bootstrap admin key comes from ADMIN_KEY; rotate it there and restart the service")
        execute(c, "UPDATE users SET api_key_hash = :h WHERE id = CAST(:id AS bigint)", {"id": user_id, "h": hash_key(key)})
        append_audit(c, actor_user_id=actor.id, action="api_key_rotated", target_type="user", target_id=user_id,
                     details={"reason": reason, "new_key_fingerprint": hash_key(key)[:8]})
        execute(c, BUMP_SQL, {"n": "key_rotations"})
    log("warn", "api key rotated", target_user_id=user_id)
    return {"user_id": int(user_id), "api_key": key, "note": "shown once; only its sha256 is stored"}


@router.post("/v1/gdpr/erasure/{id}")
def gdpr_erasure(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    user_id = id_param(ctx.params, "id")
    with svc.db.tx() as c:
        u = rows(c, "SELECT email FROM users WHERE id = CAST(:id AS bigint) FOR UPDATE", {"id": user_id})
        if not u:
            raise HttpError(404, "user not found")
        if u[0]["email"] == ADMIN_EMAIL:
            raise HttpError(409, "the bootstrap admin cannot be erased")
        erased_email = f"erased-{user_id}@erased.invalid"
        if u[0]["email"] == erased_email:
            return {"user_id": int(user_id), "erased": True, "idempotent": True}
        execute(c, "UPDATE users SET email = :e, api_key_hash = :h WHERE id = CAST(:id AS bigint)",
                {"id": user_id, "e": erased_email, "h": hash_key(new_api_key())})
        append_audit(c, actor_user_id=actor.id, action="gdpr_erasure", target_type="user", target_id=user_id,
                     details={"fields": ["email", "api_key_hash"]})
        execute(c, BUMP_SQL, {"n": "erasures"})
        return {"user_id": int(user_id), "erased": True, "idempotent": False}


@router.get("/v1/admin/migrations")
def migrations_status(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    status = migration_status(svc.db)
    return {**status, "target": target_version(), "known": known_revisions()}


@router.post("/v1/admin/migrations/downgrade")
def migrations_downgrade(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    body = ctx.body()
    steps = opt_number(body, "steps")
    if steps is None:
        steps = 1
    if not is_integer(steps) or steps < 1 or steps > 3:
        raise HttpError(400, "steps must be 1, 2 or 3")
    try:
        reverted = downgrade_steps(svc.db, int(steps))
    except MigrationRefused as exc:
        raise HttpError(409, str(exc)) from None
    with svc.db.tx() as c:
        append_audit(c, actor_user_id=actor.id, action="migration_downgraded", target_type="schema",
                     target_id=str(reverted[0]) if reverted else "", details={"reverted": reverted})
    log("warn", "schema downgraded", reverted=",".join(str(v) for v in reverted))
    return {"reverted": reverted, **migration_status(svc.db)}


@router.post("/v1/admin/migrations/upgrade")
def migrations_upgrade(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    # A failure (e.g. 42501 permission denied on alembic_version) rolls the run back and answers 500
    # "internal error" with the `unhandled error` log line, as the TS api answers a failed migration.
    applied = [version_number(r) for r in upgrade_to_release(svc.db)]
    if applied:
        with svc.db.tx() as c:
            append_audit(c, actor_user_id=actor.id, action="migration_applied", target_type="schema",
                         target_id=str(applied[-1]), details={"applied": applied})
    return {"applied": applied, **migration_status(svc.db)}


@router.get("/v1/admin/billing/status")
def billing_status(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    require_schema(svc)
    with svc.db.tx() as c:
        return read_billing_status(c)


@router.post("/v1/admin/billing/reset")
def billing_reset(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    body = ctx.body_or_empty()
    period = period_start(datetime.now(timezone.utc))
    if "period_start" in body and body["period_start"] != period:
        # Only the running period can be reset: an old one would zero usage that belongs to now.
        raise HttpError(400, f"only the current period ({period}) can be reset")
    return manual_reset(svc.db, actor.id)
