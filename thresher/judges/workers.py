"""Worker processes with a hard per-item timeout: a stuck item kills its worker, not the run.

Symbolic math can hang (sympy on a pathological expression), and math-verify's
own timeout uses SIGALRM, which only works in the main thread of the main
process. Here items run in worker processes; if one item has not finished
within `timeout` seconds its worker is SIGKILLed and replaced, and that item's
outcome is an error. `concurrent.futures.ProcessPoolExecutor` cannot do this
(it cannot kill one worker), hence this small pool.

Items travel in batches: one pipe message carries many items to a worker and
one carries their results back, so a cheap item (a fraction of a millisecond
of math-verify) does not pay a pipe round trip of its own. The per-item
timeout still holds: before each item the worker writes a heartbeat (batch
number, item index, start time) into shared memory, and the parent, waiting
for the batch, kills the worker as soon as one item has run past the timeout.
That item's outcome is the error; the rest of its batch (results a killed
worker never sent, items it never reached) goes back in the queue.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

STARTUP_TIMEOUT = 120.0
"""Seconds a fresh worker may take to import its function's module (sympy is slow on a busy CPU)."""
MAX_BATCH = 256
"""Items per pipe message at most: small enough to balance the workers and to redo after a kill."""
_BATCHES_PER_WORKER = 4
"""A `map` is cut into about this many batches per worker, so a slow batch does not leave others idle."""


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


