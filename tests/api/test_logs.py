"""/api/v1/jobs/{id}/log: a job's log reads whatever time its entries were stored with."""

from __future__ import annotations

import math

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.store import Store
from inprocess import ADMIN_TOKEN, API, bearer

OPERATOR = bearer(ADMIN_TOKEN)
# Times a log entry could be stored with before client timestamps were bounded.
ABSURD_TIMES = [1e308, -1e308, 1e12, -1e12, math.nan]


def store_entry(store: Store, job_id: int, at: float) -> None:
    """Write one log entry straight into the store, as one written before the bounds."""
    if math.isnan(at) and store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores NaN as NULL, which the column refuses")
    entry = {"at": at, "kind": "event", "level": "info", "message": "odd clock", "details": None}
    store.logs.append_entries(job_id, [entry], server=None, fencing_token=None)


@pytest.mark.parametrize("at", ABSURD_TIMES)
def test_a_log_entry_stored_with_an_absurd_time_still_reads(
    http: TestClient, operator: Client, store: Store, at: float
) -> None:
    job = operator.submit_job("main", "abc1234")
    store_entry(store, job.id, at)

    response = http.get(f"{API}/jobs/{job.id}/log", headers=OPERATOR)

    assert response.status_code == 200, response.text
    assert [entry["message"] for entry in response.json()] == ["odd clock"]
