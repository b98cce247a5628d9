"""The ``[[notifiers]]`` blocks of buildcoord.toml: where alerts are sent.

Each block names a notifier and its kind; every key is checked here, so a typo stops
``serve`` (and ``buildcoord config check``) with the block's line and the key, instead of a
notifier that silently never sends. Secrets are never written in the file: a block names the
environment variable that holds one (``secret_env``), read when a message is sent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from buildcoord.errors import InvalidInput

KINDS = ("webhook", "slack", "github", "email")
GITHUB_API = "https://api.github.com"
SEVERITIES = ("warning", "critical")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_COMMON = {"name", "kind", "rules", "min_severity", "repeat_minutes", "timeout_seconds"}
_KEYS = {
    "webhook": _COMMON | {"url", "secret_env"},
    "slack": _COMMON | {"url"},
    "github": _COMMON | {"repo", "token_env", "api_url"},
    "email": _COMMON | {"host", "port", "starttls", "username", "password_env", "from", "to"},
}
_REQUIRED = {
    "webhook": ("name", "kind", "url"),
    "slack": ("name", "kind", "url"),
    "github": ("name", "kind", "repo", "token_env"),
    "email": ("name", "kind", "host", "from", "to"),
}
_ADDRESS = re.compile(r"[^@\s<>\x00]{1,200}@[^@\s<>\x00]{1,200}")
_REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """One ``[[notifiers]]`` block."""

    name: str
    kind: str
    url: str = ""
    rules: tuple[str, ...] = ()
    """The rules it is told about; empty: every rule."""
    min_severity: str = "warning"
    secret_env: str = ""
    """webhook: the environment variable holding the HMAC-SHA256 key ("" signs nothing);
    github: the one holding the token."""
    repo: str = ""
    """github: owner/name of the repository the issues go to (``url`` is the API's root)."""
    host: str = ""
    """email: the SMTP server (``port``, ``starttls``, ``username``, ``password_env``)."""
    port: int = 587
    starttls: bool = True
    username: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()
    repeat_minutes: float = 60.0
    """How often an open, unacknowledged alert is told about again (0: never)."""
    timeout_seconds: float = 10.0

    def wants(self, rule: str, severity: str) -> bool:
        """Whether this notifier is told about an alert of ``rule`` at ``severity``."""
        if self.rules and rule not in self.rules:
            return False
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)


def parse_notifiers(document: dict[str, Any], text: str, path: str) -> tuple[NotifierSettings, ...]:
    """Read and check every ``[[notifiers]]`` block of a parsed buildcoord.toml."""
    blocks = document.get("notifiers", [])
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise InvalidInput(f"{path}: notifiers must be [[notifiers]] tables")
    lines = _block_lines(text)
    found: list[NotifierSettings] = []
    for number, block in enumerate(blocks):
        where = f"{path}:{lines[number]}" if number < len(lines) else path
        found.append(_notifier(block, where))
    names = [notifier.name for notifier in found]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"{path}: two notifiers are named {duplicate!r}")
    return tuple(found)


def _notifier(block: dict[str, Any], where: str) -> NotifierSettings:
    kind = block.get("kind")
    if kind not in KINDS:
        raise InvalidInput(
            f"{where}: notifier kind {kind!r} is not one of {', '.join(KINDS)}"
            if "kind" in block
            else f"{where}: notifier has no kind (one of {', '.join(KINDS)})"
        )
    unknown = sorted(set(block) - _KEYS[kind])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind]))
        raise InvalidInput(f"{where}: unknown key {unknown[0]!r} in a {kind} notifier ({allowed})")
    for key in _REQUIRED[kind]:
        if key not in block:
            raise InvalidInput(f"{where}: a {kind} notifier needs {key!r}")
    name = _text(block, "name", where)
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"{where}: notifier name {name!r}: letters, digits, . _ - (1-64)")
    url = ""
    if kind != "email":
        url_key = "api_url" if kind == "github" else "url"
        url = _text(block, url_key, where) if url_key in block else GITHUB_API
        if not re.fullmatch(r"https?://[^\s\x00]{1,2000}", url):
            raise InvalidInput(f"{where}: {url_key} must be an http:// or https:// URL")
    repo = ""
    if kind == "github":
        repo = _text(block, "repo", where)
        if not _REPO.fullmatch(repo):
            raise InvalidInput(f"{where}: repo must be owner/name")
    rules = block.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise InvalidInput(f"{where}: rules must be a list of rule names")
    severity = block.get("min_severity", "warning")
    if severity not in SEVERITIES:
        raise InvalidInput(f"{where}: min_severity must be one of {', '.join(SEVERITIES)}")
    env_key = {"github": "token_env", "email": "password_env"}.get(kind, "secret_env")
    secret_env = _text(block, env_key, where) if env_key in block else ""
    if secret_env and not _ENV.fullmatch(secret_env):
        raise InvalidInput(f"{where}: {env_key} must name an environment variable")
    mail = _mail(block, where) if kind == "email" else {}
    return NotifierSettings(
        **mail,
        name=name,
        kind=kind,
        url=url,
        rules=tuple(rules),
        min_severity=severity,
        secret_env=secret_env,
        repo=repo,
        repeat_minutes=_number(block, "repeat_minutes", 60.0, where, minimum=0.0),
        timeout_seconds=_number(block, "timeout_seconds", 10.0, where, minimum=0.1),
    )


def _mail(block: dict[str, Any], where: str) -> dict[str, Any]:
    """An email notifier's server and addresses."""
    host = _text(block, "host", where)
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]", host):
        raise InvalidInput(f"{where}: host must be a host name or an address")
    port = block.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{where}: port must be from 1 to 65535")
    starttls = block.get("starttls", True)
    if not isinstance(starttls, bool):
        raise InvalidInput(f"{where}: starttls must be true or false")
    sender = _text(block, "from", where)
    recipients = block["to"]
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not recipients or len(recipients) > 50:
        raise InvalidInput(f"{where}: to must be an address or a list of 1 to 50")
    for address in (sender, *recipients):
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise InvalidInput(f"{where}: {address!r} is not an e-mail address")
    username = _text(block, "username", where) if "username" in block else ""
    return {
        "host": host,
        "port": port,
        "starttls": starttls,
        "username": username,
        "sender": sender,
        "recipients": tuple(recipients),
    }


def _text(block: dict[str, Any], key: str, where: str) -> str:
    value = block[key]
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidInput(f"{where}: {key} must be text")
    return value


def _number(
    block: dict[str, Any], key: str, default: float, where: str, *, minimum: float
) -> float:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: {key} must be a number")
    if not math.isfinite(value) or not minimum <= value <= 10_080:
        raise InvalidInput(f"{where}: {key} must be from {minimum:g} to 10080")
    return float(value)


def _block_lines(text: str) -> list[int]:
    """The line number of each ``[[notifiers]]`` header, in order."""
    return [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if re.fullmatch(r"\s*\[\[\s*notifiers\s*\]\]\s*(#.*)?", line)
    ]
