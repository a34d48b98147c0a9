"""The GGUF fault corpus (tests/corpus/gguf_files.py) through the command line: every hostile file is
refused cleanly, with the checker's precise reason, by both `tinychat-engine validate` and `chat`, or
accepted and answered. Nothing crashes, hangs, prints a traceback or corrupts `--json` output.

The commands run in child processes under a memory limit (tests/corpus/cli_batch.py: a few processes
each run many commands, every command with its own stdout, stderr and clock, so each file's outcome
is asserted on its own and a crash is pinned on the file that caused it)."""

from __future__ import annotations

import json

import pytest

from tests.corpus.cli_batch import JOB_TIMEOUT_S, run_batches
from tests.corpus.gguf_files import CASES, write_corpus

MESSAGES = json.dumps({"messages": [{"role": "user", "content": "Hello"}]})
NOT_GGUF = "is not a GGUF model file"  # the loader's own first check, before the checker runs


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("gguf-corpus")
    jobs = []
    for name, path in write_corpus(work / "files").items():
        jobs.append({"id": f"{name}.validate", "argv": ["validate", str(path)]})
        jobs.append({"id": f"{name}.chat", "argv": ["chat", "--model", str(path), "--json", "--max-tokens", "4",
                                                     "--seed", "1"], "stdin": MESSAGES})
    (work / "run").mkdir()
    return run_batches(jobs, work / "run")


def test_the_corpus_has_at_least_eighty_files_and_some_must_be_accepted():
    assert len(CASES) >= 80
    assert 5 <= sum(c.expect == "accepted" for c in CASES.values()) < len(CASES) // 4
    assert all(c.reason for c in CASES.values() if c.expect == "refused")


def _clean(run: dict, what: str) -> None:
    assert not run.get("crashed"), f"{what} killed its process (exit {run['code']}): {run['stderr'][-800:]}"
    assert "Traceback" not in run["stderr"] + run["stdout"], run["stderr"][-800:]
    assert len(run["stderr"].strip().splitlines()) <= 3, run["stderr"][-800:]
    assert run["seconds"] <= JOB_TIMEOUT_S


def _refusal(stderr: str) -> str:
    (line,) = stderr.strip().splitlines()
    sentence = line.split(": ", 1)[1]
    assert sentence.endswith(".") and "Error" not in sentence.split()[0], line  # a sentence, not an exception
    return sentence


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_model_file_is_refused_cleanly_or_accepted(name: str, outcomes: dict[str, dict]):
    case = CASES[name]
    checked, chat = outcomes[f"{name}.validate"], outcomes[f"{name}.chat"]
    _clean(checked, "validate")
    _clean(chat, "chat")
    if case.expect == "accepted":
        assert checked["code"] == 0, checked["stderr"]
        assert json.loads(checked["stdout"])["architecture"] == "llama"
        assert chat["code"] == 0, chat["stderr"]
        answer = json.loads(chat["stdout"])  # exactly one JSON document: nothing native printed into it
        assert answer["completion_tokens"] >= 1 and answer["finish_reason"] in ("stop", "length")
        return
    assert checked["code"] == 1 and checked["stdout"] == ""
    assert chat["code"] == 1 and chat["stdout"] == ""
    reason, said = _refusal(checked["stderr"]), _refusal(chat["stderr"])
    assert case.reason.lower() in reason.lower()
    assert reason in said or (NOT_GGUF in said and "GGUF signature" in reason)  # the same precise reason


def test_validate_and_chat_give_every_file_the_same_verdict(outcomes: dict[str, dict],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Also prints the figures docs/benchmarks.md quotes."""
    refused = sum(outcomes[f"{n}.validate"]["code"] == 1 and outcomes[f"{n}.chat"]["code"] == 1 for n in CASES)
    accepted = sum(outcomes[f"{n}.validate"]["code"] == 0 and outcomes[f"{n}.chat"]["code"] == 0 for n in CASES)
    with capsys.disabled():
        print(f"\nGGUF fault corpus: {len(CASES)} files tried, {refused} refused by validate and chat, "
              f"{accepted} accepted and answered")
    assert refused + accepted == len(CASES)

