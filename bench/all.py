"""Every benchmark in bench/, one after another, and one table of their figures.

Runs each script as ``.venv/bin/python bench/NAME.py [--quick] --json [backend flags]`` in a
subprocess, **one at a time** (they measure the machine: two at once would measure each
other), with a timeout each (``--quick``: 5 min, else 30 min; ``--timeout``). A child's
progress (its stderr) is passed through line by line, prefixed with its name; its stdout is
one JSON object, from which the figures below are picked, each with the baseline the script
measured in the same run, the ratio, the target where the issue or docs/benchmarks.md names
one, and met or missed:

============================  ==========================================================
queue                         claims/s through the store against a bare SQL loop; HTTP
                              jobs/s against GET /api/v1/health requests/s; claim p99
                              at 100,000 queued jobs (20,000 with ``--quick``)
serve_processes               HTTP jobs/s of ``serve --workers 2`` against ``--workers 1``
fleet                         heartbeat p99 and coordinator CPU with N idle agents against
                              the 0-agent window; heartbeats lost; queue-to-claim p99
manifest                      artifact manifest against ``md5sum; sha256sum; sha512sum``
                              and against the two-core hashing limit
dashboard                     worst page p95 against GET /api/v1/health; overview size;
                              an event's delivery to 100 streams against 100 plain GETs
monitor                       one monitor step's p95 per fleet state against reading the
                              snapshot alone; /metrics p95; trend table rows
recovery                      seconds until a killed / frozen agent's job runs elsewhere,
                              against the time a job takes to start on an idle agent
predictor                     feeding and asking the predictor against the Jenkins estimator
prediction_bound              MAPE on the shipped history against Jenkins and against the
                              best two-sided smoother (which sees the future)
prediction_lopo               MAPE on each project left out of the tuning, against
                              Jenkins' on it; the mean against the in-sample mean
fuzz_api                      not a benchmark: a pass/fail line (distinct failures found)
============================  ==========================================================

A script that fails, times out or prints no JSON becomes a row saying so (exit code, last
stderr lines); the others still run, and the exit status is 1 at the end.

Then the section between ``<!-- bench/all.py: begin -->`` and ``<!-- bench/all.py: end -->``
in docs/benchmarks.md is rewritten (added under the file's introduction if it is missing);
nothing else in the file changes. With ``--only``, the rows of the scripts not run are kept
from the section as it was (each script's row in the runs table says when and at which
commit it ran).

Usage::

    .venv/bin/python bench/all.py [--quick] [--json] [--only NAME[,NAME]] [--no-write]
                                  [--backend sqlite|postgresql] [--pg-url URL]
                                  [--timeout SECONDS]

``--backend`` and ``--pg-url`` go to the scripts whose argparse takes them (queue, fleet,
dashboard, monitor, fuzz_api); serve_processes takes a *database* that it does not empty, so
with ``--backend postgresql`` a fresh one is made for it on the server (``--pg-url``,
``$BUILDCOORD_BENCH_PG_URL`` or postgresql://postgres@127.0.0.1:5432/postgres) and dropped
afterwards — it then runs ``--workers 1`` only, as it does whenever it is given a database.
manifest, predictor, prediction_bound, prediction_lopo and recovery (SQLite) take no backend.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py sits beside this file: keep the folder off sys.path so that ``import queue``
# (by any module of the standard library) finds the standard library's.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH_DIR]

import argparse
import collections
import contextlib
import json
import math
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = _BENCH_DIR.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/all.py: begin -->"
END = "<!-- bench/all.py: end -->"
HEADING = "## Figures at a glance (bench/all.py)"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
QUICK_TIMEOUT = 300.0
FULL_TIMEOUT = 1800.0
DASH = "\u2013"  # an empty cell
TIMES = "\u00d7"
STDERR_TAIL = 8  # stderr lines kept for a failure's row
# Issue 12's goals for 1,000 idle agents (docs/benchmarks.md, "Against the goal"); fleet.py's
# --json carries no targets, so they are here.
FLEET_GOAL_AGENTS = 1000
FLEET_HEARTBEAT_P99_MS = 50.0
FLEET_CPU_PERCENT = 25.0
FLEET_QUEUE_TO_CLAIM_P99_MS = 200.0


def log(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One figure of the table."""

    what: str
    ours: float | None
    unit: str = ""
    note: str = ""  # said after our figure
    baseline: float | None = None
    baseline_unit: str | None = None  # None: the same as ``unit``
    baseline_what: str = ""  # what the baseline is ("bare SQL loop"); "" if none was measured
    ratio: float | None = None
    ratio_text: str = ""  # how to read the ratio when it is not ours / baseline
    target: str = ""
    met: bool | None = None


