"""OpenAI-compatible servers for tests, each a real child process on 127.0.0.1: `tinychat serve`, and
llama-cpp-python's own server (`python -m llama_cpp.server`) as a third-party implementation.

`started(kind, model)` starts one server per (kind, model, options) for the whole test session and
stops them all at exit, so the contract suite can reuse them across its tests."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


@dataclass
class Served:
    """A running server: its `/v1` URL, its child process and the home folder it writes to."""

    url: str
    process: subprocess.Popen
    home: Path
    owns_home: bool = True  # a temporary home, removed on stop
    log: list[str] = field(default_factory=list)

    def wait_for_log(self, text: str, timeout: float = 30) -> str:
        """The first line of the server's output containing `text` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.log if text in line), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError(f"the server never said {text!r}:\n" + "".join(self.log[-20:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owns_home:
            shutil.rmtree(self.home, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TINYCHAT_MODEL", "TINYCHAT_API_KEY")}
    env.update(TINYCHAT_HOME=str(home), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def start_tinychat(model: Path, *args: str, home: Path | None = None) -> Served:
    """`tinychat serve --model MODEL --port 0 ARGS`; returns once it printed the address it listens on."""
    owns_home = home is None
    home = home or Path(tempfile.mkdtemp(prefix="tinychat-serve-"))
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--model", str(model), "--port", "0",
                             "--threads", "1", *args], cwd=ROOT, env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # blocks until the server has loaded the model and is listening
        seen.append(line)
        if " at http://" in line:
            url = line.split(" at ", 1)[1].split()[0]
            served = Served(url, proc, home, owns_home, seen)
            _drain(served)
            return served
    proc.wait()
    raise RuntimeError("tinychat serve did not start:\n" + "".join(seen))


def start_llama_cpp(model: Path) -> Served:
    """llama-cpp-python's server on the same model, with the ChatML format and TinyChat's context."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="llama-cpp-server-"))
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--chat_format", "chatml", "--n_threads", "1",
                             "--verbose", "False"], cwd=home, env=_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                json.load(r)
            return Served(url, proc, home)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start in time")


def _drain(served: Served) -> None:
    """Keep reading the server's output into `served.log`, so a full pipe never blocks it."""
    import threading

    def read() -> None:
        assert served.process.stdout is not None
        for line in served.process.stdout:
            served.log.append(line)

    threading.Thread(target=read, daemon=True).start()


_RUNNING: dict[tuple[str, str], Served] = {}


def started(kind: str, model: Path) -> Served:
    """The session's server of `kind` ("tinychat" or "llama.cpp") for `model`, started on first use."""
    key = (kind, str(model))
    served = _RUNNING.get(key)
    if served is None or served.process.poll() is not None:
        served = start_tinychat(model) if kind == "tinychat" else start_llama_cpp(model)
        _RUNNING[key] = served
    return served


@atexit.register
def _stop_all() -> None:
    for served in _RUNNING.values():
        served.stop()
