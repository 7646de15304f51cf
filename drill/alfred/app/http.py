"""Request context, typed HTTP errors and body field helpers (drill/src/http.ts).

Bodies are read as bytes by the request context and parsed only when a handler asks, so the order of
checks is the TS drill's: a bad key answers 401 before a malformed body answers 400.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from fastapi import Request

from . import jsonjs

MAX_BODY = 1024 * 1024
_IP_LIKE = re.compile(r"^[0-9a-fA-F:.]{2,45}$")
_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_REQUEST_ID = re.compile(r"^[\w.:-]{1,100}$", re.ASCII)


class HttpError(Exception):
    def __init__(self, status: int, message: str, extra: Optional[Mapping[str, Any]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})


@dataclass
class RequestState:
    """What the middleware knows about a request before and after its handler ran."""

    method: str
    path: str
    client_ip: str
    request_id: str
    route: str = "unmatched"
    #: Extra fields for this request's log line (user_id, provider), in the order they were set.
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    request: Request
    state: RequestState
    raw_body: bytes
    body_too_large: bool

    @property
    def method(self) -> str:
        return self.state.method

    @property
    def path(self) -> str:
        return self.state.path

    @property
    def client_ip(self) -> str:
        return self.state.client_ip

    @property
    def request_id(self) -> str:
        return self.state.request_id

    @property
    def log_fields(self) -> dict[str, Any]:
        return self.state.log_fields

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    def header(self, name: str) -> Optional[str]:
        return self.request.headers.get(name)

    def query(self, name: str) -> Optional[str]:
        return self.request.query_params.get(name)

    def body(self) -> dict[str, Any]:
        """The JSON object body ({} when empty); 400/413 as the TS drill answers them."""
        if self.body_too_large:
            raise HttpError(413, "request body too large")
        text = self.raw_body.decode("utf-8", errors="replace").strip()
        if not text:
            return {}
        try:
            parsed = jsonjs.loads(text)
        except ValueError:
            raise HttpError(400, "request body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise HttpError(400, "request body must be a JSON object")
        return parsed

    def body_or_empty(self) -> dict[str, Any]:
        """``ctx.body().catch(() => ({}))``: endpoints whose body is optional."""
        try:
            return self.body()
        except HttpError:
            return {}


def request_id_from(header: Optional[str], fallback: str) -> str:
    return header if header is not None and _REQUEST_ID.match(header) else fallback


def client_ip(forwarded_for: Optional[str], socket_ip: Optional[str]) -> str:
    """X-Forwarded-For's first address, else the socket's; IPv4-mapped IPv6 is shown as IPv4."""
    first = forwarded_for.split(",")[0].strip() if forwarded_for else ""
    ip = first if first and _IP_LIKE.match(first) else (socket_ip or "unknown")
    return ip[7:] if ip.startswith("::ffff:") else ip


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# Body field helpers: validate and narrow, or answer 400 (JS typeof semantics: a bool is no number).
def opt_string(body: Mapping[str, Any], key: str, max_len: int = 500) -> Optional[str]:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v.encode("utf-16-le")) // 2 > max_len:
        raise HttpError(400, f"{key} must be a string of at most {max_len} characters")
    return v


def req_string(body: Mapping[str, Any], key: str, max_len: int = 500) -> str:
    v = opt_string(body, key, max_len)
    if not v:
        raise HttpError(400, f"{key} is required")
    return v


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def opt_number(body: Mapping[str, Any], key: str) -> Optional[float | int]:
    v = body.get(key)
    if v is None:
        return None
    if not is_number(v) or (isinstance(v, float) and (v != v or v in (float("inf"), float("-inf")))):
        raise HttpError(400, f"{key} must be a number")
    return v


def is_integer(v: Any) -> bool:
    return is_number(v) and float(v).is_integer()


def opt_bool(body: Mapping[str, Any], key: str) -> Optional[bool]:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise HttpError(400, f"{key} must be true or false")
    return v


def id_param(params: Mapping[str, str], key: str) -> str:
    v = params.get(key, "")
    if not _ID.match(v):
        raise HttpError(400, f"{key} must be a positive integer")
    return v


# ---------- FastAPI glue ----------
from starlette.responses import JSONResponse, Response  # noqa: E402


class JsJSONResponse(JSONResponse):
    """JSON bodies as the TS drill's JSON.stringify writes them (see jsonjs)."""

    def render(self, content: Any) -> bytes:
        return jsonjs.dumps(content).encode("utf-8")


def json_response(status: int, body: Any, headers: Optional[Mapping[str, str]] = None) -> Response:
    return JsJSONResponse(body, status_code=status, headers=dict(headers or {}))


def route_pattern(path_format: str) -> str:
    """A route's pattern as the TS drill labels it in metrics (``/v1/wallets/:id``)."""
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", r":\1", path_format)


def request_state(request: Request) -> RequestState:
    return request.scope["state"]["alfred"]


async def request_ctx(request: Request) -> Ctx:
    """The dependency every handler takes: the matched route, the request's state and its body bytes."""
    state = request_state(request)
    route = request.scope.get("route")
    if route is not None:
        state.route = route_pattern(getattr(route, "path_format", route.path))
    chunks: list[bytes] = []
    size = 0
    too_large = False
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            too_large = True
            break
        chunks.append(chunk)
    return Ctx(request=request, state=state, raw_body=b"".join(chunks), body_too_large=too_large)
