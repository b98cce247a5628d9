"""Several coordinator processes on one database: HTTP jobs/s with 1 and 2 `serve` processes.

An experiment towards issue 2's HTTP target: one `buildcoord serve` process spends ~1.6 ms
of CPU per job (two requests) and is bound by one core; several coordinators may share a
database by design (every statement is a compare-and-set). This starts 1, then 2 `serve`
processes on the same database (SQLite by default, or ``--pg-url``), queues jobs, and lets
agent clients (the lean keep-alive client of ``bench/queue.py``, one process each, spread
over the coordinators) claim and complete them over loopback HTTP. It prints jobs/s for each
count and the ratio 2 : 1, measured in the same run.

Usage::

    .venv/bin/python bench/serve_processes.py [--quick] [--json] [--pg-url URL] [--clients N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from buildcoord.client import Client

_SPEC = importlib.util.spec_from_file_location("bench_queue", Path(__file__).with_name("queue.py"))
assert _SPEC is not None
assert _SPEC.loader is not None
bq = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_queue"] = bq
_SPEC.loader.exec_module(bq)


def agent_loop(base: str, token: str, server: str, limit: int, results: Any) -> None:
    """Claim and complete as an agent does until the queue is empty."""
    raw = bq._raw_client(base, token)
    count = 0
    for _ in range(limit):
        claimed = raw.claim_job(server)
        if claimed is None:
            break
        raw.complete_job(claimed["id"], server=server, fencing_token=claimed["fencing_token"])
        count += 1
    results.put(count)


def measure(url: str, processes: int, clients: int, jobs: int) -> dict[str, Any]:
    """jobs/s with ``processes`` coordinators on one database and ``clients`` agents."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-")))
        coordinators = [
            stack.enter_context(bq.serve_process(url, home / f"serve{index}", plain=False))
            for index in range(processes)
        ]
        # Each serve installs its own admin token (the last one started is live).
        base, admin, _ = coordinators[-1]
        with Client(base, admin) as operator:
            tokens = [operator.register_server(f"agent{k}")[1] for k in range(clients)]
            for _ in range(jobs):
                operator.submit_job("bench", "a" * 40)
        results: Any = mp.Queue()
        workers = [
            mp.Process(
                target=agent_loop,
                args=(coordinators[k % processes][0], tokens[k], f"agent{k}", jobs, results),
            )
            for k in range(clients)
        ]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
        done = sum(results.get() for _ in workers)
    if done != jobs:
        raise RuntimeError(f"{done} jobs completed of {jobs}")
    return {"processes": processes, "clients": clients, "jobs": done, "jobs_per_s": done / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs, well under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--pg-url", help="a PostgreSQL database to use (emptied by the caller)")
    parser.add_argument("--clients", type=int, default=4, help="agent client processes")
    args = parser.parse_args()
    jobs = 1000 if args.quick else 4000
    figures: dict[str, Any] = {"load_average_at_start": list(os.getloadavg())}
    runs = []
    for processes in (1, 2):
        with tempfile.TemporaryDirectory() as scratch:
            url = args.pg_url or f"sqlite:///{scratch}/bench.db"
            if args.pg_url:
                bq._check_pg(args.pg_url)
            runs.append(measure(url, processes, args.clients, jobs))
            if args.pg_url:
                break  # the caller's database is not emptied between runs
    figures["runs"] = runs
    if len(runs) == 2:
        figures["ratio_2_to_1"] = round(runs[1]["jobs_per_s"] / runs[0]["jobs_per_s"], 2)
    figures["load_average_at_end"] = list(os.getloadavg())
    figures["target_jobs_per_s"] = 600
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
        return 0
    for run in runs:
        print(
            f"{run['processes']} serve process(es), {run['clients']} agent clients: "
            f"{run['jobs_per_s']:,.0f} jobs/s ({run['jobs']} jobs)"
        )
    if "ratio_2_to_1" in figures:
        print(f"2 processes : 1 process = {figures['ratio_2_to_1']}   (issue 2 target: 600 jobs/s)")
    start, end = figures["load_average_at_start"], figures["load_average_at_end"]
    print(f"load average at start {start}, end {end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
