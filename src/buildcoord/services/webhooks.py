"""Git push webhooks (GitHub, Gitea): the checks made before a body is read, the signature
check, and the parts of a payload we use.

Anyone may post to the webhook, so everything that can be refused without the body is refused
before any of it is read: webhooks off, a missing or malformed signature header, a malformed
delivery id, and more bodies being handled at once than ``webhook_max_concurrent``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from buildcoord.errors import Forbidden, InvalidInput, Unauthorized

ZERO_COMMIT = "0" * 40

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery")
"""Where GitHub and Gitea name each delivery (a GUID); the first one present is used."""

MAX_DELIVERY_ID_LENGTH = 100
DELIVERY_KEEP_SECONDS = 7 * 86400.0
"""How long a delivery id is remembered to refuse its replay (GitHub redelivers for 3 days)."""

_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_DELIVERY_ID = re.compile(r"[!-~]+")  # printable ASCII, no space


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The delivery id a request carries, or None when it carries none."""
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def check_headers(secret: str, signature: str | None, delivery: str | None) -> None:
    """Refuse what the headers alone condemn, so that no byte of its body need be read.

    Forbidden when webhooks are off, Unauthorized for a missing or malformed signature header,
    InvalidInput for a delivery id longer than 100 characters or not printable ASCII.
    """
    if not secret:
        raise Forbidden("webhooks are off: set the webhook_secret setting to accept them")
    if not signature:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header")
    if _SIGNATURE.fullmatch(signature.strip().lower()) is None:
        raise Unauthorized(f"{SIGNATURE_HEADER} is not sha256=<64 hex digits>")
    if delivery is not None and (
        len(delivery) > MAX_DELIVERY_ID_LENGTH or _DELIVERY_ID.fullmatch(delivery) is None
    ):
        raise InvalidInput(
            f"{' or '.join(DELIVERY_HEADERS)} must be 1 to {MAX_DELIVERY_ID_LENGTH} "
            "printable ASCII characters without spaces"
        )


class ReadSlots:
    """A count of webhooks being handled in this process, up to a limit; no waiting queue.

    A request over the limit is refused at once rather than queued: a queue would hold its
    connection (and later its body) all the same.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take a slot; False when all are taken."""
        with self._lock:
            if self._taken >= self.limit:
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        """Return a slot taken with take()."""
        with self._lock:
            self._taken -= 1


@dataclass(frozen=True, slots=True)
class Push:
    """A push as a webhook describes it."""

    branch: str | None  # None when the ref is not a branch (a tag, or no ref at all)
    commit: str
    repositories: tuple[str, ...]  # the repository's clone/ssh/html URLs

    @property
    def deletes_branch(self) -> bool:
        """Whether the push deleted the branch (GitHub and Gitea send after = 000…0)."""
        return self.commit == ZERO_COMMIT


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """Unauthorized unless header is ``sha256=<HMAC-SHA256 of body with secret>``.

    Forbidden when webhooks are off (no secret); see check_headers.
    """
    check_headers(secret, header, None)
    assert header is not None  # check_headers refuses a missing one
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # compare_digest takes the same time wherever the strings differ.
    if not hmac.compare_digest(expected.encode(), header.strip().lower().encode()):
        raise Unauthorized("X-Hub-Signature-256 does not match the payload")


def parse_push(body: bytes) -> Push:
    """Read ref, after and repository URLs from a GitHub or Gitea push payload."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the webhook payload is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput("the webhook payload is not a JSON object")
    ref = document.get("ref")
    after = document.get("after")
    branch = None
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
    repository = document.get("repository")
    urls: list[str] = []
    if isinstance(repository, dict):
        for key in ("clone_url", "ssh_url", "git_url", "html_url", "url"):
            value = repository.get(key)
            if isinstance(value, str) and value:
                urls.append(value)
    return Push(
        branch=branch,
        commit=after.lower() if isinstance(after, str) else "",
        repositories=tuple(urls),
    )


def same_repository(configured: str, urls: tuple[str, ...]) -> bool:
    """Whether a branch's repository is the pushed one.

    A branch whose repository is a URL (``scheme://...`` or git's scp-like ``[user@]host:path``)
    matches when one of the payload's URLs names the same host and path, whatever the scheme,
    user, credentials, port, trailing ``/`` or ``.git`` (``ssh://git@host/o/r.git``,
    ``git@host:o/r``, ``https://host/o/r`` are one repository); a branch whose repository is
    a local path (a mirror) matches by branch name alone.
    """
    identity = repository_identity(configured)
    if identity is None:
        return True
    return identity in {repository_identity(url) for url in urls}


def repository_identity(url: str) -> str | None:
    """``host/path`` of a repository URL (lower case, no ``.git`` nor trailing ``/``), or None
    for a local path (``file://`` URLs included). As git does, ``x:y`` is scp-like when no
    ``/`` comes before the colon."""
    url = url.strip()
    scheme, separator, rest = url.partition("://")
    if separator and scheme.lower() == "file":
        return None
    if separator and scheme:
        authority, _, path = rest.partition("/")
        host = _host(authority)
    else:
        before, colon, path = url.partition(":")
        if not colon or "/" in before or not before:
            return None
        if "[" in before:  # an IPv6 host, [::1]:path or user@[::1]:path: its colons are its own
            closing = url.find("]:", len(before))
            if closing >= 0:
                before, path = url[: closing + 1], url[closing + 2 :]
        host = _host(before)
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower()


def _host(authority: str) -> str:
    """The host of ``[user[:password]@]host[:port]``; an IPv6 host keeps its brackets."""
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def without_credentials(url: str) -> str:
    """url without the ``user:password@`` of a ``scheme://`` URL (payloads never carry one)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
