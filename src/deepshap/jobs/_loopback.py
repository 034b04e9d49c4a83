"""Run a local Ray cluster that can only talk over loopback: inside a network namespace of its own.

Ray picks the machine's interface address for its node even when told ``--node-ip-address=127.0.0.1``,
so a "local" cluster started in the host's network talks over the machine's real address. Tests, the demo
and benchmarks therefore run the driver and the cluster in a fresh network namespace (``unshare --net``)
whose only interface is ``lo``: no other address exists there, so every connection is on 127.0.0.1/::1.
A PID namespace (``--pid --fork --kill-child``) ties every process started inside (raylet, GCS, workers)
to the namespace's first process: when it ends, or the caller kills ``unshare``, the kernel kills them all.

Use :func:`call_isolated` (``"module:function"`` plus string arguments) or :func:`run_isolated` (any
command) from the host; inside, :func:`start_local_ray` starts the cluster and :func:`network_audit`
lists what the namespace holds. ``python -m deepshap.jobs._loopback module:function [args...]`` is the
entry point run inside; it refuses to run where any address other than loopback exists.
"""

from __future__ import annotations

import atexit
import importlib
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

PROC_NET_TABLES = ("tcp", "tcp6", "udp", "udp6")
TCP_LISTEN = "0A"


class LoopbackUnavailable(RuntimeError):
    """This machine cannot create a loopback-only namespace (no ``unshare``/``ip``, or not permitted)."""


def namespace_prefix() -> list[str]:
    """The command prefix that runs what follows in new network, PID and mount namespaces with lo up.

    As root this needs no user namespace; otherwise ``--map-root-user`` makes the caller root inside
    (allowed on most Linux systems with unprivileged user namespaces).
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not Path(ip).exists():
        raise LoopbackUnavailable(
            "a loopback-only Ray cluster needs `unshare` (util-linux) and `ip` (iproute2)"
        )
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    return [
        unshare, *user, "--net", "--pid", "--fork", "--mount-proc", "--kill-child",
        "sh", "-c", f'{ip} link set lo up && "$@"', "sh",
    ]  # fmt: skip


def run_isolated(
    argv: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside a loopback-only namespace; its output is captured as text.

    On timeout ``unshare`` is killed, which kills every process of the namespace (``--kill-child`` ends its
    first process, and the PID namespace dies with it); the result then has return code -9 and what was
    printed until then, with a last line of stderr saying so.
    """
    command = [*namespace_prefix(), *argv]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as expired:
        stdout, stderr = (_text(stream) for stream in (expired.stdout, expired.stderr))
        stderr += f"\n[killed: still running after {timeout:g} s]\n"
        return subprocess.CompletedProcess(command, -9, stdout, stderr)


def _text(stream: bytes | str | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode(errors="replace")
    return stream or ""


def call_isolated(
    target: str, *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Call ``target`` (``"package.module:function"``) with string ``args`` in a loopback-only namespace."""
    return run_isolated([sys.executable, "-m", __name__, target, *args], timeout=timeout, env=env)


@dataclass
class NetworkAudit:
    """What a network namespace holds: its interfaces' addresses and its sockets' endpoints."""

    addresses: dict[str, list[str]] = field(default_factory=dict)
    """interface name -> its IPv4/IPv6 addresses."""
    endpoints: set[tuple[str, str, str]] = field(default_factory=set)
    """(table, local address, remote address) of every socket, wildcard and listening ones included."""
    connections: int = 0
    """How many sockets are connected (have a remote address other than the wildcard)."""

    def foreign(self) -> list[str]:
        """Everything that is not loopback: interfaces other than ``lo``, addresses or socket endpoints
        outside 127.0.0.0/8 and ::1 (the wildcard of a listening or unconnected socket is allowed: with
        ``lo`` the only interface it can only be reached over loopback)."""
        found = [f"interface {name}" for name in self.addresses if name != "lo"]
        found += [
            f"address {addr} on {name}"
            for name, addrs in self.addresses.items()
            for addr in addrs
            if not _is_loopback(addr)
        ]
        found += [
            f"{table} socket {local} -> {remote}"
            for table, local, remote in sorted(self.endpoints)
            if not all(_is_loopback(addr) or _is_unspecified(addr) for addr in (local, remote))
        ]
        return found


def _unmapped(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address, with an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) read as its IPv4 address."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip


def _is_loopback(address: str) -> bool:
    return _unmapped(address).is_loopback


def _is_unspecified(address: str) -> bool:
    return _unmapped(address).is_unspecified


def interface_addresses() -> dict[str, list[str]]:
    """Every interface of this network namespace and its addresses (from ``ip -o addr``; ``lo`` and its
    addresses come from /proc/net/dev and ``ip`` alike)."""
    names = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    addresses: dict[str, list[str]] = {name: [] for name in names}
    ip = shutil.which("ip") or "/usr/sbin/ip"
    out = subprocess.run([ip, "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        name, family, cidr = parts[1], parts[2], parts[3]
        if family in ("inet", "inet6"):
            addresses.setdefault(name, []).append(cidr.split("/")[0])
    return addresses


def _decode_address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} (host byte order per 32-bit word) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def socket_endpoints() -> list[tuple[str, str, str]]:
    """(table, local, remote) of every TCP/UDP socket of this network namespace (all its processes)."""
    endpoints = []
    for table in PROC_NET_TABLES:
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":")[0], fields[2].split(":")[0]
            endpoints.append((table, _decode_address(local), _decode_address(remote)))
    return endpoints


def network_audit() -> NetworkAudit:
    """The interfaces and sockets of the current network namespace."""
    endpoints = socket_endpoints()
    connected = sum(not _is_unspecified(remote) for _, _, remote in endpoints)
    return NetworkAudit(addresses=interface_addresses(), endpoints=set(endpoints), connections=connected)


def require_loopback_only() -> None:
    """Raise unless loopback is the only network of this process (so Ray cannot use another address)."""
    foreign = NetworkAudit(addresses=interface_addresses()).foreign()
    if foreign:
        raise LoopbackUnavailable(
            "refusing to start a local Ray cluster: this network namespace has "
            + ", ".join(foreign)
            + "; run it through deepshap.jobs._loopback.call_isolated"
        )


def start_local_ray(num_cpus: int, **init_kwargs: Any) -> ModuleType:  # ray.init's own options
    """Start a fresh single-node Ray cluster on 127.0.0.1 in this (loopback-only) namespace; returns ray.

    Logs go to a temporary directory, removed when this process exits (after Ray's own exit handler,
    which stops the cluster); no dashboard, no usage stats. Call ``ray.shutdown()`` when done.
    """
    require_loopback_only()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    temp_dir = tempfile.mkdtemp(prefix="ray")
    atexit.register(shutil.rmtree, temp_dir, ignore_errors=True)  # runs after handlers registered later
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp_dir,
        configure_logging=False,
        log_to_driver=False,
        **init_kwargs,
    )
    return ray


def main(argv: Sequence[str]) -> None:
    """Inside the namespace: call ``argv[0]`` (``module:function``) with the remaining arguments."""
    if not argv or ":" not in argv[0]:
        raise SystemExit("usage: python -m deepshap.jobs._loopback package.module:function [args...]")
    require_loopback_only()
    module, _, name = argv[0].partition(":")
    getattr(importlib.import_module(module), name)(*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
