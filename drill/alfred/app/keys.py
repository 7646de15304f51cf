"""API keys are stored only as sha256 hex digests and compared in constant time (drill/src/keys.ts)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Optional

ADMIN_EMAIL = "admin@alfred.local"
TEST_USER_COUNT = 10
#: Length of the non-secret key id logged where a key is not checked (drill/src/key-id.ts).
KEY_ID_LENGTH = 12

_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    try:
        x, y = bytes.fromhex(a), bytes.fromhex(b)
    except ValueError:
        return False
    return len(x) == len(y) and len(x) > 0 and hmac.compare_digest(x, y)


def new_api_key() -> str:
    return f"ak_{secrets.token_hex(24)}"


def test_key(n: int) -> str:
    """Drill-only keys of the seeded users: test-key-1 … test-key-10 (see drill/README.md)."""
    return f"test-key-{n}"


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    m = _BEARER.match(authorization or "")
    return m.group(1) if m else None


def key_id(authorization: Optional[str]) -> Optional[str]:
    """The first 12 hex digits of the key's sha256: a prefix of users.api_key_hash, never the key."""
    key = bearer_token(authorization)
    return hash_key(key)[:KEY_ID_LENGTH] if key else None
