"""buildcoord token create|list|revoke, and how the CLI treats a bad token."""

from __future__ import annotations

from buildcoord.client import Client
from inprocess import ADMIN_TOKEN, RunCli


def test_token_create_prints_a_working_secret_as_its_last_line(run_cli: RunCli) -> None:
    secret = run_cli("token", "create", "ci").last_line
    assert run_cli("queue", "add", "main", "abc1234", token=secret).exit_code == 0


def test_a_read_token_from_token_create_can_list_but_not_queue(run_cli: RunCli) -> None:
    secret = run_cli("token", "create", "dashboard", "--kind", "read").last_line
    assert run_cli("queue", "list", token=secret).exit_code == 0
    assert "operator" in run_cli("queue", "add", "main", "abc1234", token=secret).error


def test_token_list_shows_tokens_but_no_secrets(run_cli: RunCli) -> None:
    secret = run_cli("token", "create", "ci").last_line
    stdout = run_cli("token", "list").stdout
    assert "ci" in stdout
    assert secret not in stdout
    assert ADMIN_TOKEN not in stdout


def test_token_revoke_stops_the_token_working(run_cli: RunCli, operator: Client) -> None:
    issued = operator.create_token("ci")
    assert run_cli("token", "revoke", str(issued.token.id)).exit_code == 0
    assert "revoked" in run_cli("queue", "list", token=issued.secret).error


def test_an_invalid_token_is_one_error_line(run_cli: RunCli) -> None:
    assert "invalid" in run_cli("queue", "list", token="bc_wrong").error


def test_no_token_is_one_error_line_that_says_how_to_give_one(run_cli: RunCli) -> None:
    assert "BUILDCOORD_TOKEN" in run_cli("queue", "list", token=None).error
