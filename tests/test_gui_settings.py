"""The settings dialog on the running app (real engine, real settings file): every change applies at
once, without a restart, and is still there after one."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.core import paths
from app.core.settings import Settings, load_settings
from app.shell.settings_dialog import SettingsDialog
from app.shell.speed_page import disk_size
from app.shell.window_actions import install
from app.ui import theme
from engine import select
from engine.select import is_apple_silicon
from tests.fakehub import FakeHub
from tests.gui_app import GuiApp, make_catalog, start_app
from tests.gui_support import close_window, open_window
from tests.lookup_log import drafts_taken

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
    return follow_up(app, qtbot, text)


def follow_up(app: GuiApp, qtbot, text: str):
    """Send `text` in the open chat; returns the stored answer and what generating it cost."""
    with qtbot.waitSignal(app.session.controller.generationFinished, timeout=WAIT_MS) as done:
        assert app.session.send(text)
    return done.args[1], done.args[2]


def saved_state_files() -> list[Path]:
    return sorted(paths.states_dir().glob("*"))


def measured(dialog: SettingsDialog, qtbot, action) -> str:
    """What the Speed page shows as the saved states' size once the engine thread has answered `action`."""
    with qtbot.waitSignal(dialog.switcher.model.engine.savedStates, timeout=WAIT_MS):
        action()
    return dialog.speed_page.size_label.text()


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
    dialog.chat_page.prompt_edit.setPlainText("You are a pirate. Answer like one, always.")
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


def test_the_speed_page_shows_the_saved_states_size_and_removing_them_shows_0_bytes_and_deletes_them(
        app, dialog, qtbot):
    ask(app, qtbot, "Tell me about gardens.")
    ask(app, qtbot, "Tell me about the stars.")  # two conversations, a state each
    dialog.show()
    shown = measured(dialog, qtbot, lambda: dialog.show_page("Speed"))
    files = saved_state_files()
    assert len(files) >= 2 and shown == disk_size(sum(f.stat().st_size for f in files)) != "0 bytes"

    shown = measured(dialog, qtbot, dialog.speed_page.remove_button.click)
    assert shown == "0 bytes" and saved_state_files() == []
    assert dialog.speed_page.remove_button.isEnabled()
    _, stats = follow_up(app, qtbot, "And the moon?")
    assert stats.reused_tokens > 0  # the live cache is untouched: the open chat goes on as before


def test_a_cap_of_nothing_empties_the_folder_at_once_and_keeps_the_next_states_off_disk(app, dialog, qtbot):
    ask(app, qtbot, "Tell me about gardens.")
    dialog.show()
    assert measured(dialog, qtbot, lambda: dialog.show_page("Speed")) != "0 bytes"
    assert measured(dialog, qtbot, lambda: dialog.speed_page.cap_box.setValue(0)) == "0 bytes"
    assert app.settings_on_disk().saved_states_cap_mb == 0 and saved_state_files() == []
    ask(app, qtbot, "Tell me about the stars.")
    assert measured(dialog, qtbot, dialog.speed_page.refresh) == "0 bytes" and saved_state_files() == []

    measured(dialog, qtbot, lambda: dialog.speed_page.cap_box.setValue(256))
    ask(app, qtbot, "Tell me about the sea.")
    assert measured(dialog, qtbot, dialog.speed_page.refresh) != "0 bytes" and saved_state_files() != []


def test_the_prompt_lookup_switch_is_honoured_by_the_next_answer(app, dialog, qtbot, caplog):
    first, _ = ask(app, qtbot)  # the scripted answer is now part of the conversation: lookup can quote it
    with caplog.at_level(logging.DEBUG, logger="engine"):
        dialog.speed_page.lookup_box.setChecked(True)
        again, _ = follow_up(app, qtbot, "Say that again, please.")
        ((taken, _),) = drafts_taken(caplog)
        assert taken > 10 and again.content == first.content

        caplog.clear()
        dialog.speed_page.lookup_box.setChecked(False)
        assert app.settings_on_disk().prompt_lookup is False
        plain, _ = follow_up(app, qtbot, "Once more, please.")
        assert drafts_taken(caplog) == [] and plain.content == first.content
