"""Hosts on one LAN, built from Linux network namespaces, for multi-host tests.

A bridge in the root namespace is the LAN's switch; each host is a namespace with
a veth into it and its own 10.x address, so a process in one host reaches another
only over the network, and a killed host's address stops answering. The test
process itself stays in the root namespace and reaches every host through the
bridge's address. The namespaces share the file system (only the network is
separate).

Names carry the creating pid, so parallel runs never clash, and a run that was
killed before its teardown leaves names whose pid is dead: `remove_stale()` takes
them away. Needs root (CAP_NET_ADMIN); `unavailable()` says why not, if not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from xsmoe.redis_server import stop_process

log = logging.getLogger(__name__)

NETNS_PREFIX = "xsmt-"  # namespaces: xsmt-<pid>-<lan>-<host>
# bridges xb<pid><lan>, veths xv<pid><lan><n>, pid and numbers in hex
LINK_RE = re.compile(r"^x[bv]([0-9a-f]{6})[0-9a-f]{2}(?:[0-9a-f]{2})?$")
IP_TIMEOUT_S = 10.0
_lans = itertools.count()


class NetnsError(RuntimeError):
    """An `ip` command failed or timed out; the message has its output."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS` with a bound on its time; its stdout."""
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"ip {' '.join(args)}: {exc}") from exc
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _quietly(*args: str) -> None:
    """A teardown step: its failure is logged, and the rest of the teardown goes on."""
    try:
        ip(*args, check=False)
    except NetnsError as exc:
        log.warning("teardown: %s", exc)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they can): tried on a throwaway one."""
    probe = f"{NETNS_PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except NetnsError as exc:
        return (
            f"cannot create a network namespace ({exc}); "
            "needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2"
        )
    try:
        ip("netns", "delete", probe)
    except NetnsError as exc:
        return f"created but could not delete a network namespace: {exc}"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces and links left by runs whose process is gone; their names."""
    removed = []
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.match(rf"^{re.escape(NETNS_PREFIX)}(\d+)-", name)
        if m and not _alive(int(m.group(1))):
            _quietly("netns", "delete", name)
            removed.append(name)
    for line in ip("-o", "link", "show").splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        link = parts[1].strip().split("@")[0]
        m = LINK_RE.match(link)
        if m and not _alive(int(m.group(1), 16)):
            _quietly("link", "delete", link)
            removed.append(link)
    if removed:
        log.info("removed stale namespaces and links: %s", removed)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no address or route of this machine uses yet."""
    used = ip("-4", "-o", "addr", "show") + ip("-4", "route", "show")
    start = os.getpid() % 256
    for k in range(256):
        net = ipaddress.IPv4Network(f"10.213.{(start + k) % 256}.0/24")
        prefix = str(net.network_address).rsplit(".", 1)[0] + "."
        if prefix not in used:
            return net
    raise NetnsError("no free /24 in 10.213.0.0/16")


@dataclass(frozen=True)
class Host:
    name: str  # the role, e.g. "api1"
    netns: str
    address: str


class Lan:
    """A bridge and one namespace per host name; processes started in them are
    stopped, and every namespace and link removed, on exit (also on failure)."""

    def __init__(self, hosts: Sequence[str]) -> None:
        if len(hosts) > 200:
            raise ValueError("at most 200 hosts on one LAN")
        pid, n = os.getpid(), next(_lans)
        self.tag = f"{pid:06x}{n % 256:02x}"
        self.bridge = f"xb{self.tag}"
        self.net = _free_subnet()
        base = int(self.net.network_address)
        self.gateway = str(ipaddress.IPv4Address(base + 254))  # the bridge: the test's side
        self.hosts = {
            name: Host(
                name, f"{NETNS_PREFIX}{pid}-{n}-{name}", str(ipaddress.IPv4Address(base + i))
            )
            for i, name in enumerate(hosts, start=1)
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self._veths: list[str] = []

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def up(self) -> Lan:
        try:
            plen = str(self.net.prefixlen)
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/{plen}", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for i, host in enumerate(self.hosts.values()):
                veth = f"xv{self.tag}{i:02x}"
                ip("netns", "add", host.netns)
                ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
                self._veths.append(veth)
                ip("link", "set", veth, "master", self.bridge)
                ip("link", "set", veth, "up")
                ip("-n", host.netns, "addr", "add", f"{host.address}/{plen}", "dev", "eth0")
                ip("-n", host.netns, "link", "set", "eth0", "up")
                ip("-n", host.netns, "link", "set", "lo", "up")
        except BaseException:
            self.down()
            raise
        log.info(
            "LAN %s on %s: %s",
            self.bridge,
            self.net,
            {h.name: h.address for h in self.hosts.values()},
        )
        return self

    def start(
        self, host: str, cmd: Sequence[str], env: Mapping[str, str], logfile: Path
    ) -> subprocess.Popen[bytes]:
        """Run `cmd` inside `host`. `ip netns exec` execs the command in place, so
        the process's pid is the command's own: a signal to it reaches the command."""
        out = logfile.open("ab")
        try:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.hosts[host].netns, *cmd],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C to pytest reaches pytest, which stops these
            )
        finally:
            out.close()  # the child holds its own descriptor
        self.procs.append(proc)
        return proc

    def down(self) -> None:
        """Stop every process first (a namespace outlives its deletion while a process
        is inside), then remove the namespaces, veths and bridge. Never raises."""
        stop_process(*reversed(self.procs))
        for host in self.hosts.values():
            _quietly("netns", "delete", host.netns)
        for veth in self._veths:  # gone with its peer's namespace; this is for a half-made one
            _quietly("link", "delete", veth)
        _quietly("link", "delete", self.bridge)

    def __enter__(self) -> Lan:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()


@contextlib.contextmanager
def lan(hosts: Sequence[str]) -> Iterator[Lan]:
    remove_stale()
    with Lan(hosts) as network:
        yield network
