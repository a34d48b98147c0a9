"""`tinychat export` and `tinychat import`: conversation backups from the command line.

Both use the same database as the app (honouring `TINYCHAT_HOME`). On any problem they print one
line saying why, exit non-zero, and write nothing. Details go to the log file, never to the terminal.
Everything printed that came from a file or the database is escaped first, so a hostile title cannot
drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from app.core import paths, transfer
from app.core.logging_setup import setup_logging
from app.core.store import Store, StoreError
from app.core.store_file import damaged_copies
from app.core.terminal_progress import TerminalProgress
from app.core.terminal_text import terminal_safe

log = logging.getLogger(__name__)

EXIT_BROKEN_PIPE = 141  # what a shell reports for a program stopped by SIGPIPE (`… | head`)


class _StdoutFailed(Exception):
    """Standard output refused the export (full disk, closed pipe)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the `export` and `import` subcommands to the app's command line; both run `run`."""
    export = commands.add_parser("export", help="write conversations to a Markdown or JSON file",
                                 description="Write conversations to a Markdown or JSON file.")
    export.add_argument("--format", choices=("md", "json"), default="json", help="file format (json)")
    export.add_argument("--conversation", action="append", metavar="ID",
                        help="export only this conversation (repeatable); default: all")
    export.add_argument("--out", required=True, metavar="PATH", help="output file, or - for stdout")
    imp = commands.add_parser("import", help="add the conversations of a JSON export",
                              description="Add the conversations of a TinyChat JSON export that are not here yet.")
    imp.add_argument("path", metavar="PATH", help="a JSON file written by `tinychat export`")
    for parser in (export, imp):
        parser.add_argument("--verbose", action="store_true", help="list every conversation, not just the count")
        parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the parsed `export …` or `import …` command (args.command names it); returns the exit code."""
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets an escape
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    command = args.command
    setup_logging(logging.INFO, echo=False)
    try:
        code = _run(command, args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print a traceback
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`tinychat import … | head`): stop quietly, as other tools do.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except _StdoutFailed as exc:
        _silence_stdout()
        return _fail(f"Could not write the export to standard output: {exc.error.strerror or exc.error}.")
    except MemoryError:
        return _fail("There is not enough memory to do this; close other programs and try again.")


def _run(command: str, args: argparse.Namespace) -> int:
    db = paths.db_path()
    try:  # a full or read-only disk must not keep the user from their backup
        store, notice = Store.open_or_read_only(db) if command == "export" else Store.open(db)
    except StoreError as exc:
        return _fail(exc.message)
    try:
        if notice and not store.read_only:  # the database was damaged and moved aside just now
            if command == "export":
                return _fail(notice + " Nothing was exported.")
            print(terminal_safe(notice), file=sys.stderr)
        return _export(store, args) if command == "export" else _import(store, args)
    except StoreError as exc:
        return _fail(exc.message)
    finally:
        store.close()


def _fail(message: str) -> int:
    with contextlib.suppress(OSError):
        print(f"tinychat: {terminal_safe(message)}", file=sys.stderr, flush=True)
    return 1


def _silence_stdout() -> None:
    """Point stdout at the null device so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _export(store: Store, args: argparse.Namespace) -> int:
    ids = args.conversation
    markdown = args.format == "md"
    titles: list[str] = []
    listed = titles.append if args.verbose else None
    if args.out == "-":
        def write(text: str) -> None:
            try:  # the export is UTF-8 whatever the terminal's encoding
                sys.stdout.buffer.write(text.encode("utf-8"))
            except BrokenPipeError:
                raise
            except OSError as exc:
                raise _StdoutFailed(exc) from exc

        writer = transfer.write_markdown if markdown else transfer.write_json
        count = writer(store, write, ids, listed=listed)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _StdoutFailed(exc) from exc
    else:
        out = Path(args.out)
        try:
            with _progress("Exporting") as progress:
                count = transfer.export_to_file(store, out, markdown, ids, progress, listed=listed)
        except OSError as exc:
            return _fail(f"Could not write {out}: {exc.strerror or exc}.")
        print(terminal_safe(f"Exported {count} conversation(s) to {out}."))
    for title in titles:  # on stderr when the export itself goes to stdout
        print(terminal_safe(f"  exported: {title}"), file=sys.stderr if args.out == "-" else sys.stdout)
    if count == 0 and not ids:
        _mention_damaged(store.path)
    return 0


@contextlib.contextmanager
def _progress(what: str) -> Iterator[transfer.ProgressFn | None]:
    """A progress bar on stderr when it is a terminal (pipes and logs get only the summary line)."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = TerminalProgress()
    try:
        yield lambda fraction, count: bar.fraction(what, fraction, f"{count} conversation(s)")
    finally:
        bar.close()


def _mention_damaged(db: Path) -> None:
    """An empty store next to a database moved aside as damaged: the user's conversations are there."""
    moved = damaged_copies(db)
    if moved:
        print(terminal_safe(f"tinychat: note: a damaged conversation database was moved to {moved[0]}; "
                            "its conversations are not in this export."), file=sys.stderr)


def _import(store: Store, args: argparse.Namespace) -> int:
    with _progress("Importing") as progress:
        summary = transfer.import_file(store, Path(args.path), progress)
    print(summary.describe())
    if args.verbose:
        for title in summary.added_titles:
            print(terminal_safe(f"  added: {title}"))
        for title in summary.skipped_titles:
            print(terminal_safe(f"  already present: {title}"))
    return 0
