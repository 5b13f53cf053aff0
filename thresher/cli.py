"""The `thresher` command.

Each subcommand lives in its own module under `thresher/commands/` with
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. Command
modules import heavy libraries (torch, vLLM) inside `run`, so `thresher
--help` answers at once.

User errors (`UserError`: a bad path, a malformed JSONL line, an unknown
recipe key) end with exit code 2 and one line naming the culprit, no
traceback. So do errors of the user's environment that name a path (a
read-only directory, a full disk, an output path that is a file), and output
piped into `head` ends quietly. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from thresher import __version__
from thresher.errors import UserError

COMMANDS: dict[str, str] = {
    "sample": "thresher.commands.sample",
    "judge": "thresher.commands.judge",
    "export": "thresher.commands.export",
    "train": "thresher.commands.train",
    "eval": "thresher.commands.eval",
    "run": "thresher.commands.run",
    "report": "thresher.commands.report",
    "view": "thresher.commands.view",
    "quickstart": "thresher.commands.quickstart",
    "prompts": "thresher.commands.prompts",
}
"""Subcommand name -> module; the order here is the order `--help` lists them in."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and shows each option's default, unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and action.option_strings
            and default not in (None, False, [], argparse.SUPPRESS)
            and not isinstance(action, argparse._VersionAction)
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="thresher",
        description="Rejection sampling, judging and critique for LLM post-training data: "
        "sample N answers per prompt from teachers and students, judge them, export "
        "SFT / critique-SFT / DPO data, train, and measure per-task gains round after round.",
    )
    parser.add_argument("--version", action="version", version=f"thresher {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


ENVIRONMENT_ERRORS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
    errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP,
}
"""OSErrors that say something about the user's files and disks, not about thresher."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except UserError as e:
        print(f"thresher {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (`head`) has gone: stop quietly, and send the rest of stdout nowhere so
        # Python's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a write that failed for lack of room
        if e.errno not in ENVIRONMENT_ERRORS or not (e.filename or full):
            raise
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename or "writing"
        print(f"thresher {args.command}: error: {where}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"thresher {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