def _num(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _with_unit(value: float | None, unit: str) -> str:
    if value is None:
        return DASH
    if unit == "%":
        return f"{_num(value)} %"
    if unit.startswith("/"):
        return f"{_num(value)}{unit}"
    return f"{_num(value)} {unit}".strip()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _pct(fraction: float) -> float:
    return round(fraction * 100, 2)


def queue_rows(out: dict[str, Any]) -> list[Row]:
    """bench/queue.py: store claims against bare SQL, HTTP against health, claim latency."""
    rows: list[Row] = []
    for backend in ("sqlite", "postgresql"):
        figures = out.get(backend)
        if figures is None:
            continue
        if "skipped" in figures:
            rows.append(Row(f"{backend}: not measured", None, note=str(figures["skipped"])))
            continue
        verdicts = figures["verdicts"]
        store_target = float(verdicts["store_target"])
        bare = figures["baseline_claims_per_s"]
        for count, rate in figures["store_claims_per_s"].items():
            rows.append(
                Row(
                    f"claims/s, store, {count} claimer{'s' if count != '1' else ''} ({backend})",
                    rate,
                    "/s",
                    baseline=bare[count],
                    baseline_what="bare SQL claim+complete loop",
                    ratio=figures["store_ratio_to_baseline"][count],
                    target=f"≥ {store_target:,.0f} (best of 1/2/4 judged)",
                    met=rate >= store_target,
                )
            )
        http = figures.get("http", {})
        if "default" in http:
            stack = http["default"]
            target = float(verdicts["http_target"])
            for count, rate in stack["jobs_per_s"].items():
                rows.append(
                    Row(
                        f"HTTP jobs/s, {stack['stack']}, {count} client"
                        f"{'s' if count != '1' else ''} ({backend})",
                        rate,
                        "/s",
                        baseline=stack["health_requests_per_s"][count],
                        baseline_unit="req/s",
                        baseline_what="GET /api/v1/health, same clients",
                        ratio=stack["ratio_to_health"][count],
                        target=f"≥ {target:,.0f} (best of 1/2/4 judged)",
                        met=rate >= target,
                    )
                )
        if "plain" in http:  # the other stack: shown, not judged
            stack = http["plain"]
            count = max(stack["jobs_per_s"], key=lambda key: stack["jobs_per_s"][key])
            rows.append(
                Row(
                    f"HTTP jobs/s, {stack['stack']}, best ({count} client"
                    f"{'s' if count != '1' else ''}) ({backend})",
                    stack["jobs_per_s"][count],
                    "/s",
                    baseline=stack["health_requests_per_s"][count],
                    baseline_unit="req/s",
                    baseline_what="GET /api/v1/health, same clients",
                    ratio=stack["ratio_to_health"][count],
                    target=f"{DASH} (not serve's default stack)",
                )
            )
        latency = figures["latency"]
        before = latency["before_analyze"]["claim_p99_ms"]
        after = latency["after_analyze"]["claim_p99_ms"]
        rows.append(
            Row(
                f"claim p99 at {latency['queued']:,} queued, {latency['edges']:,} dependency edges"
                f" ({backend})",
                max(before, after),
                "ms",
                note=f"(before / after ANALYZE {_num(before)} / {_num(after)})",
                target=f"≤ {verdicts['latency_target_p99_ms']:g} ms",
                met=bool(verdicts["latency_pass"]),
            )
        )
    return rows


def serve_processes_rows(out: dict[str, Any]) -> list[Row]:
    """bench/serve_processes.py: serve --workers 2 against --workers 1."""
    target = float(out["target_jobs_per_s"])
    runs = out["runs"]
    one = next((run for run in runs if run["workers"] == 1), None)
    rows = []
    for run in runs:
        baseline = one if run is not one else None
        rows.append(
            Row(
                f"HTTP jobs/s, serve --workers {run['workers']}, {run['clients']} agent processes",
                run["jobs_per_s"],
                "/s",
                baseline=None if baseline is None else baseline["jobs_per_s"],
                baseline_what="" if baseline is None else "serve --workers 1, same run",
                ratio=None if baseline is None else run["jobs_per_s"] / baseline["jobs_per_s"],
                target=f"≥ {target:,.0f}",
                met=run["jobs_per_s"] >= target,
            )
        )
    return rows


def fleet_rows(out: dict[str, Any]) -> list[Row]:
    """bench/fleet.py: each agent window against the 0-agent window."""
    base = out["baseline"]
    idle_health = base["health"]["p99_ms"]
    idle_cpu = base["coordinator_cpu_percent"]
    rows: list[Row] = []
    for window in out["windows"].values():
        count = int(window["agents"])
        judged = count >= FLEET_GOAL_AGENTS
        at = f"at {FLEET_GOAL_AGENTS:,} agents"
        beat = window["heartbeat"]
        p99 = beat["p99_ms"]
        rows.append(
            Row(
                f"heartbeat p99, {count:,} idle agents",
                p99,
                "ms",
                baseline=idle_health,
                baseline_what="health probe p99, 0-agent window",
                ratio=window.get("against_baseline", {}).get("heartbeat_p99_over_idle_health_p99"),
                target=f"< {FLEET_HEARTBEAT_P99_MS:g} ms {at}",
                met=(p99 is not None and p99 < FLEET_HEARTBEAT_P99_MS) if judged else None,
            )
        )
        cpu = window["coordinator_cpu_percent"]
        rows.append(
            Row(
                f"coordinator CPU, {count:,} idle agents + {out['jobs_per_second']:g} jobs/s",
                cpu,
                "%",
                note="" if cpu is None or idle_cpu is None else f"(+{cpu - idle_cpu:.0f} points)",
                baseline=idle_cpu,
                baseline_what="0-agent window: job client and health probe only",
                ratio=None if cpu is None or not idle_cpu else cpu / idle_cpu,
                target=f"< {FLEET_CPU_PERCENT:g} % of a core {at}",
                met=(cpu is not None and cpu < FLEET_CPU_PERCENT) if judged else None,
            )
        )
        rows.append(
            Row(
                f"heartbeats lost, {count:,} idle agents",
                beat["lost"],
                note=f"of {beat['sent']:,}",
                target="0",
                met=beat["lost"] == 0,
            )
        )
        wait = window["queue_to_claim"]["p99_ms"]
        rows.append(
            Row(
                f"queue→claim p99, {count:,} idle agents",
                wait,
                "ms",
                target=f"< {FLEET_QUEUE_TO_CLAIM_P99_MS:g} ms {at}",
                met=(wait is not None and wait < FLEET_QUEUE_TO_CLAIM_P99_MS) if judged else None,
            )
        )
    return rows


def manifest_rows(out: dict[str, Any]) -> list[Row]:
    """bench/manifest.py: build_manifest against the coreutils trio and the two-core limit."""
    seconds = out["seconds"]
    mib = out["tree"]["bytes"] / 2**20
    targets = out["targets"]
    return [
        Row(
            f"artifact manifest of a {mib:,.0f} MiB tree",
            seconds["build_manifest"],
            "s",
            baseline=out["trio_seconds"],
            baseline_what="coreutils trio md5sum; sha256sum; sha512sum",
            ratio=out["speedup_vs_trio"],
            ratio_text=f"{TIMES} faster",
            target=f"≥ {targets['speedup_vs_trio']['goal']:g}{TIMES} faster",
            met=bool(targets["speedup_vs_trio"]["met"]),
        ),
        Row(
            f"artifact manifest of a {mib:,.0f} MiB tree, against the two-core limit",
            seconds["build_manifest"],
            "s",
            baseline=out["two_core_limit_seconds"],
            baseline_what="hashlib's three digests one after another, halved",
            ratio=_pct(out["fraction_of_two_core_limit"]),
            ratio_text="% of the limit",
            target=f"≥ {targets['fraction_of_two_core_limit']['goal'] * 100:g} % of the limit",
            met=bool(targets["fraction_of_two_core_limit"]["met"]),
        ),
    ]


def dashboard_rows(out: dict[str, Any]) -> list[Row]:
    """bench/dashboard.py: worst page, overview size, an event's delivery."""
    baselines = out["pages"]["baselines"]
    health = baselines["/api/v1/health"]["p95_ms"]
    jobs_api = next((value for key, value in baselines.items() if key != "/api/v1/health"), None)
    worst = out["worst_page"]
    sse = out["sse"]
    delivery = sse["delivery"]
    gets = sse["plain_get_100_at_once"]["p99_ms"]
    scale = f"{out['servers']:,} servers, {out['jobs']:,} jobs"
    return [
        Row(
            f"dashboard worst page p95 ({scale})",
            worst["p95_ms"],
            "ms",
            note=f"(`{worst['path']}`)",
            baseline=health,
            baseline_what="GET /api/v1/health p95"
            + ("" if jobs_api is None else f"; the queue's JSON API {_num(jobs_api['p95_ms'])} ms"),
            ratio=worst["p95_ms"] / health if health else None,
            target=f"< {out['goal_page_p95_ms']:g} ms",
            met=bool(out["page_goal_met"]),
        ),
        Row(
            "dashboard overview page size",
            out["overview_bytes"],
            "bytes",
            target=f"< {out['goal_overview_bytes']:,} bytes",
            met=bool(out["overview_goal_met"]),
        ),
        Row(
            f"an event to {sse['clients']} live streams, p99",
            delivery.get("p99_ms"),
            "ms",
            note=f"({delivery['missed']} missed)",
            baseline=gets,
            baseline_what=f"{sse['clients']} GET /api/v1/health at once, p99",
            ratio=sse.get("p99_over_100_gets_p99"),
            target=f"< {out['goal_delivery_p99_ms']:,.0f} ms, none missed",
            met=bool(out["delivery_goal_met"]),
        ),
    ]


def monitor_rows(out: dict[str, Any]) -> list[Row]:
    """bench/monitor.py: a step per fleet state against reading the snapshot alone."""
    base = out["baseline_snapshot"]["p95_ms"]
    goal = float(out["goal_p95_ms"])
    scale = f"{out['servers']:,} servers, {out['jobs']:,} jobs"
    rows = [
        Row(
            f"monitor step p95, {state} ({scale})",
            figures["p95_ms"],
            "ms",
            baseline=base,
            baseline_what="reading the snapshot alone, p95",
            ratio=figures["p95_over_baseline"],
            target=f"< {goal:g} ms",
            met=figures["p95_ms"] < goal,
        )
        for state, figures in out["states"].items()
    ]
    rows.append(
        Row(
            f"GET /metrics p95 ({scale})",
            out["metrics_scrape"]["p95_ms"],
            "ms",
            target=f"< {out['goal_scrape_ms']:g} ms",
            met=bool(out["scrape_goal_met"]),
        )
    )
    trend = out["trend_tables"]
    rows.append(
        Row(
            f"trend table rows after {trend['days']} simulated days",
            trend["minute_rows"] + trend["hour_rows"],
            "rows",
            note=f"({trend['minute_rows']:,} minute, {trend['hour_rows']:,} hour)",
            target="≤ 1,500 minute + 720 hour",
            met=bool(out["trend_bound_met"]),
        )
    )
    return rows


def recovery_rows(out: dict[str, Any]) -> list[Row]:
    """bench/recovery.py: kill and freeze against a start on an idle agent."""
    rows = []
    for how, label in (("kill", "killed (kill -9)"), ("freeze", "frozen (SIGSTOP)")):
        figures = out[how]
        rows.append(
            Row(
                f"lost-agent recovery, agent {label}, median",
                figures["recovery_median"],
                "s",
                note=f"(worst {_num(figures['recovery_worst'])} s of {out['trials']})",
                baseline=figures["baseline_start_median"],
                baseline_what="queue to start on an idle agent, median",
                ratio=figures["ratio_to_baseline"],
                target=f"≤ {figures['target_seconds']:g} s (worst judged)",
                met=figures["verdict"] == "PASS",
            )
        )
    return rows


def predictor_rows(out: dict[str, Any]) -> list[Row]:
    """bench/predictor.py: feeding and asking against the Jenkins estimator."""
    return [
        Row(
            f"predictor: feed {out['builds']:,} builds, per build",
            out["observe_us"],
            "µs",
            baseline=out["baseline_observe_us"],
            baseline_what="Jenkins estimator: mean of the last 3",
            ratio=out["observe_ratio"],
        ),
        Row(
            f"predictor: {out['questions']:,} predictions, per prediction",
            out["predict_us"],
            "µs",
            baseline=out["baseline_predict_us"],
            baseline_what="Jenkins estimator: mean of the last 3",
            ratio=out["predict_ratio"],
        ),
    ]


def prediction_bound_rows(out: dict[str, Any]) -> list[Row]:
    """bench/prediction_bound.py: MAPE against Jenkins and the best two-sided smoother."""
    ours = out["ours_mape"]
    target = out["gain_target"]
    scale = f"{out['rows']:,} rows, {out['scored']:,} scored"
    return [
        Row(
            f"prediction MAPE, shipped history ({scale})",
            _pct(ours),
            "%",
            baseline=_pct(out["jenkins_mape"]),
            baseline_what="Jenkins estimator: mean of the last 3",
            ratio=ours / out["jenkins_mape"],
            target=f"ratio ≤ {1 - target:g} ({target:.0%} below Jenkins)",
            met=out["ours_gain_over_jenkins"] >= target,
        ),
        Row(
            f"prediction MAPE against a smoother that sees the future ({scale})",
            _pct(ours),
            "%",
            baseline=_pct(out["two_sided_best_mape"]),
            baseline_what=f"two-sided window, w = {out['two_sided_best_window']}: not causal",
            ratio=out["ours_over_two_sided_best"],
        ),
    ]


def prediction_lopo_rows(out: dict[str, Any]) -> list[Row]:
    """bench/prediction_lopo.py: MAPE on each project left out of the tuning."""
    rows = [
        Row(
            f"prediction MAPE, {project} left out of the tuning ({entry['scored']:,} scored)",
            _pct(entry["lopo_mape"]),
            "%",
            note=f"(in-sample {_num(_pct(entry['in_sample_mape']))} %; look-ahead"
            f" {_num(_pct(entry['look_ahead_best_window_mape']))} %)",
            baseline=_pct(entry["jenkins_mape"]),
            baseline_what="Jenkins estimator on that project",
            ratio=entry["lopo_over_jenkins"],
            target="< 1 (better than Jenkins)",
            met=bool(entry["lopo_better_than_jenkins"]),
        )
        for project, entry in out["projects"].items()
    ]
    rows.append(
        Row(
            "prediction: mean leave-one-project-out MAPE",
            _pct(out["lopo_mean_mape"]),
            "%",
            baseline=_pct(out["in_sample_mean_mape"]),
            baseline_what="mean in-sample MAPE of the same projects",
            ratio=out["lopo_over_in_sample"],
            target="within 10 % of in-sample",
            met=bool(out["goal_lopo_mean_within_10_percent"]),
        )
    )
    return rows


def fuzz_api_rows(out: dict[str, Any]) -> list[Row]:
    """bench/fuzz_api.py: not a benchmark; pass/fail per backend."""
    rows = []
    for backend in ("sqlite", "postgresql"):
        summary = out.get(backend)
        if summary is None:
            continue
        rows.append(
            Row(
                f"API fuzz ({backend}, {out['examples_per_operation_and_mode']} examples per"
                " operation and mode): distinct failures",
                summary["failures"],
                note=f"({summary['cases']:,} cases in {summary['seconds']:g} s)",
                target="0 (pass/fail, not a speed)",
                met=summary["failures"] == 0,
            )
        )
    return rows


@dataclass(frozen=True)
class Script:
    """One script of bench/ and how it is run."""

    name: str
    rows: Callable[[dict[str, Any]], list[Row]]
    backend: bool = False  # takes --backend sqlite|postgresql
    pg_url: bool = False  # takes --pg-url (a server)
    quick_timeout: float = QUICK_TIMEOUT
    full_timeout: float = FULL_TIMEOUT


SCRIPTS = [
    Script("queue", queue_rows, backend=True, pg_url=True),
    Script("serve_processes", serve_processes_rows),
    Script("fleet", fleet_rows, backend=True, pg_url=True),
    Script("manifest", manifest_rows),
    Script("dashboard", dashboard_rows, backend=True, pg_url=True),
    Script("monitor", monitor_rows, backend=True, pg_url=True),
    Script("recovery", recovery_rows),
    Script("predictor", predictor_rows),
    Script("prediction_bound", prediction_bound_rows),
    Script("prediction_lopo", prediction_lopo_rows),
    Script("fuzz_api", fuzz_api_rows, backend=True, pg_url=True),
]
BY_NAME = {script.name: script for script in SCRIPTS}


# -- running ------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one script's run left."""

    name: str
    command: list[str]
    started_at: str
    commit: str
    quick: bool
    exit: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    output: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def flags(self) -> str:
        return " ".join(_redact(self.command[2:]))


def _redact(command: list[str]) -> list[str]:
    """The command with any password in a URL replaced (it goes to the docs and the logs)."""
    return [re.sub(r"(://[^:/@\s]+):[^@/\s]*@", r"\1:***@", arg) for arg in command]


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _parse_json(text: str) -> dict[str, Any]:
    """The one JSON object on stdout (tolerating stray lines before it)."""
    text = text.strip()
    with contextlib.suppress(json.JSONDecodeError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^\{", text, re.MULTILINE):
        with contextlib.suppress(json.JSONDecodeError):
            value, _ = decoder.raw_decode(text, match.start())
            if isinstance(value, dict):
                return value
    raise ValueError(f"no JSON object on stdout ({len(text)} characters)")


def _descendants(root: int) -> dict[int, str]:
    """Every process below root now, by pid, with its start time (/proc; Linux)."""
    parents: dict[int, list[int]] = collections.defaultdict(list)
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(fields[1])].append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found and child in started:
                found[child] = started[child]
                todo.append(child)
    return found


def _start_time(pid: int) -> str | None:
    with contextlib.suppress(OSError, IndexError):
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())[19]
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a child that overran: SIGINT first (its clean-up runs: servers and agents it
    started are stopped), then SIGTERM, then SIGKILL to its process group; then SIGKILL to
    any process it started that left the group (an agent in a group of its own) and lives on.
    """
    below = _descendants(process.pid)
    for sig, grace in ((signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
            break
    time.sleep(1.0)
    for pid, started in below.items():
        if _start_time(pid) == started:  # the same process, not a reused pid
            log(f"(stopping pid {pid}, left over by the stopped script)")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def run_script(name: str, command: list[str], timeout: float, commit: str, quick: bool) -> Run:
    """Run one script to its end or its timeout; pass its stderr through, keep its stdout."""
    run = Run(
        name=name,
        command=command,
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        commit=commit,
        quick=quick,
    )
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    chunks: list[bytes] = []
    run.load_start = _load()
    began = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stdout, stderr = process.stdout, process.stderr

    def pass_stderr() -> None:
        for raw in stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            log(f"[{name}] {line}")

    readers = [
        threading.Thread(target=pass_stderr, daemon=True),
        threading.Thread(target=lambda: chunks.append(stdout.read()), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.timed_out = True
        log(f"[{name}] timed out after {timeout:g} s: stopping it")
        _stop(process)
    except BaseException:
        _stop(process)
        raise
    for reader in readers:
        reader.join(timeout=30)
    run.seconds = round(time.monotonic() - began, 1)
    run.load_end = _load()
    run.exit = process.returncode
    run.stderr_tail = list(tail)
    output = b"".join(chunks).decode("utf-8", "replace")
    if output.strip():
        try:
            run.output = _parse_json(output)
        except ValueError as exc:
            run.error = str(exc)
    if run.timed_out:
        run.error = f"timed out after {timeout:g} s"
    elif run.exit != 0:
        run.error = f"exit {run.exit}"
    elif run.output is None:
        run.error = run.error or "no JSON on stdout"
    if run.output is not None:
        try:
            run.rows = BY_NAME[name].rows(run.output)
        except (KeyError, TypeError, ValueError, ZeroDivisionError, StopIteration) as exc:
            error = f"figures not found in its JSON: {type(exc).__name__}: {exc}"
            run.error = error if run.error is None else f"{run.error}; {error}"
    return run


@contextlib.contextmanager
def fresh_pg_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (serve_processes does not empty the one given)."""
    import psycopg
    from psycopg import sql

    scheme, _, rest = server_url.partition("://")
    if scheme.split("+", 1)[0] in ("postgres", "postgresql"):
        server_url = f"postgresql://{rest}"
    name = f"bench_all_{secrets.token_hex(5)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        try:
            with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(name)))
        except psycopg.Error as exc:
            log(f"(could not drop the database {name}: {exc})")


