"""One logfmt line per event on stdout, the format the playbooks and the engine grep
(``status=429``, ``client_ip=``, ``msg="auth failed" reason=…``); see drill/src/log.ts."""
from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any, Mapping, Optional

from .jsonjs import js_number

_NEEDS_QUOTES = re.compile(r'[\s"=\\\ufeff]')
_lock = threading.Lock()
_base: dict[str, Any] = {}


def _format_value(value: Any) -> str:
    if value is None:
        s = "null"
    elif value is True:
        s = "true"
    elif value is False:
        s = "false"
    elif isinstance(value, (int, float)):
        s = js_number(value)
    else:
        s = str(value)
    if s == "" or _NEEDS_QUOTES.search(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return s


def logfmt(fields: Mapping[str, Any]) -> str:
    """Fields whose value is ``UNSET`` (JS undefined) are left out; None prints as null."""
    return " ".join(f"{k}={_format_value(v)}" for k, v in fields.items() if v is not UNSET)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: A field left out of the line, as the TS drill leaves out `undefined` values.
UNSET: Any = _Unset()


def now_iso() -> str:
    t = time.time()
    ms = int(t * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"


def set_log_base(**fields: Any) -> None:
    """Fields added to every line (the process role)."""
    _base.clear()
    _base.update(fields)


def log(level: str, msg: Optional[str] = None, **fields: Any) -> None:
    line = logfmt({"ts": now_iso(), "level": level, **_base, "msg": UNSET if msg is None else msg, **fields})
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


_URL = re.compile(r"(postgres(ql)?(\+\w+)?|redis|rediss)://[^\s'\"]+")
_BACKGROUND = re.compile(r"\(Background on this error at:[^)]*\)")


def err_text(err: BaseException | str) -> str:
    """``<qualified class>: <message>`` on one line, at most 300 characters, never a connection string.

    The qualified class name is what the playbooks grep for (``sqlalchemy.exc.OperationalError``,
    ``redis.exceptions.ConnectionError``).
    """
    if isinstance(err, BaseException):
        cls = type(err)
        module = cls.__module__
        name = cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
        message = str(err)
        if getattr(err, "log_message_only", False):
            raw = message
        else:
            raw = f"{name}: {message}" if message else name
    else:
        raw = str(err)
    raw = _BACKGROUND.sub("", raw)
    raw = _URL.sub(lambda m: m.group(0).split("://", 1)[0] + "://***", raw)
    return re.sub(r"\s+", " ", raw).strip()[:300]
