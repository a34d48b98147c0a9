"""Offline by construction: the app's entry points and the model manager, when the
model is already installed, never create a network socket. Each runs in a child process whose
`sitecustomize` makes creating an AF_INET/AF_INET6 socket fail *and* records the attempt, so even
code that swallows the error is caught."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.models import ModelManager
from tests.fakehub import FakeHub, gguf_entry, write_catalog
from tests.fixtures.gguf_model import build_cached

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = json.dumps({"messages": [{"role": "user", "content": "hi"}]})

SITECUSTOMIZE = '''
import os, socket, sys, traceback

_real_init = socket.socket.__init__


def _guarded_init(self, family=-1, type=-1, proto=-1, fileno=None):
    fam = socket.AF_INET if family == -1 else family
    if fileno is None and fam in (socket.AF_INET, socket.AF_INET6):
        with open(os.environ["SOCKET_GUARD_LOG"], "a") as log:
            log.write(" ".join(sys.argv) + "\\n" + "".join(traceback.format_stack()) + "\\n")
        raise PermissionError("socket guard: this process may not open network sockets")
    _real_init(self, family, type, proto, fileno)


socket.socket.__init__ = _guarded_init
'''


@pytest.fixture
def guard(tmp_path: Path):
    """Run a command under the socket guard; returns (completed process, recorded attempts)."""
    site = tmp_path / "guard"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "socket-attempts.log"

    def run(args: list[str], stdin: str = "", prefix: list[str] | None = None) -> tuple[subprocess.CompletedProcess,
                                                                                         str]:
        log.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(PYTHONPATH=f"{site}{os.pathsep}{ROOT}", SOCKET_GUARD_LOG=str(log),
                   TINYCHAT_HOME=str(tmp_path / "home"), HF_ENDPOINT="http://127.0.0.1:9", QT_QPA_PLATFORM="offscreen")
        done = subprocess.run([*(prefix or []), sys.executable, *args], input=stdin, capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)
        return done, log.read_text()

    return run


def test_the_guard_really_catches_a_socket(guard):
    done, attempts = guard(["-c", "import socket\ntry:\n socket.create_connection(('127.0.0.1', 9))\nexcept OSError:\n"
                                  " pass"])
    assert done.returncode == 0
    assert "create_connection" in attempts  # swallowed by the code, still recorded


def test_engine_render_opens_no_socket(guard):
    done, attempts = guard(["-m", "engine", "render", "--format", "chatml"], stdin=MESSAGES)
    assert done.returncode == 0, done.stderr
    assert "<|im_start|>user\nhi<|im_end|>" in done.stdout
    assert attempts == ""


def test_engine_chat_opens_no_socket(guard):
    model = build_cached("tiny", "F32", scripted=True)
    done, attempts = guard(["-m", "engine", "chat", "--model", str(model), "--engine", "llama.cpp", "--max-tokens",
                            "8", "--temperature", "0", "--threads", "1"], stdin=MESSAGES)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert attempts == ""


def test_engine_validate_opens_no_socket(guard):
    done, attempts = guard(["-m", "engine", "validate", str(build_cached("small", "Q4_K_M"))])
    assert done.returncode == 0, done.stderr
    assert attempts == ""


def test_app_version_opens_no_socket(guard):
    done, attempts = guard(["-m", "app", "--version"])
    assert done.returncode == 0, done.stderr
    assert "TinyChat" in done.stdout
    assert attempts == ""


@pytest.fixture
def installed(tmp_path: Path) -> tuple[Path, Path]:
    """A models folder with one level installed (downloaded from the fake hub in this process)."""
    model = build_cached("small", "Q4_K_M", scripted=True)
    with FakeHub() as hub:
        commit = hub.add_repo("test/Tiny-GGUF", {"tiny.q4_k_m.gguf": model})
        catalog = write_catalog(tmp_path / "catalog.json", [gguf_entry("test/Tiny-GGUF", commit, "tiny.q4_k_m.gguf")])
        mm = ModelManager(tmp_path / "models", Catalog.load(catalog), endpoint=hub.endpoint)
        mm.ensure_available("tiny", "Q4_K_M")
    return catalog, tmp_path / "models"


MANAGER_SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path
    from engine.catalog import Catalog
    from engine.models import ModelManager

    mm = ModelManager(Path(sys.argv[2]), Catalog.load(Path(sys.argv[1])))
    assert [m.id for m in mm.installed()] == ["tiny-q4_k_m"]
    print(mm.ensure_available("tiny", "Q4_K_M"))
    print(len(mm.disk_usage()))
''')


def test_model_manager_with_an_installed_level_opens_no_socket(guard, installed):
    catalog, root = installed
    done, attempts = guard(["-c", MANAGER_SCRIPT, str(catalog), str(root)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("tiny.q4_k_m.gguf")
    assert attempts == ""


@pytest.mark.skipif(shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"]).returncode != 0,
                    reason="needs Linux network namespaces")
def test_model_manager_works_with_no_network_at_all(guard, installed):
    catalog, root = installed
    done, attempts = guard(["-c", MANAGER_SCRIPT, str(catalog), str(root)], prefix=["unshare", "-rn"])
    assert done.returncode == 0, done.stderr
    assert attempts == ""


def test_the_whole_app_chatting_through_its_window_opens_no_socket(guard):
    # --self-test opens the real main window (menus, model manager hooks, first-run checks included),
    # loads the model and generates through the engine worker thread.
    model = build_cached("tiny", "F32", scripted=True)
    done, attempts = guard(["-m", "app", "--self-test", "--model", str(model)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert attempts == ""


@pytest.mark.skipif(shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"]).returncode != 0,
                    reason="needs unprivileged network namespaces (unshare -rn)")
def test_the_whole_app_chats_with_no_network_at_all(guard):
    model = build_cached("tiny", "F32", scripted=True)
    done, attempts = guard(["-m", "app", "--self-test", "--model", str(model)], prefix=["unshare", "-rn"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert attempts == ""
