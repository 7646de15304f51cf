"""Health, metrics, the SLA monitor, the providers' own endpoints and the drill hooks."""
from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from .auth import auth_admin, require_schema
from .db import rows
from .hooks import HOOK_FAULTS
from .http import Ctx, HttpError, is_integer, json_response, opt_bool, req_string, request_ctx
from .jobs import QUEUE_KEY, enqueue_transfers
from .log import err_text, log
from .metrics import PROVIDERS
from .providers import UPSTREAM_MODELS
from .services import Services, services

router = APIRouter()

COUNTER_NAMES = ("starts_api", "starts_worker", "topups", "refunds", "blocks", "provider_disables",
                 "key_rotations", "erasures")
DB_PING_TIMEOUT_S = 2.0
REDIS_PING_TIMEOUT_S = 1.0
#: The queue-backlog drill queues at most this many jobs at once.
MAX_DRILL_JOBS = 20000


async def dependencies(svc: Services) -> dict[str, bool]:
    """The database (through the pool, so a held pool reads unhealthy) and Redis, each with a deadline."""
    loop = asyncio.get_running_loop()

    async def probe(fn: Any, timeout: float) -> bool:
        try:
            return bool(await asyncio.wait_for(loop.run_in_executor(svc.probes, fn), timeout))
        except Exception:  # noqa: BLE001 - a timeout or an error both read "unhealthy"
            return False

    async def db_ok() -> bool:
        return await probe(svc.db.ping, DB_PING_TIMEOUT_S) if svc.schema_ready.is_set() else False

    database, redis_up = await asyncio.gather(db_ok(), probe(svc.redis.ping, REDIS_PING_TIMEOUT_S))
    return {"database": database, "redis": redis_up}


async def _health(ctx: Ctx) -> Response:
    svc = services(ctx.request)
    deps = await dependencies(svc)
    ok = deps["database"] and deps["redis"]
    body = {
        "status": "ok" if ok else "degraded",
        "version": svc.cfg.version,
        "database": "healthy" if deps["database"] else "unhealthy",
        "redis": "healthy" if deps["redis"] else "unhealthy",
    }
    if svc.cfg.bad_release:
        log("error", "health check failed", err="AttributeError: 'NoneType' object has no attribute 'ready'")
        return json_response(500, {**body, "status": "error", "error": "internal error"})
    return json_response(200 if ok else 503, body)


@router.get("/health")
async def health(ctx: Ctx = Depends(request_ctx)) -> Response:
    return await _health(ctx)


@router.get("/v1/health")
async def health_v1(ctx: Ctx = Depends(request_ctx)) -> Response:
    return await _health(ctx)


@router.get("/metrics")
async def metrics(ctx: Ctx = Depends(request_ctx)) -> Response:
    svc = services(ctx.request)
    text = svc.metrics.prometheus(version=svc.cfg.version, pool=svc.db.pool_stats(),
                                  dependencies=await dependencies(svc))
    return Response(text, status_code=200, headers={"content-type": "text/plain; version=0.0.4"})


@router.get("/v1/notifications/sla/metrics")
def sla_metrics(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    return {"metrics": svc.metrics.sla()}


@router.get("/upstream/{provider}/v1/models")
def upstream_models(ctx: Ctx = Depends(request_ctx)) -> Any:
    """The providers' own endpoints as an egress probe reaches them; 502 while provider-errors lists one."""
    svc = services(ctx.request)
    provider = ctx.params.get("provider", "")
    if provider not in PROVIDERS:
        raise HttpError(404, "unknown provider")
    failing = svc.faults.failing_providers()
    if failing and provider in failing["providers"]:
        raise HttpError(502, f"{provider} upstream unavailable")
    return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": provider} for m in UPSTREAM_MODELS[provider]]}


# ---------- drill hooks (used by the fault injector and tests only) ----------
@router.get("/v1/drill/faults")
def list_faults(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx, sso=False)
    return {"faults": svc.faults.list(), "known": list(HOOK_FAULTS)}


@router.post("/v1/drill/faults")
def set_fault(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx, sso=False)
    body = ctx.body()
    fault = req_string(body, "fault", 60)
    on = opt_bool(body, "on")
    if on is None:
        raise HttpError(400, "on must be true or false")
    return svc.faults.set(fault, on, body)


@router.get("/v1/drill/counters")
def counters(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx, sso=False)
    require_schema(svc)
    found = svc.db.query("SELECT name, value FROM drill_counters")
    out: dict[str, int] = {n: 0 for n in COUNTER_NAMES}
    for row in found:
        out[row["name"]] = int(row["value"])
    return {"counters": out}


@router.post("/v1/drill/jobs")
def enqueue_drill_jobs(ctx: Ctx = Depends(request_ctx)) -> Any:
    """Real RQ jobs for the queue-backlog drill: ``{"count": N}`` creates N pending transfers and queues an
    ``app.jobs.apply_transfer`` job for each; ``{"transfer_ids": [...]}`` queues jobs for existing ones."""
    svc = services(ctx.request)
    auth_admin(svc, ctx, sso=False)
    require_schema(svc)
    body = ctx.body()
    ids_raw = body.get("transfer_ids")
    count = body.get("count")
    if ids_raw is not None:
        if not isinstance(ids_raw, list) or not all(is_integer(i) and i > 0 for i in ids_raw):
            raise HttpError(400, "transfer_ids must be a list of transfer ids")
        if len(ids_raw) > MAX_DRILL_JOBS:
            raise HttpError(400, f"at most {MAX_DRILL_JOBS} jobs at once")
        transfer_ids = [int(i) for i in ids_raw]
    elif count is not None:
        if not is_integer(count) or not 1 <= count <= MAX_DRILL_JOBS:
            raise HttpError(400, f"count must be 1..{MAX_DRILL_JOBS}")
        with svc.db.tx() as c:
            created = rows(
                c,
                """INSERT INTO token_transfers (sender_id, recipient_id, amount, status)
                   SELECT 2 + (g % 10), 2 + ((g + 3) % 10), 1 + (g % 50), 'pending'
                     FROM generate_series(1, :n) AS g RETURNING id""",
                {"n": int(count)},
            )
        transfer_ids = [int(r["id"]) for r in created]
    else:
        raise HttpError(400, "count or transfer_ids is required")
    if not svc.redis.ready:
        raise HttpError(503, "redis unavailable: jobs cannot be queued")
    client = svc.redis.require()
    try:
        enqueued = enqueue_transfers(client, transfer_ids)
        depth = int(client.llen(QUEUE_KEY))
    except Exception as exc:  # noqa: BLE001
        log("error", "enqueue failed", err=err_text(exc), jobs=len(transfer_ids))
        raise HttpError(503, "redis unavailable: jobs cannot be queued") from exc
    log("warn", "drill jobs queued", jobs=enqueued, queue=QUEUE_KEY, depth=depth)
    return {
        "enqueued": enqueued,
        "queue": QUEUE_KEY,
        "depth": depth,
        "first_transfer_id": transfer_ids[0] if transfer_ids else None,
        "last_transfer_id": transfer_ids[-1] if transfer_ids else None,
    }

