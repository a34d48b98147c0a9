"""Entry point: `python -m app` / `tinychat`.

`tinychat` opens the window; `--self-test` checks an installed build; `--version` prints the version.
Subcommands (`tinychat export|import …`, `tinychat models …`, and `tinychat serve`, the OpenAI-compatible
API without the window) live in the modules named in COMMAND_MODULES, each adding its parsers with
`add_parsers(subparsers)` and a `run` default. `build_parser()` is the whole command line: main() parses
with it and the man page is generated from it, so a module listed there appears in both.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from app.core.version import app_version

COMMAND_MODULES = ("app.core.data_cli", "app.core.models_cli", "app.server.serve_cli")


def _add_window_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--version", action="version", version=f"TinyChat {app_version()}")
    parser.add_argument("--self-test", action="store_true", help="check this installation and exit")
    parser.add_argument("--model", help="with --self-test: also load this model and generate")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full command line: the window's options and every subcommand."""
    parser = _add_window_options(argparse.ArgumentParser(
        prog="tinychat", description="Offline chat with TinyLlama. Without a command, opens the window."))
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the GUI or one of the command-line modes; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    # Before llama_cpp is imported anywhere (it opens its library then): the AVX2 or the baseline build.
    from engine import cpu_build

    cpu_build.apply()
    # A frozen app is its own interpreter: model validation and chat templates re-run it as sandboxed children.
    from engine.template_child import serve_if_requested
    from engine.validate import run_child_if_requested

    run_child_if_requested(argv)
    serve_if_requested(argv)
    # Before anything else can open a socket: every attempt is logged (Help ▸ Network…), and refused in
    # airplane mode.
    from engine import network_log

    network_log.install()
    # Nothing but the model manager may touch the network; it lifts this for its own requests.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if (argv and not argv[0].startswith("-")) or {"-h", "--help"} & set(argv):
        args = build_parser().parse_args(argv)  # a command, or a usage error naming the commands
        return args.run(args)
    # The window: options it does not know are Qt's own (`-platform xcb`), whose values a parser with
    # subcommands would take for a command name.
    window_parser = _add_window_options(argparse.ArgumentParser(prog="tinychat", add_help=False))
    args, qt_args = window_parser.parse_known_args(argv)
    if args.self_test:
        from app.shell.self_test import run as run_self_test

        return run_self_test(args.model)
    from app.shell.gui import run

    return run(qt_args)


if __name__ == "__main__":
    sys.exit(main())
