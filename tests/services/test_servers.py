"""Servers and tokens: registration, heartbeats, derived status, status events, removal, tokens."""

from __future__ import annotations

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from buildcoord.models import Metrics, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from sql_log import executed_statements
from store_rows import StoreState

from .conftest import RegisterServer

METRICS = Metrics(
    cpu_percent=12.5,
    load_1m=0.5,
    load_5m=0.25,
    load_15m=0.125,
    memory_used_bytes=3 * 2**30,
    memory_total_bytes=16 * 2**30,
    disk_free_bytes=200 * 2**30,
    disk_total_bytes=500 * 2**30,
    uptime_seconds=86_400.5,
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def heartbeat(coordinator: Coordinator, by: Principal, name: str = "build1") -> None:
    """Send a heartbeat for a server with the standard metrics."""
    coordinator.servers.heartbeat(name, metrics=METRICS, agent_version="0.1.0", by=by)


def status(coordinator: Coordinator, operator: Principal, name: str = "build1") -> str:
    """The live status of a server."""
    return coordinator.servers.get(name, by=operator).status


def event_kinds(store: Store, name: str) -> list[str]:
    """The kinds of events recorded for one server, in order."""
    return [event.kind for event in store.events.list_events(subject=f"server:{name}")]


# -- register -------------------------------------------------------------------------------------


def test_it_returns_an_agent_token_that_authenticates_as_the_new_server(
    coordinator: Coordinator, operator: Principal
) -> None:
    server, secret = coordinator.servers.register("build1", ["mvn", "os=debian"], by=operator)

    assert (server.name, server.labels, server.status) == (
        "build1",
        ("mvn", "os=debian"),
        "offline",
    )
    assert coordinator.tokens.authenticate(secret) == Principal(
        "agent", "agent build1", server="build1"
    )


def test_it_stores_only_a_hash_of_the_agent_token(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    _, secret = coordinator.servers.register("build1", by=operator)

    assert secret not in repr(store_state())


def test_it_refuses_a_duplicate_server_name_and_changes_nothing(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    coordinator.servers.register("build1", by=operator)
    before = store_state()

    with pytest.raises(Conflict, match="server build1 already exists"):
        coordinator.servers.register("build1", ["other"], by=operator)

    assert store_state() == before


def test_it_refuses_bad_or_reserved_server_names_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for name in ["all", "system", "*", "", "a b", "-x", "x" * 65, "ünï", "a/b"]:
        with subtests.test(name=name), pytest.raises(InvalidInput):
            coordinator.servers.register(name, by=operator)

    assert store_state() == before


def test_it_forbids_anyone_but_an_operator_to_register_a_server(
    coordinator: Coordinator,
    reader: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
) -> None:
    build1 = register_server("build1")
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.servers.register("build2", by=build1)
    with pytest.raises(Forbidden):
        coordinator.servers.register("build2", by=reader)

    assert store_state() == before


# -- heartbeat ------------------------------------------------------------------------------------


def test_it_stores_the_metrics_and_agent_version_of_a_heartbeat(
    coordinator: Coordinator,
    clock: FakeClock,
    operator: Principal,
    register_server: RegisterServer,
) -> None:
    build1 = register_server("build1")
    clock.advance(2)

    heartbeat(coordinator, build1)

    server = coordinator.servers.get("build1", by=operator)
    assert server.metrics == METRICS
    assert server.agent_version == "0.1.0"
    assert server.last_heartbeat_at == clock.now()
    assert server.heartbeat_age_seconds == 0


def test_a_heartbeat_reports_labels_beside_the_operators_labels(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    build1 = register_server("build1", labels=["os=debian"])

    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn", "jdk"], by=build1)

    server = coordinator.servers.get("build1", by=operator)
    assert (server.labels, server.reported_labels) == (("os=debian",), ("jdk", "mvn"))


def test_a_heartbeat_with_labels_replaces_the_labels_reported_before(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    build1 = register_server("build1")
    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn"], by=build1)

    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["jdk"], by=build1)
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=build1)

    assert coordinator.servers.get("build1", by=operator).reported_labels == ("jdk",)


def test_every_server_matches_its_own_server_label(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    register_server("build1", labels=["os=debian"])

    server = coordinator.servers.get("build1", by=operator)
    assert server.matched_labels == frozenset({"os=debian", "server=build1"})


def test_it_refuses_to_register_a_server_with_a_server_label_and_changes_nothing(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(InvalidInput, match="server="):
        coordinator.servers.register("build1", ["server=build2"], by=operator)

    assert store_state() == before


def test_it_refuses_a_heartbeat_reporting_a_server_label_and_changes_nothing(
    coordinator: Coordinator, register_server: RegisterServer, store_state: StoreState
) -> None:
    build1 = register_server("build1")
    before = store_state()

    with pytest.raises(InvalidInput, match="server="):
        coordinator.servers.heartbeat(
            "build1", metrics=Metrics(), labels=["server=build1"], by=build1
        )

    assert store_state() == before


def test_it_refuses_a_negative_metric_and_changes_nothing(
    coordinator: Coordinator, register_server: RegisterServer, store_state: StoreState
) -> None:
    build1 = register_server("build1")
    before = store_state()

    with pytest.raises(InvalidInput, match="disk_free_bytes"):
        coordinator.servers.heartbeat("build1", metrics=Metrics(disk_free_bytes=-1), by=build1)

    assert store_state() == before


def test_it_forbids_an_agent_to_heartbeat_for_another_server(
    coordinator: Coordinator, register_server: RegisterServer, store_state: StoreState
) -> None:
    build1 = register_server("build1")
    register_server("build2")
    before = store_state()

    with pytest.raises(Forbidden):
        heartbeat(coordinator, build1, name="build2")

    assert store_state() == before


def test_it_reports_a_heartbeat_of_an_unknown_server_as_not_found(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(NotFound, match="server ghost does not exist"):
        heartbeat(coordinator, operator, name="ghost")


# -- status ---------------------------------------------------------------------------------------


def test_it_reports_a_server_that_never_sent_a_heartbeat_as_offline(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    register_server("build1")

    assert status(coordinator, operator) == "offline"


def test_it_moves_a_server_from_online_to_busy_to_stale_to_offline(
    coordinator: Coordinator,
    clock: FakeClock,
    settings: Settings,
    operator: Principal,
    register_server: RegisterServer,
) -> None:
    build1 = register_server("build1")
    heartbeat(coordinator, build1)
    assert status(coordinator, operator) == "online"

    coordinator.queue.submit("main", COMMIT, by=operator)
    job = coordinator.queue.claim_next("build1", by=build1)
    assert job is not None
    assert status(coordinator, operator) == "busy"
    assert coordinator.servers.get("build1", by=operator).running_jobs == (job.id,)

    clock.advance(3 * settings.heartbeat_interval_seconds - 1)
    assert status(coordinator, operator) == "busy"
    clock.advance(1)
    assert status(coordinator, operator) == "stale"

    clock.advance(settings.offline_after_seconds - 3 * settings.heartbeat_interval_seconds - 1)
    assert status(coordinator, operator) == "stale"
    clock.advance(1)
    assert status(coordinator, operator) == "offline"


def test_it_brings_a_server_back_online_with_its_next_heartbeat(
    coordinator: Coordinator,
    clock: FakeClock,
    operator: Principal,
    register_server: RegisterServer,
) -> None:
    build1 = register_server("build1")
    heartbeat(coordinator, build1)
    clock.advance(3600)

    heartbeat(coordinator, build1)

    assert status(coordinator, operator) == "online"


def test_it_takes_status_thresholds_from_the_settings(
    store: Store, clock: FakeClock, operator: Principal
) -> None:
    settings = Settings(
        heartbeat_interval_seconds=10, stale_after_missed_heartbeats=2, offline_after_seconds=60
    )
    coordinator = Coordinator(store, settings, clock)
    coordinator.servers.register("build1", by=operator)
    heartbeat(coordinator, operator)

    clock.advance(19)
    assert status(coordinator, operator) == "online"
    clock.advance(1)
    assert status(coordinator, operator) == "stale"
    clock.advance(39)
    assert status(coordinator, operator) == "stale"
    clock.advance(1)
    assert status(coordinator, operator) == "offline"


def test_it_records_each_status_flip_once_as_an_event(
    coordinator: Coordinator,
    store: Store,
    clock: FakeClock,
    settings: Settings,
    operator: Principal,
    register_server: RegisterServer,
) -> None:
    build1 = register_server("build1")
    heartbeat(coordinator, build1)
    assert coordinator.servers.record_status_changes() == []

    clock.advance(settings.stale_after_seconds)
    assert coordinator.servers.record_status_changes() == [("build1", "online", "stale")]
    assert coordinator.servers.record_status_changes() == []

    clock.advance(settings.offline_after_seconds)
    assert coordinator.servers.record_status_changes() == [("build1", "stale", "offline")]
    assert coordinator.servers.record_status_changes() == []

    heartbeat(coordinator, build1)
    assert coordinator.servers.record_status_changes() == []

    assert event_kinds(store, "build1") == [
        "server.registered",
        "server.online",
        "server.stale",
        "server.offline",
        "server.online",
    ]
    stale = store.events.list_events(subject="server:build1")[2]
    assert (stale.actor, stale.before, stale.after) == (
        "system:maintenance",
        {"status": "online"},
        {"status": "stale"},
    )


def test_maintenance_reads_only_the_servers_whose_status_is_due_to_change(
    coordinator: Coordinator,
    store: Store,
    clock: FakeClock,
    settings: Settings,
    register_server: RegisterServer,
) -> None:
    agents = {name: register_server(name) for name in ("build1", "build2", "build3")}
    register_server("never")  # registered, no heartbeat: offline, as recorded
    for name, agent in agents.items():
        heartbeat(coordinator, agent, name)
    clock.advance(settings.stale_after_seconds)
    heartbeat(coordinator, agents["build1"], "build1")
    now = clock.now().timestamp()

    due = store.servers_off_their_status(
        stale_before=now - settings.stale_after_seconds,
        offline_before=now - settings.offline_after_seconds,
    )

    assert [(name, recorded) for name, recorded, _ in due] == [
        ("build2", "online"),
        ("build3", "online"),
    ]
    assert coordinator.servers.record_status_changes() == [
        ("build2", "online", "stale"),
        ("build3", "online", "stale"),
    ]


def test_it_records_no_event_for_a_heartbeat_of_a_server_already_online(
    coordinator: Coordinator, store: Store, clock: FakeClock, register_server: RegisterServer
) -> None:
    build1 = register_server("build1")
    heartbeat(coordinator, build1)
    clock.advance(1)

    heartbeat(coordinator, build1)

    assert event_kinds(store, "build1") == ["server.registered", "server.online"]


def test_an_online_servers_heartbeat_is_one_statement(
    coordinator: Coordinator, store: Store, clock: FakeClock, register_server: RegisterServer
) -> None:
    build1 = register_server("build1", labels=["os=debian"])
    coordinator.servers.heartbeat("build1", metrics=METRICS, labels=["mvn"], by=build1)
    clock.advance(5)

    with executed_statements(store.engine) as unlabelled:
        heartbeat(coordinator, build1)
    with executed_statements(store.engine) as same_labels:
        coordinator.servers.heartbeat("build1", metrics=METRICS, labels=["mvn"], by=build1)

    for statements in (unlabelled, same_labels):
        sent = [text for text in statements if text != "BEGIN IMMEDIATE"]
        assert len(sent) == 1
        assert sent[0].startswith("UPDATE servers")


def test_a_heartbeat_answers_the_server_as_a_read_of_it_does(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    build1 = register_server("build1", labels=["os=debian"])
    register_server("build2")
    jobs = [coordinator.queue.submit("main", COMMIT[::-1], by=operator) for _ in range(2)]
    coordinator.queue.submit("other", COMMIT, labels=["server=build2"], by=operator)
    for _ in jobs:
        assert coordinator.queue.claim_next("build1", by=build1) is not None
    assert coordinator.queue.claim_next("build2", by=operator) is not None

    coming_online = coordinator.servers.heartbeat(
        "build1", metrics=METRICS, labels=["mvn"], by=build1
    )
    assert coming_online == coordinator.servers.get("build1", by=operator)
    already_online = coordinator.servers.heartbeat("build1", metrics=Metrics(), by=build1)
    assert already_online == coordinator.servers.get("build1", by=operator)

    assert already_online.running_jobs == tuple(job.id for job in jobs)
    assert (already_online.status, already_online.reported_labels) == ("busy", ("mvn",))


def test_it_records_changed_reported_labels_of_a_server_already_online_as_an_event(
    coordinator: Coordinator, store: Store, register_server: RegisterServer
) -> None:
    build1 = register_server("build1")
    coordinator.servers.heartbeat("build1", metrics=METRICS, labels=["mvn"], by=build1)
    coordinator.servers.heartbeat("build1", metrics=METRICS, labels=["mvn"], by=build1)

    coordinator.servers.heartbeat("build1", metrics=METRICS, labels=["jdk"], by=build1)

    assert event_kinds(store, "build1") == [
        "server.registered",
        "server.labels_reported",
        "server.online",
        "server.labels_reported",
    ]
    changed = store.events.list_events(subject="server:build1")[-1]
    assert (changed.before, changed.after) == (
        {"reported_labels": ["mvn"]},
        {"reported_labels": ["jdk"]},
    )


# -- remove ---------------------------------------------------------------------------------------


def test_it_refuses_to_remove_a_server_while_it_runs_a_job(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
) -> None:
    build1 = register_server("build1")
    coordinator.queue.submit("main", COMMIT, by=operator)
    job = coordinator.queue.claim_next("build1", by=build1)
    assert job is not None
    before = store_state()

    with pytest.raises(Conflict, match=f"server build1 is running job {job.id}"):
        coordinator.servers.remove("build1", by=operator)

    assert store_state() == before


def test_it_removes_a_server_and_revokes_its_token_once_its_job_finished(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    _, secret = coordinator.servers.register("build1", by=operator)
    build1 = coordinator.tokens.authenticate(secret)
    coordinator.queue.submit("main", COMMIT, by=operator)
    job = coordinator.queue.claim_next("build1", by=build1)
    assert job is not None
    coordinator.queue.complete(
        job.id, status="succeeded", server="build1", fencing_token=job.fencing_token, by=build1
    )

    coordinator.servers.remove("build1", by=operator)

    with pytest.raises(NotFound):
        coordinator.servers.get("build1", by=operator)
    with pytest.raises(Unauthorized):
        coordinator.tokens.authenticate(secret)
    [agent_token] = coordinator.tokens.list_tokens(by=operator)
    assert agent_token.revoked_at is not None
    assert event_kinds(store, "build1")[-1] == "server.removed"


def test_it_forbids_an_agent_to_remove_a_server(
    coordinator: Coordinator, register_server: RegisterServer, store_state: StoreState
) -> None:
    build1 = register_server("build1")
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.servers.remove("build1", by=build1)

    assert store_state() == before


def test_it_reports_removing_an_unknown_server_as_not_found(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(NotFound, match="server ghost does not exist"):
        coordinator.servers.remove("ghost", by=operator)


# -- tokens ---------------------------------------------------------------------------------------


def test_it_creates_operator_and_read_tokens_that_authenticate(
    coordinator: Coordinator, operator: Principal
) -> None:
    admin = coordinator.tokens.create("ci", by=operator)
    viewer = coordinator.tokens.create("dashboard", kind="read", by=operator)

    assert coordinator.tokens.authenticate(admin.secret) == Principal("operator", "ci")
    assert coordinator.tokens.authenticate(viewer.secret) == Principal("read", "dashboard")
    assert admin.secret != viewer.secret


def test_it_lists_every_token_without_its_secret(
    coordinator: Coordinator, operator: Principal
) -> None:
    coordinator.servers.register("build1", by=operator)
    issued = coordinator.tokens.create("ci", by=operator)

    listed = coordinator.tokens.list_tokens(by=operator)

    assert [(token.name, token.kind, token.server) for token in listed] == [
        ("agent build1", "agent", "build1"),
        ("ci", "operator", None),
    ]
    assert issued.secret not in repr(listed)


def test_it_no_longer_authenticates_a_revoked_token(
    coordinator: Coordinator, operator: Principal
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)

    revoked = coordinator.tokens.revoke(issued.token.id, by=operator)

    assert revoked.revoked_at is not None
    with pytest.raises(Unauthorized, match="invalid or revoked token"):
        coordinator.tokens.authenticate(issued.secret)


def test_it_refuses_to_revoke_a_token_twice_or_an_unknown_token(
    coordinator: Coordinator, operator: Principal
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    coordinator.tokens.revoke(issued.token.id, by=operator)

    with pytest.raises(Conflict, match="already revoked"):
        coordinator.tokens.revoke(issued.token.id, by=operator)
    with pytest.raises(NotFound):
        coordinator.tokens.revoke(999, by=operator)


def test_it_refuses_a_missing_or_unknown_secret(
    coordinator: Coordinator, subtests: pytest.Subtests
) -> None:
    for secret in [None, "", "bc_not-a-real-token"]:
        with subtests.test(secret=secret), pytest.raises(Unauthorized):
            coordinator.tokens.authenticate(secret)


def test_it_refuses_to_create_an_agent_token_or_an_unnamed_one_and_changes_nothing(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(InvalidInput, match="agent tokens come from"):
        coordinator.tokens.create("sneaky", kind="agent", by=operator)
    with pytest.raises(InvalidInput):
        coordinator.tokens.create("", by=operator)

    assert store_state() == before


def test_it_forbids_anyone_but_an_operator_to_manage_tokens(
    coordinator: Coordinator,
    reader: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
) -> None:
    build1 = register_server("build1")
    before = store_state()

    for principal in (build1, reader):
        with pytest.raises(Forbidden):
            coordinator.tokens.create("mine", by=principal)
        with pytest.raises(Forbidden):
            coordinator.tokens.list_tokens(by=principal)
        with pytest.raises(Forbidden):
            coordinator.tokens.revoke(1, by=principal)

    assert store_state() == before


def test_it_installs_the_admin_token_from_the_settings_at_start(
    store: Store, clock: FakeClock
) -> None:
    secret = "s3cret-admin-token-0123456789"
    coordinator = Coordinator(store, Settings(admin_token=secret), clock)

    coordinator.start()
    coordinator.start()

    principal = coordinator.tokens.authenticate(secret)
    assert principal.kind == "operator"
    assert len(coordinator.tokens.list_tokens(by=principal)) == 1


def test_it_revokes_the_old_admin_token_when_the_setting_changes(
    store: Store, clock: FakeClock
) -> None:
    old, new = "old-admin-token-0123456789", "new-admin-token-0123456789"
    Coordinator(store, Settings(admin_token=old), clock).start()

    coordinator = Coordinator(store, Settings(admin_token=new), clock)
    coordinator.start()

    assert coordinator.tokens.authenticate(new).kind == "operator"
    with pytest.raises(Unauthorized):
        coordinator.tokens.authenticate(old)


def test_it_refuses_an_admin_token_shorter_than_16_characters(
    store: Store, clock: FakeClock, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(InvalidInput, match="at least 16 characters"):
        Coordinator(store, Settings(admin_token="short"), clock).start()

    assert store_state() == before
