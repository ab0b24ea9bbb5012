"""The Docker engine for `sam local invoke`: the CLI, a daemon (started here if need be), and
the address on the docker bridge where the containers reach this machine."""

import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Say = Callable[[str], None]

# A daemon this script starts keeps running after it (the next run reuses it); its log and
# pid are here.
DOCKERD_LOG = Path("/tmp/vss-restore-local-dockerd.log")
DOCKERD_PID = Path("/tmp/vss-restore-local-dockerd.pid")
DAEMON_WAIT_SECONDS = 60
APT_LOCK_WAIT_SECONDS = 300


class NoEngine(Exception):
    """No Docker engine can run here; the message says why."""


@dataclass(frozen=True)
class Engine:
    gateway: str  # this machine's address on the default bridge, as the containers see it
    started_daemon: bool


def is_root() -> bool:
    return os.geteuid() == 0


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def daemon_answers() -> bool:
    try:
        return run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def apt_install(packages: list[str], say: Say) -> None:
    """Install Debian packages (root and apt-get only); NoEngine if that cannot be done."""
    if not (is_root() and shutil.which("apt-get")):
        raise NoEngine(f"{' and '.join(packages)} missing, and no root apt-get to install them")
    say(f"installing {' '.join(packages)} with apt-get")
    lock = f"DPkg::Lock::Timeout={APT_LOCK_WAIT_SECONDS}"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        ["apt-get", "-o", lock, "update", "-qq"],
        ["apt-get", "-o", lock, "install", "-y", "-qq", *packages],
    ):
        done = subprocess.run(
            args, capture_output=True, text=True, env=environment, timeout=900, check=False
        )
        if done.returncode != 0:
            raise NoEngine(f"{' '.join(args[:4])} failed: {_tail(done.stderr or done.stdout)}")


def ensure_engine(say: Say) -> Engine:
    """A Docker CLI talking to a running daemon, or NoEngine saying why there is none."""
    if not shutil.which("docker") or (not daemon_answers() and not shutil.which("dockerd")):
        apt_install(["docker.io"], say)
    started = False
    if not daemon_answers():
        _start_daemon(say)
        started = True
    return Engine(gateway=_bridge_gateway(), started_daemon=started)


def _start_daemon(say: Say) -> None:
    if not is_root():
        raise NoEngine("no Docker daemon answers, and starting dockerd needs root")
    say(f"no Docker daemon answers: starting dockerd (log {DOCKERD_LOG}, left running)")
    with DOCKERD_LOG.open("ab") as log:
        daemon = subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not ended with make's process group
        )
    DOCKERD_PID.write_text(f"{daemon.pid}\n")
    deadline = time.monotonic() + DAEMON_WAIT_SECONDS
    while time.monotonic() < deadline:
        if daemon_answers():
            say(f"dockerd is up (pid {daemon.pid})")
            return
        if daemon.poll() is not None:
            raise NoEngine(
                f"dockerd exited with status {daemon.returncode}: "
                + _tail(DOCKERD_LOG.read_text(errors="replace"))
            )
        time.sleep(0.5)
    raise NoEngine(
        f"dockerd (pid {daemon.pid}) did not answer within {DAEMON_WAIT_SECONDS} s: "
        + _tail(DOCKERD_LOG.read_text(errors="replace"))
    )


def _bridge_gateway() -> str:
    """The default bridge's address on this machine (docker0's, usually 172.17.0.1)."""
    done = run(["docker", "network", "inspect", "bridge"])
    if done.returncode != 0:
        raise NoEngine(f"no default docker bridge to reach this machine on: {_tail(done.stderr)}")
    bridge = json.loads(done.stdout)[0]
    for config in (bridge.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    name = (bridge.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    shown = run(["ip", "-4", "-o", "addr", "show", "dev", name]) if shutil.which("ip") else None
    found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown.stdout if shown else "")
    if found:
        return found.group(1)
    for config in (bridge.get("IPAM") or {}).get("Config") or []:
        if config.get("Subnet"):
            # Docker gives the bridge the subnet's first address.
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise NoEngine(f"cannot tell the address of the docker bridge {name} on this machine")


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "no output"
