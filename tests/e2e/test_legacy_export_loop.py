"""`legacy export --every` as a real process against a real coordinator: it exports again and
again, rides out the coordinator's absence, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from live_fleet import live_fleet, stop_process, wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "legacy-state"


def _cli(url: str, token: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "buildcoord", "--url", url, "--token", token, *args]


def test_the_export_loop_goes_on_through_an_outage_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with live_fleet(tmp_path / "fleet") as fleet:
        done = subprocess.run(
            _cli(fleet.url, fleet.admin_token, "legacy", "import", str(SAMPLE)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = tmp_path / "export.log"
        target = tmp_path / "seed"
        with out.open("wb") as log:
            loop = subprocess.Popen(
                _cli(
                    fleet.url, fleet.admin_token, "legacy", "export", str(target), "--every", "0.01"
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(
                "two exports", lambda: out.read_text().count("exported 12 files") >= 2, timeout=30
            )
            jobs = json.loads((target / "coordination" / "jobs.json").read_text())
            assert {job["id"] for job in jobs["jobs"]} == {"job_1761781030", "job_1761779789"}

            fleet.stop_coordinator()
            wait_for("the outage noticed", lambda: "trying again in" in out.read_text(), timeout=30)
            assert loop.poll() is None
            exported = out.read_text().count("exported 12 files")
            fleet.start_coordinator()
            wait_for(
                "an export after the outage",
                lambda: out.read_text().count("exported 12 files") > exported,
                timeout=30,
            )

            loop.send_signal(signal.SIGINT)
            assert loop.wait(timeout=10) == 0
            assert out.read_text().rstrip().endswith("Stopped.")
            assert not list(target.rglob("*.tmp"))
        finally:
            stop_process(loop)
