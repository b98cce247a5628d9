"""scripts/travistorrent_history.py: TravisTorrent build lists (both harvests' layouts) become a
history file that ``predict evaluate`` reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildcoord.prediction.history_file import read_history

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "travistorrent_history.py"
HEADER = "build_id,commit,pull_req,branch,status,duration,started_at,jobs,event_type\n"


def test_both_layouts_become_one_history_with_a_key_per_matrix_size(tmp_path: Path) -> None:
    quoted = tmp_path / "a.csv"
    quoted.write_text(
        HEADER
        + '103,c3,,master,passed,300,2016-08-03 10:00:00 UTC,"[9, 10]",push\n'
        + '102,c2,17,master,errored,12,2016-08-02 10:00:00 UTC,"[7, 8]",pull_request\n'
        + '101,c1,,master,canceled,0,,"[5, 6]",push\n'
        + '100,c0,,dev,passed,150,2016-08-01 10:00:00 UTC,"[4]",push\n',
        encoding="utf-8",
    )
    unquoted = tmp_path / "b.csv"
    unquoted.write_text(
        HEADER + "200,d0,,develop,failed,-5,2020-01-01 00:00:00 UTC,[1, 2, 3],push\n"
        "201,d1,,develop,passed,99,2020-01-02 00:00:00 UTC,[4, 5, 6],push\n",
        encoding="utf-8",
    )
    out = tmp_path / "history.csv.gz"

    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), f"acme/a={quoted}", f"acme/b={unquoted}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "wrote 4 builds" in done.stdout
    assert "1 no positive duration" in done.stdout
    assert "1 status canceled" in done.stdout
    history = read_history(out)
    assert not history.malformed
    found = [
        (row.project, row.job, row.branch, row.duration, row.result, row.trigger)
        for row in history.rows
    ]
    assert found == [
        ("acme/a", "travis build (1 job)", "dev", 150.0, "success", "push"),
        ("acme/a", "travis build (2 jobs)", "master", 12.0, "failure", "pull_request"),
        ("acme/a", "travis build (2 jobs)", "master", 300.0, "success", "push"),
        ("acme/b", "travis build (3 jobs)", "develop", 99.0, "success", "push"),
    ]


def test_a_project_without_its_path_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out.csv"), "acme/a"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "expected OWNER/REPO=PATH" in done.stderr
    assert not (tmp_path / "out.csv").exists()
