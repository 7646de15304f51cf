"""Governance endpoints (admin): settings, provider switches and IP blocks (drill/src/api.ts)."""
from __future__ import annotations

from typing import Any, Mapping

from fastapi import APIRouter, Depends

from .audit_chain import append_audit
from .auth import Principal, auth_admin, require_schema
from .db import execute, rows
from .governance import BUMP_SQL, bump_counter, normalise_settings
from .http import Ctx, HttpError, is_ip, opt_bool, opt_number, opt_string, req_string, request_ctx
from .jsonjs import dumps
from .log import UNSET, log
from .metrics import PROVIDERS
from .services import Services, services

router = APIRouter()


def update_settings(svc: Services, ctx: Ctx, actor: Principal, patch: Mapping[str, Any], action: str) -> dict[str, Any]:
    require_schema(svc)
    nxt = normalise_settings({**svc.gov.settings, **patch})
    with svc.db.tx() as c:
        execute(
            c,
            """INSERT INTO governance_settings (id, settings, updated_at) VALUES (1, CAST(:s AS jsonb), now())
               ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()""",
            {"s": dumps(nxt)},
        )
        append_audit(c, actor_user_id=actor.id, action=action, target_type="settings", target_id="governance",
                     details={"changed": dict(patch), "client_ip": ctx.client_ip})
    svc.gov.settings = nxt
    log("info", "governance settings changed", changed=",".join(patch.keys()),
        reason=nxt["reason"] if nxt["reason"] is not None else UNSET)
    return nxt


@router.get("/v1/governance/settings")
def get_settings(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    return {"settings": svc.gov.settings}


@router.post("/v1/governance/settings")
def post_settings(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    body = ctx.body()
    patch: dict[str, Any] = {}
    cache_only = opt_bool(body, "cache_only_mode")
    if cache_only is not None:
        patch["cache_only_mode"] = cache_only
    maintenance = opt_bool(body, "maintenance_mode")
    if maintenance is not None:
        patch["maintenance_mode"] = maintenance
    threshold = opt_number(body, "cache_similarity_threshold")
    if threshold is not None:
        if threshold <= 0 or threshold > 1:
            raise HttpError(400, "cache_similarity_threshold must be in (0, 1]")
        patch["cache_similarity_threshold"] = threshold
    if "disabled_providers" in body and body["disabled_providers"] is not None:
        lst = body["disabled_providers"]
        if not isinstance(lst, list) or any(p not in PROVIDERS for p in lst):
            raise HttpError(400, f"disabled_providers must be a list drawn from {', '.join(PROVIDERS)}")
        patch["disabled_providers"] = list(dict.fromkeys(lst))
    reason = opt_string(body, "reason")
    if reason is not None:
        patch["reason"] = reason
    if not patch:
        raise HttpError(400, "no known setting in the request body")
    return {"settings": update_settings(svc, ctx, actor, patch, "settings_changed")}


def _provider_toggle(ctx: Ctx, disable: bool) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    body = ctx.body()
    provider = req_string(body, "provider", 40)
    if provider not in PROVIDERS:
        raise HttpError(400, f"provider must be one of {', '.join(PROVIDERS)}")
    reason = opt_string(body, "reason")
    current = svc.gov.settings["disabled_providers"]
    if (provider in current) == disable:
        return {"provider": provider, "disabled": disable, "changed": False, "settings": svc.gov.settings}
    lst = [*current, provider] if disable else [p for p in current if p != provider]
    settings = update_settings(svc, ctx, actor, {"disabled_providers": lst, "reason": reason},
                               "provider_disabled" if disable else "provider_enabled")
    if disable:
        bump_counter(svc.db, "provider_disables")
    return {"provider": provider, "disabled": disable, "changed": True, "settings": settings}


@router.post("/v1/governance/providers/disable")
def disable_provider(ctx: Ctx = Depends(request_ctx)) -> Any:
    return _provider_toggle(ctx, True)


@router.post("/v1/governance/providers/enable")
def enable_provider(ctx: Ctx = Depends(request_ctx)) -> Any:
    return _provider_toggle(ctx, False)


@router.post("/v1/governance/block")
def block_ip(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    body = ctx.body()
    ip = req_string(body, "ip", 45)
    if not is_ip(ip):
        raise HttpError(400, "ip must be an IPv4 or IPv6 address")
    if ip in ("127.0.0.1", "::1"):
        raise HttpError(400, "refusing to block loopback: it would lock out operators")
    reason = opt_string(body, "reason")
    with svc.db.tx() as c:
        created = bool(rows(c, "INSERT INTO ip_blocks (ip, reason) VALUES (:ip, :r) ON CONFLICT (ip) DO NOTHING RETURNING ip",
                            {"ip": ip, "r": reason}))
        if created:
            append_audit(c, actor_user_id=actor.id, action="ip_blocked", target_type="ip", target_id=ip,
                         details={"reason": reason})
            execute(c, BUMP_SQL, {"n": "blocks"})
    svc.gov.block(ip, reason)
    if created:
        log("warn", "client blocked", blocked_ip=ip, reason=reason if reason is not None else UNSET)
    return {"ip": ip, "blocked": True, "changed": created}


def _unblock(ctx: Ctx) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    query_ip = ctx.query("ip")
    body = {} if ctx.method == "DELETE" and query_ip else ctx.body()
    ip = query_ip if query_ip is not None else req_string(body, "ip", 45)
    with svc.db.tx() as c:
        removed = execute(c, "DELETE FROM ip_blocks WHERE ip = :ip", {"ip": ip}) > 0
        if removed:
            append_audit(c, actor_user_id=actor.id, action="ip_unblocked", target_type="ip", target_id=ip, details={})
    svc.gov.unblock(ip)
    return {"ip": ip, "blocked": False, "changed": removed}


@router.delete("/v1/governance/block")
def delete_block(ctx: Ctx = Depends(request_ctx)) -> Any:
    return _unblock(ctx)


@router.post("/v1/governance/unblock")
def unblock_ip(ctx: Ctx = Depends(request_ctx)) -> Any:
    return _unblock(ctx)


@router.get("/v1/governance/blocks")
def list_blocks(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    return {"blocked": [{"ip": ip, "reason": reason} for ip, reason in svc.gov.blocked.items()]}
