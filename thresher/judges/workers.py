"""Worker processes with a hard per-item timeout: a stuck item kills its worker, not the run.

Symbolic math can hang (sympy on a pathological expression), and math-verify's
own timeout uses SIGALRM, which only works in the main thread of the main
process. Here each item runs in a dedicated worker process; if it has not
answered within `timeout` seconds the worker is SIGKILLed and replaced, and the
item's outcome is an error. `concurrent.futures.ProcessPoolExecutor` cannot do
this (it cannot kill one worker), hence this small pool.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
import threading
import traceback
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

STARTUP_TIMEOUT = 120.0
"""Seconds a fresh worker may take to import its function's module (sympy is slow on a busy CPU)."""


@dataclass(slots=True)
class Outcome:
    """What one item gave: a value, or an error saying why there is none."""

    value: Any = None
    error: str | None = None


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the thread that spawned it (the pool's) or its process dies,
    even in the middle of a hung item, so a killed run leaves no worker spinning."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(conn: Any, fn: Callable[[Any], Any], initializer: Callable[[], None] | None) -> None:
    """The worker process's loop: warm up, say ready, then answer items until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool
    _die_with_parent()
    if initializer is not None:
        initializer()  # heavy imports happen here, outside any item's timeout
    conn.send(("ready", None))
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        try:
            conn.send(("ok", fn(item)))
        except Exception as e:  # noqa: BLE001 - any failure of one item is its outcome; the worker lives on
            tail = traceback.format_exc().strip().splitlines()[-1]
            conn.send(("error", f"{type(e).__name__}: {e}" if str(e) else tail))


class _Slot:
    """One worker process and the pipe to it; restarted after a kill or a crash."""

    def __init__(self, ctx: Any, fn: Callable[[Any], Any], initializer: Callable[[], None] | None):
        self._ctx = ctx
        self._fn = fn
        self._initializer = initializer
        self.proc: Any = None
        self.conn: Any = None
        self.restarts = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, self._fn, self._initializer), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(STARTUP_TIMEOUT):
            proc.kill()
            proc.join()
            raise RuntimeError(f"worker process for {self._fn.__qualname__} did not start within {STARTUP_TIMEOUT:g}s")
        try:
            parent.recv()
        except EOFError:
            proc.join()
            raise RuntimeError(
                f"worker process for {self._fn.__qualname__} exited at start (exit code {proc.exitcode})"
            ) from None
        self.proc, self.conn = proc, parent

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.conn.close()
            self.proc = self.conn = None

    def run(self, item: Any, timeout: float) -> Outcome:
        if self.proc is None or not self.proc.is_alive():
            if self.proc is not None:
                self.kill()
                self.restarts += 1
            self._start()
        self.conn.send(item)
        if not self.conn.poll(timeout):
            self.kill()
            self.restarts += 1
            return Outcome(error=f"timed out after {timeout:g}s (worker process killed)")
        try:
            status, payload = self.conn.recv()
        except EOFError:
            self.proc.join(5)
            code = self.proc.exitcode
            self.kill()
            self.restarts += 1
            return Outcome(error=f"worker process died (exit code {code})")
        return Outcome(value=payload) if status == "ok" else Outcome(error=payload)

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(5)
            self.kill()


def _close(slots: list[_Slot], threads: ThreadPoolExecutor) -> None:
    for s in slots:
        s.close()
    threads.shutdown(wait=True)


class TimeoutPool:
    """`workers` processes running the module-level function `fn` on items, each under `timeout` seconds.

    `initializer` runs once in each fresh worker before it takes items (heavy
    imports belong there, so they never count against an item's timeout).
    Workers start lazily (spawned, so a parent holding threads or CUDA is
    safe) and are reused across `map` calls until `close()`.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int = 2,
        timeout: float = 5.0,
        initializer: Callable[[], None] | None = None,
    ):
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout: must be positive, got {timeout}")
        self.fn = fn
        self.timeout = timeout
        ctx = mp.get_context("spawn")
        self.slots = [_Slot(ctx, fn, initializer) for _ in range(workers)]
        self._lock = threading.Lock()
        # Workers are spawned from these threads and die with them (PR_SET_PDEATHSIG follows the parent
        # *thread*), so the threads live as long as the pool instead of one `map` call.
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="thresher-worker")
        self._finalizer = weakref.finalize(self, _close, self.slots, self._threads)

    @property
    def restarts(self) -> int:
        """Workers replaced after a timeout or crash, over the pool's life."""
        return sum(s.restarts for s in self.slots)

    def map(self, items: Sequence[Any], on_done: Callable[[int], None] | None = None) -> list[Outcome]:
        """Outcomes in input order; `on_done(1)` is called per finished item (a progress bar's update)."""
        results: list[Outcome | None] = [None] * len(items)
        todo: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        for i, item in enumerate(items):
            todo.put((i, item))

        def drain(slot: _Slot) -> None:
            while True:
                try:
                    i, item = todo.get_nowait()
                except queue.Empty:
                    return
                results[i] = slot.run(item, self.timeout)
                if on_done is not None:
                    on_done(1)

        active = self.slots[: max(1, min(len(self.slots), len(items)))]
        with self._lock:
            for f in [self._threads.submit(drain, s) for s in active]:
                f.result()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._finalizer()
