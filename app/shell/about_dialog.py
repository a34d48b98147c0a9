"""About / diagnostics: versions, the engine and which llama.cpp build runs (and why), the model
in use, where TinyChat keeps its files and its log. "Copy diagnostics" puts it all on the clipboard for a
bug report; TinyChat itself sends nothing anywhere (no telemetry)."""

from __future__ import annotations

import html
import importlib.util
import logging
import platform
import sys

from PySide6.QtCore import Qt, Slot, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from app.chat.session import Session
from app.core import network_report, paths
from app.core.logging_setup import LOG_FILENAME
from app.core.version import app_version, library_versions
from app.ui.windows import set_up_window
from engine import cpu_build
from engine.hardware import cpu_flags, physical_cores
from engine.select import choose_engine

log = logging.getLogger(__name__)

PRIVACY = ("TinyChat has no telemetry and no accounts. It connects to the internet only when you download "
           "a model, and only to the model hub. Help ▸ Network… lists every connection it attempted.")


def _llama_build() -> str:
    """llama.cpp's own report of the CPU features it was compiled for and found at run time."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "not installed"
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
        text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
        return " ".join(text.split()).strip(" |")
    except Exception as e:  # diagnostics must open even when the library is broken; that is the point
        log.warning("llama.cpp system info failed: %r", e)
        return f"unavailable ({e})"


def diagnostics(session: Session) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sections of (label, value) rows describing this installation."""
    settings = session.settings.current
    choice = choose_engine(settings.engine)
    loaded = session.model.loaded
    if loaded is not None:
        m = loaded.model
        model_rows = [("Model", m.label or m.path.name), ("Level", m.quant or "—"),
                      ("Chat format", loaded.report.chat_format), ("Context", f"{loaded.report.n_ctx} tokens"),
                      ("CPU threads", str(loaded.report.n_threads)), ("File", str(m.path))]
    else:
        model_rows = [("Model", session.model.status.text or "none loaded")]
    libs = library_versions()
    return [
        ("Versions", [
            ("TinyChat", app_version()), ("Python", platform.python_version()),
            ("Qt / PySide6", f"{qVersion()} / {libs['PySide6']}"),
            ("llama-cpp-python", libs["llama-cpp-python"]),
            ("MLX / mlx-lm", f"{libs['MLX']} / {libs['mlx-lm']}"),
        ]),
        ("Engine", [
            ("In use", loaded.engine_name if loaded else choice.name),
            ("Setting", settings.engine), ("Why", choice.reason),
            ("llama.cpp build", cpu_build.describe(cpu_build.apply())),
            ("llama.cpp CPU features", _llama_build()),
        ]),
        ("Model", model_rows),
        ("Computer", [
            ("System", f"{platform.system()} {platform.release()} ({platform.machine()})"),
            ("CPU", platform.processor() or platform.machine()),
            ("Physical cores", str(physical_cores())),
            ("CPU features", " ".join(cpu_flags()) or "unknown"),
        ]),
        ("Folders", [
            ("Conversations", str(paths.db_path())), ("Models", str(paths.models_dir())),
            ("Settings", str(paths.settings_path())), ("Log file", str(paths.log_dir() / LOG_FILENAME)),
        ]),
        ("Network", network_report.diagnostics_rows()),
    ]


def diagnostics_text(session: Session) -> str:
    """Plain text for the clipboard: what a bug report needs, nothing the user wrote."""
    lines = [f"TinyChat diagnostics ({sys.platform})"]
    for title, rows in diagnostics(session):
        lines += ["", f"[{title}]"] + [f"{label}: {value}" for label, value in rows]
    return "\n".join(lines) + "\n"


class AboutDialog(QDialog):
    """Help ▸ About TinyChat."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "About TinyChat", "AboutDialog", (640, 560))
        self.session = session
        heading = QLabel("<h2>TinyChat</h2>Chat with TinyLlama, privately, on this computer.", self)
        self.privacy = QLabel(PRIVACY, self)
        self.privacy.setWordWrap(True)
        self.browser = QTextBrowser(self)
        self.browser.setAccessibleName("Diagnostics")
        self.browser.setOpenLinks(False)
        self.browser.setHtml(self._html())
        self.copy_button = QPushButton("Copy diagnostics", self)
        self.copy_button.setToolTip("Copies versions, engine, model, folders and network attempts (never "
                                    "your conversations) for a bug report.")
        self.copy_button.clicked.connect(self.copy)
        self.copied = QLabel(self)
        self.copied.setObjectName("Muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(heading)
        lay.addWidget(self.privacy)
        lay.addWidget(self.browser, 1)
        lay.addWidget(self.copied, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(buttons)

    def _html(self) -> str:
        parts = []
        for title, rows in diagnostics(self.session):
            cells = "".join(f"<tr><td style='padding-right:12px'><b>{html.escape(k)}</b></td>"
                            f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
            parts.append(f"<h4>{html.escape(title)}</h4><table>{cells}</table>")
        return "".join(parts)

    @Slot()
    def copy(self) -> None:
        QGuiApplication.clipboard().setText(diagnostics_text(self.session))
        self.copied.setText("Copied to the clipboard.")
