"""Help ▸ About: versions, engine build, CPU features and folders, copied for a bug report without any
conversation text."""

from __future__ import annotations

import llama_cpp
from PySide6.QtGui import QGuiApplication

from app.core import paths
from app.shell.about_dialog import AboutDialog
from engine.hardware import cpu_flags
from tests.gui_support import close_window, open_window, scripted_model


def test_about_shows_the_engine_build_and_folders_and_copies_diagnostics_without_conversations(
        qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    w = open_window(qtbot, tmp_path, scripted_model())
    try:
        conv = w.store.create_conversation(title="My secret plans")
        w.store.add_message(conv.id, None, "user", "the password is swordfish")
        about = AboutDialog(w.session, w)
        qtbot.addWidget(about)
        shown = about.browser.toPlainText()
        build = " ".join(llama_cpp.llama_print_system_info().decode().split()).strip(" |")
        which = "main build (AVX2, FMA, F16C): this processor has AVX2" if "avx2" in cpu_flags() else "llama.cpp build"
        for expected in (build, which, *cpu_flags(), llama_cpp.__version__, "tiny-scripted", str(paths.models_dir()),
                         str(paths.log_dir() / "tinychat.log")):
            assert expected in shown
        assert "no telemetry" in about.privacy.text()

        about.copy()
        copied = QGuiApplication.clipboard().text()
        assert copied.startswith("TinyChat diagnostics") and "[Engine]" in copied and build in copied
        assert "swordfish" not in copied and "secret plans" not in copied
    finally:
        close_window(w)


def test_a_library_without_package_metadata_reports_its_modules_own_version():
    # A frozen app bundles modules without their dist-info: the module's __version__ must still show.
    import json

    from app.core.version import NOT_INSTALLED, library_version

    assert library_version("no-such-distribution", "json") == json.__version__
    assert library_version("no-such-distribution", "no_such_module") == NOT_INSTALLED
    assert library_version("no-such-distribution", "no_such_package.core") == NOT_INSTALLED
    assert library_version("llama_cpp_python", "llama_cpp") == llama_cpp.__version__
