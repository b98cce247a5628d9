"""Reproducibility: compare two manifests file by file, render the result, run diffoscope.

A bottom-layer module (it imports only manifest, models and errors), so that the CLI can
compare local manifests and the coordinator can later compare two servers' builds and store
the verdict (``Comparison.to_dict()``).

Files are matched by relative path (not by bare name, which two directories may share), empty
sets count 0, size differences carry their sign, and the report is produced whatever the
verdict.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from buildcoord.artifacts.manifest import Manifest, check_relative_path
from buildcoord.models import ArtifactFile

REPRODUCIBLE = "REPRODUCIBLE"
NOT_REPRODUCIBLE = "NOT REPRODUCIBLE"
# diffoscope's text for one file is cut past this, so that a report stays readable.
DEEP_DIFF_MAX_CHARS = 64 * 1024
DEEP_DIFF_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class BuildDetails:
    """Where one side's manifest came from."""

    label: str
    job: int | None
    server: str | None
    branch: str | None
    commit: str | None
    artifact_count: int
    total_size: int


@dataclass(frozen=True, slots=True)
class FileComparison:
    """One path present on both sides."""

    path: str
    status: Literal["IDENTICAL", "DIFFERENT"]
    sha256_a: str | None
    sha256_b: str | None
    size_a: int
    size_b: int
    # A symlink is compared by its target; a symlink against a file is DIFFERENT.
    kind_a: str = "file"
    kind_b: str = "file"
    target_a: str | None = None
    target_b: str | None = None

    @property
    def size_difference(self) -> int:
        """Signed: B's size minus A's."""
        return self.size_b - self.size_a


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two manifests compared by relative path; the verdict follows from the lists."""

    a: BuildDetails
    b: BuildDetails
    common: list[FileComparison]
    only_a: list[str]
    only_b: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> list[FileComparison]:
        """Common files with the same content."""
        return [item for item in self.common if item.status == "IDENTICAL"]

    @property
    def different(self) -> list[FileComparison]:
        """Common files whose content differs."""
        return [item for item in self.common if item.status == "DIFFERENT"]

    @property
    def size_differences(self) -> int:
        """How many different files also differ in size."""
        return sum(1 for item in self.different if item.size_difference != 0)

    @property
    def reproducible(self) -> bool:
        """Every file on both sides, every one identical."""
        return not self.different and not self.only_a and not self.only_b

    @property
    def verdict(self) -> str:
        """REPRODUCIBLE or NOT REPRODUCIBLE."""
        return REPRODUCIBLE if self.reproducible else NOT_REPRODUCIBLE

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: what a coordinator stores and ``--json`` prints."""
        common = []
        for item in self.common:
            entry = asdict(item)
            entry["size_difference"] = item.size_difference
            common.append(entry)
        return {
            "verdict": self.verdict,
            "reproducible": self.reproducible,
            "a": asdict(self.a),
            "b": asdict(self.b),
            "counts": {
                "common": len(self.common),
                "only_a": len(self.only_a),
                "only_b": len(self.only_b),
                "identical": len(self.identical),
                "different": len(self.different),
                "size_differences": self.size_differences,
            },
            "warnings": list(self.warnings),
            "common": common,
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
        }


def compare_manifests(a: Manifest, b: Manifest, label_a: str, label_b: str) -> Comparison:
    """Compare two manifests: files in both, only in A, only in B, by relative path."""
    if label_a == label_b:
        # Two builds on one server would otherwise print as one ("build1 vs build1").
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    files_a = {item.path: item for item in a.files}
    files_b = {item.path: item for item in b.files}
    common = [_compare_file(files_a[p], files_b[p]) for p in sorted(files_a.keys() & files_b)]
    warnings = []
    if a.branch != b.branch:
        warnings.append(f"Different branches ({a.branch or '-'} vs {b.branch or '-'})")
    if a.commit != b.commit:
        warnings.append(
            f"Different commits ({a.commit or '-'} vs {b.commit or '-'}): "
            "the comparison may not be meaningful"
        )
    return Comparison(
        a=_details(a, label_a),
        b=_details(b, label_b),
        common=common,
        only_a=sorted(files_a.keys() - files_b.keys()),
        only_b=sorted(files_b.keys() - files_a.keys()),
        warnings=warnings,
    )


