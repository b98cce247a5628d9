"""Schemathesis against the live OpenAPI document on both databases (see tests/openapi_fuzz.py).

BUILDCOORD_FUZZ_EXAMPLES sets the examples per operation and generation mode (default 25);
bench/fuzz_api.py runs a longer campaign and prints what it found.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from openapi_fuzz import fuzz
from seeded import Restore, World
from store_rows import StoreState

EXAMPLES = int(os.environ.get("BUILDCOORD_FUZZ_EXAMPLES", "25"))


def test_every_operation_answers_as_its_schema_says_and_refusals_change_nothing(
    app: FastAPI, world: World, reseed: Restore, store_state: StoreState
) -> None:
    campaign = fuzz(app, examples=EXAMPLES, reseed=reseed, state=store_state)
    assert campaign.cases > 0
    found = [
        f"{item.operation} [{item.check}] {item.status}: {item.error} <- {item.input}"
        for item in sorted(campaign.findings.values(), key=lambda item: item.key())
    ]
    assert found == [], "\n".join(found)
