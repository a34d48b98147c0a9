"""`tinychat export` and `tinychat import`: conversation backups from the command line.

Both use the same database as the app (honouring `TINYCHAT_HOME`). On any problem they print one
line saying why, exit non-zero, and write nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from app.core import paths, transfer
from app.core.logging_setup import setup_logging
from app.core.store import Store, StoreError
from app.core.transfer import MAX_IMPORT_BYTES

log = logging.getLogger(__name__)


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"tinychat {command}")
    if command == "export":
        parser.description = "Write conversations to a Markdown or JSON file."
        parser.add_argument("--format", choices=("md", "json"), default="json", help="file format (json)")
        parser.add_argument("--conversation", action="append", metavar="ID",
                            help="export only this conversation (repeatable); default: all")
        parser.add_argument("--out", required=True, metavar="PATH", help="output file, or - for stdout")
    else:
        parser.description = "Add the conversations of a TinyChat JSON export that are not here yet."
        parser.add_argument("path", metavar="PATH", help="a JSON file written by `tinychat export`")
    return parser


def summary() -> str:
    """Both commands' usage lines and descriptions, for `tinychat --help`."""
    parts = []
    for command in ("export", "import"):
        parser = _parser(command)
        usage = " ".join(parser.format_usage().removeprefix("usage: ").split())  # one line, not argparse's wrap
        parts.append(f"  {usage}\n      {parser.description}")
    return "commands:\n" + "\n".join(parts) + "\n  (add --help after a command for its details)"


def main(argv: list[str]) -> int:
    """Run `export …` or `import …` (argv[0] names the command); returns the exit code."""
    command, rest = argv[0], argv[1:]
    args = _parser(command).parse_args(rest)  # exits 2 with a usage line on bad arguments
    setup_logging(logging.WARNING)
    try:
        store, notice = Store.open(paths.db_path())
    except StoreError as exc:
        return _fail(exc.message)
    if notice:
        print(notice, file=sys.stderr)
    try:
        return _export(store, args) if command == "export" else _import(store, Path(args.path))
    except StoreError as exc:
        return _fail(exc.message)
    finally:
        store.close()


def _fail(message: str) -> int:
    print(f"tinychat: {message}", file=sys.stderr)
    return 1


def _export(store: Store, args: argparse.Namespace) -> int:
    ids = args.conversation
    if args.format == "json":
        text = json.dumps(transfer.export_json(store, ids), ensure_ascii=False, indent=1) + "\n"
    else:
        text = transfer.export_markdown(store, ids)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    try:
        _write_atomically(out, text)
    except OSError as exc:
        return _fail(f"Could not write {out}: {exc.strerror or exc}.")
    count = len(ids) if ids else len(store.list_conversations())
    print(f"Exported {count} conversation(s) to {out}.")
    return 0


def _write_atomically(out: Path, text: str) -> None:
    """A crash or full disk leaves the previous file (or none), never half an export."""
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _import(store: Store, path: Path) -> int:
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            return _fail(f"{path} is larger than {MAX_IMPORT_BYTES // 2**20} MB; TinyChat does not import "
                         "files that big.")
        data = path.read_bytes()
    except OSError as exc:
        return _fail(f"Could not read {path}: {exc.strerror or exc}.")
    summary = transfer.import_json(store, data)
    print(summary.describe())
    for title in summary.added_titles:
        print(f"  added: {title}")
    for title in summary.skipped_titles:
        print(f"  already present: {title}")
    return 0
