"""`tinychat models …`: the model manager from a terminal, on the window's code paths.

  list                      catalog levels, installed files, measured figures, the recommendation
  get LEVEL                 download (resumable; Ctrl+C keeps what was fetched)
  import FILE [--in-place]  add a GGUF file (copied, or used where it is)
  use LEVEL                 make a level (or an installed model id) the one TinyChat loads
  verify [LEVEL]            re-hash installed files against what was recorded
  remove LEVEL              delete an installed level (never the one in use)
  bench [LEVEL | --all]     measure speed, memory and answer quality on this computer

Same data folder, settings and `ModelManager` as the window (honouring `TINYCHAT_HOME`), and the
same sentences for the same problems. Problems print one line and exit 1; Ctrl+C exits 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from app.core import paths
from app.core.level_advice import agreement_text, recommend
from app.core.level_measure import (
    levels_in_use,
    measure_installed,
    measured,
    results_store,
    siblings,
    threads_for,
)
from app.core.level_results import model_identity
from app.core.logging_setup import setup_logging
from app.core.model_choice import resolve_model
from app.core.settings import Settings, SettingsError, load_settings, save_settings
from app.core.terminal_progress import TerminalProgress, run_cancellable
from engine.catalog import CatalogEntry
from engine.hardware import available_memory, cpu_name
from engine.level_report import memory_text, table
from engine.models import InstalledModel, ModelManager
from engine.progress import human
from engine.select import choose_engine
from engine.types import DownloadCancelled, EngineError

log = logging.getLogger(__name__)
EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


class CliError(Exception):
    """A sentence for the user; the command exits 1."""


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the `models` command (with its actions) to the app's command line; it runs `run`."""
    models = commands.add_parser("models", help="list, get, import, use, verify, remove and measure model levels",
                                 description="List, get, import, use, verify, remove and measure model levels.")
    sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="levels, installed files, measured figures")
    sub.add_parser("get", help="download a level (resumable)").add_argument("level")
    imp = sub.add_parser("import", help="add a GGUF model file")
    imp.add_argument("file")
    imp.add_argument("--in-place", action="store_true", help="use the file where it is instead of copying it")
    sub.add_parser("use", help="make a level the one TinyChat loads").add_argument("level")
    sub.add_parser("verify", help="check installed files").add_argument("level", nargs="?")
    sub.add_parser("remove", help="delete an installed level").add_argument("level")
    bench = sub.add_parser("bench", help="measure levels on this computer")
    bench.add_argument("level", nargs="?", help="default: the level in use")
    bench.add_argument("--all", action="store_true", help="every installed level of the model")
    models.set_defaults(run=run)


class _Context:
    def __init__(self, manager: ModelManager, settings: Settings) -> None:
        self.manager, self.settings = manager, settings
        self.engine = choose_engine(settings.engine).name

    def entry(self, level: str) -> CatalogEntry:
        """The catalog level `level` of the settings' model for the engine that runs here."""
        for e in self.manager.catalog.levels(self.settings.model_id, self.engine):
            if e.level.lower() == level.lower():
                return e
        names = ", ".join(e.level for e in self.manager.catalog.levels(self.settings.model_id, self.engine))
        raise CliError(f"There is no level called {level}. The levels are: {names}.")

    def installed(self, name: str) -> InstalledModel:
        """An installed model by id, or the installed copy of a catalog level."""
        found = next((m for m in self.manager.installed() if m.id == name), None)
        if found is not None:
            return found
        entry = self.entry(name)
        found = self.manager.find(entry.model, entry.level)
        if found is None:
            raise CliError(f"{entry.level} is not installed. Get it first with `tinychat models get {entry.level}`.")
        return found

    def in_use(self) -> InstalledModel | None:
        return resolve_model(self.manager, self.settings)


def run(args: argparse.Namespace) -> int:
    """Run the parsed `models …` command; returns the exit code."""
    setup_logging(logging.WARNING)
    settings, warnings = load_settings(paths.settings_path())
    for w in warnings:
        print(f"tinychat: {w}", file=sys.stderr)
    ctx = _Context(ModelManager(paths.models_dir()), settings)
    try:
        return _COMMANDS[args.action](ctx, args)
    except (CliError, EngineError, SettingsError) as e:
        message = e.message if isinstance(e, EngineError | SettingsError) else str(e)
        log.debug("%s failed: %s", args.action, getattr(e, "detail", ""))
        print(f"tinychat: {message}", file=sys.stderr)
        return EXIT_FAILED


