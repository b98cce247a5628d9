"""An agent token rotated without a restart: the new one works at once, the old one until its
grace ends (a cached answer included), then neither a cache nor the store takes it."""

from __future__ import annotations

import pytest

from buildcoord.clock import FakeClock
from buildcoord.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator


def test_the_old_token_works_through_its_grace_and_not_a_second_after(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    _server, old = coordinator.servers.register("build1", by=operator)
    tokens = coordinator.tokens
    assert tokens.authenticate(old).server == "build1"  # now in this process's cache too

    rotated = coordinator.servers.rotate_token("build1", grace_seconds=600, by=operator)

    assert tokens.authenticate(rotated.secret).server == "build1"
    assert (rotated.old_valid_until - clock.now()).total_seconds() == 600
    clock.advance(599)
    assert tokens.authenticate(old).server == "build1"
    clock.advance(1)
    with pytest.raises(Unauthorized):
        tokens.authenticate(old)
    assert tokens.cached(old) is None
    assert tokens.authenticate(rotated.secret).server == "build1"


def test_a_rotation_without_grace_ends_the_old_token_at_once_and_removal_ends_both(
    coordinator: Coordinator, operator: Principal
) -> None:
    _server, old = coordinator.servers.register("build1", by=operator)
    rotated = coordinator.servers.rotate_token("build1", grace_seconds=0, by=operator)
    with pytest.raises(Unauthorized):
        coordinator.tokens.authenticate(old)
    again = coordinator.servers.rotate_token("build1", grace_seconds=3600, by=operator)
    coordinator.servers.remove("build1", by=operator)
    for secret in (rotated.secret, again.secret):
        with pytest.raises(Unauthorized):
            coordinator.tokens.authenticate(secret)


def test_a_rotation_is_for_operators_of_known_servers_within_a_week_of_grace(
    coordinator: Coordinator, operator: Principal
) -> None:
    coordinator.servers.register("build1", by=operator)
    agent = Principal("agent", "agent build1", server="build1")
    with pytest.raises(Forbidden):
        coordinator.servers.rotate_token("build1", grace_seconds=60, by=agent)
    with pytest.raises(NotFound):
        coordinator.servers.rotate_token("build9", grace_seconds=60, by=operator)
    with pytest.raises(InvalidInput):
        coordinator.servers.rotate_token("build1", grace_seconds=8 * 86400, by=operator)
    with pytest.raises(InvalidInput):
        coordinator.servers.rotate_token("build1", grace_seconds=-1, by=operator)
