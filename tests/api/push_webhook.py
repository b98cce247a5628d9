"""What the push webhook tests share: the secret, settings that take pushes at once, and
signed GitHub-style push payloads.

Used by tests/api/test_branches.py (what a push builds) and tests/api/test_webhooks.py (the
webhook's guards).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from buildcoord.client import Client
from buildcoord.config import Settings
from inprocess import ADMIN_TOKEN, API

SECRET = "webhook-secret-for-tests"
WEBHOOK = f"{API}/hooks/git"


def webhook_settings(**changes: Any) -> Settings:
    """Settings with a webhook secret and no quiet period (a push is queued at once), changed
    by ``changes``."""
    defaults: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "webhook_secret": SECRET,
        "branch_quiet_seconds": 0.0,
    }
    return Settings(**{**defaults, **changes})


def push_payload(branch: str, after: str, url: str = "https://git.example.com/o/r.git") -> bytes:
    """A GitHub-style push payload."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": after,
            "repository": {"full_name": "o/r", "clone_url": url, "html_url": url[:-4]},
        }
    ).encode()


def signed(body: bytes, secret: str = SECRET, delivery: str | None = None) -> dict[str, str]:
    """The X-Hub-Signature-256 header GitHub and Gitea send, and a delivery id if given."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return headers


def queued(operator: Client, branch: str) -> list[str]:
    """Commits of the branch's jobs, oldest first."""
    return [job.commit for job in reversed(operator.list_jobs(branch=branch))]
