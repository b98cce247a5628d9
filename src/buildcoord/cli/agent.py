"""buildcoord agent: run the build agent of one server in the foreground."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from buildcoord.agent.agent import Agent
from buildcoord.agent.options import AgentOptions
from buildcoord.cli.context import get_context, split_list
from buildcoord.errors import InvalidInput


@click.command("agent")
@click.option("--name", required=True, help="The server this agent builds for, e.g. build1.")
@click.option(
    "--workdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Mirrors, worktrees and artifacts go here.",
)
@click.option(
    "--labels",
    help="Comma-separated labels this agent reports for its server, beside those an operator "
    "set, e.g. os=debian,mvn (server=... is reserved: every server has server=<its name>).",
)
@click.option(
    "--lease",
    "lease_seconds",
    type=float,
    default=30.0,
    show_default=True,
    help="Job lease to plan with (renewed every third of it).",
)
@click.option(
    "--cancel-grace",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when a build is cancelled or times out.",
)
@click.option(
    "--worktree-keep-days",
    type=float,
    default=14.0,
    show_default=True,
    help="Remove worktrees of branches not built for this long (and of removed branches).",
)
def agent(
    name: str,
    workdir: Path,
    labels: str | None,
    lease_seconds: float,
    cancel_grace: float,
    worktree_keep_days: float,
) -> None:
    """Run the build agent of server NAME until stopped.

    It heartbeats, claims the jobs it can build, builds each in a git worktree and reports
    the result. SIGTERM or Ctrl-C: finish the current job, then exit; a second one cancels
    the current build (reported as failed), then exits. The token (--token or
    BUILDCOORD_TOKEN) is the server's agent token.
    """
    if lease_seconds < 6:
        raise InvalidInput("--lease must be at least 6 seconds (the build is fenced 3 s early)")
    context = get_context()
    _log_to_stderr()
    options = AgentOptions(
        name=name,
        workdir=workdir,
        labels=None if labels is None else tuple(split_list(labels)),
        lease_seconds=lease_seconds,
        cancel_grace=cancel_grace,
        worktree_keep_days=worktree_keep_days,
        url=context.url,
    )
    with context.client() as client:
        runner = Agent(client, options)

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            runner.request_stop()  # only bumps a counter: nothing here may take a lock

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        click.echo(f"agent {name}: building for {context.url} in {workdir}", err=True)
        runner.run()


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("buildcoord.agent")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
