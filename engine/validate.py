"""Validate a GGUF file in a child process with a time limit: the app survives any file whatsoever.

llama.cpp's GGUF parser has had memory-safety CVEs and aborts the process on some bad values, so a
file is first checked by engine/gguf_llama.py (on engine/gguf_inspect.py) in a separate, memory- and
CPU-limited Python process. The parent turns a crash, a timeout or garbage output into one plain sentence.

`tinychat-engine validate PATH` (engine/cli.py → `cli_main`) prints a JSON summary and exits 0 for a
usable llama model; otherwise it prints one line saying why and exits 1, within 10 s.

Frozen builds: `sys.executable` is the app itself, so the child is started as `<app> --tinychat-validate-child
PATH`; the frozen entry point must call `run_child_if_requested()` first thing in `main()`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.types import ModelFileError

if TYPE_CHECKING:
    from engine.gguf_inspect import GgufHeader

log = logging.getLogger(__name__)

CHILD_FLAG = "--tinychat-validate-child"
TIMEOUT_S = 9.0  # the whole check, child start-up included, stays under the promised 10 s
CHILD_MEMORY_LIMIT = 2 << 30
CHILD_CPU_LIMIT_S = 10
EXIT_OK, EXIT_BAD = 0, 1


@dataclass(frozen=True)
class GgufSummary:
    """What a valid model file is: shown in the import dialog and printed by the CLI."""

    architecture: str
    name: str | None
    parameters: int
    quantization: str
    context_length: int
    chat_template: bool
    size: int
    n_vocab: int
    n_layer: int
    gguf_version: int
    catalog_id: str | None = None  # the catalog level this file is (engine/catalog.py `match_gguf`), if any


def _child_command(path: Path) -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_FLAG, str(path)]
    return [sys.executable, "-m", "engine.validate", CHILD_FLAG, str(path)]


# The child runs with the folder holding the `engine` package as its cwd, so `-m engine.validate`
# resolves to this very code whether TinyChat is installed or run from a source tree.
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def validate_gguf(path: Path, timeout: float = TIMEOUT_S) -> GgufSummary:
    """Check `path` in a child process; return its summary or raise ModelFileError with a sentence."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist or is not a file.")
    t0 = time.monotonic()
    try:
        done = subprocess.run(_child_command(path.resolve()), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=_PACKAGE_PARENT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelFileError(
            f"Checking the file took longer than {timeout:.0f} seconds; it is probably not a usable model file.",
            f"timeout validating {path}",
        ) from exc
    except OSError as exc:
        raise ModelFileError("TinyChat could not start its model checker. Reinstall TinyChat.", repr(exc)) from exc
    log.debug("validated %s in %.2f s, exit %s", path, time.monotonic() - t0, done.returncode)
    try:
        reply = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, ValueError, IndexError):
        reply = None
    if done.returncode == EXIT_OK and isinstance(reply, dict) and isinstance(reply.get("summary"), dict):
        try:
            return GgufSummary(**reply["summary"])
        except TypeError:
            pass
    if done.returncode == EXIT_BAD and isinstance(reply, dict) and isinstance(reply.get("error"), str):
        raise ModelFileError(reply["error"], f"validate {path}")
    raise ModelFileError(
        "The file made the model checker fail; it is damaged or not a GGUF model.",
        f"child exit {done.returncode}; stderr: {done.stderr.decode('utf-8', 'replace')[-2000:]}",
    )


_verified: dict[tuple[int, int, int, int], GgufSummary] = {}
_VERIFIED_MAX = 64


def require_valid(path: Path) -> GgufSummary:
    """For loaders: `validate_gguf`, remembered by file identity (device, inode, size, modification time)
    so loading an unchanged file again costs one `stat`. Raises ModelFileError naming the file, then the
    checker's reason. Refusals are not remembered: a time-out may pass on a less busy machine."""
    path = Path(path)
    st = path.stat()
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if identity in _verified:
        return _verified[identity]
    try:
        summary = validate_gguf(path)
    except ModelFileError as exc:
        raise ModelFileError(f"The model file {path.name} could not be loaded. {exc.message}", exc.detail) from exc
    if len(_verified) >= _VERIFIED_MAX:
        _verified.pop(next(iter(_verified)))
    _verified[identity] = summary
    return summary


def _limit_resources() -> None:
    """Cap the child's memory and CPU time: a crafted header must not exhaust the machine."""
    try:
        import resource
    except ImportError:  # Windows: the parent's timeout still applies
        return
    for limit, value in ((resource.RLIMIT_AS, CHILD_MEMORY_LIMIT), (resource.RLIMIT_CPU, CHILD_CPU_LIMIT_S)):
        try:
            _soft, hard = resource.getrlimit(limit)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(limit, (cap, hard))
        except (ValueError, OSError):
            pass


def _catalog_id(header: GgufHeader) -> str | None:
    """The catalog level a valid file is, recognised from its metadata (never from its name)."""
    from engine.catalog import Catalog, CatalogError

    try:
        entry = Catalog.load().match_gguf(header.metadata, header.tokens)
    except CatalogError:  # a broken catalog costs the recognition, not the file
        return None
    return entry.id if entry is not None else None


def _child_main(path: str) -> int:
    """In the child: inspect, print one JSON line, exit 0 (usable) or 1 (with the reason)."""
    _limit_resources()
    from engine.gguf_inspect import GgufProblem
    from engine.gguf_llama import check_header, read_file_header

    try:
        header = read_file_header(Path(path))
        summary = check_header(header)
        summary["catalog_id"] = _catalog_id(header)
        print(json.dumps({"summary": summary}))
        return EXIT_OK
    except GgufProblem as exc:
        print(json.dumps({"error": str(exc)}))
    except MemoryError:
        print(json.dumps({"error": "The file's header is corrupt: reading it needs far too much memory."}))
    except OSError as exc:
        print(json.dumps({"error": f"The file could not be read ({exc.strerror or exc})."}))
    except Exception as exc:  # any other surprise is still a bad file, not a crash
        print(json.dumps({"error": "The file is damaged or not a GGUF model."}))
        print(repr(exc), file=sys.stderr)
    return EXIT_BAD


def run_child_if_requested(argv: list[str] | None = None) -> None:
    """For frozen entry points: if started as the validation child, do that and exit."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == CHILD_FLAG:
        sys.exit(_child_main(argv[1]))


def cli_main(argv: list[str]) -> int:
    """`tinychat-engine validate PATH`: JSON summary on stdout and 0, or one line on stderr and 1."""
    if len(argv) != 1:
        print("usage: tinychat-engine validate PATH", file=sys.stderr)
        return 2
    try:
        summary = validate_gguf(Path(argv[0]))
    except ModelFileError as exc:
        print(f"{argv[0]}: {exc.message}", file=sys.stderr)
        return EXIT_BAD
    print(json.dumps(asdict(summary), indent=2))
    return EXIT_OK


if __name__ == "__main__":
    run_child_if_requested()
    sys.exit(cli_main(sys.argv[1:]))
