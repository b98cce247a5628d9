"""A longer Schemathesis campaign against the live API than the test suite runs.

Builds the real app in process over a fresh database of each backend, seeds the fleet of
tests/seeded.py (servers, jobs, a branch, messages, locks, orders, artifacts, tags), then
runs tests/openapi_fuzz.py: per operation, valid and invalid requests generated from the
OpenAPI document with a fixed seed, sent as the operator. Each answer must be no 5xx, a
status the document declares with a body matching its schema, and a refused request must
change nothing. Prints the counts of cases and statuses and every distinct failure with the
smallest input that showed it; ``--json`` prints one JSON object on stdout.

Usage::

    .venv/bin/python bench/fuzz_api.py [--quick] [--json] [--examples N]
                                       [--backend sqlite|postgresql|both]
                                       [--pg-url postgresql://user@host:port/db]

PostgreSQL: ``--pg-url``, else ``$BUILDCOORD_BENCH_PG_URL``, else ``$BUILDCOORD_TEST_PG_URL``,
else postgresql://postgres@127.0.0.1:5432/postgres; a database ``fuzz_<hex>`` is created
there and dropped afterwards. The exit status is 1 when any failure was found.
"""

# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

# bench/queue.py would shadow the standard library's queue module: keep bench/ off the path.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent / "tests"))

import psycopg
from starlette.exceptions import StarletteDeprecationWarning

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.web.app import create_app
from inprocess import ADMIN_TOKEN, BASE_URL
from openapi_fuzz import fuzz
from seeded import dump, restore, seed_world
from store_rows import state_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


@contextmanager
def fresh_database(backend: str, pg_url: str, scratch: Path) -> Iterator[str]:
    """The URL of an empty database of backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{scratch / 'fuzz.db'}"
        return
    name = f"fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def campaign(backend: str, examples: int, pg_url: str) -> dict[str, Any]:
    """Seed one backend's database and fuzz every operation; return the summary."""
    with tempfile.TemporaryDirectory(prefix="bc-fuzz-") as scratch, ExitStack() as stack:
        url = stack.enter_context(fresh_database(backend, pg_url, Path(scratch)))
        store = Store.open(url)
        stack.callback(store.close)
        # Unthrottled: the fuzz sends many wrong tokens from one address on purpose, and would
        # otherwise fuzz the 429 of the failed-authentication throttle from then on.
        settings = Settings(admin_token=ADMIN_TOKEN, auth_failures_allowed=0)
        services = Coordinator(store, settings, FakeClock())
        services.start()
        app = create_app(services)

        def connect(token: str | None) -> Client:
            http = stack.enter_context(TestClient(app, base_url=BASE_URL))
            return Client(BASE_URL, token, http=http)

        seed_world(connect(ADMIN_TOKEN), connect, Path(scratch))
        rows = dump(store)
        started = time.monotonic()
        result = fuzz(
            app,
            examples=examples,
            reseed=lambda: restore(store, rows),
            state=lambda: state_of(store),
        )
        summary = result.summary()
        summary["seconds"] = round(time.monotonic() - started, 1)
        return summary


def main(argv: list[str] | None = None) -> int:
    """Run the campaign on each backend asked for and print what it found."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 examples per operation")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL server to create it on")
    args = parser.parse_args(argv)
    examples = 10 if args.quick else args.examples
    pg_url = (
        args.pg_url
        or os.environ.get("BUILDCOORD_BENCH_PG_URL")
        or os.environ.get("BUILDCOORD_TEST_PG_URL")
        or DEFAULT_PG_URL
    )
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    result: dict[str, Any] = {"examples_per_operation_and_mode": examples}
    for backend in backends:
        log(f"{backend}: fuzzing every operation, {examples} examples per mode ...")
        result[backend] = campaign(backend, examples, pg_url)
    failed = sum(result[backend]["failures"] for backend in backends)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 1 if failed else 0
    for backend in backends:
        summary = result[backend]
        print(
            f"{backend}: {summary['cases']} cases in {summary['seconds']} s, "
            f"statuses {summary['statuses']}, {summary['failures']} distinct failures"
        )
        for item in summary["findings"]:
            print(
                f"  {item['operation']} [{item['check']}] {item['status']}: {item['error']}"
                f"\n      input {item['input']}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
