"""Dashboard sign-in: a cookie that proves a reading key was given, without holding it.

The value is `<expiry>.<HMAC-SHA256 of "dashboard:<expiry>">`, keyed by a secret
derived from all of the deployment's API keys: it expires by itself, it cannot be
forged or extended without a key, and changing any key signs every browser out.
"""

from __future__ import annotations

import hashlib
import hmac

from xsmoe.service.settings import ApiSettings

COOKIE = "xsmoe_dashboard"
PATH = "/dashboard"  # the cookie goes to the dashboard's pages only, never to /v1


def _secret(api: ApiSettings) -> bytes:
    keys = (api.read_key, api.write_key, api.admin_key)
    material = b"\0".join(k.get_secret_value().encode() if k else b"" for k in keys)
    return hashlib.sha256(b"xsmoe dashboard session\0" + material).digest()


def _mac(api: ApiSettings, expires: int) -> str:
    return hmac.new(_secret(api), f"dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def sign(api: ApiSettings, expires: int) -> str:
    """A cookie value valid until `expires` (seconds since the epoch)."""
    return f"{expires}.{_mac(api, expires)}"


def valid(api: ApiSettings, value: str | None, now: float) -> bool:
    """Whether `value` was made by `sign` with these keys and has not expired."""
    if not value:
        return False
    expiry, _, mac = value.partition(".")
    if not expiry.isdigit() or len(expiry) > 12 or int(expiry) <= now:
        return False
    return hmac.compare_digest(mac, _mac(api, int(expiry)))
