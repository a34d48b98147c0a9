"""The model's own chat template runs in a limited child process: what that child guarantees, the
load-time check (`vet_template`) and how validation and import use it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import chat_template
from engine.chat_format import get_format
from engine.chat_template import ChatTemplate, vet_template
from engine.models import ModelManager
from engine.template_child import CHILD_FLAG
from engine.types import EngineError, Message, ModelFileError
from engine.validate import validate_gguf
from tests.fixtures.gguf_model import CHATML_TEMPLATE, SHAPES, write_gguf
from tests.template_run import ROOT
from tests.test_chat_format import HF_LLAMA2_TEMPLATE

SPIN = "{% for a in messages * 100000 %}{% for b in messages * 100000 %}{% endfor %}{% endfor %}"
GEMMA_LIKE = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
              "{% endif %}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
              "{% endfor %}")


def M(role: str, content: str) -> Message:
    return Message(role, content)  # type: ignore[arg-type]


def template_children(parent: int | None = None) -> set[int]:
    """Pids of the template children of `parent` (default: this process), read from /proc."""
    parent = os.getpid() if parent is None else parent
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and CHILD_FLAG.encode() in cmdline:
            pids.add(int(entry.name))
    return pids


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- rendering in the child --------------------------------------------------------------------------


def test_after_a_runaway_render_the_next_render_works_in_a_fresh_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_template, "TEMPLATE_TIME_LIMIT_S", 0.3)
    fmt = get_format("gguf-jinja", gguf_template="{% if messages|length > 1 %}" + SPIN + "{% endif %}"
                     "{{ messages[0]['content'] }}")
    with pytest.raises(EngineError, match="runs away"):
        fmt.prompt_text([M("user", "a"), M("user", "b")])
    assert fmt.prompt_text([M("user", "still here")]) == "<s>still here"


def test_a_templates_child_process_ends_when_the_template_is_closed_or_dropped() -> None:
    before = template_children()
    closed, dropped = ChatTemplate(CHATML_TEMPLATE), ChatTemplate(CHATML_TEMPLATE)
    started = template_children() - before
    assert len(started) == 2
    closed.close()
    del dropped
    assert not template_children() & started


@pytest.mark.slow
def test_a_child_left_spinning_by_a_killed_app_ends_by_its_own_cpu_limit() -> None:
    script = ("import sys; from engine.chat_format import get_format; from engine.types import Message; "
              "fmt = get_format('gguf-jinja', gguf_template=sys.argv[1]); print('ready', flush=True); "
              "fmt.prompt_text([Message('user', 'hi')])")
    app = subprocess.Popen([sys.executable, "-c", script, SPIN], cwd=ROOT, stdout=subprocess.PIPE)
    assert app.stdout is not None and app.stdout.readline() == b"ready\n"
    [child] = template_children(app.pid)
    while cpu_seconds(child) < 0.3:  # the child is spinning on the render
        time.sleep(0.02)
    app.kill()  # mid-render: nobody is left to kill the child
    app.wait()
    deadline = time.monotonic() + 60  # a few CPU seconds, however busy the machine
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the orphaned template child is still running"


def test_a_frozen_app_runs_templates_by_starting_itself_as_the_child(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "tinychat"  # stands in for the frozen executable: `tinychat ARGS` is `python -m app ARGS`
    app.write_text(f"#!/bin/sh\nexec {sys.executable} -m app \"$@\"\n")
    app.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    template = ChatTemplate(CHATML_TEMPLATE)
    assert template.render([chat_template.template_context([("user", "Hi")], True, "<s>", "</s>")]) == [
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"]
    template.close()


def test_a_template_of_exactly_64_kib_runs_and_one_byte_more_is_refused_by_its_size() -> None:
    body = "{{ messages[0]['content'] }}"
    padded = body + "{#" + "x" * (chat_template.MAX_TEMPLATE_SIZE - len(body) - 4) + "#}"
    assert get_format("gguf-jinja", gguf_template=padded).prompt_text([M("user", "hi")]) == "<s>hi"
    with pytest.raises(EngineError) as err:
        get_format("gguf-jinja", gguf_template=padded + " ")
    assert err.value.message.startswith("The chat template stored in this model file is 65 KiB, far longer than "
                                        "a real chat template (at most 64 KiB), so TinyChat does not run it.")


def test_a_template_that_writes_a_content_marker_of_its_own_still_renders_exactly() -> None:
    fmt = get_format("gguf-jinja", gguf_template="\ue0007\ue001{{ messages[0]['content'] }}\ue000123456789012\ue001")
    assert fmt.prompt_text([M("user", "hi")]) == "<s>\ue0007\ue001hi\ue000123456789012\ue001"


def test_lone_surrogates_and_control_characters_reach_the_template_and_come_back_unchanged() -> None:
    content = "a\ud800b\x00c\x1b[31m\u202e"
    fmt = get_format("gguf-jinja", gguf_template="[{{ messages[0]['content'] }}]\udfff")
    assert fmt.prompt_text([M("user", content)]) == f"<s>[{content}]\udfff"


def test_a_templates_own_error_text_is_shown_as_one_short_printable_line() -> None:
    template = "{{ raise_exception('Bad\\nroles\\x1b[2J ' ~ 'x' * 5000) }}"
    with pytest.raises(EngineError) as err:
        get_format("gguf-jinja", gguf_template=template).prompt_text([M("user", "hi")])
    message = err.value.message
    assert message.startswith("The model's chat template rejected this conversation: Bad roles [2J xxx")
    assert message.isprintable() and len(message) < 400
    assert message.endswith("Choose another chat format in Settings.")


# --- the load-time check -----------------------------------------------------------------------------


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, HF_LLAMA2_TEMPLATE, GEMMA_LIKE])
def test_real_templates_pass_the_load_time_check(template: str) -> None:
    assert vet_template(template) == chat_template.TemplateVerdict(usable=True)


@pytest.mark.parametrize(("template", "says"), [
    (SPIN, "runs away (too slow, or an endless prompt)"),
    ("{{ 'a' * 10**10 }}", "runs away (too slow, or an endless prompt)"),
    ("{{ ''.__class__.__mro__ }}", "tries to do something unsafe"),
    ("{{ messages[0]['content'] }}" + " " * (64 * 1024), "is far longer than a real chat template"),
])
def test_a_hostile_template_is_refused_by_the_load_time_check(template: str, says: str) -> None:
    verdict = vet_template(template)
    assert (verdict.usable, verdict.hostile) == (False, True)
    assert verdict.problem == (f"The chat template stored in this model file {says}, so TinyChat refuses the file. "
                               "Use a copy of the model from a source you trust.")


@pytest.mark.parametrize(("template", "says"), [
    ("{% for m in messages %}", "is broken (line 1)"),
    ("{{ raise_exception('This template needs tools.') }}", "rejected this conversation: This template needs tools."),
    ("{{ messages[0]['content'] + 1 }}", "failed on this conversation"),
])
def test_a_broken_template_is_not_usable_but_not_hostile(template: str, says: str) -> None:
    verdict = vet_template(template)
    assert (verdict.usable, verdict.hostile) == (False, False) and says in str(verdict.problem)


# --- validation and import -----------------------------------------------------------------------------


def model_with_template(folder: Path, template: str) -> Path:
    return write_gguf(folder / "model.gguf", SHAPES["tiny"], scripted=True, chat_template=template)


@pytest.mark.parametrize("template", [SPIN, "{% for c in 'a' * 100000000 %}{% endfor %}"])
def test_validate_and_import_refuse_a_model_whose_template_runs_away(tmp_path: Path, template: str) -> None:
    path = model_with_template(tmp_path, template)
    with pytest.raises(ModelFileError, match="runs away"):
        validate_gguf(path)
    manager = ModelManager(tmp_path / "models")
    with pytest.raises(ModelFileError, match="runs away"):
        manager.import_gguf(path)
    assert manager.installed() == ()


def test_a_model_whose_template_does_not_compile_is_refused_as_the_loader_would(tmp_path: Path) -> None:
    # llama-cpp-python compiles every template in the file while it loads it, so such a file cannot run.
    path = model_with_template(tmp_path, "{% for m in messages %}{{ m['content'] }")
    with pytest.raises(ModelFileError, match=r"chat template .* is not a valid template"):
        validate_gguf(path)


def test_a_model_whose_template_fails_on_every_conversation_imports_with_chatml(tmp_path: Path) -> None:
    path = model_with_template(tmp_path, "{{ messages[0].no_such_field.deeper }}")
    assert validate_gguf(path).chat_template is False
    assert ModelManager(tmp_path / "models").import_gguf(path).chat_format == "chatml"


def test_a_model_with_a_working_template_still_imports_with_it(tmp_path: Path) -> None:
    path = model_with_template(tmp_path, CHATML_TEMPLATE)
    assert validate_gguf(path).chat_template is True
    assert ModelManager(tmp_path / "models").import_gguf(path).chat_format == "gguf-jinja"