def _details(manifest: Manifest, label: str) -> BuildDetails:
    return BuildDetails(
        label=label,
        job=manifest.job,
        server=manifest.server,
        branch=manifest.branch,
        commit=manifest.commit,
        artifact_count=manifest.artifact_count,
        total_size=manifest.total_size,
    )


def _compare_file(a: ArtifactFile, b: ArtifactFile) -> FileComparison:
    if a.kind == "symlink" or b.kind == "symlink":
        same = a.kind == b.kind and a.link_target == b.link_target
    else:
        same = a.sha256 is not None and a.sha256 == b.sha256
    return FileComparison(
        path=a.path,
        status="IDENTICAL" if same else "DIFFERENT",
        sha256_a=a.sha256,
        sha256_b=b.sha256,
        size_a=a.size,
        size_b=b.size,
        kind_a=a.kind,
        kind_b=b.kind,
        target_a=a.link_target,
        target_b=b.link_target,
    )


# --- rendering ----------------------------------------------------------------------------------


def signed_bytes(value: int) -> str:
    """A size difference with its sign and a binary unit: ``+1.5 KiB``, ``-12 B``, ``0 B``."""
    sign = "+" if value > 0 else "-" if value < 0 else ""
    size = float(abs(value))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            text = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            return sign + text
        size /= 1024
    raise AssertionError("unreachable")


def _describe(item: FileComparison, side: Literal["a", "b"]) -> str:
    kind, target = (item.kind_a, item.target_a) if side == "a" else (item.kind_b, item.target_b)
    if kind == "symlink":
        return f"symlink -> {target}"
    sha, size = (item.sha256_a, item.size_a) if side == "a" else (item.sha256_b, item.size_b)
    return f"{sha} ({size} bytes)"


def _lines(comparison: Comparison, bullet: str, code: str) -> list[str]:
    """The body shared by the text and Markdown renderings (they differ in bullets and code)."""
    a, b = comparison.a, comparison.b
    out = ["Build details:"]
    for side in (a, b):
        out.append(
            f"{bullet}{side.label}: job={_dash(side.job)} server={_dash(side.server)} "
            f"branch={_dash(side.branch)} commit={_dash(side.commit)} "
            f"files={side.artifact_count} size={side.total_size}"
        )
    out.append("")
    for warning in comparison.warnings:
        out.append(f"[!] Warning: {warning}")
    if comparison.warnings:
        out.append("")
    out += [
        "Files:",
        f"{bullet}In both: {len(comparison.common)}",
        f"{bullet}Only in {a.label}: {len(comparison.only_a)}",
        f"{bullet}Only in {b.label}: {len(comparison.only_b)}",
        "",
    ]
    for label, paths in ((a.label, comparison.only_a), (b.label, comparison.only_b)):
        if paths:
            out.append(f"Only in {label}:")
            out += [f"{bullet}{code}{path}{code}" for path in paths]
            out.append("")
    if comparison.common:
        out.append("Files in both:")
        for item in comparison.common:
            mark = "[OK]" if item.status == "IDENTICAL" else "[X]"
            out.append(f"{bullet}{mark} {code}{item.path}{code} - {item.status}")
            if item.status == "DIFFERENT":
                out.append(f"    {a.label}: {_describe(item, 'a')}")
                out.append(f"    {b.label}: {_describe(item, 'b')}")
                if item.size_difference:
                    out.append(f"    Size difference: {signed_bytes(item.size_difference)}")
        out.append("")
    out += [
        "Summary:",
        f"{bullet}Identical: {len(comparison.identical)}",
        f"{bullet}Different: {len(comparison.different)}",
        f"{bullet}Size differences: {comparison.size_differences}",
        f"{bullet}Only in {a.label}: {len(comparison.only_a)}",
        f"{bullet}Only in {b.label}: {len(comparison.only_b)}",
        "",
    ]
    return out


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def render_text(comparison: Comparison) -> str:
    """The comparison for a terminal, ending with the verdict line."""
    lines = [f"Comparing {comparison.a.label} with {comparison.b.label}", ""]
    lines += _lines(comparison, "  ", "")
    lines.append(_verdict_line(comparison))
    return "\n".join(lines) + "\n"


def _verdict_line(comparison: Comparison) -> str:
    if comparison.reproducible:
        return f"[OK] {REPRODUCIBLE}: both builds produced identical artifacts"
    return f"[X] {NOT_REPRODUCIBLE}: differences found between the builds"


