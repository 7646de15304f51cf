"""Role ``api``: the Alfred gateway's HTTP API (FastAPI) on PORT.

Start it with ``python3 -m app api`` (uvicorn on 127.0.0.1:$PORT, no access log: the service writes
its own logfmt request line), or ``python3 -m uvicorn app.main:app --host 127.0.0.1 --port $PORT
--no-access-log --no-proxy-headers``. /health answers from the first second: the schema, the seed and
the governance state are prepared in the background, retried until the database answers.
"""
from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api_admin, api_chat, api_governance, api_ops, wallets
from .billing import CRON_INTERVAL_S, billing_cron_tick
from .config import load_config
from .db import is_connection_error
from .governance import bump_counter
from .http import HttpError, JsJSONResponse, RequestState, client_ip, json_response, request_id_from
from .log import err_text, log, set_log_base
from .metrics import js_round
from .schema import target_revision, upgrade_to_release
from .seed import seed_if_empty, sync_admin
from .services import Services

SCHEMA_WARN_AFTER_S = 30


class RequestMiddleware:
    """Request id, IP blocks, the per-request log line and the request metrics; errors become JSON."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        svc: Services = scope["app"].state.services
        headers = Headers(scope=scope)
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        client = scope.get("client")
        state = RequestState(
            method=scope["method"].upper(),
            path=path,
            client_ip=client_ip(headers.get("x-forwarded-for"), client[0] if client else None),
            request_id=request_id_from(headers.get("x-request-id"), f"req_{secrets.token_hex(8)}"),
        )
        scope.setdefault("state", {})["alfred"] = state
        response = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["started"] = message["status"], True
                MutableHeaders(scope=message)["x-request-id"] = state.request_id
            await send(message)

        try:
            monitoring = path in ("/health", "/metrics") or path.startswith("/v1/drill/")
            if not monitoring and state.client_ip in svc.gov.blocked:
                raise HttpError(403, "client blocked")
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - every error becomes a response and a log line
            if not response["started"]:
                error = _error_response(exc, state)
                await error(scope, receive, send_with_id)
        status = int(response["status"])
        ms = (time.perf_counter() - started) * 1000
        in_window = path.startswith("/v1/") and not path.startswith(("/v1/drill/", "/v1/notifications/"))
        svc.metrics.record_http(state.route, status, ms, in_window)
        log("error" if status >= 500 else "info", None, method=state.method, path=path, status=status,
            duration_ms=js_round(ms), client_ip=state.client_ip, **state.log_fields, request_id=state.request_id)


def _error_response(exc: BaseException, state: RequestState) -> Any:
    if isinstance(exc, HttpError):
        return json_response(exc.status, {"error": exc.message, **exc.extra})
    if is_connection_error(exc):
        cause = getattr(exc, "cause", exc)
        log("error", "database error", err=err_text(cause), request_id=state.request_id)
        return json_response(500, {"error": "database unavailable"})
    log("error", "unhandled error", err=err_text(exc), request_id=state.request_id)
    return json_response(500, {"error": "internal error"})


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    allowed: list[str] = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(path):
            allowed.extend(m for m in sorted(route.methods) if m != "HEAD" and m not in allowed)
    return allowed


def _every(seconds: float, name: str, fn: Callable[[], None]) -> None:
    def loop() -> None:
        while True:
            time.sleep(seconds)
            try:
                fn()
            except Exception:  # noqa: BLE001 - the next tick tries again
                pass

    threading.Thread(target=loop, name=name, daemon=True).start()


def _prepare_database(svc: Services) -> None:
    """Schema, seed and state in the background, retried until the database answers."""
    cfg = svc.cfg
    deadline = time.monotonic() + SCHEMA_WARN_AFTER_S
    warned = False
    while True:
        try:
            applied = upgrade_to_release(svc.db)
            if applied:
                log("info", "migrations applied", versions=",".join(applied))
            seed_if_empty(svc.db, cfg.admin_key, int(time.time() * 1000))
            sync_admin(svc.db, cfg.admin_key)
            bump_counter(svc.db, "starts_api")
            svc.gov.refresh()
            svc.schema_ready.set()
            log("info", "database ready", schema_target=target_revision())
            return
        except Exception as exc:  # noqa: BLE001 - the database may not be up yet
            if time.monotonic() > deadline and not warned:
                log("error", "database not ready after 30 s; still retrying in the background", err=err_text(exc))
                warned = True
            time.sleep(5 if warned else 1)


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, default_response_class=JsJSONResponse)
    app.router.redirect_slashes = False
    for module in (api_ops, api_governance, api_admin, wallets, api_chat):
        app.include_router(module.router)
    app.add_middleware(RequestMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 405:
            return json_response(405, {"error": "method not allowed", "allowed": _allowed_methods(app, request.url.path)})
        if exc.status_code == 404:
            return json_response(404, {"error": "not found"})
        return json_response(exc.status_code, {"error": str(exc.detail)})

    @app.on_event("startup")
    async def start() -> None:
        set_log_base(role="api")
        cfg = load_config("api")
        svc = Services.create(cfg)
        app.state.services = svc
        svc.redis.on_ready(svc.faults.refresh)
        threading.Thread(target=_prepare_database, args=(svc,), name="prepare-database", daemon=True).start()
        _every(1, "faults-refresh", svc.faults.refresh)
        _every(2, "governance-refresh", lambda: svc.gov.refresh() if svc.schema_ready.is_set() else None)
        # The billing reset runs at period start (within one tick), unless billing_settings switched the cron off.
        _every(CRON_INTERVAL_S, "billing-cron", lambda: billing_cron_tick(svc.db) if svc.schema_ready.is_set() else None)
        log("info", "alfred api listening", port=cfg.port, version=cfg.version)

    @app.on_event("shutdown")
    async def stop() -> None:
        svc: Services = app.state.services
        log("info", "shutting down", signal=getattr(app.state, "exit_signal", "SIGTERM"))
        svc.faults.set("exhaust-pool", False, {})
        svc.redis.close()
        svc.db.dispose()
        svc.probes.shutdown(wait=False)

    return app


app = create_app()
