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

# The patterns and limits below are also declared in the OpenAPI document (web/schemas.py
# reads them from here), so a client learns the rules before it sends a request.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
LABEL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._=:/+-]{0,99}"
COMMIT_PATTERN = r"[0-9a-fA-F]{7,40}"
TRIGGER_PATTERN = r"[a-z][a-z0-9_-]{0,31}"
BRANCH_LIMIT = 255
"""A branch name's length, in characters; git's other ref-name rules are checked too."""

HIGHEST_PRIORITY = 1
LOWEST_PRIORITY = 10

# Free-text limits, in characters.
REASON_LIMIT = 2_000  # why a build failed or was cancelled
PATH_LIMIT = 4_096  # a repository URL or path, an artifact directory
COMMAND_LIMIT = 10_000  # a branch's build command
SUBJECT_LIMIT = 100  # a message's subject
MESSAGE_BODY_LIMIT = 10_000  # a message's body
TOKEN_NAME_LIMIT = 100
AGENT_VERSION_LIMIT = 64
LOCK_NAME_LIMIT = 200

DIGEST_LENGTHS = {"md5": 32, "sha256": 64, "sha512": 128}
"""An artifact's digests: lowercase hexadecimal of these lengths."""

_NAME = re.compile(NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
_COMMIT = re.compile(COMMIT_PATTERN)
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_TRIGGER = re.compile(TRIGGER_PATTERN)


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
    if len(value) > BRANCH_LIMIT:
        return f"it is longer than {BRANCH_LIMIT} characters"
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


def digest_pattern(name: str) -> str:
    """The pattern of one artifact digest, e.g. 64 lowercase hex digits for sha256."""
    return f"[0-9a-f]{{{DIGEST_LENGTHS[name]}}}"


def digest(value: str, *, name: str, where: str) -> str:
    """Check an artifact digest (md5, sha256 or sha512) as hashlib's hexdigest writes it."""
    if not re.fullmatch(digest_pattern(name), value):
        raise InvalidInput(
            f"invalid {name} of {where!r}: expected {DIGEST_LENGTHS[name]} lowercase hex digits"
        )
    return value


def priority(value: int) -> int:
    """Check a priority: 1 (highest) to 10 (lowest)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not HIGHEST_PRIORITY <= value <= LOWEST_PRIORITY
    ):
        raise InvalidInput(
            f"invalid priority {value!r}: expected an integer from {HIGHEST_PRIORITY} "
            f"to {LOWEST_PRIORITY}"
        )
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
