"""Run untrusted Python programs: bubblewrap where it is installed, rlimits and a process group otherwise.

A code verifier executes whatever a model wrote. Each run gets its own
temporary working directory, a scrubbed environment, resource limits (CPU
seconds, address space, processes, file size, open files) and one wall-clock
timeout after which everything it started is killed.

Two modes (the README says what each does and does not isolate):

- `bwrap`: bubblewrap with a read-only view of only the system and Python
  directories, a private writable working directory and /tmp (size-capped
  tmpfs), no network, and its own PID, IPC and UTS namespaces. When the
  namespace's first process ends, the kernel kills every process left in it,
  so no child outlives the verdict.
- `rlimits`: no bubblewrap. A new session and process group, rlimits, and (as
  root) a private network namespace. This mode warns loudly.

As root, RLIMIT_NPROC does not apply, so a fork bomb would run unbounded. In
both modes a root parent therefore runs the program under a fresh unused uid
(RLIMIT_NPROC counts per uid, and that uid owns nothing on the host) and,
after every run, kills every process of that uid with one atomic kill(-1).

The verdict on a run is "passed" only if the program exited 0 *and* printed
a per-run nonce that the launcher writes after the program finished, so a
program calling `exit(0)` before its tests does not pass.
"""

from __future__ import annotations

import abc
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from thresher.errors import UserError

PROGRAM = "program.py"
"""Name of the program inside the working directory; tracebacks cite it."""

_MARKER = "thresher-sandbox: launcher started"

# Runs inside the sandbox before the untrusted code: it reads the nonce, sets
# limits, leaves root, then runs the program in the same interpreter.
_LAUNCHER = r"""
import ctypes, json, os, resource, sys
def _launch():
    cfg = json.loads(sys.argv[1])
    nonce = sys.stdin.readline().strip()
    sys.stderr.write(cfg["marker"] + "\n")
    sys.stderr.flush()
    if cfg["unshare_net"]:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:
            sys.stderr.write("thresher-sandbox: could not unshare the network namespace\n")
    for name, value in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    with open(cfg["program"], encoding="utf-8") as f:
        source = f.read()
    if cfg["uid"] is not None:
        def reachable(path):
            parts = os.path.realpath(path).split("/")
            return all(os.stat("/".join(parts[:i]) or "/").st_mode & 0o001 for i in range(1, len(parts)))
        moved = {}  # keep imports working where only root can reach the interpreter: open the dirs now
        for i, p in enumerate(sys.path):
            if p and os.path.isdir(p) and not reachable(p):
                moved[p] = sys.path[i] = "/proc/self/fd/%d" % os.open(p, os.O_RDONLY | os.O_DIRECTORY)
        for m in list(sys.modules.values()):
            path = getattr(m, "__path__", None)
            if isinstance(path, list):
                for j, entry in enumerate(path):
                    for old, new in moved.items():
                        if entry.startswith(old + "/"):
                            path[j] = new + entry[len(old):]
        sys.path_importer_cache.clear()
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    if cfg["die_with_parent"]:  # after setuid, which clears it; lost on fork, so it covers this process only
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)
        if os.getppid() != cfg["parent"]:
            os._exit(137)
    code = compile(source, "program.py", "exec")
    del cfg, source
    exec(code, {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__})
    sys.stdout.flush()
    sys.stdout.write("\n" + nonce + "\n")
    sys.stdout.flush()
_launch()
"""

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
ENV = {"LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The whole environment a program sees, with PATH and HOME: one thread per math library, so it fits its limits."""


@dataclass(slots=True)
class Limits:
    """Per-run resource limits; `timeout` is wall-clock seconds for the whole run."""

    timeout: float = 10.0
    memory_mb: int = 1024
    """Address-space limit per process (RLIMIT_AS)."""
    max_processes: int = 8
    """Processes and threads the program may have at once (RLIMIT_NPROC, under its private uid)."""
    file_size_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE), its captured stdout and stderr included."""
    open_files: int = 256
    tmp_size_mb: int = 64
    """Size of the private /tmp (bwrap mode)."""


@dataclass(slots=True)
class RunResult:
    status: Literal["passed", "failed", "timeout", "error"]
    """passed: exit 0 and the launcher's nonce printed; error: the sandbox itself failed to start."""
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    isolation: str
    notes: list[str] = field(default_factory=list)
    uid: int | None = None
    """The private uid the program ran under (root parents only); no process of it is left after the run."""


class Sandbox(Protocol):
    """Runs one Python program under limits. Implement this to plug in a stronger sandbox (a container)."""

    isolation: str

    def run(self, program: str, limits: Limits) -> RunResult: ...


def _tail(path: Path, max_chars: int = 4000) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_chars * 4))
        text = f.read().decode("utf-8", errors="replace")
    return text[-max_chars:]


def _private_uid() -> int | None:
    """A fresh unused uid for one run when we are root (so RLIMIT_NPROC applies), else None."""
    if os.geteuid() != 0:
        return None
    return 2_000_000 + secrets.randbelow(1_000_000_000)


