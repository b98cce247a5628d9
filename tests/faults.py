"""Faults a test makes for real (root only): a small tmpfs that fills up, a network namespace
whose link can be cut."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def require_root() -> None:
    """Skip unless root (scripts/test as root requires these tests to pass)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs or makes a network namespace")


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "8m") mounted at path for the block; unmounted after."""
    require_root()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """Fill the file system of path until about ``leave_bytes`` are free; the filler file."""
    filler = path / "filler"
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with filler.open("wb") as out:
        remaining = max(0, free - leave_bytes)
        chunk = b"\0" * (1 << 16)
        while remaining > 0:
            written = out.write(chunk[: min(len(chunk), remaining)])
            remaining -= written
    return filler


@dataclass
class Namespace:
    """A network namespace joined to this host by a veth pair: host side ``host_ip``, the
    namespace's side ``inside_ip`` (a /30 of 10.213.0.0/16 of its own)."""

    name: str
    host_link: str
    host_ip: str
    inside_ip: str

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def link(self, state: str) -> None:
        """Take the host side of the pair ``down`` (a partition: no answer, no reset) or
        ``up`` again."""
        _ip("link", "set", self.host_link, state)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    """A namespace with its veth pair, deleted after the block (root only)."""
    require_root()
    tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
    subnet = secrets.randbelow(16000)  # a /30 out of 10.213.0.0/16
    base = subnet * 4
    host_ip = f"10.213.{base // 256}.{base % 256 + 1}"
    inside_ip = f"10.213.{base // 256}.{base % 256 + 2}"
    space = Namespace(f"bc{tag}", f"bch{tag}", host_ip, inside_ip)
    inside_link = f"bca{tag}"
    _ip("netns", "add", space.name)
    try:
        _ip("link", "add", space.host_link, "type", "veth", "peer", "name", inside_link)
        _ip("link", "set", inside_link, "netns", space.name)
        _ip("addr", "add", f"{host_ip}/30", "dev", space.host_link)
        _ip("link", "set", space.host_link, "up")
        inside = ["netns", "exec", space.name, "ip"]
        _ip(*inside, "addr", "add", f"{inside_ip}/30", "dev", inside_link)
        _ip(*inside, "link", "set", inside_link, "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield space
    finally:
        subprocess.run(["ip", "link", "del", space.host_link], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", space.name], check=False, capture_output=True)
