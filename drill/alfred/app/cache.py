"""Semantic response cache in Redis (drill/src/cache.ts): ``alfred:cache:<sha256(normalised prompt)>``
holds {prompt, response, model, created_at}. A lookup tries the exact key, then compares token-set
Jaccard similarity against a bounded scan of cached prompts and serves the best one at or above the
configured threshold. Keys are the TS drill's, so the fault injector's poisoned entries are found."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Optional

from . import jsonjs
from .log import now_iso
from .redis_conn import RedisConn

CACHE_PREFIX = "alfred:cache:"
FILL_PREFIX = "alfred:cache:fill:"
SCAN_LIMIT = 500
TTL_SECONDS = 3600

_NOT_TOKEN = re.compile(r"[^a-z0-9+\-*/.\s]")
_TRAILING_DOT = re.compile(r"\.(?=\s|$)")
_SPACES = re.compile(r"\s+")


def normalise_prompt(prompt: str) -> str:
    s = _NOT_TOKEN.sub(" ", prompt.lower())
    s = _TRAILING_DOT.sub(" ", s)
    return _SPACES.sub(" ", s).strip()


def cache_key(prompt: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(normalise_prompt(prompt).encode("utf-8")).hexdigest()


def jaccard(a: str, b: str) -> float:
    x = {t for t in normalise_prompt(a).split(" ") if t}
    y = {t for t in normalise_prompt(b).split(" ") if t}
    if not x and not y:
        return 1
    inter = len(x & y)
    return inter / (len(x) + len(y) - inter)


def _parse(raw: Optional[bytes]) -> Optional[dict[str, Any]]:
    if not raw:
        return None
    try:
        v = jsonjs.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if isinstance(v, dict) and isinstance(v.get("prompt"), str) and isinstance(v.get("response"), str):
        return v
    return None


@dataclass
class CacheHit:
    key: str
    entry: dict[str, Any]
    similarity: float


def cache_lookup(conn: RedisConn, prompt: str, threshold: float) -> Optional[CacheHit]:
    if not conn.ready:
        return None

    def lookup(r: Any) -> Optional[CacheHit]:
        exact_key = cache_key(prompt)
        exact = _parse(r.get(exact_key))
        if exact:
            return CacheHit(exact_key, exact, 1)
        best: Optional[CacheHit] = None
        cursor = 0
        examined = 0
        while True:
            cursor, keys = r.scan(cursor, match=f"{CACHE_PREFIX}*", count=200)
            names = [k.decode() for k in keys]
            candidates = [k for k in names if not k.startswith(FILL_PREFIX)][: SCAN_LIMIT - examined]
            examined += len(candidates)
            if candidates:
                for key, raw in zip(candidates, r.mget(candidates)):
                    entry = _parse(raw)
                    if not entry:
                        continue
                    similarity = jaccard(prompt, entry["prompt"])
                    if similarity >= threshold and (best is None or similarity > best.similarity):
                        best = CacheHit(key, entry, similarity)
            if cursor == 0 or examined >= SCAN_LIMIT:
                return best

    return conn.call(lookup)  # type: ignore[return-value]


def cache_store(conn: RedisConn, prompt: str, response: str, model: str) -> None:
    if not conn.ready:
        return
    entry = {"prompt": prompt, "response": response, "model": model, "created_at": now_iso()}
    conn.call(lambda r: r.set(cache_key(prompt), jsonjs.dumps(entry), ex=TTL_SECONDS))
