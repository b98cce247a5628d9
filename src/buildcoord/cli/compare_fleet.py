"""buildcoord compare latest|recorded: comparisons of the fleet's builds via the coordinator."""

from __future__ import annotations

from pathlib import Path

import click

from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.comparison import compare_manifests
from buildcoord.errors import InvalidInput, NotFound


@click.command("latest")
@click.argument("branch")
@click.option(
    "--servers",
    required=True,
    help="Two servers, comma-separated: each one's newest successful build of BRANCH.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a Markdown report here (whatever the verdict).",
)
@json_option
def latest(branch: str, servers: str, report: Path | None, as_json: bool) -> None:
    """Compare the newest successful builds of BRANCH on two servers."""
    from buildcoord.cli.compare import _label, conclude, job_manifest

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


@click.command("recorded")
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
