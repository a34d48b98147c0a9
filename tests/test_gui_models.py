"""The model manager window with the real model manager, a local fake Hub and the real llama.cpp engine:
downloads with progress and Cancel, resuming after the app was closed, Use, Verify, Delete, and
importing a user's GGUF (a bad one is refused with the reason shown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models.model_dialog import ModelDialog
from tests.fakehub import FakeHub
from tests.gui_app import FILES, GuiApp, Recorder, make_catalog, model_files, start_app

WAIT_MS = 20_000
Q4, Q8 = "tiny-q4_k_m", "tiny-q8_0"


@pytest.fixture
def app(hub_home: Path, tmp_path: Path, hub: FakeHub, qtbot) -> GuiApp:
    a = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    yield a
    a.shutdown()


def open_dialog(app: GuiApp, qtbot) -> ModelDialog:
    dialog = ModelDialog(app.switcher)
    qtbot.addWidget(dialog)
    return dialog


def download(dialog: ModelDialog, qtbot, key: str) -> None:
    with qtbot.waitSignal(dialog.downloads.jobFinished, timeout=WAIT_MS):
        dialog.button(key, "Download").click()


def test_a_download_shows_progress_then_the_level_can_be_used_verified_and_deleted(app, qtbot, hub):
    dialog = open_dialog(app, qtbot)
    assert dialog.status_of(Q4) == dialog.status_of(Q8) == "Not downloaded"
    hub.faults.trickle_bps = 1_000_000
    lines = Recorder(lambda _p: dialog.status_of(Q4))
    dialog.downloads.progress.connect(lines.record)
    download(dialog, qtbot, Q4)
    lines = lines.seen
    assert any(line.startswith("Downloading") and " of " in line for line in lines)
    assert any("/s" in line and "left" in line for line in lines)  # speed and ETA while it runs
    # Nothing was loaded, so the first model downloaded is put to use at once.
    assert "ready and in use" in dialog.message.text()
    qtbot.waitUntil(lambda: app.ready, timeout=WAIT_MS)
    assert dialog.status_of(Q4) == "● In use"
    assert dialog.button(Q4, "Delete") is None  # the model in use cannot be deleted from under the chat

    with qtbot.waitSignal(dialog.downloads.jobFinished, timeout=WAIT_MS):
        dialog.button(Q4, "Verify").click()
    assert dialog.message.text() == "All files match what was downloaded."

    download(dialog, qtbot, Q8)
    assert dialog.status_of(Q8) == "Installed" and "Press Use" in dialog.message.text()
    assert app.loaded_quant() == "Q4_K_M"  # a download alone never switches
    folder = app.switcher.manager.find("tiny", "Q8_0").folder
    dialog.delete(Q8)
    assert not folder.exists() and dialog.status_of(Q8) == "Not downloaded"
    assert dialog.message.text().startswith("Deleted.")


def test_verify_reports_a_model_whose_bytes_changed_on_disk(app, qtbot):
    dialog = open_dialog(app, qtbot)
    download(dialog, qtbot, Q4)
    path = app.switcher.manager.find("tiny", "Q4_K_M").path
    # Flip one byte in place, as bit rot would: same size, so only the hash can tell. (Rewriting the
    # file would truncate it first, and a model llama.cpp has mapped must never shrink: SIGBUS.)
    with path.open("r+b") as f:
        f.seek(-100, 2)
        byte = f.read(1)[0]
        f.seek(-100, 2)
        f.write(bytes([byte ^ 0xFF]))
    with qtbot.waitSignal(dialog.downloads.jobFinished, timeout=WAIT_MS):
        dialog.button(Q4, "Verify").click()
    assert "no longer match" in dialog.message.text() and "download it again" in dialog.message.text()


def test_a_download_interrupted_by_closing_the_app_resumes_from_its_bytes_after_a_restart(
        hub_home, tmp_path, hub, qtbot):
    catalog = make_catalog(tmp_path / "catalog.json", hub.commit)
    first = start_app(hub_home, catalog)
    dialog = open_dialog(first, qtbot)
    hub.faults.trickle_bps = 300_000
    rec = Recorder(lambda p: p.progress.done)
    first.downloads.progress.connect(rec.record)
    seen = rec.seen
    dialog.button(Q8, "Download").click()
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] > 150_000, timeout=WAIT_MS)
    assert dialog.button(Q8, "Cancel") is not None
    first.shutdown()  # quitting mid-download cancels it; the bytes stay on disk
    dialog.close()

    hub.faults.trickle_bps = None
    hub.reset_counters()
    second = start_app(hub_home, catalog)
    try:
        dialog = open_dialog(second, qtbot)
        status = dialog.status_of(Q8)
        assert status.startswith("Paused") and "kept" in status
        kept = sum(u.bytes for u in second.switcher.manager.disk_usage() if u.state == "partial")
        with qtbot.waitSignal(second.downloads.jobFinished, timeout=WAIT_MS):
            dialog.button(Q8, "Resume").click()
        size = model_files()[FILES["Q8_0"]].stat().st_size
        assert [(r.range, r.sent) for r in hub.cdn_requests()] == [(f"bytes={kept}-", size - kept)]
        assert dialog.status_of(Q8) == "Installed"
        assert second.switcher.manager.find("tiny", "Q8_0").path.read_bytes() == \
            model_files()[FILES["Q8_0"]].read_bytes()
    finally:
        second.shutdown()


def test_a_cancelled_download_can_be_resumed_from_the_window(app, qtbot, hub):
    dialog = open_dialog(app, qtbot)
    hub.faults.trickle_bps = 300_000
    rec = Recorder(lambda p: p.progress.done)
    app.downloads.progress.connect(rec.record)
    seen = rec.seen
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS) as done:
        dialog.button(Q8, "Download").click()
        qtbot.waitUntil(lambda: bool(seen) and seen[-1] > 100_000, timeout=WAIT_MS)
        dialog.button(Q8, "Cancel").click()
    assert done.args[0].status == "cancelled"
    assert "paused" in dialog.message.text().lower() and dialog.status_of(Q8).startswith("Paused")
    hub.faults.trickle_bps = None
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS):
        dialog.button(Q8, "Resume").click()
    assert dialog.status_of(Q8) == "Installed"


def test_importing_a_file_that_is_not_a_model_is_refused_with_the_reason(app, qtbot, tmp_path):
    dialog = open_dialog(app, qtbot)
    bad = tmp_path / "notes.gguf"
    bad.write_bytes(b"these are my shopping notes, not a model\n" * 50)
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS) as done:
        dialog.import_file(bad)
    assert done.args[0].status == "failed"
    shown = dialog.message.text()
    assert "notes.gguf" in shown and "GGUF" in shown  # names the file and says what is wrong with it
    assert app.switcher.manager.installed() == ()


def test_importing_a_truncated_model_is_refused_and_a_good_one_is_listed_and_usable(app, qtbot, tmp_path):
    dialog = open_dialog(app, qtbot)
    good = model_files()[FILES["Q4_K_M"]]
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS) as done:
        dialog.import_file(cut)
    assert done.args[0].status == "failed" and "cut.gguf" in dialog.message.text()
    assert "incomplete" in dialog.message.text() or "truncated" in dialog.message.text()

    mine = tmp_path / "my-model.gguf"
    mine.write_bytes(good.read_bytes())
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS) as done:
        dialog.import_file(mine)
    imported = done.args[0].model
    assert imported is not None and "Imported" in dialog.message.text()
    assert dialog.status_of(imported.id) == "Installed"
    with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
        dialog.button(imported.id, "Use").click()
    qtbot.waitUntil(lambda: app.ready, timeout=WAIT_MS)
    assert app.session.model.loaded.model.path == imported.path


def test_a_model_file_can_be_used_where_it_is_instead_of_copied(app, qtbot, tmp_path):
    from app.models.import_choice import ImportChoice

    mine = tmp_path / "my-model.gguf"
    mine.write_bytes(model_files()[FILES["Q4_K_M"]].read_bytes())
    choice = ImportChoice(mine)
    qtbot.addWidget(choice)
    assert "my-model.gguf" in choice.text() and "disk space" in choice.informativeText()
    choice.in_place_button.click()
    assert choice.in_place() is True

    dialog = open_dialog(app, qtbot)
    with qtbot.waitSignal(app.downloads.jobFinished, timeout=WAIT_MS) as done:
        dialog.import_file(mine, in_place=True)
    imported = done.args[0].model
    assert imported is not None and imported.path == mine.resolve()
    assert dialog.status_of(imported.id) == "Installed"
    assert not list(app.switcher.manager.root.rglob("*.gguf"))  # no second copy in the models folder
    with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
        dialog.button(imported.id, "Use").click()
    qtbot.waitUntil(lambda: app.ready, timeout=WAIT_MS)
    assert app.session.model.loaded.model.path == mine.resolve()
