"""buildcoord config show|check: the settings in force, monitor settings and [[notifiers]]."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.config import load_settings
from buildcoord.errors import InvalidInput
from inprocess import invoke_cli

GOOD = """\
[monitor]
monitor_seconds = 15
disk_low_gib = 4

[[notifiers]]
name = "ops-hook"
kind = "webhook"
url = "https://hooks.example.com/buildcoord"
secret_env = "OPS_HOOK_SECRET"
rules = ["server_offline", "branch_broken"]
min_severity = "critical"

[[notifiers]]
name = "team-chat"
kind = "slack"
url = "https://hooks.slack.example/services/T000/B000/sEcReTpArT"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "buildcoord.toml"
    path.write_text(text)
    return str(path)


def test_notifiers_and_monitor_settings_are_read_from_the_file(tmp_path: Path) -> None:
    settings = load_settings(config_path=write(tmp_path, GOOD), environ={})

    assert (settings.monitor_seconds, settings.disk_low_gib) == (15.0, 4.0)
    hook, chat = settings.notifiers
    assert (hook.name, hook.kind, hook.secret_env) == ("ops-hook", "webhook", "OPS_HOOK_SECRET")
    assert hook.rules == ("server_offline", "branch_broken")
    assert hook.wants("server_offline", "critical")
    assert not hook.wants("server_offline", "warning")
    assert not hook.wants("disk_low", "critical")
    assert chat.wants("disk_low", "warning")  # no rules: every rule, from warning up
    assert (chat.repeat_minutes, chat.timeout_seconds) == (60.0, 10.0)


def test_config_check_says_ok_and_show_hides_what_a_url_may_hide(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)

    checked = invoke_cli(["--config", path, "config", "check"])
    shown = invoke_cli(["--config", path, "config", "show"])

    assert (checked.exit_code, checked.stdout) == (0, "ok: 2 notifier(s)\n")
    assert shown.exit_code == 0
    assert "monitor_seconds = 15.0  # file" in shown.stdout
    assert "notifier 'team-chat' = slack to https://hooks.slack.example/…" in shown.stdout
    assert "sEcReTpArT" not in shown.stdout


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('name = "a"\nurl = "https://x.example/"', "notifier has no kind"),
        ('name = "a"\nkind = "pager"\nurl = "https://x.example/"', "kind 'pager' is not one of"),
        ('name = "a"\nkind = "webhook"\nurl = "https://x.example/"\nchannel = "#ops"', "'channel'"),
        ('name = "a"\nkind = "slack"', "a slack notifier needs 'url'"),
        ('name = "a"\nkind = "webhook"\nurl = "ftp://x.example/"', "http:// or https://"),
        ('name = "a b"\nkind = "slack"\nurl = "https://x.example/"', "notifier name 'a b'"),
        ('name = "a"\nkind = "slack"\nurl = "https://x.example/"\nmin_severity = "info"', "min"),
        ('name = "a"\nkind = "slack"\nurl = "https://x.example/"\nrules = "disk_low"', "rules"),
        ('name = "a"\nkind = "slack"\nurl = "https://x.example/"\ntimeout_seconds = 0', "timeout"),
        ('name = "a"\nkind = "webhook"\nurl = "https://x.example/"\nsecret_env = "a-b"', "secret"),
    ],
)
def test_a_wrong_notifier_block_is_named_by_its_line_and_key(
    tmp_path: Path, block: str, message: str
) -> None:
    path = write(tmp_path, f"[monitor]\nmonitor_seconds = 30\n\n[[notifiers]]\n{block}\n")

    with pytest.raises(InvalidInput, match=message) as refused:
        load_settings(config_path=path, environ={})
    assert f"{path}:4:" in str(refused.value)
    checked = invoke_cli(["--config", path, "config", "check"])
    assert checked.exit_code != 0
    assert f"{path}:4:" in checked.stderr


def test_a_notifier_or_disabled_rule_naming_no_rule_fails_the_check(tmp_path: Path) -> None:
    wrong_rule = write(
        tmp_path,
        '[[notifiers]]\nname = "a"\nkind = "slack"\nurl = "https://x.example/"\n'
        'rules = ["disk_full"]\n',
    )
    refused = invoke_cli(["--config", wrong_rule, "config", "check"])
    assert refused.exit_code != 0
    assert "notifier 'a': no rule disk_full" in refused.stderr

    wrong_disabled = write(tmp_path, '[monitor]\nmonitor_disabled_rules = "disk_ful"\n')
    refused = invoke_cli(["--config", wrong_disabled, "config", "check"])
    assert refused.exit_code != 0
    assert "no rule disk_ful" in refused.stderr


def test_two_notifiers_with_one_name_are_refused(tmp_path: Path) -> None:
    block = '[[notifiers]]\nname = "a"\nkind = "slack"\nurl = "https://x.example/"\n'
    with pytest.raises(InvalidInput, match="two notifiers are named 'a'"):
        load_settings(config_path=write(tmp_path, block + block), environ={})


def test_a_github_notifier_needs_its_repository_and_token_variable(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        '[[notifiers]]\nname = "issues"\nkind = "github"\nrepo = "acme/builds"\n'
        'token_env = "GH_TOKEN"\nrules = ["server_offline"]\n',
    )
    [issues] = load_settings(config_path=good, environ={}).notifiers
    assert (issues.url, issues.repo, issues.secret_env) == (
        "https://api.github.com",
        "acme/builds",
        "GH_TOKEN",
    )
    for block, message in (
        ('name = "i"\nkind = "github"\nrepo = "acme/builds"', "needs 'token_env'"),
        ('name = "i"\nkind = "github"\nrepo = "acme"\ntoken_env = "T"', "repo must be owner/name"),
        ('name = "i"\nkind = "github"\nrepo = "a/b"\ntoken_env = "T"\nurl = "https://x/"', "'url'"),
    ):
        with pytest.raises(InvalidInput, match=message):
            load_settings(config_path=write(tmp_path, f"[[notifiers]]\n{block}\n"), environ={})


def test_an_email_notifier_needs_a_server_a_sender_and_recipients(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        '[[notifiers]]\nname = "mail"\nkind = "email"\nhost = "smtp.example.com"\n'
        'from = "ci@example.com"\nto = ["ops@example.com"]\nusername = "ci"\n'
        'password_env = "SMTP_PASSWORD"\n',
    )
    [mail] = load_settings(config_path=good, environ={}).notifiers
    assert (mail.host, mail.port, mail.starttls, mail.recipients) == (
        "smtp.example.com",
        587,
        True,
        ("ops@example.com",),
    )
    assert mail.secret_env == "SMTP_PASSWORD"
    base = 'name = "m"\nkind = "email"\nhost = "smtp.example.com"\n'
    for block, message in (
        (base + 'to = "ops@example.com"', "needs 'from'"),
        (base + 'from = "ci"\nto = "ops@example.com"', "'ci' is not an e-mail address"),
        (base + 'from = "ci@example.com"\nto = []', "to must be an address"),
        (base + 'from = "ci@example.com"\nto = "a@b.c"\nport = 0', "port must be"),
        (base + 'from = "ci@example.com"\nto = "a@b.c"\nstarttls = "yes"', "starttls"),
    ):
        with pytest.raises(InvalidInput, match=message):
            load_settings(config_path=write(tmp_path, f"[[notifiers]]\n{block}\n"), environ={})
