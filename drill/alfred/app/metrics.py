"""In-process metrics: Prometheus text for /metrics (written by hand, as drill/src/metrics.ts does) and a
300 s sliding window for the SLA endpoint. Requests are served from a thread pool, so every update
takes the lock."""
from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Mapping

from .db import PoolStats
from .jsonjs import js_number

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "google")
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
WINDOW_SECONDS = 300
WINDOW_CAP = 200_000


def js_round(n: float, digits: int = 0) -> float:
    """``Math.round(n * 10 ** d) / 10 ** d``: halves round up, as in JS (Python's round() is banker's)."""
    scale = 10**digits
    return math.floor(n * scale + 0.5) / scale


def _labels(obj: Mapping[str, str]) -> str:
    parts = [f'{k}="' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for k, v in obj.items()]
    return "{" + ",".join(parts) + "}" if parts else ""


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0
    idx = min(len(sorted_values) - 1, max(0, math.ceil((p / 100) * len(sorted_values)) - 1))
    return sorted_values[idx]


def resident_memory_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class _Sample:
    t: float
    value: Any
    extra: Any = None


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http_total: dict[str, int] = {}
        self._hist_counts = [0] * len(BUCKETS)
        self._hist_sum = 0.0
        self._hist_count = 0
        self._provider_total: dict[str, int] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.rate_limited = 0
        self._requests: Deque[_Sample] = deque(maxlen=WINDOW_CAP)
        self._provider_samples: Deque[_Sample] = deque(maxlen=WINDOW_CAP)
        self._cache_samples: Deque[_Sample] = deque(maxlen=WINDOW_CAP)

    def record_http(self, path: str, status: int, ms: float, window: bool) -> None:
        """``window`` is False for monitoring traffic (health, metrics, drill hooks) that is not user load."""
        key = f"{path}\u0000{status}"
        seconds = ms / 1000
        with self._lock:
            self._http_total[key] = self._http_total.get(key, 0) + 1
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    self._hist_counts[i] += 1
            self._hist_sum += seconds
            self._hist_count += 1
            if window:
                self._requests.append(_Sample(time.time(), ms, status))

    def record_provider(self, provider: str, ok: bool) -> None:
        key = f"{provider}\u0000{'success' if ok else 'error'}"
        with self._lock:
            self._provider_total[key] = self._provider_total.get(key, 0) + 1
            self._provider_samples.append(_Sample(time.time(), provider, ok))

    def record_cache(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.cache_misses += 1
            self._cache_samples.append(_Sample(time.time(), hit))

    def record_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def sla(self) -> dict[str, Any]:
        since = time.time() - WINDOW_SECONDS
        with self._lock:
            for samples in (self._requests, self._provider_samples, self._cache_samples):
                while samples and samples[0].t < since:
                    samples.popleft()
            requests = list(self._requests)
            providers = list(self._provider_samples)
            cache = list(self._cache_samples)
        latencies = sorted(r.value for r in requests)
        errors = sum(1 for r in requests if r.extra >= 500)
        rates: dict[str, float] = {}
        for p in PROVIDERS:
            calls = [s for s in providers if s.value == p]
            failed = sum(1 for s in calls if not s.extra)
            rates[p] = js_round(failed / len(calls) * 100, 2) if calls else 0
        hits = sum(1 for s in cache if s.value)
        return {
            "p95_latency_ms": js_round(_percentile(latencies, 95), 2),
            "p99_latency_ms": js_round(_percentile(latencies, 99), 2),
            "error_rate_pct": js_round(errors / len(requests) * 100, 2) if requests else 0,
            "provider_error_rates": rates,
            "provider_error_rate_pct": max([0, *rates.values()]),
            "cache_hit_rate_pct": js_round(hits / len(cache) * 100, 2) if cache else 0,
            "request_count": len(requests),
            "window_seconds": WINDOW_SECONDS,
        }

    def prometheus(self, *, version: str, pool: PoolStats, dependencies: Mapping[str, bool]) -> str:
        out: list[str] = []

        def gauge(name: str, help_text: str, value: float, lbl: Mapping[str, str] | None = None) -> None:
            out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{_labels(lbl or {})} {js_number(value)}"])

        gauge("alfred_db_pool_total", "Connections open in the database pool.", pool.total)
        gauge("alfred_db_pool_idle", "Idle connections in the database pool.", pool.idle)
        gauge("alfred_db_pool_waiting", "Requests waiting for a database connection.", pool.waiting)
        gauge("alfred_db_pool_max", "Maximum size of the database pool.", pool.max)
        out.append("# HELP alfred_dependency_up Whether the api reaches a dependency (the same checks as /health).")
        out.append("# TYPE alfred_dependency_up gauge")
        for dependency, up in dependencies.items():
            out.append(f"alfred_dependency_up{_labels({'dependency': dependency})} {1 if up else 0}")
        with self._lock:
            http_total = sorted(self._http_total.items(), key=lambda kv: kv[0].encode("utf-16-be", "surrogatepass"))
            hist_counts = list(self._hist_counts)
            hist_sum, hist_count = self._hist_sum, self._hist_count
            provider_total = dict(self._provider_total)
            hits, misses, limited = self.cache_hits, self.cache_misses, self.rate_limited
        out.append("# HELP alfred_http_requests_total HTTP requests by route and status.")
        out.append("# TYPE alfred_http_requests_total counter")
        for key, n in http_total:
            path, status = key.split("\u0000")
            out.append(f"alfred_http_requests_total{_labels({'path': path, 'status': status})} {n}")
        out.append("# HELP alfred_http_request_duration_seconds HTTP request latency.")
        out.append("# TYPE alfred_http_request_duration_seconds histogram")
        for b, count in zip(BUCKETS, hist_counts):
            out.append(f'alfred_http_request_duration_seconds_bucket{{le="{js_number(b)}"}} {count}')
        out.append(f'alfred_http_request_duration_seconds_bucket{{le="+Inf"}} {hist_count}')
        out.append(f"alfred_http_request_duration_seconds_sum {js_number(js_round(hist_sum, 6))}")
        out.append(f"alfred_http_request_duration_seconds_count {hist_count}")
        out.append("# HELP alfred_provider_requests_total Upstream provider calls by result.")
        out.append("# TYPE alfred_provider_requests_total counter")
        for p in PROVIDERS:
            for result in ("success", "error"):
                n = provider_total.get(f"{p}\u0000{result}", 0)
                out.append(f"alfred_provider_requests_total{_labels({'provider': p, 'result': result})} {n}")

        def counter(name: str, help_text: str, value: int) -> None:
            out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"])

        counter("alfred_cache_hits_total", "Semantic cache hits.", hits)
        counter("alfred_cache_misses_total", "Semantic cache misses.", misses)
        counter("alfred_rate_limited_total", "Requests refused by the rate limiter.", limited)
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", resident_memory_bytes())
        gauge("alfred_build_info", "Build information.", 1, {"version": version})
        return "\n".join(out) + "\n"
