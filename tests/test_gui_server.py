"""The window with "Serve on this computer" on: API requests go to the window's own engine thread, wait
behind the answer the user is reading, leave it whole, and the window keeps working meanwhile. And
Settings → Server turns the API on and off, and connects the chat to another server and back."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from openai import OpenAI
from PySide6.QtCore import QTimer

from app.core.settings import RemoteSettings, ServeSettings, Settings
from app.shell.server_switch import ServerSwitch
from app.shell.window_actions import install
from tests.fixtures.gguf_model import build_cached
from tests.gui_support import SCRIPT, PacedEngine, close_window, open_window, scripted_model, send, wait_idle
from tests.served import free_port, started

SERVING = Settings(serve=ServeSettings(enabled=True, port=0))


def test_api_requests_wait_behind_the_answer_being_read_and_the_window_keeps_working(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path, scripted_model(), SERVING, engine_factory=PacedEngine)
    switch = ServerSwitch(window)
    try:
        assert switch.listener is not None and window.status.server_label.text() == "API on"
        client = OpenAI(base_url=switch.listener.url, api_key="unused", max_retries=0)
        model = client.models.list().data[0].id
        finished_at: dict[str, float] = {}
        window.session.controller.generationFinished.connect(
            lambda *_: finished_at.setdefault("user", time.monotonic()))
        send(qtbot, window, "Hello from the window", wait=False)
        answers: dict[int, str] = {}

        def ask(i: int) -> None:
            kw = dict(model=model, messages=[{"role": "user", "content": f"API question {i}"}], temperature=0)
            if i % 2:
                text = "".join(c.choices[0].delta.content or "" for c in
                               client.chat.completions.create(**kw, stream=True) if c.choices)
            else:
                text = client.chat.completions.create(**kw).choices[0].message.content
            answers[i] = text
            finished_at[f"api{i}"] = time.monotonic()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        ticks, notes = [0], set()
        timer = QTimer()
        timer.timeout.connect(lambda: (ticks.__setitem__(0, ticks[0] + 1),
                                       notes.add(window.status.server_label.text())))
        timer.start(5)
        qtbot.waitUntil(lambda: len(answers) == 8, timeout=60_000)
        timer.stop()
        for t in threads:
            t.join()
        wait_idle(qtbot, window)
        assert answers == {i: SCRIPT for i in range(8)}  # all answered, each whole
        assert all(finished_at[f"api{i}"] > finished_at["user"] for i in range(8))  # queued behind the user's
        assert any(n.startswith("API: answering") for n in notes)
        qtbot.waitUntil(lambda: window.status.server_label.text() == "API on")
        assert ticks[0] > 0  # the GUI thread kept handling events while the requests were served
        conv = window.store.list_conversations()
        assert len(conv) == 1  # API conversations are not stored
        assert [m.content for m in window.store.active_branch(conv[0].id)] == ["Hello from the window", SCRIPT]
    finally:
        close_window(window)
    assert switch.listener is None  # closing the window stopped the API first


def test_the_settings_page_turns_the_api_on_and_off(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path / "home"))
    window = open_window(qtbot, tmp_path, scripted_model())
    actions = install(window)
    try:
        assert actions.server.listener is None and window.status.server_label.text() == ""
        page = actions.open_settings("Server").server_page
        page.port_box.setValue(free_port())
        page.serve_box.setChecked(True)
        assert actions.server.listener is not None
        assert page.serve_state.text() == f"Serving at {actions.server.listener.url}"
        client = OpenAI(base_url=actions.server.listener.url, api_key="unused", max_retries=0)
        replies: list[str | None] = []
        # Asked from another thread, as any client would: a request reaches the engine thread through the
        # GUI thread's event loop, which must keep running meanwhile.
        threading.Thread(target=lambda: replies.append(client.chat.completions.create(
            model="tiny-scripted", messages=[{"role": "user", "content": "hi"}], temperature=0,
        ).choices[0].message.content), daemon=True).start()
        qtbot.waitUntil(lambda: bool(replies), timeout=60_000)
        assert replies == [SCRIPT]
        page.lan_box.setChecked(True)  # other computers, but no key yet: not listening at all
        assert actions.server.listener is None and "API key" in page.serve_state.text()
        page.lan_box.setChecked(False)
        page.serve_box.setChecked(False)
        assert actions.server.listener is None and page.serve_state.text() == "Off."
        assert window.settings.current.serve == ServeSettings(enabled=False, port=page.port_box.value())
    finally:
        close_window(window)


def test_the_chat_answers_from_another_server_when_chosen_and_from_this_computer_again_after(qtbot, tmp_path,
                                                                                               monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TINYCHAT_MODEL", str(build_cached("tiny", scripted=True)))  # the local model
    served = started("tinychat", build_cached("tiny", scripted=True))
    window = open_window(qtbot, tmp_path, scripted_model())
    actions = install(window)
    try:
        page = actions.open_settings("Server").server_page
        monkeypatch.delenv("TINYCHAT_MODEL")
        page.url_edit.setText(served.url)
        page.remote_box.setChecked(True)
        qtbot.waitUntil(lambda: window.session.model.status.ready and
                        window.session.model.loaded.engine_name == "remote", timeout=20_000)
        assert window.settings.current.remote == RemoteSettings(enabled=True, url=served.url)
        assert window.status.model_label.text().startswith("remote")
        served.log.clear()
        send(qtbot, window, "Hello, server")
        conv = window.store.list_conversations()[0]
        assert window.store.active_branch(conv.id)[-1].content == SCRIPT
        assert served.wait_for_log("answered")  # it came from the server
        monkeypatch.setenv("TINYCHAT_MODEL", str(build_cached("tiny", scripted=True)))
        page.remote_box.setChecked(False)
        qtbot.waitUntil(lambda: window.session.model.status.ready and
                        window.session.model.loaded.engine_name == "llama.cpp", timeout=20_000)
        assert window.settings.current == replace(window.settings.current, remote=RemoteSettings(url=served.url))
    finally:
        close_window(window)
