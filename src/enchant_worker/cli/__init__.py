"""`enchant-worker`: one sub-command module per group; each adds its parsers in `register()`."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from pydantic import ValidationError

from enchant_worker import logs
from enchant_worker.errors import EnchantError

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a process ended by SIGPIPE


class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2); `--help` shows the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="enchant-worker",
        description="Enchant Worker: the job server and GPU backend of Novel Enchant. "
        "Reads ENCHANT_DATABASE_URL; when unset, uses (and starts) the embedded Postgres under ENCHANT_HOME.",
    )
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(commands)
    _accept_everywhere(commands, "--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS)
    return parser


def _command_modules():
    """Every module of this package with a `register(commands)` function, by name."""
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            yield module


def _accept_everywhere(commands, *flags, **options) -> None:
    """Lets a global option also follow the sub-command (`enchant-worker worker --log-level DEBUG`)."""
    for sub in commands.choices.values():
        sub.add_argument(*flags, **options)
        for action in sub._subparsers._group_actions if sub._subparsers else ():
            _accept_everywhere(action, *flags, **options)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    try:
        code = args.func(args) or 0
        sys.stdout.flush()  # a reader that went away (`jobs --json | head -1`) shows here, not at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except ValidationError as exc:  # settings from the environment
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        print(f"error: invalid configuration: {problems}", file=sys.stderr)
        return 2
    except EnchantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _discard_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
