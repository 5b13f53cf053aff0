"""Errors a user can fix.

`UserError` is what the CLI turns into exit code 2 and a one-line message, with
no traceback: a wrong path, a malformed JSONL line, an unknown recipe key.
The message always names the culprit (a file:line or a key path), because a
user who has to guess which of 20k lines was bad will not guess.
Anything else is a bug in thresher and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user; the CLI prints it on one line and exits 2."""


class RecordError(UserError):
    """A JSONL line that is not a valid record; the message starts with file:line."""

    def __init__(self, path: object, line: int, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")


class ConfigError(UserError):
    """A recipe value that is wrong; the message starts with its key path."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)

    def as_flag(self, flags: dict[str, str] | None = None) -> UserError:
        """The same mistake said of a command-line flag: `learning_rate` -> `--lr` (default `--learning-rate`)."""
        flag = (flags or {}).get(self.key) or "--" + self.key.split(".")[-1].replace("_", "-")
        return UserError(f"{flag}: {self.reason}")
