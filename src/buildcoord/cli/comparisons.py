"""buildcoord compare A B | files | jobs | latest | recorded: is a build reproducible?

Exit status: 0 REPRODUCIBLE, 1 NOT REPRODUCIBLE, 2 an error (bad manifest, unknown job,
usage). ``--report FILE.md`` is written whatever the verdict: the failures are the reports
worth keeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from buildcoord.artifacts.comparison import (
    Comparison,
    compare_manifests,
    deep_diff,
    render_markdown,
    render_text,
)
from buildcoord.artifacts.manifest import Manifest, load_manifest
from buildcoord.cli.artifacts import write_atomically
from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.errors import BuildcoordError, InvalidInput, NotFound

ERROR_EXIT = 2


class CompareGroup(click.Group):
    """``compare A B`` means ``compare files A B``; every error exits 2, not 1, so that a
    script can tell "not reproducible" from "could not tell"."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            return "files", self.commands["files"], args
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BuildcoordError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(ERROR_EXIT)


@click.group("compare", cls=CompareGroup)
def compare() -> None:
    """Compare two builds' artifacts: REPRODUCIBLE (exit 0) or NOT REPRODUCIBLE (exit 1).

    \b
    compare A.json B.json         two manifest files (same as `compare files`)
    compare jobs J1 J2            two jobs' manifests from the coordinator
    compare latest BRANCH --servers build1,build2
                                  each server's newest successful build of BRANCH
    compare recorded              verdicts the coordinator recorded by itself
    """


def _report_option(function: Any) -> Any:
    return click.option(
        "--report",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Also write a Markdown report here (whatever the verdict).",
    )(function)


@compare.command("files")
@click.argument("manifest_a", metavar="A", type=click.Path(path_type=Path))
@click.argument("manifest_b", metavar="B", type=click.Path(path_type=Path))
@_report_option
@json_option
@click.option("--deep", is_flag=True, help="Run diffoscope on each differing file.")
@click.option(
    "--root-a",
    type=click.Path(path_type=Path, file_okay=False),
    help="A's files, for --deep (default: A's directory).",
)
@click.option(
    "--root-b",
    type=click.Path(path_type=Path, file_okay=False),
    help="B's files, for --deep (default: B's directory).",
)
def files(
    manifest_a: Path,
    manifest_b: Path,
    report: Path | None,
    as_json: bool,
    deep: bool,
    root_a: Path | None,
    root_b: Path | None,
) -> None:
    """Compare two manifest files."""
    a, b = load_manifest(manifest_a), load_manifest(manifest_b)
    comparison = compare_manifests(a, b, _label(a, str(manifest_a)), _label(b, str(manifest_b)))
    texts = None
    if deep:
        texts = deep_diff(
            root_a or manifest_a.parent,
            root_b or manifest_b.parent,
            [item.path for item in comparison.different],
        )
    conclude(comparison, report=report, as_json=as_json, deep=texts)


@compare.command("jobs")
@click.argument("job_a", metavar="J1", type=int)
@click.argument("job_b", metavar="J2", type=int)
@_report_option
@json_option
def jobs(job_a: int, job_b: int, report: Path | None, as_json: bool) -> None:
    """Compare the manifests two jobs reported to the coordinator."""
    with get_context().client() as client:
        a, b = (job_manifest(client, job_a), job_manifest(client, job_b))
    comparison = compare_manifests(a, b, _label(a, f"job {job_a}"), _label(b, f"job {job_b}"))
    conclude(comparison, report=report, as_json=as_json)


def job_manifest(client: Any, job_id: int) -> Manifest:
    """A job's manifest from the coordinator, with the job's server, branch and commit."""
    job = client.get_job(job_id)
    files = client.manifest(job_id)
    if job.status != "succeeded" and not files:
        raise InvalidInput(f"job {job_id} is {job.status} and has no manifest")
    return Manifest(
        files=sorted(files, key=lambda item: item.path),
        created_at=job.finished_at or job.created_at,
        job=job.id,
        server=job.server,
        branch=job.branch,
        commit=job.commit,
    )


def _label(manifest: Manifest, fallback: str) -> str:
    """Name a side by its server and job when the manifest says, else by where it came from."""
    if manifest.server and manifest.job is not None:
        return f"{manifest.server} (job {manifest.job})"
    return manifest.server or fallback


def conclude(
    comparison: Comparison,
    *,
    report: Path | None,
    as_json: bool,
    deep: dict[str, str] | None = None,
) -> None:
    """Print the comparison, write the report (whatever the verdict), exit 0 or 1."""
    if report is not None:
        generated = datetime.now(UTC)
        write_atomically(report, render_markdown(comparison, generated, deep))
    if as_json:
        data = comparison.to_dict()
        if deep is not None:
            data["deep"] = deep
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(render_text(comparison), nl=False)
        for path, text in (deep or {}).items():
            click.echo(f"\ndiffoscope {path}:\n{text.rstrip()}")
        if report is not None:
            click.echo(f"Report written to {report}")
    click.get_current_context().exit(0 if comparison.reproducible else 1)


@compare.command("latest")
@click.argument("branch")
@click.option(
    "--servers",
    required=True,
    help="Two servers, comma-separated: each one's newest successful build of BRANCH.",
)
@_report_option
@json_option
def latest(branch: str, servers: str, report: Path | None, as_json: bool) -> None:
    """Compare the newest successful builds of BRANCH on two servers."""
    names = split_list(servers)
    if len(names) != 2 or names[0] == names[1]:
        raise InvalidInput(f"--servers needs two different servers, got {servers!r}")
    with get_context().client() as client:
        client.get_branch(branch)
        picked = []
        for name in names:
            found = client.latest_artifact_set(branch, name)
            if found is None:
                raise NotFound(f"no successful build of {branch} with artifacts on {name}")
            picked.append(job_manifest(client, found.job_id))
    a, b = picked
    comparison = compare_manifests(a, b, _label(a, names[0]), _label(b, names[1]))
    conclude(comparison, report=report, as_json=as_json)


@compare.command("recorded")
@click.option("--branch", help="Only this branch.")
@click.option("--job", type=int, help="Only comparisons involving this job.")
@json_option
def recorded(branch: str | None, job: int | None, as_json: bool) -> None:
    """The verdicts the coordinator recorded by itself when two servers built the same commit."""
    with get_context().client() as client:
        found = client.comparisons(branch=branch, job=job)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No comparisons recorded")
        return
    table(
        ["ID", "BRANCH", "COMMIT", "JOBS", "VERDICT", "DIFFERENT", "ONLY IN ONE", "WHEN"],
        [
            [
                item.id,
                item.branch,
                item.commit[:12],
                f"{item.job_a} vs {item.job_b}",
                "REPRODUCIBLE" if item.reproducible else "NOT REPRODUCIBLE",
                item.summary.get("counts", {}).get("different", "-"),
                _one_sided(item.summary),
                stamp(item.created_at),
            ]
            for item in found
        ],
    )


def _one_sided(summary: dict[str, object]) -> object:
    counts = summary.get("counts")
    if not isinstance(counts, dict):
        return "-"
    return int(counts.get("only_a", 0)) + int(counts.get("only_b", 0))
