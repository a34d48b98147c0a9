"""First run in the real main window: with no model installed the welcome page explains TinyChat and
offers the download (fake Hub) or a model file the user has; offline, it says so with Retry and the
import path; once the model is ready the user is in a new chat, composer focused, and can chat."""

from __future__ import annotations

import html
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton, QWidget

from app.core.settings import Settings
from app.core.store import Store
from app.shell.main_window import MainWindow
from app.shell.window_actions import WindowActions, install
from engine.catalog import Catalog
from engine.download import human
from engine.models import ModelManager
from tests.fakehub import FakeHub
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.gui_app import FILES, TRANSFER, make_catalog, model_files

WAIT_MS = 20_000


def open_window(qtbot, home: Path, catalog: Catalog) -> MainWindow:
    store, _ = Store.open(home / "data" / "tinychat.db")
    settings = replace(Settings(), engine="llama.cpp", model_id="tiny", quant="Q4_K_M")
    w = MainWindow(store, settings)
    w.actions_ = install(w, lambda: ModelManager(home / "data" / "models", catalog, settings=TRANSFER,
                                                 stall_timeout=5))
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def catalog(hub: FakeHub, tmp_path: Path) -> Catalog:
    return make_catalog(tmp_path / "catalog.json", hub.commit)


@pytest.fixture
def window(qtbot, hub_home: Path, catalog: Catalog):
    w = open_window(qtbot, hub_home, catalog)
    yield w
    w.close()
    w.store.close()


def extras(w: MainWindow) -> WindowActions:
    return w.actions_


def visible_buttons(page: QWidget) -> list[str]:
    """The texts of the buttons a person sees on `page`, top to bottom."""
    shown = [b for b in page.findChildren(QPushButton) if b.isVisibleTo(page)]
    return [b.text() for b in sorted(shown, key=lambda b: b.mapTo(page, b.rect().topLeft()).y())]


def closed_port() -> str:
    """An address where nothing listens: connecting fails at once, like a computer that is offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_first_run_downloads_the_recommended_model_and_lands_in_a_new_chat(qtbot, window):
    x = extras(window)
    assert window.pages.currentWidget() is x.welcome
    assert x.welcome.download_button.text() == "Download Tiny Test Chat (Q4_K_M, 1 MB)"
    assert x.welcome.intro.text().count(". ") == 1 and "entirely on this computer" in x.welcome.intro.text()

    x.welcome.download_button.click()
    assert not x.welcome.panel.isHidden()  # progress shows inline
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.session.model.status.ready, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.focusWidget() is window.composer.input, timeout=WAIT_MS)
    assert window.windowTitle() == "TinyChat" and window.chat_view.message_ids() == []  # a new, empty chat
    qtbot.waitUntil(lambda: window.status.meter.format() == "0 / 2048 tokens", timeout=WAIT_MS)

    window.composer.set_text("hello")
    window.composer.submit()
    qtbot.waitUntil(lambda: not window.session.generating and window.windowTitle() == "hello — TinyChat",
                    timeout=WAIT_MS)
    answer = window.store.active_branch(window.session.open_id)[-1]
    assert (answer.role, answer.content, answer.quant) == ("assistant", SCRIPT_TEXT, "Q4_K_M")


def test_offline_first_run_explains_once_offers_one_retry_and_import_then_retry_works(qtbot, window, monkeypatch,
                                                                                       hub):
    x = extras(window)
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    with qtbot.waitSignal(x.switcher.failed, timeout=WAIT_MS):
        x.welcome.download_button.click()
    shown = x.welcome.error_text()
    assert "could not be downloaded" in shown and "check your internet connection" in shown
    assert shown.count("continue where it stopped") == 1  # the engine's sentence, not repeated by a hint
    assert "Use a model file I have" in shown  # the other way in
    assert visible_buttons(x.welcome) == ["Retry download", "Use a model file I have…"]
    assert window.pages.currentWidget() is x.welcome

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)  # back online
    x.welcome.download_button.click()
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 0 and window.session.model.status.ready,
                    timeout=WAIT_MS)
    assert window.session.model.status.quant == "Q4_K_M"


def test_first_run_with_my_own_file_refuses_a_bad_one_with_the_reason_and_uses_a_good_one(qtbot, window,
                                                                                          tmp_path):
    x = extras(window)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with qtbot.waitSignal(x.switcher.failed, timeout=WAIT_MS) as failed:
        x.welcome.import_path(bad)
    shown = x.welcome.error_text()
    assert html.escape(failed.args[0]) in shown  # the validator's reason, shown as it is
    assert "offline" not in shown and "Retry" not in shown  # nothing about a download that never ran
    assert visible_buttons(x.welcome) == ["Download Tiny Test Chat (Q4_K_M, 1 MB)", "Use a model file I have…"]
    assert window.pages.currentWidget() is x.welcome and x.welcome.import_button.isEnabled()

    good = tmp_path / "mine.gguf"
    good.write_bytes(model_files()[FILES["Q8_0"]].read_bytes())
    x.welcome.import_path(good)
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 0 and window.session.model.status.ready,
                    timeout=WAIT_MS)
    assert window.session.model.loaded.model.path.name == "mine.gguf"
    # Settings still offer the catalog's levels to switch to, and show the user's own file as in use.
    levels = x.open_settings("Model").quant_list
    rows = [levels.tree.topLevelItem(i).text(0) for i in range(levels.tree.topLevelItemCount())]
    assert rows[:2] == ["Q4_K_M ★", "Q8_0"]
    assert "Q8_0" in rows[2] and levels.tree.topLevelItem(2).text(3) == "Your own model file."
    assert levels.tree.topLevelItem(2).text(4) == "● In use"
    manager = x.open_models()
    assert [manager.table.text(k, "status") for k in ("tiny-q4_k_m", "tiny-q8_0")] == ["Not downloaded"] * 2


def test_after_a_restart_a_paused_download_is_offered_as_resume_and_continues_from_its_bytes(
        qtbot, hub_home, catalog, hub):
    size = model_files()[FILES["Q4_K_M"]].stat().st_size
    folder = hub_home / "data" / "models" / "llama.cpp" / "tiny-q4_k_m"
    folder.mkdir(parents=True)
    kept = size // 2
    (folder / (FILES["Q4_K_M"] + ".part")).write_bytes(model_files()[FILES["Q4_K_M"]].read_bytes()[:kept])
    w = open_window(qtbot, hub_home, catalog)  # what the user sees after restarting TinyChat
    try:
        x = extras(w)
        assert x.welcome.download_button.text() == f"Resume download ({human(kept)} of 1 MB already here)"
        hub.reset_counters()
        x.welcome.download_button.click()
        qtbot.waitUntil(lambda: w.pages.currentIndex() == 0 and w.session.model.status.ready, timeout=WAIT_MS)
        assert [r.range for r in hub.cdn_requests()] == [f"bytes={kept}-"]
    finally:
        w.close()
        w.store.close()


def test_the_first_run_offer_of_an_mlx_level_names_the_download_of_the_original_not_the_levels_size():
    from app.models.welcome_view import download_label
    from engine.catalog import Catalog

    four = Catalog.load().get("tinyllama-1.1b-chat-v0.4", "4bit")
    assert download_label(four) == "Download TinyLlama 1.1B Chat v0.4 (MLX 4-bit, about 4.4 GB download)"
