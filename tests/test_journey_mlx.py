"""Journey: the MLX path as a person on this (Linux) computer takes it, in the real window. A level that
needs the original weights is offered with the Hub's real size of that download, is downloaded and
converted, and the original kept for other levels is listed in the model manager with what it is for
and how much it takes; its Delete frees it, and the manager's rows always add up to its total and to
the bytes on disk."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from app.core.settings import Settings
from engine.catalog import Catalog
from engine.models import ModelManager
from engine.progress import human
from tests.fakehub import FakeHub, mlx_entry
from tests.fixtures.hf_model import build_hf_cached
from tests.journey import Home, JourneyApp, Node

HF_REPO = "test/Tiny-HF"
KEPT = "Kept to make other MLX levels without downloading again"
BYTES = re.compile(r"([\d,]+) bytes")


def mlx_home(tmp_path: Path, hub: FakeHub) -> tuple[Home, int]:
    """A home using MLX at 4-bit (installed; its original deleted again) whose catalog offers the fake
    Hub's original at 4, 8 and 16 bits with the real catalog's size estimates; returns it and the bytes
    of the original on the Hub."""
    snapshot = {p.name: p for p in sorted(build_hf_cached("tiny", scripted=True).iterdir()) if p.is_file()}
    hub.add_repo(HF_REPO, snapshot)
    home = Home.create(tmp_path / "home", hub, replace(Settings(), engine="mlx", model_id="tiny", quant="4bit"))
    doc = json.loads(home.catalog_path.read_text())
    for bits, size_mb in ((4, 620), (8, 1170), (16, 2200)):
        entry = mlx_entry(HF_REPO, "main", list(snapshot), bits=bits)
        entry.update(label=f"Tiny Test Chat · MLX {bits}-bit", default=bits == 4, size_mb=size_mb,
                     download_mb=4400, memory_mb=size_mb + 400)
        doc["entries"].append(entry)
    home.catalog_path.write_text(json.dumps(doc))
    manager = ModelManager(home.path / "data" / "models", Catalog.load(home.catalog_path), endpoint=hub.endpoint)
    manager.ensure_available("tiny", "4bit")
    manager.delete("tiny-hf")
    return home, sum(p.stat().st_size for p in snapshot.values())


def exact_bytes(node: Node) -> int:
    """The exact byte figure a size's tooltip gives (its accessible description)."""
    found = BYTES.search(node.description)
    assert found, f"{node.name!r} gives no exact size: {node.description!r}"
    return int(found.group(1).replace(",", ""))


def manager_figures(app: JourneyApp) -> tuple[int, list[int]]:
    """The model manager's total in bytes and each row's bytes on disk."""
    models = app.dialog("Models")
    total = app.one("label", within=models, name_contains="used,")
    rows = [n for n in app.find("label", within=models) if n.description.endswith("bytes on disk")]
    assert human(exact_bytes(total)) in total.name
    for row in rows:
        assert row.name == human(exact_bytes(row))
    return exact_bytes(total), [exact_bytes(r) for r in rows]


def on_disk(home: Home) -> int:
    return sum(p.stat().st_size for p in (home.path / "data" / "models").rglob("*") if p.is_file())


def test_the_mlx_original_is_offered_at_its_real_size_kept_listed_with_its_purpose_and_deleted(
        desktop, hub, tmp_path):
    home, original = mlx_home(tmp_path, hub)
    with JourneyApp(desktop, home, tmp_path) as app:
        app.wait(lambda: "4bit" in app.status() and "Loading" not in app.status(), "MLX 4-bit to load")
        app.menu("Model", "Settings…")
        settings = app.dialog("Settings")
        levels = app.one(None, "Quantization levels", within=settings)
        assert "4bit ★" not in app.tree(levels)  # not recommended where MLX runs on the CPU
        app.click(app.one("table cell", "8bit", within=levels))
        offer = f"Download {human(original)}, convert and use it"
        app.one("push button", offer, within=settings)  # the Hub's figure, not the catalog's 4.4 GB
        app.press("push button", offer, within=settings)
        app.wait(lambda: "8bit" in app.status() and "Loading" not in app.status(), "MLX 8-bit to be made and load")

        app.click(app.one("table cell", "16bit", within=levels))
        app.one("push button", "Convert to 16bit and use it (no download)", within=settings)
        app.press("push button", "Close", within=settings)

        app.menu("Model", "Models…")
        models = app.dialog("Models")
        app.one("label", KEPT, within=models)
        total, rows = manager_figures(app)
        # 4-bit, 8-bit and the original: its files plus the few hundred bytes of TinyChat's record of them
        assert len(rows) == 3 and any(original < r < original + 2000 for r in rows)
        assert sum(rows) == total == on_disk(home)

        # With the mouse: the question that follows is modal, and an accessibility action waits for it.
        app.click(app.one("push button", "Delete Original weights", within=models))
        question = app.one("alert", "Delete model")
        assert "making another one downloads the original again" in app.tree(question)
        app.click(app.one("push button", "Yes", within=question))
        app.wait(lambda: not app.find("label", KEPT, within=app.dialog("Models")), "the original's row to go")
        total, rows = manager_figures(app)
        assert len(rows) == 2 and sum(rows) == total == on_disk(home)
        assert not (home.path / "data" / "models" / "mlx" / "tiny-hf").exists()
