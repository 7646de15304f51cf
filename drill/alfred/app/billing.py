"""Billing periods (drill/src/billing.ts): usage (``users.used_tokens``) counts per calendar month (UTC)
and is zeroed for every non-admin user when a period starts. Each reset is recorded once per period in
``billing_resets`` (period_start is unique), so a second reset of the same period changes nothing and
says so. The api's cron runs the reset at period start unless ``billing_settings.cron_enabled`` is off,
which is how a reset gets missed (INC-07); ``app.wallet_reset.wallet_reset_cron`` is the manual way."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Literal, Optional

from sqlalchemy.engine import Connection

from .audit_chain import append_audit
from .db import Database, execute, rows
from .jsonjs import iso_ms
from .log import log

#: Serialises resets, the cron and the fault injector's edits of the billing tables.
BILLING_LOCK = 7_402_377
#: How often the cron looks for a period whose reset has not run: at most this late after period start.
CRON_INTERVAL_S = 30

Trigger = Literal["cron", "manual"]


def period_start(at: datetime) -> str:
    """First day (YYYY-MM-DD) of the calendar month, UTC, that contains ``at``."""
    at = at.astimezone(timezone.utc)
    return date(at.year, at.month, 1).isoformat()


def read_billing_status(conn: Connection, now: Optional[datetime] = None) -> dict[str, Any]:
    period = period_start(now or datetime.now(timezone.utc))
    last = rows(conn, "SELECT period_start::text AS period_start, ran_at FROM billing_resets ORDER BY period_start DESC LIMIT 1")
    cron = rows(conn, "SELECT cron_enabled FROM billing_settings WHERE id = 1")
    row = last[0] if last else None
    return {
        "period_start": period,
        "last_reset_period_start": row["period_start"] if row else None,
        "last_reset_at": iso_ms(row["ran_at"]) if row else None,
        # YYYY-MM-DD strings order as the dates do.
        "reset_due": row is None or row["period_start"] < period,
        "cron_enabled": not (cron and cron[0]["cron_enabled"] is False),
    }


def reset_period(conn: Connection, period: str, trigger: Trigger, actor_user_id: Optional[str]) -> dict[str, Any]:
    """Resets usage for ``period`` once: the billing_resets row is claimed first, so a second call (or a
    cron tick racing a manual reset) finds it and changes nothing."""
    execute(conn, "SELECT pg_advisory_xact_lock(:k)", {"k": BILLING_LOCK})
    claim = rows(
        conn,
        """INSERT INTO billing_resets (period_start, users_reset, trigger) VALUES (CAST(:p AS date), 0, :t)
           ON CONFLICT (period_start) DO NOTHING RETURNING id, ran_at""",
        {"p": period, "t": trigger},
    )
    if not claim:
        prior = rows(conn, "SELECT users_reset, ran_at FROM billing_resets WHERE period_start = CAST(:p AS date)", {"p": period})
        p = prior[0] if prior else None
        return {
            "period_start": period,
            "users_reset": p["users_reset"] if p else 0,
            "idempotent": True,
            "ran_at": iso_ms(p["ran_at"] if p else datetime.now(timezone.utc)),
        }
    count = execute(conn, "UPDATE users SET used_tokens = 0 WHERE NOT is_admin")
    execute(conn, "UPDATE billing_resets SET users_reset = :n WHERE id = :id", {"n": count, "id": claim[0]["id"]})
    append_audit(
        conn,
        actor_user_id=actor_user_id,
        action="billing_reset",
        target_type="billing_period",
        target_id=period,
        details={"trigger": trigger, "users_reset": count},
    )
    log("info", "billing reset", period_start=period, trigger=trigger, users_reset=count)
    return {"period_start": period, "users_reset": count, "idempotent": False, "ran_at": iso_ms(claim[0]["ran_at"])}


def billing_cron_tick(db: Database, now: Optional[datetime] = None) -> Optional[dict[str, Any]]:
    """One cron tick: resets the current period if its reset has not run and the cron is on."""
    now = now or datetime.now(timezone.utc)
    with db.tx() as conn:
        execute(conn, "SELECT pg_advisory_xact_lock(:k)", {"k": BILLING_LOCK})
        status = read_billing_status(conn, now)
        if not status["cron_enabled"] or not status["reset_due"]:
            return None
        return reset_period(conn, period_start(now), "cron", None)


def manual_reset(db: Database, actor_user_id: Optional[str]) -> dict[str, Any]:
    """The reset of the running period that an operator asks for (it ignores the cron switch)."""
    with db.tx() as conn:
        return reset_period(conn, period_start(datetime.now(timezone.utc)), "manual", actor_user_id)