def live_processes(uid: int) -> list[int]:
    """Pids of `uid` that are not zombies (a zombie has exited; it only waits for its parent to reap it)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat(f"/proc/{d}").st_uid != uid:
                continue
            with open(f"/proc/{d}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            pids.append(int(d))
    return pids


def _kill_uid(uid: int, patience: float = 5.0) -> None:
    """Kill every process of `uid`: kill(-1) from a shell running as that uid (one atomic sweep in the kernel).

    Repeated until no live process of the uid is left, so nothing outlives the verdict.
    """
    deadline = time.monotonic() + patience
    while True:
        subprocess.run(
            ["/bin/sh", "-c", "kill -KILL -1 2>/dev/null; exit 0"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={"PATH": SAFE_PATH},
            check=False,
            timeout=30,
        )
        for _ in range(20):
            if not live_processes(uid):
                return
            time.sleep(0.01)
        if time.monotonic() > deadline:
            raise RuntimeError(f"sandbox: processes of uid {uid} survived SIGKILL: {live_processes(uid)}")


def _user_process_count() -> int:
    """Processes of our own uid now, the baseline RLIMIT_NPROC must allow for when we are not root."""
    uid, n = os.getuid(), 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


class _SubprocessSandbox(abc.ABC):
    """What both built-in modes share: the working directory, the launcher, the timeout and the cleanup."""

    isolation = "none"

    @abc.abstractmethod
    def _command(self, workdir: Path, launcher_cfg: str, limits: Limits) -> list[str]:
        """The command line that runs the launcher in this mode's isolation."""

    def _program_path(self, workdir: Path) -> str:
        return str(workdir / PROGRAM)

    def run(self, program: str, limits: Limits) -> RunResult:
        root = Path(tempfile.mkdtemp(prefix="thresher-sandbox-"))
        uid = _private_uid()
        try:
            os.chmod(root, 0o711)
            workdir = root / "work"
            workdir.mkdir(mode=0o700)
            (workdir / PROGRAM).write_text(program, encoding="utf-8")
            if uid is not None:
                os.chown(workdir, uid, uid)
                os.chown(workdir / PROGRAM, uid, uid)
            nproc = limits.max_processes if uid is not None else _user_process_count() + limits.max_processes
            cfg = {
                "marker": _MARKER,
                "program": self._program_path(workdir),
                "uid": uid,
                "unshare_net": self._unshare_net_in_launcher(),
                "die_with_parent": self._die_with_parent_in_launcher(),
                "parent": os.getpid(),
                "rlimits": {
                    "RLIMIT_CPU": math.ceil(limits.timeout) + 1,
                    "RLIMIT_AS": limits.memory_mb << 20,
                    "RLIMIT_NPROC": nproc,
                    "RLIMIT_FSIZE": limits.file_size_mb << 20,
                    "RLIMIT_NOFILE": limits.open_files,
                    "RLIMIT_CORE": 0,
                },
            }
            nonce = secrets.token_hex(16)
            out_path, err_path = root / "stdout", root / "stderr"
            start = time.monotonic()
            timed_out = False
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    self._command(workdir, json.dumps(cfg), limits),
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=err,
                    cwd=workdir,
                    env={"PATH": SAFE_PATH, "HOME": str(workdir), **ENV},
                    start_new_session=True,
                )
                try:
                    proc.stdin.write((nonce + "\n").encode())  # type: ignore[union-attr]
                    proc.stdin.close()  # type: ignore[union-attr]
                except BrokenPipeError:
                    pass
                try:
                    returncode: int | None = proc.wait(timeout=limits.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    self._kill_group(proc.pid)
                    proc.wait()
                    returncode = None
                finally:
                    self._kill_group(proc.pid)
                    if uid is not None:
                        _kill_uid(uid)
            duration = time.monotonic() - start
            with open(err_path, "rb") as f:
                started = _MARKER.encode() in f.read(4096)
            stdout, stderr = _tail(out_path), _tail(err_path)
            result = self._result(timed_out, returncode, stdout, stderr, started, nonce, duration)
            result.uid = uid
            return result
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _unshare_net_in_launcher(self) -> bool:
        return False

    def _die_with_parent_in_launcher(self) -> bool:
        return False

    @staticmethod
    def _kill_group(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _result(
        self, timed_out: bool, rc: int | None, stdout: str, stderr: str, started: bool, nonce: str, duration: float
    ) -> RunResult:
        notes = [line for line in stderr.splitlines() if line.startswith("thresher-sandbox: could not")]
        stderr = stderr.replace(_MARKER + "\n", "", 1)
        if timed_out:
            return RunResult("timeout", None, stdout, stderr, duration, self.isolation, notes)
        if not started:  # the sandbox died before the launcher ran: its failure, not the program's
            return RunResult("error", rc, stdout, stderr, duration, self.isolation, notes)
        passed = rc == 0 and stdout.rstrip("\n").endswith(nonce)
        if passed:
            stdout = stdout.rstrip("\n")[: -len(nonce)].rstrip("\n")
        return RunResult("passed" if passed else "failed", rc, stdout, stderr, duration, self.isolation, notes)


class RlimitSandbox(_SubprocessSandbox):
    """Fallback: a session of its own, rlimits, a private uid and network namespace when root."""

    isolation = "rlimits"

    def _unshare_net_in_launcher(self) -> bool:
        return os.geteuid() == 0

    def _die_with_parent_in_launcher(self) -> bool:
        return True

    def _command(self, workdir: Path, launcher_cfg: str, limits: Limits) -> list[str]:
        return [sys.executable, "-I", "-c", _LAUNCHER, launcher_cfg]


def _python_dirs() -> list[str]:
    """Directories the interpreter needs: the venv and the base installation it links to."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    dirs.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    return sorted(d for d in (os.path.realpath(p) for p in dirs) if os.path.isdir(d))


SYSTEM_DIRS = ("/usr", "/etc", "/opt")
"""Read-only in the sandbox; /bin, /lib, /lib64 and /sbin follow as symlinks or binds, as on the host."""


class BwrapSandbox(_SubprocessSandbox):
    """bubblewrap: read-only system and Python dirs, private /tmp and workdir, no network, own PID namespace."""

    isolation = "bwrap"

    def __init__(self, bwrap: str | None = None):
        self.bwrap = bwrap or shutil.which("bwrap") or ""
        if not self.bwrap:
            raise UserError("bubblewrap (bwrap) is not installed; install it (Debian: apt-get install bubblewrap)")
        self._ro = self._readonly_args()

    def _readonly_args(self) -> list[str]:
        args: list[str] = []
        made: set[str] = set()
        bound: list[str] = []
        for d in list(SYSTEM_DIRS) + _python_dirs():
            if not os.path.isdir(d) or any(d == b or d.startswith(b + "/") for b in bound):
                continue
            parts = Path(d).parts
            for i in range(2, len(parts)):  # parents bwrap would otherwise create mode 0700
                parent = str(Path(*parts[:i]))
                if parent not in made and not any(parent == b or parent.startswith(b + "/") for b in bound):
                    args += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            args += ["--ro-bind", d, d]
            bound.append(d)
        for name in ("bin", "sbin", "lib", "lib32", "lib64"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        return args

    def _program_path(self, workdir: Path) -> str:
        return "/tmp/work/" + PROGRAM

    def _command(self, workdir: Path, launcher_cfg: str, limits: Limits) -> list[str]:
        return [
            self.bwrap,
            "--proc", "/proc",
            "--dev", "/dev",
            "--perms", "1777", "--size", str(limits.tmp_size_mb << 20), "--tmpfs", "/tmp",
            *self._ro,  # after the private /tmp, so a Python (venv) living under /tmp stays visible
            "--bind", str(workdir), "/tmp/work",
            "--chdir", "/tmp/work",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session",
            "--clearenv", "--setenv", "PATH", SAFE_PATH, "--setenv", "HOME", "/tmp/work",
            *(arg for key, value in ENV.items() for arg in ("--setenv", key, value)),
            *(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if os.geteuid() == 0 else []),
            sys.executable, "-I", "-c", _LAUNCHER, launcher_cfg,
        ]  # fmt: skip


class SandboxWarning(RuntimeWarning):
    """The code verifier is running programs without bubblewrap."""


FALLBACK_WARNING = (
    "THE CODE VERIFIER IS NOT SANDBOXED BY BUBBLEWRAP: bwrap is {why}. Candidate programs run with rlimits, "
    "their own process group and a scrubbed environment only: they can read every file {who} can read"
    "{net}. Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or plug in a container sandbox."
)


def make_sandbox(mode: Literal["auto", "bwrap", "rlimits"] = "auto") -> Sandbox:
    """The strongest built-in sandbox that works here; `auto` falls back to rlimits with a loud warning."""
    if mode not in ("auto", "bwrap", "rlimits"):
        raise UserError(f"sandbox: {mode!r} is not one of auto, bwrap, rlimits")
    why = ""
    if mode in ("auto", "bwrap"):
        if shutil.which("bwrap"):
            box = BwrapSandbox()
            probe = box.run("print('ok')", Limits(timeout=60))
            if probe.status == "passed":
                return box
            why = f"installed but failed to start ({probe.stderr.strip().splitlines()[-1:]})"
            if mode == "bwrap":
                raise UserError(f"sandbox bwrap: bubblewrap failed to start: {probe.stderr.strip()[-500:]}")
        else:
            why = "not installed"
            if mode == "bwrap":
                raise UserError("sandbox bwrap: bubblewrap (bwrap) is not installed; apt-get install bubblewrap")
    why = why or "not used (sandbox: rlimits was asked for)"
    root = os.geteuid() == 0
    text = FALLBACK_WARNING.format(
        why=why,
        who="any user" if root else "your user",
        net="" if root else ", open network connections, and fork children that leave their process group",
    )
    warnings.warn(text, SandboxWarning, stacklevel=2)
    print("WARNING: " + text, file=sys.stderr)
    return RlimitSandbox()
