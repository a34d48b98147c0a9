"""`tinychat serve` spoken to with the official `openai` client (and raw HTTP where a client would never
send such a request): the generated test models give exact answers, so every field can be checked."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import openai
import pytest
from openai import OpenAI

from tests.fixtures.gguf_model import build_cached
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.served import ROOT, Served, start_tinychat

HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def scripted_server():
    served = start_tinychat(build_cached("tiny", scripted=True))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def random_server():
    served = start_tinychat(build_cached("tiny"))
    yield served
    served.stop()


def client_for(served: Served, **kw) -> OpenAI:
    return OpenAI(base_url=served.url, api_key=kw.pop("api_key", "unused"), max_retries=0, **kw)


@pytest.fixture
def client(scripted_server) -> OpenAI:
    return client_for(scripted_server)


def model_of(client: OpenAI) -> str:
    return client.models.list().data[0].id


def raw_post(served: Served, path: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(served.url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_the_model_list_names_the_one_served_model_and_its_context(client):
    models = client.models.list().data
    assert [m.id for m in models] == ["tiny-scripted-f32"]
    assert models[0].model_extra["max_model_len"] == 2048


def test_a_whole_chat_answer_has_the_models_text_and_its_usage(client):
    reply = client.chat.completions.create(model=model_of(client), messages=HELLO, temperature=0)
    choice = reply.choices[0]
    assert choice.message.content == SCRIPT_TEXT
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    u = reply.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_a_streamed_answer_arrives_in_pieces_and_ends_with_the_same_usage(client):
    model = model_of(client)
    whole = client.chat.completions.create(model=model, messages=HELLO, temperature=0)
    chunks = list(client.chat.completions.create(model=model, messages=HELLO, temperature=0, stream=True,
                                                  stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == SCRIPT_TEXT
    assert len(pieces) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == \
        (whole.usage.prompt_tokens, whole.usage.completion_tokens)


def test_a_stop_string_ends_the_answer_before_it_streamed_or_not(client):
    model = model_of(client)
    whole = client.chat.completions.create(model=model, messages=HELLO, temperature=0, stop=["世🎉"])
    streamed = client.chat.completions.create(model=model, messages=HELLO, temperature=0, stop="世🎉", stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert whole.choices[0].message.content == text == "Hello world! é"
    assert whole.choices[0].finish_reason == "stop"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client):
    reply = client.chat.completions.create(model=model_of(client), messages=HELLO, temperature=0, max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3
    assert SCRIPT_TEXT.startswith(reply.choices[0].message.content)


def test_the_completions_endpoint_answers_the_prompt_as_the_chat_would(client):
    reply = client.completions.create(model=model_of(client), prompt="Hello there", temperature=0)
    assert reply.choices[0].text == SCRIPT_TEXT
    streamed = client.completions.create(model=model_of(client), prompt="Hello there", temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == SCRIPT_TEXT


def test_the_same_seed_gives_the_same_answer_and_another_seed_another(random_server):
    client = client_for(random_server)

    def sample(seed: int) -> str:
        reply = client.chat.completions.create(model=model_of(client), messages=HELLO, temperature=1.0,
                                               max_tokens=24, seed=seed)
        return reply.choices[0].message.content

    assert sample(42) == sample(42)
    assert sample(42) != sample(43)


def test_a_message_longer_than_the_context_is_a_400_that_says_so(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model_of(client), messages=[{"role": "user",
                                                                           "content": "hello world " * 3000}])
    assert e.value.status_code == 400
    assert e.value.code == "context_length_exceeded"
    assert "context length is 2048 tokens" in e.value.message


def test_a_long_history_is_answered_with_the_oldest_turns_left_out(client):
    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"question {i} " + "hello world " * 40},
                    {"role": "assistant", "content": "yes " * 40}]
    reply = client.chat.completions.create(model=model_of(client), messages=[*history, *HELLO], temperature=0)
    assert reply.choices[0].message.content == SCRIPT_TEXT
    assert reply.usage.prompt_tokens <= 2048 - 512


def test_an_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert e.value.code == "model_not_found"
    assert "tiny-scripted-f32" in e.value.message


def test_a_body_that_is_not_json_is_a_400(scripted_server):
    status, body = raw_post(scripted_server, "/chat/completions", b'{"messages": [')
    assert status == 400
    assert body["error"]["code"] == "invalid_json" and "not valid JSON" in body["error"]["message"]


def test_a_request_that_is_not_an_openai_request_is_a_400_naming_the_field(scripted_server):
    status, body = raw_post(scripted_server, "/chat/completions", b'{"messages": [{"role": "tool", "content": ""}]}')
    assert status == 400 and body["error"]["param"] == "messages[0].role"
    status, body = raw_post(scripted_server, "/chat/completions",
                            json.dumps({"messages": HELLO, "temperature": 7}).encode())
    assert status == 400 and body["error"]["param"] == "temperature"


def test_a_body_over_the_size_limit_is_a_413(client):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=model_of(client), messages=[{"role": "user", "content": "x" * 2_000_000}])
    assert e.value.status_code == 413
    assert "larger than this server accepts" in e.value.message


def test_eight_concurrent_clients_are_each_answered_whole_as_if_alone(random_server):
    client = client_for(random_server)
    model = model_of(client)

    def ask(seed: int, stream: bool) -> str:
        kw = dict(model=model, messages=[{"role": "user", "content": f"question {seed}"}], temperature=1.0,
                  max_tokens=20, seed=seed)
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(**kw, stream=True)
                           if c.choices)
        return client.chat.completions.create(**kw).choices[0].message.content

    alone = {seed: ask(seed, stream=False) for seed in range(8)}
    together: dict[int, str] = {}
    threads = [threading.Thread(target=lambda s=seed: together.__setitem__(s, ask(s, stream=s % 2 == 1)))
               for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert together == alone
    assert len(set(alone.values())) == 8  # eight different answers, none mixed into another


@pytest.fixture(scope="module")
def slow_server():
    served = start_tinychat(build_cached("medium", "F16"))
    yield served
    served.stop()


def test_a_client_that_leaves_mid_stream_stops_its_answer_and_the_next_is_served(slow_server):
    client = client_for(slow_server)
    stream = client.chat.completions.create(model=model_of(client), messages=HELLO, max_tokens=2000, seed=1,
                                            stream=True)
    next(iter(stream))
    stream.close()
    stopped = slow_server.wait_for_log("the client left")
    assert int(stopped.split("after ")[1].split()[0]) < 2000
    reply = client.chat.completions.create(model=model_of(client), messages=HELLO, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"


def test_a_client_that_gives_up_during_a_long_prompt_stops_it_before_any_token(slow_server):
    slow_server.log.clear()
    client = client_for(slow_server)
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model=model_of(client), messages=[{"role": "user", "content": "hello world " * 900}], max_tokens=64)
    assert "stopped after 0 tokens" in slow_server.wait_for_log("the client left")
    reply = client.chat.completions.create(model=model_of(client), messages=HELLO, max_tokens=4)
    assert reply.choices[0].finish_reason == "length"


def test_conversations_are_kept_only_with_the_store_flag(tmp_path):
    model = build_cached("tiny", scripted=True)
    for flag, home in (([], tmp_path / "plain"), (["--store"], tmp_path / "stored")):
        served = start_tinychat(model, *flag, home=home)
        try:
            client = client_for(served)
            client.chat.completions.create(model=model_of(client), messages=HELLO, temperature=0)
        finally:
            served.stop()
    db = tmp_path / "stored" / "data" / "tinychat.db"
    rows = sqlite3.connect(db).execute("SELECT c.title, m.role, m.content FROM messages m JOIN conversations c "
                                       "ON c.id = m.conversation_id ORDER BY m.created_at").fetchall()
    assert rows == [("API: Hello there", "user", "Hello there"), ("API: Hello there", "assistant", SCRIPT_TEXT)]
    plain = tmp_path / "plain" / "data" / "tinychat.db"
    assert not plain.exists() or sqlite3.connect(plain).execute("SELECT COUNT(*) FROM messages").fetchone() == (0,)


def test_an_api_key_is_required_when_one_is_set(tmp_path):
    served = start_tinychat(build_cached("tiny", scripted=True), "--api-key", "s3cret", home=tmp_path)
    try:
        with pytest.raises(openai.AuthenticationError):
            client_for(served, api_key="wrong").models.list()
        assert model_of(client_for(served, api_key="s3cret")) == "tiny-scripted-f32"
    finally:
        served.stop()


def test_listening_beyond_this_computer_without_a_key_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "app", "serve", "--model", str(build_cached("tiny", scripted=True)),
                           "--host", "0.0.0.0"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"TINYCHAT_HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "set an API key" in done.stderr


def test_serve_without_a_model_says_how_to_get_one(tmp_path):
    done = subprocess.run([sys.executable, "-m", "app", "serve"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"TINYCHAT_HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
                                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "--model PATH" in done.stderr
