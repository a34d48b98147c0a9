"""The local API server and the remote engine in the network log (Help ▸ Network…) and under airplane mode:
each request the server receives is logged as the server's, its listening too, and airplane mode refuses
listening beyond this computer and any remote engine with a sentence saying how to lift it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from app.server.api import ServedModel, ServerHooks, create_app
from app.server.listener import ListenError, ListenerThread, bind
from engine import network_log
from engine.network_log import LOG
from engine.remote_backend import RemoteEngine, remote_model
from engine.remote_http import request_json
from engine.types import EngineError, LoadOptions, RemoteServer
from tests.fixtures.gguf_model import build_cached
from tests.served import ROOT, free_port


@pytest.fixture(autouse=True)
def _clean_log() -> Iterator[None]:
    network_log.install()
    LOG.clear()
    network_log.set_airplane(False)
    yield
    network_log.set_airplane(False)


@pytest.fixture
def server() -> Iterator[ListenerThread]:
    hooks = ServerHooks(submit=lambda job: job(None), model=lambda: ServedModel("tiny", 2048))
    listener = ListenerThread(create_app(hooks), "127.0.0.1", 0)
    yield listener
    listener.stop()


def test_each_api_request_is_logged_as_the_local_servers_with_its_path(server):
    with urllib.request.urlopen(server.url + "/models", timeout=30) as r:
        assert json.load(r)["data"][0]["id"] == "tiny"
    attempts = LOG.attempts()
    listening = [a for a in attempts if a.kind == "listen"]
    assert [(a.purpose.feature, a.host) for a in listening] == [("Local API server", "127.0.0.1")]
    requests = [a for a in attempts if a.kind == "request"]
    assert [(a.purpose.feature, a.purpose.subject, a.host) for a in requests] == [
        ("Local API server", "GET /v1/models", "127.0.0.1")]


def test_the_remote_engines_connections_are_logged_as_its_own(server):
    request_json(RemoteServer(server.url), "GET", "/models")
    connects = [a for a in LOG.attempts() if a.kind == "connect"]
    assert connects and {a.purpose.feature for a in connects} == {"Remote engine"}


def test_airplane_mode_refuses_a_remote_engine_with_a_sentence_saying_how_to_lift_it(server):
    network_log.set_airplane(True)
    with pytest.raises(EngineError) as e:
        RemoteEngine().load(remote_model(server.url), LoadOptions())
    assert e.value.message == "Airplane mode is on — switch it off in Settings to use a remote engine."
    assert [a.refused for a in LOG.attempts() if a.kind == "connect"] == [True]


def test_airplane_mode_lets_the_server_listen_on_this_computer_only():
    network_log.set_airplane(True)
    with pytest.raises(ListenError) as e:
        bind("0.0.0.0", 0)
    assert "Airplane mode is on" in e.value.message and "127.0.0.1" in e.value.message
    bind("127.0.0.1", 0).close()


def test_tinychat_serve_keeps_the_airplane_mode_setting(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text('{"airplane_mode": true}')
    done = subprocess.run([sys.executable, "-m", "app", "serve", "--model", str(build_cached("tiny", scripted=True)),
                           "--host", "0.0.0.0", "--port", str(free_port()), "--api-key", "k"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={"TINYCHAT_HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "Airplane mode is on" in done.stderr
