"""Local stand-ins for the upstream LLM providers: deterministic answers, breakable by a drill fault
(drill/src/providers.ts)."""
from __future__ import annotations

import math
import random
import re
import time
from typing import Optional

from .jsonjs import js_number
from .metrics import js_round

_ARITHMETIC = re.compile(r"(-?\d+(?:\.\d+)?)\s*([+\-*/x×])\s*(-?\d+(?:\.\d+)?)", re.ASCII)
_PING = re.compile(r"^\s*ping\s*$", re.IGNORECASE)

#: The models each provider lists on its own /v1/models endpoint (served under /upstream/).
UPSTREAM_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4o", "gpt-4o-mini"],
    "anthropic": ["claude-3-5-sonnet", "claude-3-haiku"],
    "google": ["gemini-1.5-pro", "gemini-1.5-flash"],
}


class ProviderError(Exception):
    def __init__(self, provider: str, status: int):
        super().__init__(f"{provider} returned {status}")
        self.provider = provider
        self.status = status


def provider_for_model(model: str) -> Optional[str]:
    if model.startswith(("gpt-", "o1", "o3")):
        return "openai"
    if model.startswith("claude-"):
        return "anthropic"
    if model.startswith("gemini-"):
        return "google"
    return None


def fake_answer(prompt: str) -> str:
    """Answers simple arithmetic ("What is 2+2?" → "4"); echoes anything else."""
    m = _ARITHMETIC.search(prompt)
    if m:
        a, op, b = float(m.group(1)), m.group(2), float(m.group(3))
        r: float
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "/":
            r = math.nan if b == 0 else a / b
        else:
            r = a * b
        if math.isfinite(r):
            return js_number(js_round(r * 1e6) / 1e6)
    if _PING.match(prompt):
        return "pong"
    return f"Echo: {prompt[:2000]}"


def call_provider(provider: str, prompt: str, failing: bool) -> str:
    """One upstream call. A failing provider answers 502 after a short delay, as a gateway timeout would."""
    if failing:
        time.sleep((40 + random.randrange(40)) / 1000)
        raise ProviderError(provider, 502)
    time.sleep((3 + random.randrange(12)) / 1000)
    return fake_answer(prompt)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text.split()) * 1.3))
