"""The systemd units shipped in deploy/systemd pass ``systemd-analyze verify`` and start the
commands with options buildcoord knows."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
INSTALLED = "/opt/buildcoord/bin/buildcoord"
BUILDCOORD = Path(sys.executable).with_name("buildcoord")


def exec_start(unit: Path, instance: str = "build1") -> list[str]:
    """The unit's ExecStart command line, with %i filled in."""
    for line in unit.read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))
    raise AssertionError(f"{unit.name} has no ExecStart")


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/test installs it (Debian: systemd)"
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        name = unit.name.replace("@.service", "@build1.service")
        text = unit.read_text().replace(INSTALLED, str(BUILDCOORD))
        (tmp_path / name).write_text(text)
        names.append(f"./{name}")
    assert names == ["./buildcoord-agent@build1.service", "./buildcoord-coordinator.service"]
    verified = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (verified.returncode, verified.stderr, verified.stdout) == (0, "", "")


@pytest.mark.parametrize("unit", ["buildcoord-coordinator.service", "buildcoord-agent@.service"])
def test_each_unit_starts_buildcoord_with_options_it_knows(unit: str) -> None:
    argv = exec_start(UNITS / unit)
    assert argv[0] == INSTALLED
    # Click parses every option before it acts on --help: an unknown one exits 2.
    checked = subprocess.run(
        [str(BUILDCOORD), *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
