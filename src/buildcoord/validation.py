"""Input rules checked at the edge of every service: names, refs, commits, sizes.

Every pattern is applied with ``fullmatch``: ``re.match`` with ``$`` also accepts a trailing
newline, which would let ``build1\n`` stand beside ``build1`` as a second name. A value is
stored as given or refused, never trimmed into shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from buildcoord.errors import InvalidInput
from buildcoord.models import SERVER_LABEL_PREFIX

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=:/+-]{0,99}")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_TRIGGER = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def server_name(value: str, *, what: str = "server name") -> str:
    """Check a server (or holder/sender) name: letters, digits, . _ -, at most 64."""
    if not _NAME.fullmatch(value):
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def labels(values: Iterable[str]) -> tuple[str, ...]:
    """Check labels and return them sorted without duplicates."""
    result = set()
    for value in values:
        if not _LABEL.fullmatch(value):
            raise InvalidInput(
                f"invalid label {value!r}: use 1-100 letters, digits and . _ = : / + -, "
                "starting with a letter or digit"
            )
        result.add(value)
    return tuple(sorted(result))


def server_labels(values: Iterable[str]) -> tuple[str, ...]:
    """Check the labels a server is given or reports: labels() without the reserved
    ``server=`` prefix, since every server already has ``server=<its name>``."""
    checked = labels(values)
    reserved = [value for value in checked if value.startswith(SERVER_LABEL_PREFIX)]
    if reserved:
        raise InvalidInput(
            f"invalid label {reserved[0]!r}: labels starting with {SERVER_LABEL_PREFIX!r} are "
            f"reserved; every server has {SERVER_LABEL_PREFIX}<its name> and no other"
        )
    return checked


def branch_name(value: str) -> str:
    """Check a branch name against git's ref-name rules (git check-ref-format --branch)."""
    problem = _ref_problem(value)
    if problem:
        raise InvalidInput(f"invalid branch name {value!r}: {problem}")
    return value


def _ref_problem(value: str) -> str | None:
    if not value:
        return "it is empty"
    if len(value) > 255:
        return "it is longer than 255 characters"
    if value == "@":
        return "'@' alone is not a branch"
    if value.startswith("-"):
        return "it starts with '-'"
    if _REF_FORBIDDEN.search(value):
        return "it contains a space, a control character or one of ~ ^ : ? * [ \\"
    if ".." in value:
        return "it contains '..'"
    if "@{" in value:
        return "it contains '@{'"
    if value.endswith(("/", ".")):
        return "it ends with '/' or '.'"
    for part in value.split("/"):
        if not part:
            return "it contains an empty path component ('//' or a leading '/')"
        if part.startswith("."):
            return "a path component starts with '.'"
        if part.endswith(".lock"):
            return "a path component ends with '.lock'"
    return None


def trigger(value: str) -> str:
    """Check a trigger (what started a build): a short lowercase word such as pull_request."""
    if not _TRIGGER.fullmatch(value):
        raise InvalidInput(
            f"invalid trigger {value!r}: use 1-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter (push, schedule, manual, pull_request, ...)"
        )
    return value


def commit_id(value: str) -> str:
    """Check a commit id: 7 to 40 hexadecimal digits; returned in lower case."""
    if not _COMMIT.fullmatch(value):
        raise InvalidInput(f"invalid commit {value!r}: expected 7 to 40 hexadecimal digits")
    return value.lower()


def priority(value: int) -> int:
    """Check a priority: 1 (highest) to 10 (lowest)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise InvalidInput(f"invalid priority {value!r}: expected an integer from 1 to 10")
    return value


def positive(value: float, *, what: str, maximum: float | None = None) -> float:
    """Check a strictly positive number, optionally bounded."""
    if not value > 0 or (maximum is not None and value > maximum):
        bound = f" and at most {maximum:g}" if maximum is not None else ""
        raise InvalidInput(f"invalid {what} {value!r}: expected a number above 0{bound}")
    return value


def text(value: str, *, what: str, maximum: int, required: bool = True) -> str:
    """Check a free-text field's length."""
    if required and not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > maximum:
        raise InvalidInput(f"{what} is {len(value)} characters; the limit is {maximum}")
    return value
