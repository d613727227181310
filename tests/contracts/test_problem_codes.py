"""The OpenAPI document's Problem schema lists every problem ``code`` the platform answers with (issue 18 §1):
each code a service, the gateway or the shared frame raises in its sources is listed in shared/problems.py."""

from __future__ import annotations

import re
from pathlib import Path

from shared.problems import COMMON_CODES, DOMAIN_CODES, problem_schema

REPO = Path(__file__).resolve().parents[2]
RAISED = re.compile(
    r"""(?:\bcode\s*=\s*|\bcode:\s*str\s*=\s*|(?:Problem|GatewayError)\(\s*\d{3},\s*|unauthorized\(\s*)"([a-z_]+)\""""
)
TOO_LARGE = re.compile(r'"([a-z_]+_too_large)"')
THROTTLED = re.compile(r"""throttle\([^)]*"([a-z_]+)",\s*"[^"]*"\)""")  # throttle(limiter, key, what, action)


def _raised() -> set[str]:
    codes: set[str] = set()
    for source in [*(REPO / "services").rglob("*.py"), *(REPO / "shared").rglob("*.py")]:
        text = source.read_text(encoding="utf-8")
        codes |= set(RAISED.findall(text)) | set(TOO_LARGE.findall(text))
        codes |= {f"{what}_rate_limited" for what in THROTTLED.findall(text)}
    return codes


def test_every_raised_code_is_listed() -> None:
    raised = _raised()
    assert len(raised) > 50  # the pattern still finds the codes
    assert sorted(raised - set(COMMON_CODES) - set(DOMAIN_CODES)) == []


def test_the_schema_names_every_listed_code() -> None:
    description = problem_schema()["properties"]["code"]["description"]
    for code in [*COMMON_CODES, *DOMAIN_CODES]:
        assert f"`{code}`" in description, code
