"""Deterministic seed data for an empty database (drill/src/seed.ts): users, wallets, traffic history,
an audit chain and transfers. The generator and the order of draws are the TS drill's, so a fresh
Python stack holds the same users, usage, request logs and audit actions as a fresh TS one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from . import jsonjs
from .audit_chain import append_audit
from .db import Database, execute, rows
from .keys import ADMIN_EMAIL, TEST_USER_COUNT, hash_key, test_key
from .log import log

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
MODELS: list[tuple[str, str]] = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("claude-3-5-sonnet", "anthropic"),
    ("claude-3-haiku", "anthropic"),
    ("gemini-1.5-pro", "google"),
]
AUDIT_ACTIONS = ["user_created", "wallet_topup", "settings_changed", "user_read", "data_export", "transfer_approved"]
SEED = 20260220

DEFAULT_SETTINGS: dict[str, Any] = {
    "cache_only_mode": False,
    "maintenance_mode": False,
    "cache_similarity_threshold": 0.9,
    "disabled_providers": [],
    "reason": None,
}


def rng(seed: int) -> Callable[[], float]:
    """The TS drill's LCG: s = (s * 1664525 + 1013904223) mod 2^32, returned as s / 2^32."""
    state = seed & 0xFFFFFFFF

    def draw() -> float:
        nonlocal state
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        return state / 2**32

    return draw


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def sync_admin(db: Database, admin_key: str) -> None:
    """Keeps the bootstrap admin's stored hash in line with ADMIN_KEY."""
    if not admin_key:
        return
    db.query(
        "UPDATE users SET api_key_hash = :h, is_admin = true WHERE email = :e",
        {"h": hash_key(admin_key), "e": ADMIN_EMAIL},
    )


def seed_if_empty(db: Database, admin_key: str, now_ms: int) -> bool:
    with db.tx() as c:
        execute(c, "LOCK TABLE users IN EXCLUSIVE MODE")
        if rows(c, "SELECT count(*) AS n FROM users")[0]["n"] > 0:
            return False
        rand = rng(SEED)
        execute(
            c,
            """INSERT INTO users (id, email, api_key_hash, personal_quota, used_tokens, is_admin, created_at)
               VALUES (1, :email, :h, 10000000, 0, true, now() - interval '90 days')""",
            {"email": ADMIN_EMAIL, "h": hash_key(admin_key or "unset-admin-key")},
        )
        for n in range(1, TEST_USER_COUNT + 1):
            name = NAMES[n - 1] if n - 1 < len(NAMES) else f"user{n}"
            # The last test user sits exactly at its quota, for quota-exhaustion drills.
            quota = 20000 if n == TEST_USER_COUNT else 1000000
            used = 20000 if n == TEST_USER_COUNT else int(rand() * 50000)
            execute(
                c,
                """INSERT INTO users (id, email, api_key_hash, personal_quota, used_tokens, is_admin, created_at)
                   VALUES (:id, :email, :h, :quota, :used, false, now() - (:days || ' days')::interval)""",
                {"id": n + 1, "email": f"{name}@example.com", "h": hash_key(test_key(n)), "quota": quota,
                 "used": used, "days": str(30 + n)},
            )
        execute(c, "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))")
        execute(
            c,
            """INSERT INTO wallets (id, user_id, balance, hard_limit)
               SELECT id, id, CASE WHEN personal_quota <= used_tokens THEN 0 ELSE 50000 END, 100000
                 FROM users ORDER BY id""",
        )
        execute(c, "SELECT setval(pg_get_serial_sequence('wallets', 'id'), (SELECT max(id) FROM wallets))")

        req_ids: list[str] = []
        user_ids: list[int] = []
        amounts: list[int] = []
        models: list[str] = []
        providers: list[str] = []
        times: list[datetime] = []
        for i in range(300):
            model, provider = MODELS[int(rand() * len(MODELS))]
            req_ids.append(f"req_seed_{i:06x}")
            user_ids.append(2 + int(rand() * TEST_USER_COUNT))
            amounts.append(5 + int(rand() * 200))
            models.append(model)
            providers.append(provider)
            times.append(_from_ms(now_ms - int(rand() * 6 * 3600 * 1000)))
        execute(
            c,
            """INSERT INTO request_logs (request_id, user_id, amount, model, provider, status, created_at)
               SELECT * FROM unnest(CAST(:r AS text[]), CAST(:u AS bigint[]), CAST(:a AS bigint[]),
                                    CAST(:m AS text[]), CAST(:p AS text[]), CAST(:s AS text[]),
                                    CAST(:t AS timestamptz[]))""",
            {"r": req_ids, "u": user_ids, "a": amounts, "m": models, "p": providers,
             "s": ["completed"] * len(req_ids), "t": times},
        )

        for i in range(50):
            action = AUDIT_ACTIONS[int(rand() * len(AUDIT_ACTIONS))]
            target = 2 + int(rand() * TEST_USER_COUNT)
            if action == "wallet_topup":
                details: dict[str, Any] = {"amount": 100 * (1 + int(rand() * 50)), "reason": "monthly allowance"}
            elif action == "settings_changed":
                details = {"changed": {"cache_similarity_threshold": 0.9}, "reason": "tuning"}
            else:
                details = {"source": "seed", "note": f"{action} for user {target}"}
            append_audit(
                c,
                actor_user_id=1,
                action=action,
                target_type="wallet" if action == "wallet_topup" else "user",
                target_id=target,
                details=details,
                created_at=_from_ms(now_ms - (50 - i) * 3600 * 1000),
            )

        for i in range(20):
            sender = 2 + (i % TEST_USER_COUNT)
            recipient = 2 + ((i + 3) % TEST_USER_COUNT)
            status = "applied" if i < 15 else "pending" if i < 18 else "failed"
            created = _from_ms(now_ms - (20 - i) * 1800 * 1000)
            t = rows(
                c,
                """INSERT INTO token_transfers (sender_id, recipient_id, amount, status, created_at, applied_at)
                   VALUES (:s, :r, :a, :st, :c, :ap) RETURNING id""",
                {"s": sender, "r": recipient, "a": 100 + i * 10, "st": status, "c": created,
                 "ap": created + timedelta(seconds=5) if status == "applied" else None},
            )
            if i % 4 == 0:
                execute(
                    c,
                    "INSERT INTO approval_requests (transfer_id, status, created_at) VALUES (:t, :s, :c)",
                    {"t": t[0]["id"], "s": "approved" if status == "applied" else "pending", "c": created},
                )
        execute(
            c,
            "INSERT INTO governance_settings (id, settings) VALUES (1, CAST(:s AS jsonb)) ON CONFLICT (id) DO NOTHING",
            {"s": jsonjs.dumps(DEFAULT_SETTINGS)},
        )
        log("info", "seeded drill data", users=TEST_USER_COUNT + 1, request_logs=300, audit_logs=50, token_transfers=20)
        return True