def command_for(script: Script, args: argparse.Namespace, pg_database: str | None) -> list[str]:
    command = [_python(), f"bench/{script.name}.py"]
    if args.quick:
        command.append("--quick")
    command.append("--json")
    if script.backend:
        command += ["--backend", args.backend]
    if script.pg_url and args.pg_url:
        command += ["--pg-url", args.pg_url]
    if pg_database is not None:
        command += ["--pg-url", pg_database]
    return command


def run_one(script: Script, args: argparse.Namespace, commit: str) -> Run:
    timeout = args.timeout or (script.quick_timeout if args.quick else script.full_timeout)
    with contextlib.ExitStack() as stack:
        database = None
        if script.name == "serve_processes" and args.backend == "postgresql":
            server = args.pg_url or os.environ.get("BUILDCOORD_BENCH_PG_URL") or PG_DEFAULT
            try:
                database = stack.enter_context(fresh_pg_database(server))
            except Exception as exc:  # no server, no rights: a row saying so
                run = Run(
                    name=script.name,
                    command=command_for(script, args, "<a fresh database>"),
                    started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
                    commit=commit,
                    quick=args.quick,
                    load_start=_load(),
                    load_end=_load(),
                )
                run.error = f"no PostgreSQL database for it: {exc}"
                return run
        command = command_for(script, args, database)
        log(f"== {script.name}: {' '.join(_redact(command[1:]))}")
        return run_script(script.name, command, timeout, commit, args.quick)


