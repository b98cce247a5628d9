"""Waiting for agent orders from the CLI (cleanup commands), with a progress line."""

from __future__ import annotations

import sys
import time

import click

from buildcoord.client import Client
from buildcoord.models import AgentOrder

PENDING_EXIT = 2


def wait_for_orders(client: Client, orders: list[AgentOrder], timeout: float) -> list[AgentOrder]:
    """Poll the orders until all are settled or timeout passes; return their last state."""
    current = {order.id: order for order in orders}
    deadline = time.monotonic() + timeout
    tty = sys.stderr.isatty()
    while True:
        pending = [order for order in current.values() if order.status == "pending"]
        if tty:
            done = len(current) - len(pending)
            click.echo(f"\r{done}/{len(current)} agents done", nl=False, err=True)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
        for order in pending:
            current[order.id] = client.order(order.id)
    if tty:
        click.echo("", err=True)
    return list(current.values())


def report_pending(orders: list[AgentOrder]) -> bool:
    """Say which orders are still waiting for their agent; True if any."""
    pending = [order for order in orders if order.status == "pending"]
    for order in pending:
        click.echo(
            f"order {order.id}: still pending on {order.server} (is its agent running?); "
            "it will be carried out when the agent next connects",
            err=True,
        )
    for order in orders:
        if order.status == "failed":
            click.echo(f"order {order.id} on {order.server} failed: {order.error}", err=True)
    return bool(pending)
