"""The manual wallet (billing) reset of seed 002, INC-07: "Billing reset didn't run? → Trigger manual
wallet reset":

    docker compose exec api python -c "from app.wallet_reset import wallet_reset_cron; import asyncio; asyncio.run(wallet_reset_cron())"

It does what ``POST /v1/admin/billing/reset`` does: zeroes the usage of every non-admin user for the
current calendar month (UTC), once per period (a repeat changes nothing and says so), records the reset
in ``billing_resets`` and appends a ``billing_reset`` entry to the audit chain. It runs whether or not
the in-process cron is switched on, since it is what an operator does when the cron did not run.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, Optional

from .billing import manual_reset
from .config import load_config
from .db import Database
from .log import log, set_log_base


def _run(database_url: Optional[str]) -> dict[str, Any]:
    cfg = load_config("api")
    db = Database(database_url or cfg.database_url, 1, "alfred-wallet-reset")
    try:
        result = manual_reset(db, None)
    finally:
        db.dispose()
    if result["idempotent"]:
        log("info", "billing reset already done for this period", period_start=result["period_start"],
            users_reset=result["users_reset"])
    return result


async def wallet_reset_cron(database_url: Optional[str] = None) -> dict[str, Any]:
    """Resets the current billing period (idempotent); returns {period_start, users_reset, idempotent, ran_at}."""
    if not os.environ.get("APP_ROLE"):
        set_log_base(role="api")
    return await asyncio.to_thread(_run, database_url)
