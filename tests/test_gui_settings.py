"""The settings dialog on the running app (real engine, real settings file): every change applies at
once, without a restart, and is still there after one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core import paths
from app.core.settings import Settings, load_settings
from app.shell.settings_dialog import SettingsDialog
from app.shell.window_actions import install
from app.ui import theme
from engine import select
from engine.select import is_apple_silicon
from tests.fakehub import FakeHub
from tests.gui_app import GuiApp, make_catalog, start_app
from tests.gui_support import close_window, open_window

WAIT_MS = 20_000


@pytest.fixture
def app(hub_home: Path, tmp_path: Path, hub: FakeHub, qtbot) -> GuiApp:
    a = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    with qtbot.waitSignal(a.switcher.switched, timeout=WAIT_MS):
        a.switcher.choose("tiny", "Q4_K_M")
    qtbot.waitUntil(lambda: a.ready, timeout=WAIT_MS)
    yield a
    a.shutdown()
    theme.apply(QApplication.instance(), Settings().theme, Settings().font_size)  # as other tests expect


@pytest.fixture
def dialog(app, qtbot) -> SettingsDialog:
    d = SettingsDialog(app.switcher)
    qtbot.addWidget(d)
    return d


def ask(app: GuiApp, qtbot, text: str = "hi"):
    """Send `text` in a new chat; returns the stored answer and what generating it cost."""
    app.session.new_chat()
    with qtbot.waitSignal(app.session.controller.generationFinished, timeout=WAIT_MS) as done:
        assert app.session.send(text)
    return done.args[1], done.args[2]


def test_a_sampling_preset_applies_to_the_next_answer_and_is_saved(app, dialog):
    dialog.show_page("Sampling")
    dialog.sampling_page.preset_box.setCurrentText("Precise")
    assert app.session.settings.current.sampling.temperature == 0.2 == dialog.sampling_page.temperature.value()
    on_disk = app.settings_on_disk()
    assert (on_disk.sampling_preset, on_disk.sampling.temperature, on_disk.sampling.top_k) == ("Precise", 0.2, 20)


def test_changing_a_value_by_hand_makes_the_preset_custom(app, dialog):
    dialog.sampling_page.temperature.setValue(1.37)
    assert dialog.sampling_page.preset_box.currentText() == "Custom"
    assert app.settings_on_disk().sampling_preset == "Custom"
    assert app.settings_on_disk().sampling.temperature == 1.37
    dialog.sampling_page.seed_fixed.setChecked(True)
    dialog.sampling_page.seed.setValue(1234)
    assert app.settings_on_disk().sampling.seed == 1234


def test_the_system_prompt_is_saved_and_sent_with_the_next_answer(app, dialog, qtbot):
    _, before = ask(app, qtbot)
    dialog.show()
    dialog.prompt_edit.setPlainText("You are a pirate. Answer like one, always.")
    dialog.close()  # closing saves text still being typed
    assert app.settings_on_disk().system_prompt == "You are a pirate. Answer like one, always."
    _, after = ask(app, qtbot)
    assert after.prompt_tokens > before.prompt_tokens + 5  # the system prompt is now part of the prompt


def test_the_chat_format_list_marks_the_trained_one_and_switching_reloads_with_it(app, dialog, qtbot):
    labels = [dialog.format_box.itemText(i) for i in range(dialog.format_box.count())]
    assert any("ChatML" in t and "trained format" in t for t in labels)
    assert any(t.startswith("Llama 2") for t in labels)
    with qtbot.waitSignal(app.session.modelChanged, timeout=WAIT_MS, check_params_cb=lambda s: s.ready):
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("llama-2"))
    assert app.session.model.status.chat_format == "llama-2"
    stored, _ = ask(app, qtbot)
    assert stored.chat_format == "llama-2"
    assert app.settings_on_disk().chat_format == "llama-2"


def test_threads_change_reloads_the_model_with_that_many_threads(app, dialog, qtbot):
    with qtbot.waitSignal(app.session.modelChanged, timeout=WAIT_MS, check_params_cb=lambda s: s.ready):
        dialog.threads_box.setValue(1)
    assert app.session.model.loaded.report.n_threads == 1
    assert app.settings_on_disk().n_threads == 1


def test_theme_and_font_size_apply_to_the_window_at_once_and_persist(qtbot, hub_home):
    window = open_window(qtbot, hub_home, None)
    try:
        dialog = install(window).open_settings("Appearance")
        dialog.theme_box.setCurrentIndex(dialog.theme_box.findData("dark"))
        dialog.font_box.setValue(14)
        assert theme.current().name == "dark"
        assert QApplication.instance().font().pointSize() == 14
        saved = load_settings(paths.settings_path())[0]
        assert (saved.theme, saved.font_size) == ("dark", 14)
        window.smaller_text_action.trigger()  # View ▸ Smaller text
        assert QApplication.instance().font().pointSize() == 13 == dialog.font_box.value()
    finally:
        close_window(window)
        theme.apply(QApplication.instance(), Settings().theme, Settings().font_size)  # as other tests expect


def test_the_engine_setting_says_what_automatic_picked_and_why(app, dialog):
    dialog.engine_box.setCurrentIndex(dialog.engine_box.findData("auto"))
    assert "Automatic" in dialog.engine_note.text() and "llama.cpp" in dialog.engine_note.text()
    assert app.settings_on_disk().engine == "auto"


def test_the_level_list_shows_size_memory_note_and_state_of_each_level(app, dialog):
    rows = {}
    tree = dialog.quant_list.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        rows[item.text(0)] = [item.text(c) for c in range(1, 5)]
    q4_size = app.switcher.manager.find("tiny", "Q4_K_M").size_bytes
    assert rows["Q4_K_M ★"] == [f"{q4_size / 1e3:.0f} KB", "90 MB", "Recommended test level.",
                                            "● In use"]
    assert rows["Q8_0"] == ["1 MB", "120 MB", "Larger and closer to the original.", "Not downloaded"]


def test_the_engine_list_says_before_choosing_that_mlx_runs_slowly_on_the_cpu_here(dialog):
    row = dialog.engine_box.findData("mlx")
    label, tip = dialog.engine_box.itemText(row), dialog.engine_box.itemData(row, Qt.ItemDataRole.ToolTipRole)
    if is_apple_silicon():
        assert label == "MLX (Apple Silicon)" and not tip
    else:
        assert label == "MLX (here on the CPU only: slow)" and "slower than llama.cpp" in tip
        dialog.engine_box.setCurrentIndex(row)
        assert "on the CPU only" in dialog.engine_note.text()


def test_where_mlx_cannot_load_the_engine_list_does_not_offer_it(app, qtbot, monkeypatch):
    # A build without MLX's native library: the package may be found, but its core does not import.
    monkeypatch.setitem(sys.modules, "mlx.core", None)
    select.mlx_available.cache_clear()
    try:
        d = SettingsDialog(app.switcher)
        qtbot.addWidget(d)
        offered = [d.engine_box.itemData(i) for i in range(d.engine_box.count())]
        assert offered == ["auto", "llama.cpp"]
    finally:
        monkeypatch.undo()
        select.mlx_available.cache_clear()


def test_choosing_mlx_without_an_mlx_model_says_which_level_to_download_and_keeps_llama_cpp(app, dialog):
    def listed() -> set[str]:
        tree = dialog.quant_list.tree
        return {tree.topLevelItem(i).text(0).rstrip(" ★") for i in range(tree.topLevelItemCount())}

    assert listed() == {e.level for e in app.catalog.levels("tiny", "llama.cpp")} != set()
    dialog.engine_box.setCurrentIndex(dialog.engine_box.findData("mlx"))
    note = dialog.engine_note.text()
    assert "No model for mlx is installed yet" in note and "keeps using llama.cpp" in note
    assert app.session.model.status.engine == "llama.cpp"  # the chat goes on
    # The list now offers the MLX levels (this test catalog has none), no longer the GGUF ones.
    assert listed() == {e.level for e in app.catalog.levels("tiny", "mlx")}
    assert app.settings_on_disk().engine == "mlx"
