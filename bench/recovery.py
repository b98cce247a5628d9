"""How fast lost work is running again elsewhere: an agent killed, an agent frozen.

Runs a real coordinator and two real agents on loopback (tests/live_fleet.py), with the
default settings (30 s lease renewed every 10 s, 3 s reconnect grace), building a real git
repository. For each trial it queues a job, waits for its build to start, then

* kill: ``kill -9`` the agent process that runs it (the fast path: its session drops);
* freeze: SIGSTOP that agent's whole process group (the slow path: the lease runs out);

and measures the seconds until the job is running on the other agent. The baseline, measured
in the same run, is the time from queueing a job to its build starting on an idle agent.
Targets: kill ≤ 5 s, freeze ≤ 45 s. Progress goes to stderr; ``--json`` prints one
JSON object of the figures on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from live_fleet import LiveFleet, live_fleet, make_repository, wait_for

BUILD = """#!/usr/bin/env bash
touch "$1/started-$BUILDCOORD_JOB_ID-$BUILDCOORD_SERVER"
for i in $(seq 1 600); do echo "step $i"; sleep 0.1; done
"""

TARGETS = {"kill": 5.0, "freeze": 45.0}


def log(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


def started_on(markers: Path, job_id: int) -> str | None:
    """The server whose build of job_id has started, if any (the newest marker wins)."""
    found = sorted(markers.glob(f"started-{job_id}-*"), key=lambda p: p.stat().st_mtime)
    return found[-1].name.rsplit("-", 1)[1] if found else None


def trial(fleet: LiveFleet, markers: Path, how: str) -> tuple[float, float]:
    """One trial: return (seconds to start on an idle agent, seconds to recover)."""
    queued = time.monotonic()
    with fleet.client() as client:
        job_id = client.submit_job("main").id
    first = wait_for("the build to start", lambda: started_on(markers, job_id), timeout=60)
    start_time = time.monotonic() - queued
    victim = fleet.agents[first]
    lost = time.monotonic()
    if how == "kill":
        os.kill(victim.pid, signal.SIGKILL)
    else:
        os.killpg(victim.pid, signal.SIGSTOP)
    try:
        wait_for(
            "the job to run elsewhere",
            lambda: (now := started_on(markers, job_id)) not in (None, first) and now,
            timeout=120,
            interval=0.02,
        )
        recovered = time.monotonic() - lost
    finally:
        if how == "freeze":
            os.killpg(victim.pid, signal.SIGCONT)
    with fleet.client() as client:
        client.cancel_job(job_id, reason="benchmark trial over")
    if how == "kill":
        victim.wait(timeout=10)
        fleet.start_agent(first)
    return start_time, recovered


def main() -> int:
    """Run the trials and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one trial of each (< 1 min)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--trials", type=int, default=3, help="trials of each kind (full run)")
    args = parser.parse_args()
    trials = 1 if args.quick else args.trials
    figures: dict[str, object] = {"trials": trials}
    with tempfile.TemporaryDirectory(prefix="bc-recovery-") as scratch:
        root = Path(scratch)
        markers = root / "markers"
        markers.mkdir()
        repo = root / "repo"
        make_repository(repo, {"build.sh": BUILD})
        with live_fleet(root / "home") as fleet:
            with fleet.client() as client:
                client.add_branch("main", repo=str(repo), command=f"./build.sh {markers}")
            for name in ("build1", "build2"):
                fleet.register(name)
                fleet.start_agent(name)
            for how in ("kill", "freeze"):
                starts, recoveries = [], []
                for number in range(trials):
                    start_time, recovered = trial(fleet, markers, how)
                    starts.append(start_time)
                    recoveries.append(recovered)
                    log(
                        f"{how} #{number + 1}: running elsewhere after {recovered:.2f} s "
                        f"(a normal start took {start_time:.2f} s)"
                    )
                worst = max(recoveries)
                figures[how] = {
                    "recovery_seconds": [round(value, 3) for value in recoveries],
                    "recovery_median": round(statistics.median(recoveries), 3),
                    "recovery_worst": round(worst, 3),
                    "baseline_start_median": round(statistics.median(starts), 3),
                    "ratio_to_baseline": round(
                        statistics.median(recoveries) / max(statistics.median(starts), 1e-6), 1
                    ),
                    "target_seconds": TARGETS[how],
                    "verdict": "PASS" if worst <= TARGETS[how] else "MISS",
                }
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        for how in ("kill", "freeze"):
            item = figures[how]
            assert isinstance(item, dict)
            print(
                f"{how:6} recovery median {item['recovery_median']:.2f} s, worst "
                f"{item['recovery_worst']:.2f} s "
                f"(baseline start {item['baseline_start_median']:.2f} s,"
                f" ratio {item['ratio_to_baseline']}) target ≤ {item['target_seconds']:.0f} s: "
                f"{item['verdict']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
