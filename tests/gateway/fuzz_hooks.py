"""Schemathesis hooks of ``make fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``): keep the fuzzer's own account usable.

A generated (or, in the stateful run, linked) ``PATCH /api/v1/accounts/{account_id}`` on the fuzzing admin itself
could change its password and end its session; such a call is sent to another (unknown) account id instead.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED = os.environ.get("STVS_FUZZ_PROTECTED_ACCOUNT", "")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    params = case.path_parameters or {}
    if PROTECTED and params.get("account_id") == PROTECTED and case.method.upper() == "PATCH":
        params["account_id"] = "not-the-fuzzing-admin"
