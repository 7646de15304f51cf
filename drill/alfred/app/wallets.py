"""Wallets and the ledger: wallet reads, capped top-ups (idempotent by key), refunds (one per charge,
referencing it) and token transfers queued for the worker (drill/src/api.ts)."""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy.exc
from fastapi import APIRouter, Depends

from .audit_chain import append_audit
from .auth import auth_admin, auth_user, require_schema
from .db import execute, rows
from .governance import BUMP_SQL
from .http import Ctx, HttpError, id_param, is_integer, json_response, opt_number, opt_string, req_string, request_ctx
from .jobs import enqueue_transfer, new_job_id
from .jsonjs import iso_ms
from .log import err_text, log
from .redis_conn import is_redis_connection_error
from .services import services

TOPUP_CAP = 10000
_ID = re.compile(r"^[1-9][0-9]{0,17}$")

router = APIRouter()


@router.get("/v1/wallets/{id}")
def get_wallet(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    auth_admin(svc, ctx)
    require_schema(svc)
    wallet_id = id_param(ctx.params, "id")
    found = svc.db.query(
        "SELECT id::int, user_id::int, balance::int, hard_limit::int, updated_at FROM wallets WHERE id = CAST(:id AS bigint)",
        {"id": wallet_id},
    )
    if not found:
        raise HttpError(404, "wallet not found")
    return {**found[0], "updated_at": iso_ms(found[0]["updated_at"])}


@router.post("/v1/wallets/{id}/topup")
def topup(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    wallet_id = id_param(ctx.params, "id")
    body = ctx.body()
    amount = opt_number(body, "amount")
    if amount is None or not is_integer(amount) or amount <= 0:
        raise HttpError(400, "amount must be a positive integer")
    if amount > TOPUP_CAP:
        raise HttpError(400, f"amount exceeds the top-up cap of {TOPUP_CAP}", {"cap": TOPUP_CAP})
    amount = int(amount)
    reason = req_string(body, "reason")
    idem = opt_string(body, "idempotency_key", 200)
    with svc.db.tx() as c:
        w = rows(c, "SELECT user_id::text AS user_id FROM wallets WHERE id = CAST(:id AS bigint) FOR UPDATE", {"id": wallet_id})
        if not w:
            raise HttpError(404, "wallet not found")
        if idem:
            prior = rows(c, "SELECT id FROM wallet_topups WHERE idempotency_key = :k", {"k": idem})
            if prior:
                bal = rows(c, "SELECT balance FROM wallets WHERE id = CAST(:id AS bigint)", {"id": wallet_id})
                return {"wallet_id": int(wallet_id), "topup_id": prior[0]["id"],
                        "balance": bal[0]["balance"] if bal else None, "idempotent": True}
        t = rows(
            c,
            """INSERT INTO wallet_topups (wallet_id, amount, reason, idempotency_key)
               VALUES (CAST(:w AS bigint), :a, :r, :k) RETURNING id""",
            {"w": wallet_id, "a": amount, "r": reason, "k": idem},
        )
        bal = rows(
            c,
            "UPDATE wallets SET balance = balance + :a, updated_at = now() WHERE id = CAST(:id AS bigint) RETURNING balance",
            {"id": wallet_id, "a": amount},
        )
        execute(c, "UPDATE users SET personal_quota = personal_quota + :a WHERE id = CAST(:u AS bigint)",
                {"u": w[0]["user_id"], "a": amount})
        append_audit(c, actor_user_id=actor.id, action="wallet_topup", target_type="wallet", target_id=wallet_id,
                     details={"amount": amount, "reason": reason})
        execute(c, BUMP_SQL, {"n": "topups"})
        return {"wallet_id": int(wallet_id), "topup_id": t[0]["id"], "balance": bal[0]["balance"] if bal else None,
                "idempotent": False}


@router.post("/v1/admin/refunds")
def refund(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    actor = auth_admin(svc, ctx)
    require_schema(svc)
    body = ctx.body()
    raw_id = body.get("request_log_id")
    original_id = str(raw_id) if isinstance(raw_id, str) or (isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool)) else ""
    if isinstance(raw_id, float) and raw_id.is_integer():
        original_id = str(int(raw_id))
    if not _ID.match(original_id):
        raise HttpError(400, "request_log_id must be the id of the charged request_logs row")
    reason = req_string(body, "reason")
    try:
        with svc.db.tx() as c:
            o = rows(
                c,
                """SELECT id::text AS id, user_id::text AS user_id, amount, refund_of, model, provider
                     FROM request_logs WHERE id = CAST(:id AS bigint) FOR UPDATE""",
                {"id": original_id},
            )
            if not o:
                raise HttpError(404, "request log not found")
            orig = o[0]
            if orig["refund_of"] is not None or orig["amount"] <= 0:
                raise HttpError(400, "only a deduction can be refunded")
            prior = rows(c, "SELECT id FROM request_logs WHERE refund_of = CAST(:id AS bigint)", {"id": original_id})
            if prior:
                return {"refund_id": prior[0]["id"], "refund_of": int(original_id), "idempotent": True}
            amount = int(orig["amount"])
            ins = rows(
                c,
                """INSERT INTO request_logs (request_id, user_id, amount, refund_of, model, provider, status)
                   VALUES (:r, CAST(:u AS bigint), :a, CAST(:o AS bigint), :m, :p, 'refunded') RETURNING id""",
                {"r": f"refund_{original_id}", "u": orig["user_id"], "a": -amount, "o": original_id,
                 "m": orig["model"], "p": orig["provider"]},
            )
            execute(c, "UPDATE wallets SET balance = balance + :a, updated_at = now() WHERE user_id = CAST(:u AS bigint)",
                    {"u": orig["user_id"], "a": amount})
            execute(c, "UPDATE users SET used_tokens = GREATEST(0, used_tokens - :a) WHERE id = CAST(:u AS bigint)",
                    {"u": orig["user_id"], "a": amount})
            append_audit(c, actor_user_id=actor.id, action="refund_issued", target_type="request_log",
                         target_id=original_id, details={"amount": amount, "reason": reason, "user_id": orig["user_id"]})
            execute(c, BUMP_SQL, {"n": "refunds"})
            return {"refund_id": ins[0]["id"], "refund_of": int(original_id), "amount": -amount, "idempotent": False}
    except sqlalchemy.exc.IntegrityError as exc:
        # Two concurrent refunds of the same charge: the unique index lets only one through.
        if getattr(exc.orig, "pgcode", None) != "23505":
            raise
        prior = svc.db.query("SELECT id FROM request_logs WHERE refund_of = CAST(:id AS bigint)", {"id": original_id})
        return {"refund_id": prior[0]["id"] if prior else None, "refund_of": int(original_id), "idempotent": True}


@router.post("/v1/transfers")
def create_transfer(ctx: Ctx = Depends(request_ctx)) -> Any:
    svc = services(ctx.request)
    if svc.gov.settings["maintenance_mode"]:
        raise HttpError(503, "maintenance mode: writes are paused")
    user = auth_user(svc, ctx)
    body = ctx.body()
    recipient = opt_number(body, "recipient_id")
    amount = opt_number(body, "amount")
    if not recipient or not is_integer(recipient):
        raise HttpError(400, "recipient_id must be a user id")
    if not amount or not is_integer(amount) or amount <= 0 or amount > TOPUP_CAP:
        raise HttpError(400, f"amount must be 1..{TOPUP_CAP}")
    found = svc.db.query(
        """INSERT INTO token_transfers (sender_id, recipient_id, amount)
           SELECT CAST(:s AS bigint), id, :a FROM users WHERE id = :r RETURNING id""",
        {"s": user.id, "r": int(recipient), "a": int(amount)},
    )
    if not found:
        raise HttpError(404, "recipient not found")
    transfer_id = int(found[0]["id"])
    job_id = new_job_id()
    try:
        client = svc.redis.require()
        enqueue_transfer(client, transfer_id, job_id)
    except Exception as exc:  # noqa: BLE001 - the transfer stays pending; the queue-backlog runbook finds it
        if is_redis_connection_error(exc) and svc.redis.ready:
            svc.redis.mark_down(exc)
        log("error", "enqueue failed", err=err_text(exc), transfer_id=str(transfer_id))
    return json_response(202, {"transfer_id": transfer_id, "status": "pending", "job_id": job_id})
