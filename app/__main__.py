"""Entry point: `python -m app` / `tinychat`.

`tinychat` opens the window; `tinychat export|import …` are the conversation backup commands;
`tinychat models …` manages model levels; `--self-test` checks an installed build; `--version` prints
the version.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.core.version import app_version


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the GUI or one of the command-line modes; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    # A frozen app is its own interpreter: model validation re-runs it as a sandboxed child.
    from engine.validate import run_child_if_requested

    run_child_if_requested(argv)
    # Nothing but the model manager may touch the network; it lifts this for its own requests.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if argv and argv[0] in ("export", "import"):
        from app.core.data_cli import main as data_main

        return data_main(argv)
    if argv and argv[0] == "models":
        from app.core import models_cli

        parser = argparse.ArgumentParser(prog="tinychat")
        models_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return args.run(args)
    parser = argparse.ArgumentParser(prog="tinychat", description="Offline chat with TinyLlama.")
    parser.add_argument("--version", action="version", version=f"TinyChat {app_version()}")
    parser.add_argument("--self-test", action="store_true", help="check this installation and exit")
    parser.add_argument("--model", help="with --self-test: also load this model and generate")
    args, qt_args = parser.parse_known_args(argv)
    if args.self_test:
        from app.shell.self_test import run as run_self_test

        return run_self_test(args.model)
    from app.shell.gui import run

    return run(qt_args)


if __name__ == "__main__":
    sys.exit(main())