# -- what the run was on ------------------------------------------------------------------------


def git_commit() -> str:
    """The short commit of HEAD, and whether tracked files differ from it (read only)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # git status must not write the index
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+changes" if changed else commit


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": memory_gib}


# -- the section in docs/benchmarks.md ----------------------------------------------------------

RUNS_HEADER = [
    "| script | flags | exit | seconds | 1-min load start → end | run at (UTC) | commit |",
    "| --- | --- | --- | ---: | --- | --- | --- |",
]
FIGURES_HEADER = [
    "| figure | ours | baseline (same run) | ratio | target | verdict | script |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]
_SCRIPT_CELL = re.compile(r"`bench/(\w+)\.py")


def _cell(text: str) -> str:
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text.replace("|", "\\|"))
    return text.replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else _cell(text)


def run_line(run: Run) -> str:
    exit_text = "timed out" if run.timed_out else (DASH if run.exit is None else str(run.exit))
    if not run.ok:
        exit_text = f"**{exit_text}**"
    load = (
        f"{run.load_start[0]:.2f} → {run.load_end[0]:.2f}"
        if run.load_start and run.load_end
        else DASH
    )
    cells = [
        _code(f"bench/{run.name}.py"),
        _code(run.flags()),
        exit_text,
        f"{run.seconds:,.0f}",
        load,
        run.started_at,
        run.commit,
    ]
    return "| " + " | ".join(cells) + " |"


def figure_lines(run: Run) -> list[str]:
    script = _code(f"bench/{run.name}.py {run.flags()}")
    lines = []
    for row in run.rows:
        ours = _with_unit(row.ours, row.unit)
        if row.note:
            ours = f"{ours} {row.note}"
        if row.baseline is None:
            baseline = f"{DASH} (none measured)"
        else:
            unit = row.unit if row.baseline_unit is None else row.baseline_unit
            baseline = f"{_with_unit(row.baseline, unit)} ({row.baseline_what})"
        if row.ratio is None:
            ratio = DASH
        elif row.ratio_text.startswith("%"):
            ratio = f"{_num(row.ratio)} {row.ratio_text}"
        else:
            ratio = f"{_num(row.ratio)}{row.ratio_text or TIMES}"
        judged = bool(row.target) and not row.target.startswith(DASH)
        verdict = {True: "met", False: "**missed**", None: "not judged" if judged else DASH}[
            row.met
        ]
        cells = [row.what, ours, baseline, ratio, row.target or DASH, verdict]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + f" | {script} |")
    if not run.ok:
        said = " / ".join(line.strip()[:200] for line in run.stderr_tail[-5:] if line.strip())
        cells = [
            f"**bench/{run.name}.py failed**: {run.error}",
            f"last stderr: {said or '(none)'}",
            DASH,
            DASH,
            DASH,
            "**failed**",
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + f" | {script} |")
    return lines


def carried_lines(section: str, names: set[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """From the section as it was: the runs-table and figure-table lines of other scripts."""
    runs: dict[str, str] = {}
    figures: dict[str, list[str]] = collections.defaultdict(list)
    table = None
    for line in section.splitlines():
        if line == RUNS_HEADER[0]:
            table = "runs"
            continue
        if line == FIGURES_HEADER[0]:
            table = "figures"
            continue
        if not line.startswith("|"):
            table = None
            continue
        found = _SCRIPT_CELL.search(line)
        if table is None or found is None or found.group(1) in names:
            continue
        if table == "runs":
            runs[found.group(1)] = line
        else:
            figures[found.group(1)].append(line)
    return runs, figures


def render(
    runs: list[Run], info: dict[str, Any], args: argparse.Namespace, old_section: str
) -> str:
    """The text between the markers."""
    names = {run.name for run in runs}
    old_runs, old_figures = carried_lines(old_section, names) if args.only else ({}, {})
    run_lines: dict[str, str] = {run.name: run_line(run) for run in runs}
    figures: dict[str, list[str]] = {run.name: figure_lines(run) for run in runs}
    for name, line in old_runs.items():
        run_lines[name] = line
        figures[name] = old_figures.get(name, [])
    order = [script.name for script in SCRIPTS if script.name in run_lines]
    kinds = {"--quick" in run_lines[name] for name in order}
    spec = info["machine"]
    memory = "?" if spec["memory_gib"] is None else f"{spec['memory_gib']:g} GiB"
    command = "bench/all.py" + (" --quick" if args.quick else "")
    if args.backend != "sqlite":
        command += f" --backend {args.backend}"
    if args.only:
        command += f" --only {','.join(sorted(names))}"
    lines = [""]
    if kinds == {True}:
        lines.append(
            "**Quick run (`--quick`: small sizes, short windows). These are not the full"
            " figures: compare them with nothing but another quick run.**"
        )
        lines.append("")
    elif True in kinds:
        lines.append(
            "**Some rows below are from a quick run (`--quick` in their flags: small sizes,"
            " short windows), not full figures.**"
        )
        lines.append("")
    lines.append(
        f"Written by `.venv/bin/python {command}` on {info['date']} UTC at commit"
        f" {info['commit']}, in {_duration(info['seconds'])}. Machine: {spec['cpus']} CPUs"
        f" ({spec['cpu_model']}), {memory} RAM, shared with other work: read the load"
        " average next to each script. Every baseline is measured by the same script in the"
        " same run; the ratio is ours ÷ baseline unless its cell says otherwise. The scripts"
        " run one at a time; everything between this section's markers is rewritten by"
        " each run."
    )
    if old_runs:
        lines.append(
            "Scripts not in this run (`--only`) keep their rows from an earlier run: see their"
            " date and commit in the first table."
        )
    lines += ["", *RUNS_HEADER, *(run_lines[name] for name in order), "", *FIGURES_HEADER]
    for name in order:
        lines += figures[name]
    lines.append("")
    return "\n".join(lines)


def write_section(body: str) -> None:
    """Put body between the markers, adding the section under the introduction if need be."""
    text = DOC.read_text()
    begins, ends = text.count(BEGIN), text.count(END)
    if begins == 1 and ends == 1 and text.index(BEGIN) < text.index(END):
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
        return
    if begins or ends:
        raise ValueError(f"{DOC}: the markers {BEGIN} / {END} are not one pair in order")
    found = re.search(r"^## ", text, re.MULTILINE)
    at = found.start() if found else len(text)
    section = f"{HEADING}\n\n{BEGIN}\n{body}\n{END}\n\n"
    DOC.write_text(text[:at] + section + text[at:])


def old_section() -> str:
    """The text between the markers as it is now ("" if there is none)."""
    try:
        text = DOC.read_text()
    except OSError:
        return ""
    if BEGIN not in text:
        return ""
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to each script")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--only", help=f"comma-separated script names: {', '.join(BY_NAME)} (default all)"
    )
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md be")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", help="PostgreSQL server, to the scripts that take one")
    parser.add_argument(
        "--timeout",
        type=float,
        help=f"seconds per script (default {QUICK_TIMEOUT:g} with --quick, else {FULL_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    args.names = list(BY_NAME)
    if args.only:
        wanted = [
            Path(name.strip()).name.removesuffix(".py")
            for name in args.only.split(",")
            if name.strip()
        ]
        unknown = [name for name in wanted if name not in BY_NAME]
        if unknown or not wanted:
            parser.error(
                f"--only: unknown {', '.join(unknown) or '(none given)'};"
                f" known: {', '.join(BY_NAME)}"
            )
        args.names = [name for name in BY_NAME if name in wanted]
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    commit = git_commit()
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": commit,
        "machine": machine(),
        "quick": args.quick,
        "backend": args.backend,
    }
    runs: list[Run] = []
    for number, name in enumerate(args.names, 1):
        log(f"== bench/all.py: {number}/{len(args.names)} {name}")
        run = run_one(BY_NAME[name], args, commit)
        runs.append(run)
        state = "ok" if run.ok else f"FAILED ({run.error})"
        log(
            f"== {name}: {state} in {run.seconds:.0f} s; 1-min load {run.load_start[:1]} → "
            f"{run.load_end[:1]}"
        )
    info["seconds"] = round(time.monotonic() - began, 1)
    failed = [run.name for run in runs if not run.ok]
    written, write_error = False, None
    if not args.no_write:
        try:
            write_section(render(runs, info, args, old_section()))
        except (OSError, ValueError) as exc:  # the figures still go to stdout
            write_error = str(exc)
            log(f"== docs not written: {exc}")
        else:
            written = True
            log(f"== rewrote the section of {DOC.relative_to(ROOT)}")
    if args.json:
        result = {
            **info,
            "scripts": {
                run.name: {
                    **{key: value for key, value in asdict(run).items() if key != "name"},
                    "command": _redact(run.command),
                    "ok": run.ok,
                }
                for run in runs
            },
            "failed": failed,
            "docs_written": written,
            "docs_error": write_error,
        }
        print(json.dumps(result, sort_keys=True))
    else:
        print(render(runs, info, args, "").strip("\n"))
    if failed:
        log(f"== failed: {', '.join(failed)}")
    return 1 if failed or write_error else 0


if __name__ == "__main__":
    sys.exit(main())