def _serve(conn: Any, beat: Any, fn: Callable[[Any], Any], initializer: Callable[[], None] | None) -> None:
    """The worker process's loop: warm up, say ready, then answer batches until told to stop.

    `beat` is shared memory [batch number, item index, start time]; the start
    time is written first, so a parent that reads the index and then the time
    never pairs an item with an older item's start.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool
    _die_with_parent()
    if initializer is not None:
        initializer()  # heavy imports happen here, outside any item's timeout
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        number, items = message
        results = []
        for i, item in enumerate(items):
            beat[2] = time.monotonic()
            beat[1] = i
            beat[0] = number
            try:
                results.append(("ok", fn(item)))
            except Exception as e:  # noqa: BLE001 - any failure of one item is its outcome; the worker lives on
                tail = traceback.format_exc().strip().splitlines()[-1]
                results.append(("error", f"{type(e).__name__}: {e}" if str(e) else tail))
        conn.send(results)


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_left_alone(*fns: Callable[..., Any] | None) -> Iterator[None]:
    """Start a spawned worker without running the parent's script again.

    A spawned child re-imports the parent's `__main__` module, so a plain
    script that judges at top level (no `if __name__ == "__main__"` guard)
    would start workers from its workers. The worker's code lives in
    thresher, not in the script, so while the child is launched the script is
    named `__main__`, a name `multiprocessing` leaves alone. Functions that do
    live in the script keep the usual behaviour (they need the guard).
    """
    main = sys.modules.get("__main__")
    if main is None or any(f is not None and getattr(f, "__module__", None) == "__main__" for f in fns):
        yield
        return
    with _START_LOCK:
        old = getattr(main, "__spec__", None)
        if old is None:
            import importlib.machinery

            main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
        try:
            yield
        finally:
            main.__spec__ = old


class _Slot:
    """One worker process, the pipe to it and its heartbeat; restarted after a kill or a crash."""

    def __init__(self, ctx: Any, fn: Callable[[Any], Any], initializer: Callable[[], None] | None):
        self._ctx = ctx
        self._fn = fn
        self._initializer = initializer
        self.proc: Any = None
        self.conn: Any = None
        self.beat: Any = None
        self.batches = 0
        self.restarts = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        beat = self._ctx.RawArray("d", 3)
        beat[0] = -1.0
        proc = self._ctx.Process(target=_serve, args=(child, beat, self._fn, self._initializer), daemon=True)
        with _main_left_alone(self._fn, self._initializer):
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
        self.proc, self.conn, self.beat = proc, parent, beat

    def ensure_started(self) -> None:
        if self.proc is None or not self.proc.is_alive():
            if self.proc is not None:
                self.kill()
                self.restarts += 1
            self._start()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.conn.close()
            self.proc = self.conn = self.beat = None

    def _current(self, number: int, sent: float) -> tuple[int, float]:
        """(index, start time) of the item the worker is on; before it reads the batch: (0, send time)."""
        index, started = int(self.beat[1]), self.beat[2]
        if int(self.beat[0]) != number:
            return 0, sent
        return index, max(started, sent)

    def run(self, items: Sequence[Any], timeout: float) -> dict[int, Outcome]:
        """Run a batch: the outcome of each item answered, by its position in `items`.

        All items are answered unless the worker had to be killed (an item ran
        past `timeout`) or died: then only the item it was on is answered, with
        the error; the results of the items before it died with the worker, and
        the items after it never ran, so the caller runs those again.
        """
        self.ensure_started()
        self.batches += 1
        number = self.batches
        sent = time.monotonic()
        self.conn.send((number, list(items)))
        while True:
            index, started = self._current(number, sent)
            wait = started + timeout - time.monotonic()
            if wait <= 0:
                self.kill()
                self.restarts += 1
                return {index: Outcome(error=f"timed out after {timeout:g}s (worker process killed)")}
            if self.conn.poll(wait):
                break
        try:
            results = self.conn.recv()
        except EOFError:
            index, _ = self._current(number, sent)
            self.proc.join(5)
            code = self.proc.exitcode
            self.kill()
            self.restarts += 1
            return {index: Outcome(error=f"worker process died (exit code {code})")}
        return {i: Outcome(value=p) if status == "ok" else Outcome(error=p) for i, (status, p) in enumerate(results)}


def _close(slots: list[_Slot], threads: ThreadPoolExecutor) -> None:
    for s in slots:
        if s.proc is not None:
            try:
                s.conn.send(None)
            except OSError:
                pass
            s.proc.join(5)
            s.kill()
    threads.shutdown(wait=True)


def batch_size(items: int, workers: int) -> int:
    """Items per batch for a `map` of `items` over `workers`: about four batches per worker, at most MAX_BATCH."""
    return max(1, min(MAX_BATCH, math.ceil(items / (workers * _BATCHES_PER_WORKER))))


class TimeoutPool:
    """`workers` processes running the module-level function `fn` on items, each under `timeout` seconds.

    `initializer` runs once in each fresh worker before it takes items (heavy
    imports belong there, so they never count against an item's timeout).
    Workers start lazily (spawned, so a parent holding threads or CUDA is
    safe) and stay warm across `map` calls until `close()`: a judge keeps one
    pool for a whole stage, whatever its chunks.
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

    def start(self) -> None:
        """Start every worker now (in parallel) rather than on the first `map`."""
        with self._lock:
            for f in [self._threads.submit(s.ensure_started) for s in self.slots]:
                f.result()

    def map(self, items: Sequence[Any], on_done: Callable[[int], None] | None = None) -> list[Outcome]:
        """Outcomes in input order; `on_done(1)` is called per finished item (a progress bar's update)."""
        results: list[Outcome | None] = [None] * len(items)
        for i, outcome in self.imap(items):
            results[i] = outcome
            if on_done is not None:
                on_done(1)
        return results  # type: ignore[return-value]

    def imap(self, items: Sequence[Any]) -> Iterator[tuple[int, Outcome]]:
        """`(index, outcome)` of every item, batch by batch as batches finish (not in input order).

        The caller turns finished results into records while the workers run
        the next batches, so its own work overlaps theirs.
        """
        if not items:
            return
        todo: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        size = batch_size(len(items), len(self.slots))
        for start in range(0, len(items), size):
            todo.put(list(range(start, min(start + size, len(items)))))
        done: queue.SimpleQueue[list[tuple[int, Outcome]] | BaseException | None] = queue.SimpleQueue()
        stop = threading.Event()

        def drain(slot: _Slot) -> None:
            try:
                while not stop.is_set():
                    try:
                        batch = todo.get_nowait()
                    except queue.Empty:
                        return
                    answered = slot.run([items[i] for i in batch], self.timeout)
                    redo = [i for k, i in enumerate(batch) if k not in answered]
                    if redo:
                        todo.put(redo)  # this thread takes them next, if no other does first
                    done.put([(batch[k], outcome) for k, outcome in answered.items()])
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, which raises it
                done.put(e)
            finally:
                done.put(None)

        active = self.slots[: min(len(self.slots), len(items))]
        with self._lock:
            futures = [self._threads.submit(drain, s) for s in active]
            running = len(futures)
            try:
                while running:
                    got = done.get()
                    if got is None:
                        running -= 1
                    elif isinstance(got, BaseException):
                        raise got
                    else:
                        yield from got
            finally:
                stop.set()
                for f in futures:  # a caller that stops early waits for the batches in flight
                    f.result()

    def close(self) -> None:
        self._finalizer()
