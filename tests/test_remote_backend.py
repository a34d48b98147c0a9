"""What only the remote engine can meet: a server that is not there, refuses the key, lacks the model, or is
still evaluating a long prompt when the user presses Stop. (The shared contract runs on it too:
tests/test_engine_contract.py.)"""

from __future__ import annotations

import threading
import time

import pytest

from engine.remote_backend import FORMAT_NOTE, RemoteEngine, remote_model
from engine.types import EngineError, GenerationParams, LoadOptions, Message, ModelFileError
from tests.fixtures.gguf_model import build_cached
from tests.served import free_port, start_tinychat, started


def test_a_server_that_is_not_there_is_a_plain_error_naming_its_address():
    port = free_port()
    with pytest.raises(EngineError) as e:
        RemoteEngine().load(remote_model(f"http://127.0.0.1:{port}/v1"), LoadOptions())
    assert f"could not reach the server at 127.0.0.1:{port}" in e.value.message


def test_an_address_that_is_not_a_url_says_what_one_looks_like():
    with pytest.raises(EngineError) as e:
        RemoteEngine().load(remote_model("192.168.1.20"), LoadOptions())
    assert "http://" in e.value.message


def test_a_model_the_server_does_not_have_is_a_model_file_error_listing_what_it_has():
    served = started("tinychat", build_cached("tiny", scripted=True))
    with pytest.raises(ModelFileError) as e:
        RemoteEngine().load(remote_model(served.url, "llama-70b"), LoadOptions())
    assert "“llama-70b” was not found on the server" in e.value.message
    assert "tiny-scripted-f32" in e.value.message


def test_a_wrong_api_key_is_refused_with_a_sentence_and_the_right_one_works(tmp_path):
    served = start_tinychat(build_cached("tiny", scripted=True), "--api-key", "s3cret", home=tmp_path)
    try:
        with pytest.raises(EngineError) as e:
            RemoteEngine().load(remote_model(served.url, api_key="wrong"), LoadOptions())
        assert "refused TinyChat's API key" in e.value.message
        report = RemoteEngine().load(remote_model(served.url, api_key="s3cret"), LoadOptions())
        assert report.metadata["model"] == "tiny-scripted-f32"
    finally:
        served.stop()


def test_the_server_keeps_its_own_chat_format_and_a_format_setting_says_so():
    served = started("tinychat", build_cached("tiny", scripted=True))
    engine = RemoteEngine()
    report = engine.load(remote_model(served.url), LoadOptions(chat_format="llama-2"))
    assert report.chat_format == "chatml"  # as the server reports it
    assert report.warnings == (FORMAT_NOTE,)
    assert engine.set_chat_format("llama-2") == (FORMAT_NOTE,)
    assert engine.chat_format == "chatml"


def test_stop_during_a_long_prompt_on_the_server_returns_at_once_and_the_server_goes_on():
    served = started("tinychat", build_cached("medium", "F16"))
    engine = RemoteEngine()
    engine.load(remote_model(served.url), LoadOptions())
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    t0 = time.perf_counter()
    timer.start()
    chunks = list(engine.generate([Message("user", "hello world " * 950)], GenerationParams(max_tokens=64), cancel))
    elapsed_after_cancel = time.perf_counter() - t0 - 0.3
    assert chunks[-1].finish_reason == "cancelled" and chunks[-1].error is None
    # Functional bound, as in the local contract: far below the seconds the prompt takes on this model.
    assert elapsed_after_cancel < 1.5
    assert "stopped after 0 tokens" in served.wait_for_log("the client left")
    after = list(engine.generate([Message("user", "hi")], GenerationParams(max_tokens=4), threading.Event()))
    assert after[-1].finish_reason in ("length", "stop")
