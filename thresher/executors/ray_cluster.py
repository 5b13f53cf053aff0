"""A real Ray cluster of several nodes on this machine, on loopback addresses.

What the tests and `bench/scale_ray.py` run against, and a way to try
`executor: {type: ray}` on one box. Each node is a `ray start --block`
process (a head, then workers joining it) in a session of its own (Ray's workers
move to process groups of their own, but stay in the node's session), so a
node can be killed whole (its raylet and every worker it started), as when a
machine of a real cluster goes away, and stopping the cluster stops only
what it started (never `ray stop`, which ends every Ray process of the user).

Ray replaces 127.0.0.1 with the machine's outward address when a node
starts; other loopback addresses (127.0.0.2, 127.0.0.3, ...) are kept, so
each node gets one of those and nothing listens for nodes off this machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STOP_GRACE_S = 45.0
"""A node asked to stop drains for up to 30 s before it exits; after this it is killed."""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray_cli() -> list[str]:
    """The `ray` command of this Python environment (the tests' venv, not whatever is on PATH)."""
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "ray.scripts.scripts"]


def _session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
            except (ProcessLookupError, PermissionError):
                pass
    return pids


def _signal_session(sid: int, sig: int) -> None:
    for pid in _session_pids(sid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class LocalRayCluster:
    """`ray start --head` plus `ray start --address` workers on 127.0.0.x, each with `cpus_per_node` CPUs.

    Use as a context manager, or `start()` / `stop()`. `address` is what a
    driver passes to `ray.init` (or `executor.address`); the driver's
    `RAY_AUTH_MODE` must match the cluster's (`disabled` unless set).
    """

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 100, env: dict | None = None,
                 first_host: int = 2):
        self.first_host = first_host
        """Nodes get 127.0.0.<first_host>, <first_host + 1>, ...: two clusters on one machine keep apart."""
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.want_nodes = nodes
        # Ray turns token authentication on when ~/.ray/auth_token exists; a loopback test cluster runs
        # without it unless the caller's environment says otherwise (drivers must use the same mode).
        self.env = {"RAY_AUTH_MODE": "disabled", **os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.temp_dir = Path(tempfile.mkdtemp(prefix="thresher-ray-"))
        self.head_ip = self._node_ip(0)
        self.port = _free_port(self.head_ip)
        self.address = f"{self.head_ip}:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self._logs: list[Path] = []

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = self.temp_dir / f"{name}.log"
        self._logs.append(log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*_ray_cli(), "start", "--block", *args, "--num-cpus", str(self.cpus_per_node), "--num-gpus", "0",
                 "--object-store-memory", str(self.object_store_mb * 1_000_000), "--disable-usage-stats"],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """Start the head and the workers; return once every node has joined."""
        try:
            self._spawn(["--head", "--port", str(self.port), "--node-ip-address", self.head_ip,
                         "--temp-dir", str(self.temp_dir), "--include-dashboard=false"], "head")
            self._wait_for_nodes({self.head_ip})
            ips = {self.head_ip}
            for i in range(1, self.want_nodes):
                ips.add(self._node_ip(i))
                self.add_node(wait=False, index=i)
            self._wait_for_nodes(ips)
        except BaseException:
            self.stop()
            raise

    def _node_ip(self, index: int) -> str:
        return f"127.0.0.{self.first_host + index}"

    def add_node(self, wait: bool = True, index: int | None = None, attempts: int = 3) -> subprocess.Popen:
        """One more worker node (the next loopback address); by default waits until it has joined.

        On a busy machine a joining node can time out talking to the head and exit;
        it is started again, up to `attempts` times.
        """
        index = len(self.procs) if index is None else index
        for attempt in range(attempts):
            proc = self._spawn(["--address", self.address, "--node-ip-address", self._node_ip(index)],
                               f"node{index}-{attempt}")
            if not wait:
                return proc
            try:
                self._wait_for_nodes({self._node_ip(index)})
                return proc
            except RuntimeError:
                if proc.poll() is None or attempt == attempts - 1:
                    raise
                _signal_session(proc.pid, signal.SIGKILL)
                self.procs.remove(proc)
        raise AssertionError("unreachable")

    def alive_ips(self) -> set[str]:
        """Addresses of the nodes the cluster counts as alive (a GCS lookup from a short-lived driver)."""
        code = (
            f"import ray; ray.init(address={self.address!r}, log_to_driver=False, logging_level='ERROR');"
            "print(' '.join(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env, timeout=120,
                             check=False)
        lines = out.stdout.strip().splitlines()
        return set(lines[-1].split()) if out.returncode == 0 and lines else set()

    def _wait_for_nodes(self, ips: set[str], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None and p.returncode not in (0, -signal.SIGKILL)]
            if dead:
                raise RuntimeError(f"a Ray node exited with {dead[0].returncode}:\n{self.logs()[-3000:]}")
            if ips <= self.alive_ips():
                return
            time.sleep(1.0)
        raise RuntimeError(f"Ray nodes {sorted(ips)} did not join in {timeout:.0f} s:\n{self.logs()[-3000:]}")

    def kill_node(self, proc: subprocess.Popen) -> None:
        """SIGKILL every process of one node (its raylet and the workers on it): a machine gone."""
        _signal_session(proc.pid, signal.SIGKILL)
        proc.wait()

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}" for p in self._logs if p.is_file())

    def stop(self) -> None:
        """Stop the workers, then the head (SIGTERM to each group, SIGKILL after the grace time); remove the temp dir."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_session(proc.pid, signal.SIGKILL)  # whatever of the node is still there
            proc.wait()
        self.procs.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
