"""One writer per run: an exclusive lock file in the run directory.

Two processes sampling into one directory both "succeed" and leave every
candidate twice. `run_lock(RUN)` takes `RUN/.lock` with `flock`, which the
kernel releases when the holder dies (even by SIGKILL), so a lock left by a
dead process is simply taken over; a live holder makes the second process
fail at once with exit code 2 and the holder's PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from thresher.errors import UserError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the run's lock for the duration of the block; UserError naming the holder if it is taken."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{run_dir}: expected a run directory, found a file") from None
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            raise UserError(
                f"{run_dir}: another thresher process{f' (PID {holder})' if holder else ''} is writing this run; "
                f"wait for it to finish or stop it (lock {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        yield path
    finally:
        os.close(fd)  # closing releases the flock


def _holder(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if text.isdigit() else None