def _list(ctx: _Context, _args: argparse.Namespace) -> int:
    threads = threads_for(ctx.settings)
    mine = levels_in_use(ctx.manager, ctx.settings)
    figures = measured(results_store(), mine, threads)
    current = ctx.in_use()
    levels = ctx.manager.catalog.levels(ctx.settings.model_id, ctx.engine)
    title = levels[0].label.rsplit(" · ", 1)[0] if levels else ctx.settings.model_id
    print(f"{title} on {ctx.engine} ({threads} threads, {cpu_name()})")
    print(f"   {'level':<10} {'size':>8}  {'status':<14} {'gen tok/s':>9}  {'memory':<22} quality")
    for e in levels:
        m = ctx.manager.find(e.model, e.level)
        f = figures.get(m.id) if m is not None else None
        mark = "*" if m is not None and current is not None and m.id == current.id else " "
        size = human(m.size_bytes if m is not None else e.size_mb * 1_000_000)
        status = ("imported" if m.kind == "imported" else "installed") if m is not None else "not installed"
        speed = f"{f.speed.gen_tps:9.1f}" if f is not None else f"{'—':>9}"
        memory = memory_text(f) if f is not None else "—"
        quality = agreement_text(f) if f is not None else ("not measured" if m is not None else "")
        print(f" {mark} {e.level:<10} {size:>8}  {status:<14} {speed}  {memory:<22} {quality}".rstrip())
    others = [m for m in ctx.manager.installed() if m.model != ctx.settings.model_id]
    if others:
        print("Other models:")
        other_figures = measured(results_store(), others, threads)
        for m in others:
            mark = "*" if current is not None and m.id == current.id else " "
            f = other_figures.get(m.id)
            seen = f" · {f.speed.gen_tps:.1f} tokens/s · {agreement_text(f)}" if f is not None else ""
            print(f" {mark} {m.id:<28} {human(m.size_bytes):>8}  {m.label}{seen}")
    print("* = in use." if current is not None else "No model is installed yet: `tinychat models get LEVEL`.")
    if figures:
        print(recommend(list(figures.values()), available_memory()).sentence)
    elif mine:
        print("Measure the installed levels with `tinychat models bench --all`.")
    return 0


def _get(ctx: _Context, args: argparse.Namespace) -> int:
    entry = ctx.entry(args.level)
    have = ctx.manager.find(entry.model, entry.level)
    if have is not None:
        print(f"{entry.label} is already installed ({human(have.size_bytes)}).")
        return 0
    bar = TerminalProgress()
    _, error, interrupted = run_cancellable(
        lambda cancel: ctx.manager.ensure_available(entry.model, entry.level, bar.download, cancel))
    bar.close()
    if isinstance(error, DownloadCancelled) or (interrupted and error is not None):
        print(f"Download paused. What was downloaded is kept; run `tinychat models get {entry.level}` again "
              "to continue.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if error is not None:
        raise error
    print(f"{entry.label} is installed. Use it with `tinychat models use {entry.level}`.")
    return 0


def _import(ctx: _Context, args: argparse.Namespace) -> int:
    path = Path(args.file).expanduser()
    bar = TerminalProgress()
    model, error, _ = run_cancellable(
        lambda cancel: ctx.manager.import_gguf(path, bar.download, cancel, in_place=args.in_place))
    bar.close()
    if isinstance(error, DownloadCancelled):
        print(error.message, file=sys.stderr)
        return EXIT_INTERRUPTED
    if error is not None:
        message = getattr(error, "message", None)
        raise CliError(f"{path.name}: {message}") if message else error
    assert model is not None
    where = f" It stays at {model.path}; do not move it." if args.in_place else ""
    name = model.level if model.model == ctx.settings.model_id else model.id
    print(f"Imported {model.label}.{where} Use it with `tinychat models use {name}`.")
    return 0


def _use(ctx: _Context, args: argparse.Namespace) -> int:
    model = ctx.installed(args.level)
    save_settings(replace(ctx.settings, model_id=model.model, quant=model.level), paths.settings_path())
    print(f"TinyChat will use {model.label}. A window that is open now switches when it is next started.")
    return 0


def _verify(ctx: _Context, args: argparse.Namespace) -> int:
    targets = [ctx.installed(args.level)] if args.level else list(ctx.manager.installed())
    if not targets:
        print("No model is installed.")
        return 0
    bad = 0
    for m in targets:
        ok = ctx.manager.verify(m.id)
        bad += not ok
        print(f"{m.label}: " + ("all files match what was downloaded." if ok else
                                "its files no longer match what was downloaded. Delete it and download it again."))
    return EXIT_FAILED if bad else 0


def _remove(ctx: _Context, args: argparse.Namespace) -> int:
    model = ctx.installed(args.level)
    current = ctx.in_use()
    if current is not None and current.id == model.id:
        raise CliError("This model is in use. Switch to another level first.")
    identity = model_identity(model)
    freed = ctx.manager.delete(model.id)
    results_store().forget(identity)
    print(f"Deleted {model.label}. {human(freed)} freed.")
    return 0


def _bench(ctx: _Context, args: argparse.Namespace) -> int:
    if args.all:
        targets = levels_in_use(ctx.manager, ctx.settings)
    elif args.level:
        targets = [ctx.installed(args.level)]
    else:
        current = ctx.in_use()
        targets = [current] if current is not None else []
    if not targets:
        raise CliError("No model is installed yet. Get a level first with `tinychat models get LEVEL`.")
    threads = threads_for(ctx.settings)
    bar = TerminalProgress()
    _, error, interrupted = run_cancellable(lambda cancel: measure_installed(
        ctx.manager, targets, results_store(), threads=threads, cancel=cancel,
        progress=lambda label, stage, fraction: bar.fraction(f"{stage}: {label}", fraction)))
    bar.close()
    if interrupted:
        print("Measurement stopped. Levels measured before it are kept.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if error is not None:
        raise error
    mine = siblings(ctx.manager, targets[0])
    figures = measured(results_store(), mine, threads)
    print(table([(m.level, figures.get(m.id)) for m in mine]))
    print(recommend(list(figures.values()), available_memory()).sentence)
    return 0


_COMMANDS = {"list": _list, "get": _get, "import": _import, "use": _use, "verify": _verify, "remove": _remove,
             "bench": _bench}
