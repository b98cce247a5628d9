"""Build tokens: what a build gets as BUILDCOORD_TOKEN instead of its agent's token.

A build runs code from the commit, so it must not hold a credential that can act as its
server. Its token names one job and one lease, ``bcb_<job id>_<fencing token>_<mac>``, where
the mac is an HMAC-SHA256 of both under a secret key of the coordinators (kept in the
``settings`` table, so every coordinator on one database accepts every other's tokens).

Nothing is stored per token: the token is checked by its mac alone, and the log service
then checks that its lease is still the job's current one. A job that finished, or whose
lease was issued again (a new fencing token), leaves the token with nothing to write to.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from buildcoord.models import Principal

PREFIX = "bcb_"
KEY_SETTING = "build_token_key"
_FORM = re.compile(r"bcb_([1-9][0-9]{0,18})_([0-9]{1,19})_([0-9a-f]{64})")


def new_key() -> str:
    """A fresh signing key (256 random bits, hex)."""
    return secrets.token_hex(32)


def _mac(key: str, job_id: int, fencing_token: int) -> str:
    message = f"buildcoord build token:{job_id}:{fencing_token}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign(key: str, job_id: int, fencing_token: int) -> str:
    """The build token of one job's lease."""
    return f"{PREFIX}{job_id}_{fencing_token}_{_mac(key, job_id, fencing_token)}"


def is_build_token(secret: str) -> bool:
    """Whether a secret has the form of a build token (not whether it is a valid one)."""
    return secret.startswith(PREFIX)


def verify(key: str, secret: str) -> Principal | None:
    """The build a token was issued for, or None when it was not issued with this key."""
    found = _FORM.fullmatch(secret)
    if found is None:
        return None
    job_id, fencing_token = int(found[1]), int(found[2])
    if not hmac.compare_digest(found[3], _mac(key, job_id, fencing_token)):
        return None
    return Principal(kind="build", name=f"job {job_id}", job_id=job_id, fencing_token=fencing_token)
