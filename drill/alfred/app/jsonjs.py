"""JSON written exactly as JavaScript's ``JSON.stringify`` writes it.

Two consumers need this byte for byte: the audit chain, whose hash covers the serialised content
(rows written by the TS drill, by this service and by the TS fault injector must all verify), and the
HTTP API, whose bodies the engine and the tests read. Python's ``json.dumps`` differs from JS in number
formatting (``1.0`` vs ``1``, ``1e-07`` vs ``1e-7``), in the order of integer-like object keys (JS lists
them first, ascending) and in how keys sort (UTF-16 code units in JS).
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

_ARRAY_INDEX_MAX = 2**32 - 2


def js_number(value: float | int) -> str:
    """``Number.prototype.toString`` (what JSON.stringify uses), from the shortest round-trip digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exp = dec.as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    k = len(digits)
    n = int(exp) + k  # position of the decimal point relative to the digits
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        out = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


def iso_ms(value: datetime) -> str:
    """``Date.prototype.toISOString``: UTC, milliseconds, trailing Z."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    v = value.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def _is_array_index(key: str) -> bool:
    if not key or not key.isdigit() or not key.isascii():
        return False
    if len(key) > 1 and key[0] == "0":
        return False
    return int(key) <= _ARRAY_INDEX_MAX


def js_key_order(keys: list[str]) -> list[str]:
    """The order in which a JS engine enumerates an object's own keys, given their insertion order."""
    indices = sorted((k for k in keys if _is_array_index(k)), key=int)
    return indices + [k for k in keys if not _is_array_index(k)]


def utf16_sort_key(key: str) -> bytes:
    """``Array.prototype.sort`` compares strings by UTF-16 code units."""
    return key.encode("utf-16-be", "surrogatepass")


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def dumps(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON as JSON.stringify writes it; ``sort_keys`` applies sortKeys() at every level first."""
    parts: list[str] = []
    _write(value, sort_keys, parts)
    return "".join(parts)


def _write(value: Any, sort_keys: bool, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, (int, float)):
        out.append(js_number(value))
    elif isinstance(value, Decimal):
        out.append(js_number(float(value)))
    elif isinstance(value, datetime):
        out.append(_string(iso_ms(value)))
    elif isinstance(value, dict):
        keys = [str(k) for k in value.keys()]
        source = {str(k): v for k, v in value.items()}
        if sort_keys:
            keys = sorted(keys, key=utf16_sort_key)
        first = True
        out.append("{")
        for key in js_key_order(keys):
            item = source[key]
            if item is _UNDEFINED:
                continue
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(item, sort_keys, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(None if item is _UNDEFINED else item, sort_keys, out)
        out.append("]")
    else:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class _Undefined:
    """A value JSON.stringify leaves out of objects (JS ``undefined``)."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()
UNDEFINED: Any = _UNDEFINED


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """JSON.parse: NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=_no_constants)
