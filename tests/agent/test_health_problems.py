"""What an agent reports wrong with itself, sent with each heartbeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.agent.metrics import health_problems


def test_a_healthy_agent_reports_no_problem(tmp_path: Path) -> None:
    assert health_problems(tmp_path) == ()


def test_an_agent_without_git_or_a_usable_work_directory_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    missing = tmp_path / "gone"

    assert health_problems(missing) == (
        "git is not on PATH",
        f"the work directory {missing} is not writable",
    )
