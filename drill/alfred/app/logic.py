"""Chat completions: the gateway's pipeline and the charge it writes (drill/src/api.ts, in this order):
maintenance mode → 503; rate limit per client IP → 429; key → 401; body → 400; quota → 402; semantic
cache; cache-only mode and a miss → 503; the provider by model, failing over to the other enabled
providers (→ 502 when all fail); the charge in request_logs, users and wallets; the cache write."""
from __future__ import annotations

import time
from typing import Any, Optional

from . import jsonjs
from .auth import auth_user, bearer
from .cache import cache_lookup, cache_store
from .db import execute
from .hooks import log_pii
from .http import Ctx, HttpError, req_string
from .keys import key_id
from .log import err_text, log
from .metrics import PROVIDERS
from .providers import ProviderError, call_provider, count_tokens, provider_for_model
from .services import Services

MEM_LIMITER_MAX_KEYS = 10000


def rate_limited(svc: Services, ip: str) -> bool:
    """Per client IP and minute, in Redis (``alfred:ratelimit:<ip>:<minute>``), in memory while Redis is down."""
    minute = int(time.time() // 60)
    key = f"alfred:ratelimit:{ip}:{minute}"
    limit = svc.cfg.rate_limit_per_minute
    if svc.redis.ready:
        try:
            def incr(r: Any) -> int:
                with r.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 120)
                    return int(pipe.execute()[0])

            return int(svc.redis.call(incr)) > limit  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001
            log("warn", "rate limiter falling back to memory", err=err_text(exc))
    with svc.mem_limiter_lock:
        count = svc.mem_limiter.get(key, 0) + 1
        svc.mem_limiter[key] = count
        if len(svc.mem_limiter) > MEM_LIMITER_MAX_KEYS:
            svc.mem_limiter.clear()
    return count > limit


def _last_user_prompt(messages: list[Any]) -> Optional[str]:
    prompts = [
        m["content"] for m in messages
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
    ]
    return prompts[-1] if prompts else None


def chat_completion(svc: Services, ctx: Ctx) -> dict[str, Any]:
    gov = svc.gov.settings
    if gov["maintenance_mode"]:
        raise HttpError(503, "maintenance mode: writes are paused")
    if rate_limited(svc, ctx.client_ip):
        svc.metrics.record_rate_limited()
        log("warn", "rate limit exceeded", client_ip=ctx.client_ip, key_id=key_id(ctx.header("authorization")),
            limit_per_minute=svc.cfg.rate_limit_per_minute)
        raise HttpError(429, "rate limit exceeded", {"limit_per_minute": svc.cfg.rate_limit_per_minute})
    user = auth_user(svc, ctx)
    body = ctx.body()
    model = req_string(body, "model", 100)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "messages must be a non-empty list")
    prompt = _last_user_prompt(messages)
    if not prompt:
        raise HttpError(400, "messages must include a user message with string content")
    primary = provider_for_model(model)
    if primary is None:
        raise HttpError(400, f"unknown model {jsonjs.dumps(model[:40])}")
    ctx.log_fields["provider"] = primary
    if svc.cfg.bad_release:
        log("error", "unhandled exception in completion handler",
            err="AttributeError: 'NoneType' object has no attribute 'usage'")
        raise HttpError(500, "internal error")
    if user.used_tokens >= user.personal_quota:
        raise HttpError(402, "quota exhausted: personal quota reached", {"personal_quota": user.personal_quota})

    answer: Optional[str] = None
    served: Optional[str] = None
    cached = False
    try:
        hit = cache_lookup(svc.redis, prompt, gov["cache_similarity_threshold"])
        svc.metrics.record_cache(hit is not None)
        if hit:
            answer, served, cached = hit.entry["response"], "cache", True
    except Exception as exc:  # noqa: BLE001 - a broken cache is a miss
        svc.metrics.record_cache(False)
        log("warn", "cache lookup failed", err=err_text(exc))

    if answer is None:
        if gov["cache_only_mode"]:
            raise HttpError(503, "cache-only mode: no cached response for this prompt")
        disabled = gov["disabled_providers"]
        order = [p for p in [primary, *[p for p in PROVIDERS if p != primary]] if p not in disabled]
        if not order:
            raise HttpError(503, "every provider is disabled")
        failing = svc.faults.failing_providers()
        for provider in order:
            try:
                answer = call_provider(provider, prompt, bool(failing) and provider in failing["providers"])
                svc.metrics.record_provider(provider, True)
                served = provider
                break
            except ProviderError as err:
                svc.metrics.record_provider(provider, False)
                log("error", "provider error", provider=provider, status=err.status, model=model,
                    request_id=ctx.request_id)
                if failing and failing["no_failover"]:
                    break
        if answer is None or served is None:
            raise HttpError(502, "upstream provider error")
        if served != primary:
            log("warn", "provider failover", **{"from": primary}, to=served, request_id=ctx.request_id)
    ctx.log_fields["provider"] = served

    prompt_tokens = count_tokens(prompt)
    completion_tokens = count_tokens(answer)
    amount = 1 if cached else prompt_tokens + completion_tokens
    if svc.faults.active("cost-bug") and not cached:
        amount *= 2
        log("error", "credit_calc error: token multiplier applied twice", user_id=user.id, amount=amount,
            request_id=ctx.request_id)
    charge(svc, ctx.request_id, user.id, amount, model, served)
    if not cached:
        try:
            cache_store(svc.redis, prompt, answer, model)
        except Exception as exc:  # noqa: BLE001
            log("warn", "cache write failed", err=err_text(exc))
    if svc.faults.active("pii-in-logs"):
        log_pii(user.email, 0, bearer(ctx))
    return {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": served,
        "cached": cached,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def charge(svc: Services, request_id: str, user_id: str, amount: int, model: str, provider: str) -> None:
    """One deduction: the request_logs row, the user's usage and the wallet balance, in one transaction."""
    with svc.db.tx() as c:
        execute(
            c,
            """INSERT INTO request_logs (request_id, user_id, amount, model, provider, status)
               VALUES (:r, CAST(:u AS bigint), :a, :m, :p, 'completed')""",
            {"r": request_id, "u": user_id, "a": amount, "m": model, "p": provider},
        )
        execute(c, "UPDATE users SET used_tokens = used_tokens + :a WHERE id = CAST(:u AS bigint)", {"u": user_id, "a": amount})
        execute(c, "UPDATE wallets SET balance = balance - :a, updated_at = now() WHERE user_id = CAST(:u AS bigint)",
                {"u": user_id, "a": amount})
