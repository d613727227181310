"""Service-record certificate numbers (志愿服务记录证明): ``ZM<yyyymmdd>-<random>-<HMAC>``.

The HMAC (keyed by ``STVS_CERTIFICATE_SECRET``) makes a typed or altered number fail verification before any lookup;
the stored record is what verification shows, so a certificate states the figures as of the day it was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from shared.calendar import to_shanghai

NUMBER = re.compile(r"^ZM(\d{8})-([0-9a-f]{10})-([0-9a-f]{16})$")
# What verifying a number shows of its certificate, beside the number, the issuing unit and the date.
SHOWN = ("platform_number", "id_number_masked", "display_name", "hours", "activities", "star_level")


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:16]


def new_number(secret: str, issued_at: datetime) -> str:
    body = f"ZM{to_shanghai(issued_at).strftime('%Y%m%d')}-{secrets.token_hex(5)}"
    return f"{body}-{_mac(secret, body)}"


def number_is_authentic(secret: str, number: str) -> bool:
    found = NUMBER.match(number)
    if not found:
        return False
    body = number.rsplit("-", 1)[0]
    return hmac.compare_digest(_mac(secret, body), found.group(3))
