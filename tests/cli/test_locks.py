"""buildcoord lock acquire|release|renew|list|recover, driven in process."""

from __future__ import annotations

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from inprocess import RunCli


def test_lock_acquire_prints_the_fencing_token_as_its_last_line(
    run_cli: RunCli, operator: Client
) -> None:
    first = run_cli("lock", "acquire", "deploy", "--holder", "build1", "--ttl", "60").last_line
    operator.release_lock("deploy", "build1")
    second = run_cli("lock", "acquire", "deploy", "--holder", "build2").last_line
    assert (int(first), int(second)) == (1, 2)


def test_lock_acquire_takes_a_name_with_spaces_and_quotes(
    run_cli: RunCli, operator: Client
) -> None:
    name = 'it\'s the "release" lock'
    run_cli("lock", "acquire", name, "--holder", "build1")
    assert [lock.name for lock in operator.list_locks()] == [name]


def test_lock_release_frees_the_lock(run_cli: RunCli, operator: Client) -> None:
    operator.acquire_lock("deploy", "build1")
    assert "build1" in run_cli("lock", "release", "deploy", "--holder", "build1").stdout
    assert operator.list_locks()[0].holders == ()


def test_lock_renew_extends_the_lease(run_cli: RunCli, operator: Client, clock: FakeClock) -> None:
    operator.acquire_lock("deploy", "build1", ttl=60)
    clock.advance(50)
    run_cli("lock", "renew", "deploy", "--holder", "build1", "--ttl", "60")
    [holder] = operator.list_locks()[0].holders
    assert (holder.expires_at - clock.now()).total_seconds() == 60


def test_lock_list_shows_holders(run_cli: RunCli, operator: Client) -> None:
    operator.acquire_lock("deploy", "build1")
    lines = run_cli("lock", "list").stdout.splitlines()
    assert lines[1].split()[:4] == ["deploy", "1", "build1", "1"]


def test_lock_recover_releases_expired_leases(
    run_cli: RunCli, operator: Client, clock: FakeClock
) -> None:
    operator.acquire_lock("deploy", "build1", ttl=10)
    clock.advance(11)
    assert "released" in run_cli("lock", "recover").stdout
    assert operator.list_locks()[0].holders == ()


def test_lock_release_by_the_wrong_holder_is_one_error_line(
    run_cli: RunCli, operator: Client
) -> None:
    operator.acquire_lock("deploy", "build1")
    assert "held by build1" in run_cli("lock", "release", "deploy", "--holder", "build2").error
    assert [held.holder for held in operator.list_locks()[0].holders] == ["build1"]


def test_lock_acquire_of_a_held_lock_is_one_error_line(run_cli: RunCli, operator: Client) -> None:
    operator.acquire_lock("deploy", "build1")
    assert "held by build1" in run_cli("lock", "acquire", "deploy", "--holder", "build2").error
