"""`serve --workers N`: HTTP jobs/s with 1 and 2 coordinator worker processes.

Towards the HTTP target of 600 jobs/s: one `buildcoord serve` process spends ~1.6 ms of CPU per job
(two requests) and is bound by one core; several coordinators may share a database by design
(every statement is a compare-and-set), and ``serve --workers N`` runs N of them on one
listening socket. This starts ``serve --workers 1``, then ``--workers 2``, on a fresh
database each (SQLite by default, or ``--pg-url``), queues jobs, and lets agent clients (the
lean keep-alive client of ``bench/queue.py``, one process each) claim and complete them over
loopback HTTP. It prints jobs/s for each and the ratio 2 : 1, measured in the same run.

Usage::

    .venv/bin/python bench/serve_processes.py [--quick] [--json] [--clients N]
    .venv/bin/python bench/serve_processes.py --pg-url URL --only 1|2   # an empty database
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


@contextmanager
def serve_workers(url: str, home: Path, workers: int) -> Iterator[tuple[str, str]]:
    """Start ``buildcoord serve --workers N`` on a free port; yield (base URL, admin token)."""
    port = bq._free_port()
    admin = "bc_bench_" + secrets.token_hex(16)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUILDCOORD_")}
    env.update({"BUILDCOORD_ADMIN_TOKEN": admin, "BUILDCOORD_HOME": str(home)})
    argv = [sys.executable, "-m", "buildcoord", "serve", "--db", url, "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning"]
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("serve exited: " + (home / "serve.log").read_text()[-2000:])
            try:
                with Client(base, admin, timeout=2.0) as probe:
                    probe.http.get("health").raise_for_status()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base, admin
    finally:
        process.terminate()  # by pid: the process started here; it stops its workers
        process.wait(timeout=30)
        log.close()


def measure(url: str, workers: int, clients: int, jobs: int) -> dict[str, Any]:
    """jobs/s with ``serve --workers N`` and ``clients`` agents."""
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-serve-")))
        base, admin = stack.enter_context(serve_workers(url, home, workers))
        with Client(base, admin) as operator:
            tokens = [operator.register_server(f"agent{k}")[1] for k in range(clients)]
            for _ in range(jobs):
                operator.submit_job("bench", "a" * 40)
        results: Any = mp.Queue()
        agents = [
            mp.Process(target=agent_loop, args=(base, tokens[k], f"agent{k}", jobs, results))
            for k in range(clients)
        ]
        started = time.perf_counter()
        for agent in agents:
            agent.start()
        for agent in agents:
            agent.join()
        wall = time.perf_counter() - started
        done = sum(results.get() for _ in agents)
    if done != jobs:
        raise RuntimeError(f"{done} jobs completed of {jobs}")
    return {"workers": workers, "clients": clients, "jobs": done, "jobs_per_s": done / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs, well under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--pg-url", help="a PostgreSQL database to use (emptied by the caller)")
    parser.add_argument("--clients", type=int, default=4, help="agent client processes")
    parser.add_argument("--only", type=int, choices=(1, 2), help="run one worker count only")
    args = parser.parse_args()
    jobs = 1000 if args.quick else 4000
    figures: dict[str, Any] = {"load_average_at_start": list(os.getloadavg())}
    runs = []
    for count in (args.only,) if args.only else (1, 2):
        with tempfile.TemporaryDirectory() as scratch:
            url = args.pg_url or f"sqlite:///{scratch}/bench.db"
            if args.pg_url:
                bq._check_pg(args.pg_url)
            runs.append(measure(url, count, args.clients, jobs))
            if args.pg_url:
                break  # the caller's database is not emptied between runs: use --only
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
            f"serve --workers {run['workers']}, {run['clients']} agent clients: "
            f"{run['jobs_per_s']:,.0f} jobs/s ({run['jobs']} jobs)"
        )
    if "ratio_2_to_1" in figures:
        print(f"2 workers : 1 worker = {figures['ratio_2_to_1']}   (target: 600 jobs/s)")
    start, end = figures["load_average_at_start"], figures["load_average_at_end"]
    print(f"load average at start {start}, end {end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