def render_markdown(
    comparison: Comparison, generated_at: datetime, deep: dict[str, str] | None = None
) -> str:
    """The Markdown report: title, generation time, details, files, verdict, and the
    diffoscope text of each differing file when ``deep`` holds it."""
    a, b = comparison.a, comparison.b
    out = [
        "# Build Comparison Report",
        "",
        f"**Generated**: {generated_at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "",
        f"**Verdict**: {comparison.verdict}",
        "",
        "## Details",
        "",
        "| | job | server | branch | commit | files | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in (a, b):
        out.append(
            f"| {_cell(side.label)} | {_dash(side.job)} | {_cell(_dash(side.server))} "
            f"| {_cell(_dash(side.branch))} | {_cell(_dash(side.commit))} "
            f"| {side.artifact_count} | {side.total_size} |"
        )
    out.append("")
    if comparison.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in comparison.warnings] + [""]
    out += [
        "## Summary",
        "",
        f"- In both: {len(comparison.common)}",
        f"- Identical: {len(comparison.identical)}",
        f"- Different: {len(comparison.different)}",
        f"- Size differences: {comparison.size_differences}",
        f"- Only in {a.label}: {len(comparison.only_a)}",
        f"- Only in {b.label}: {len(comparison.only_b)}",
        "",
    ]
    for label, paths in ((a.label, comparison.only_a), (b.label, comparison.only_b)):
        if paths:
            out += [f"## Only in {label}", ""] + [f"- {_code(p)}" for p in paths] + [""]
    if comparison.common:
        out += ["## Files in both", "", "| file | status | size difference |", "|---|---|---|"]
        for item in comparison.common:
            change = signed_bytes(item.size_difference) if item.size_difference else ""
            out.append(f"| {_cell(_code(item.path))} | {item.status} | {change} |")
        out.append("")
    for item in comparison.different:
        out += [
            f"### {_code(item.path)}",
            "",
            f"- {a.label}: {_code(_describe(item, 'a'))}",
            f"- {b.label}: {_code(_describe(item, 'b'))}",
        ]
        if item.size_difference:
            out.append(f"- Size difference: {signed_bytes(item.size_difference)}")
        out.append("")
        if deep is not None and item.path in deep:
            fence = "`" * max(3, _longest_backtick_run(deep[item.path]) + 1)
            out += ["diffoscope:", "", fence + "text", deep[item.path].rstrip("\n"), fence, ""]
    out += ["## Verdict", "", _verdict_line(comparison), ""]
    return "\n".join(out)


def _code(text: str) -> str:
    fence = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


# --- diffoscope ---------------------------------------------------------------------------------


def diffoscope_command() -> list[str] | None:
    """How to run diffoscope: on PATH, next to this Python (a venv's bin), or None."""
    found = shutil.which("diffoscope")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "diffoscope"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return None


def deep_diff(
    root_a: Path,
    root_b: Path,
    relative_paths: Sequence[str],
    timeout: float = DEEP_DIFF_TIMEOUT,
) -> dict[str, str]:
    """diffoscope's text for each path (relative to both roots), cut to a bounded size;
    a note instead when diffoscope is not installed, times out or fails."""
    command = diffoscope_command()
    results: dict[str, str] = {}
    for relative in relative_paths:
        check_relative_path(relative, "deep diff")
        if command is None:
            results[relative] = "diffoscope is not installed (pip install diffoscope)"
            continue
        results[relative] = _run_diffoscope(command, root_a / relative, root_b / relative, timeout)
    return results


def _run_diffoscope(command: list[str], a: Path, b: Path, timeout: float) -> str:
    for path in (a, b):
        if not path.exists() and not path.is_symlink():
            return f"not compared: {path} does not exist"
    argv = [*command, "--text", "-", "--no-progress", str(a), str(b)]
    # A session of its own, so that a timeout kills diffoscope's helpers (unzip, xxd, ...) too.
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        output, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return f"diffoscope took longer than {timeout:g} s; stopped"
    text = output.decode("utf-8", errors="replace")
    if process.returncode == 0:
        return "diffoscope finds no difference"
    if process.returncode != 1:
        complaint = errors.decode("utf-8", errors="replace")
        text = f"diffoscope failed (exit {process.returncode}):\n{complaint}{text}"
    if len(text) > DEEP_DIFF_MAX_CHARS:
        cut = len(text) - DEEP_DIFF_MAX_CHARS
        text = text[:DEEP_DIFF_MAX_CHARS] + f"\n[... {cut} more characters cut ...]\n"
    return text
