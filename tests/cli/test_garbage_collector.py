"""serve keeps Python's garbage collector from stalling requests (cli/serve.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from buildcoord.cli import serve


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serve_freezes_what_start_up_made_and_collects_young_objects_rarely(
    restored_collector: None,
) -> None:
    gc.unfreeze()

    serve._quiet_garbage_collector()

    assert gc.get_freeze_count() > 10_000  # modules, schema, routes: out of the collector's sight
    assert gc.get_threshold() == serve.GC_THRESHOLDS
    assert serve.GC_THRESHOLDS[0] >= 50 * 700  # Python's default young threshold is 700
