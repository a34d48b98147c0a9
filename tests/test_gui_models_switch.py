"""The quantization switch in Settings, with the real llama.cpp engine and a local fake Hub: an installed
level switches at once and the next answer is produced and stored with it; a level that is not installed
is downloaded inline and then used; a download cancelled half-way resumes without fetching again the
bytes already on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.shell.settings_dialog import SettingsDialog
from tests.fakehub import FakeHub
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.gui_app import FILES, GuiApp, Recorder, make_catalog, start_app

WAIT_MS = 20_000


@pytest.fixture
def app(hub_home: Path, tmp_path: Path, hub: FakeHub, qtbot) -> GuiApp:
    a = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    yield a
    a.shutdown()


def use_level(app: GuiApp, qtbot, level: str) -> None:
    """Pick `level` the way the welcome view does and wait until the engine has it loaded."""
    with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
        app.switcher.choose("tiny", level)
    qtbot.waitUntil(lambda: app.ready, timeout=WAIT_MS)


def ask(app: GuiApp, qtbot, text: str):
    """Send `text` in the open chat (a new one when none is) and return (its id, the stored answer)."""
    with qtbot.waitSignal(app.session.messageFinished, timeout=WAIT_MS) as done:
        assert app.session.send(text)
    return app.session.open_id, done.args[0].message


def test_picking_an_installed_level_reloads_and_the_next_answer_is_recorded_with_it(app, qtbot):
    use_level(app, qtbot, "Q8_0")  # both levels installed, Q4_K_M in use
    use_level(app, qtbot, "Q4_K_M")
    conv, first = ask(app, qtbot, "hello")
    assert (first.content, first.quant) == (SCRIPT_TEXT, "Q4_K_M")

    dialog = SettingsDialog(app.switcher)
    qtbot.addWidget(dialog)
    levels = dialog.quant_list
    assert levels.status_of("Q4_K_M") == "● In use" and levels.status_of("Q8_0") == "Installed"
    with qtbot.waitSignal(app.session.modelChanged, timeout=WAIT_MS, check_params_cb=lambda s: s.ready):
        levels.pick("Q8_0")
    assert app.loaded_quant() == "Q8_0"
    assert app.session.open_id == conv  # the open chat stays
    assert levels.status_of("Q8_0") == "● In use" and levels.status_of("Q4_K_M") == "Installed"

    same_conv, second = ask(app, qtbot, "and again")
    assert same_conv == conv
    assert (second.content, second.quant) == (SCRIPT_TEXT, "Q8_0")
    branch = app.store.active_branch(conv)
    assert [(m.role, m.quant) for m in branch] == [("user", None), ("assistant", "Q4_K_M"),
                                                   ("user", None), ("assistant", "Q8_0")]
    assert app.settings_on_disk().quant == "Q8_0"


def test_a_level_that_is_not_installed_is_offered_downloaded_inline_and_then_used(app, qtbot, hub):
    use_level(app, qtbot, "Q4_K_M")
    dialog = SettingsDialog(app.switcher)
    qtbot.addWidget(dialog)
    levels = dialog.quant_list
    assert levels.status_of("Q8_0") == "Not downloaded"

    levels.pick("Q8_0")
    assert "not downloaded yet" in levels.offer.text() and levels.offer_button.text().startswith("Download")
    assert app.loaded_quant() == "Q4_K_M"  # nothing changes until the user agrees

    with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
        levels.offer_button.click()
        assert not levels.panel.isHidden()
    qtbot.waitUntil(lambda: app.ready and app.loaded_quant() == "Q8_0",
                    timeout=WAIT_MS)
    assert levels.panel.isHidden()
    assert levels.status_of("Q8_0") == "● In use"
    assert hub.served(FILES["Q8_0"]) == (Path(app.switcher.manager.find("tiny", "Q8_0").path)).stat().st_size
    _, answer = ask(app, qtbot, "hi")
    assert answer.quant == "Q8_0"


def test_a_cancelled_download_resumes_without_fetching_the_same_bytes_again(app, qtbot, hub):
    use_level(app, qtbot, "Q4_K_M")
    dialog = SettingsDialog(app.switcher)
    qtbot.addWidget(dialog)
    levels = dialog.quant_list
    hub.faults.trickle_bps = 400_000  # ~4 s for the 1.6 MB file: time to press Cancel mid-way

    levels.pick("Q8_0")
    rec = Recorder(lambda p: p.progress.done)
    app.switcher.progress.connect(rec.record)
    seen = rec.seen
    with qtbot.waitSignal(app.switcher.cancelled, timeout=WAIT_MS):
        levels.offer_button.click()
        qtbot.waitUntil(lambda: bool(seen) and seen[-1] > 200_000, timeout=WAIT_MS)
        levels.panel.cancel_button.click()
    assert "paused" in levels.offer.text().lower()
    assert levels.status_of("Q8_0").startswith("Paused")
    assert app.loaded_quant() == "Q4_K_M"  # still chatting with the old level
    kept = sum(u.bytes for u in app.switcher.manager.disk_usage() if u.state == "partial")
    size = model_size(FILES["Q8_0"])
    assert 200_000 < kept < size

    hub.faults.trickle_bps = None
    hub.reset_counters()
    assert levels.offer_button.text().startswith("Resume download")
    with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
        levels.offer_button.click()
    # One ranged request from the first byte not on disk, answered with exactly the rest of the file.
    assert [(r.range, r.sent) for r in hub.cdn_requests()] == [(f"bytes={kept}-", size - kept)]
    qtbot.waitUntil(lambda: app.ready and app.loaded_quant() == "Q8_0",
                    timeout=WAIT_MS)


def model_size(name: str) -> int:
    from tests.gui_app import model_files

    return model_files()[name].stat().st_size


def test_the_download_progress_in_settings_sits_below_the_level_table_not_over_it(app, qtbot, hub):
    use_level(app, qtbot, "Q4_K_M")
    dialog = SettingsDialog(app.switcher)
    qtbot.addWidget(dialog)
    dialog.resize(960, 380)  # a short screen: the rows must not be squeezed into each other
    dialog.show()
    qtbot.waitExposed(dialog)
    levels = dialog.quant_list
    hub.faults.trickle_bps = 100_000
    levels.pick("Q8_0")
    levels.offer_button.click()
    qtbot.waitUntil(lambda: "left" in levels.panel.detail.text(), timeout=WAIT_MS)
    table, panel = levels.tree.geometry(), levels.panel.geometry()
    assert panel.top() > table.bottom(), (table, panel)
    levels.panel.cancel_button.click()
    qtbot.waitUntil(lambda: levels.panel.isHidden(), timeout=WAIT_MS)


def test_while_an_mlx_level_is_made_its_status_says_converting_with_the_originals_real_size(
        hub_home: Path, tmp_path: Path, hub: FakeHub, qtbot):
    from dataclasses import replace

    from app.core.settings import Settings
    from engine.catalog import Catalog
    from engine.progress import human
    from tests.fakehub import mlx_entry, write_catalog
    from tests.fixtures.hf_model import build_hf_cached

    snapshot = {p.name: p for p in sorted(build_hf_cached("tiny", scripted=True).iterdir()) if p.is_file()}
    hub.add_repo("test/Tiny-HF", snapshot)
    entries = [mlx_entry("test/Tiny-HF", "main", list(snapshot), bits=4)]
    catalog = Catalog.load(write_catalog(tmp_path / "mlx.json", entries))
    app = start_app(hub_home, catalog, replace(Settings(), engine="mlx", model_id="tiny", quant="4bit"))
    try:
        dialog = SettingsDialog(app.switcher)
        qtbot.addWidget(dialog)
        levels = dialog.quant_list
        seen = Recorder(lambda p: (p.progress.phase, levels.status_of("4bit"), levels.panel.detail.text()))
        app.switcher.progress.connect(seen.record)
        levels.pick("4bit")
        with qtbot.waitSignal(app.switcher.switched, timeout=WAIT_MS):
            levels.offer_button.click()
        converting = [(status, detail) for phase, status, detail in seen.seen if phase == "converting"]
        downloading = [status for phase, status, _ in seen.seen if phase == "downloading"]
        original = sum(p.stat().st_size for p in snapshot.values())
        assert downloading and set(downloading) == {"Downloading…"}
        assert converting and {status for status, _ in converting} == {"Converting…"}
        assert all(detail.startswith(f"Converting the original ({human(original)}) · ") for _, detail in converting)
    finally:
        app.shutdown()
