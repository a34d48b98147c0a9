"""`tinychat-engine validate PATH`: a JSON summary for a usable llama GGUF, one plain line and a
non-zero exit for anything else — generated bad files of every kind, checked in a child process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import validate
from engine.cli import main as engine_cli
from engine.types import ModelFileError
from tests.fixtures.gguf_model import CHATML_TEMPLATE, build_cached

ROOT = Path(__file__).resolve().parents[1]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da636400010000050001a5f645400000000049454e44ae426082"
)

# --- a minimal GGUF writer, so each test can break exactly one thing -------------------------------
F32, STRING_T, ARRAY_T, U32, I32 = 0, 8, 9, 4, 5


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", vtype) + payload


def _u32(key: str, v: int) -> bytes:
    return _kv(key, U32, struct.pack("<I", v))


def _f32(key: str, v: float) -> bytes:
    return _kv(key, 6, struct.pack("<f", v))


def _string(key: str, v: str) -> bytes:
    return _kv(key, STRING_T, _str(v))


def _str_array(key: str, items: list[str]) -> bytes:
    return _kv(key, ARRAY_T, struct.pack("<IQ", STRING_T, len(items)) + b"".join(_str(i) for i in items))


N_EMBD, N_FF, N_HEAD, N_HEAD_KV, N_VOCAB = 32, 64, 4, 2, 40


def good_parts() -> dict:
    """The pieces of a small, complete llama GGUF (1 layer, F32 zeros), to mutate one at a time."""
    kv = {
        "general.architecture": _string("general.architecture", "llama"),
        "general.name": _string("general.name", "crafted"),
        "llama.context_length": _u32("llama.context_length", 2048),
        "llama.embedding_length": _u32("llama.embedding_length", N_EMBD),
        "llama.block_count": _u32("llama.block_count", 1),
        "llama.feed_forward_length": _u32("llama.feed_forward_length", N_FF),
        "llama.attention.head_count": _u32("llama.attention.head_count", N_HEAD),
        "llama.attention.head_count_kv": _u32("llama.attention.head_count_kv", N_HEAD_KV),
        "llama.attention.layer_norm_rms_epsilon": _f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        "general.file_type": _u32("general.file_type", 0),
        "tokenizer.ggml.model": _string("tokenizer.ggml.model", "llama"),
        "tokenizer.ggml.tokens": _str_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(N_VOCAB)]),
    }
    kv_dim = N_EMBD // N_HEAD * N_HEAD_KV
    tensors = {
        "token_embd.weight": (N_EMBD, N_VOCAB), "output_norm.weight": (N_EMBD,), "output.weight": (N_EMBD, N_VOCAB),
        "blk.0.attn_norm.weight": (N_EMBD,), "blk.0.ffn_norm.weight": (N_EMBD,),
        "blk.0.attn_q.weight": (N_EMBD, N_EMBD), "blk.0.attn_k.weight": (N_EMBD, kv_dim),
        "blk.0.attn_v.weight": (N_EMBD, kv_dim), "blk.0.attn_output.weight": (N_EMBD, N_EMBD),
        "blk.0.ffn_gate.weight": (N_EMBD, N_FF), "blk.0.ffn_up.weight": (N_EMBD, N_FF),
        "blk.0.ffn_down.weight": (N_FF, N_EMBD),
    }
    return {"magic": b"GGUF", "version": 3, "kv": kv, "tensors": {n: [d, F32, None] for n, d in tensors.items()},
            "n_tensors": None, "n_kv": None, "extra_header": b"", "truncate_data": 0}


def build(parts: dict) -> bytes:
    kv = list(parts["kv"].values())
    infos, data, offset = [], b"", 0
    for name, (dims, ttype, forced_offset) in parts["tensors"].items():
        n = 1
        for d in dims:
            n *= d
        nbytes = n * 4
        infos.append(_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                     + struct.pack("<IQ", ttype, offset if forced_offset is None else forced_offset))
        data += b"\0" * nbytes + b"\0" * (-nbytes % 32)
        offset += nbytes + (-nbytes % 32)
    n_tensors = len(infos) if parts["n_tensors"] is None else parts["n_tensors"]
    n_kv = len(kv) if parts["n_kv"] is None else parts["n_kv"]
    header = parts["magic"] + struct.pack("<IQQ", parts["version"], n_tensors, n_kv) + b"".join(kv)
    header += parts["extra_header"] + b"".join(infos)
    header += b"\0" * (-len(header) % 32)
    blob = header + data
    return blob[: len(blob) - parts["truncate_data"]] if parts["truncate_data"] else blob


def mutate(fn: Callable[[dict], None]) -> bytes:
    parts = good_parts()
    fn(parts)
    return build(parts)


def _set(**changes: object) -> Callable[[dict], None]:
    return lambda p: p.update(changes)


def _kv_replace(key: str, payload: bytes | None) -> Callable[[dict], None]:
    def fn(p: dict) -> None:
        if payload is None:
            del p["kv"][key]
        else:
            p["kv"][key] = payload
    return fn


def _tensor(name: str, dims: tuple | None = None, ttype: int | None = None, offset: int | None = None,
            drop: bool = False) -> Callable[[dict], None]:
    def fn(p: dict) -> None:
        if drop:
            del p["tensors"][name]
            return
        t = p["tensors"][name]
        if dims is not None:
            t[0] = dims
        if ttype is not None:
            t[1] = ttype
        if offset is not None:
            t[2] = offset
    return fn


GOOD = build(good_parts())
HEADER_END = GOOD.index(b"\0" * 64)  # tensor data (zeros) starts right after the padded header

BAD_FILES: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "three_bytes": lambda: b"GGU",
    "magic_only": lambda: b"GGUF",
    "bad_magic": lambda: b"GGML" + GOOD[4:],
    "png_renamed": lambda: PNG,
    "text_file": lambda: b"This is not a model, just some notes.\n" * 20,
    "random_bytes": lambda: bytes((i * 7919 + 13) % 251 for i in range(8192)),
    "random_after_magic": lambda: b"GGUF" + bytes((i * 104729 + 7) % 253 for i in range(8192)),
    "version_1": lambda: mutate(_set(version=1)),
    "version_4": lambda: mutate(_set(version=4)),
    "version_huge": lambda: mutate(_set(version=0xFFFFFFFF)),
    "big_endian": lambda: mutate(_set(version=0x03000000)),
    "absurd_tensor_count": lambda: mutate(_set(n_tensors=1 << 63)),
    "absurd_kv_count": lambda: mutate(_set(n_kv=1 << 60)),
    "kv_count_too_high": lambda: mutate(_set(n_kv=40)),
    "huge_key_length": lambda: mutate(_kv_replace("general.name", struct.pack("<Q", 1 << 62) + b"x")),
    "huge_string_value": lambda: mutate(_kv_replace(
        "general.name", _str("general.name") + struct.pack("<IQ", STRING_T, 1 << 40))),
    "huge_array_count": lambda: mutate(_kv_replace(
        "tokenizer.ggml.tokens", _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY_T, STRING_T, 1 << 50))),
    "unknown_value_type": lambda: mutate(_kv_replace("general.name", _str("general.name") + struct.pack("<I", 99))),
    "nested_array": lambda: mutate(_kv_replace(
        "general.name", _str("general.name") + struct.pack("<IIQ", ARRAY_T, ARRAY_T, 1))),
    "duplicate_key": lambda: mutate(lambda p: p.update(extra_header=b"") or p["kv"].update(
        dup=_u32("llama.block_count", 1))),
    "wrong_architecture": lambda: mutate(_kv_replace("general.architecture", _string("general.architecture", "gpt2"))),
    "no_architecture": lambda: mutate(_kv_replace("general.architecture", None)),
    "no_token_list": lambda: mutate(_kv_replace("tokenizer.ggml.tokens", None)),
    "no_block_count": lambda: mutate(_kv_replace("llama.block_count", None)),
    "heads_do_not_divide": lambda: mutate(_kv_replace("llama.attention.head_count", _u32(
        "llama.attention.head_count", 5))),
    "bad_alignment": lambda: mutate(lambda p: p["kv"].update(align=_u32("general.alignment", 24))),
    "missing_tensor": lambda: mutate(_tensor("blk.0.ffn_up.weight", drop=True)),
    "wrong_tensor_shape": lambda: mutate(_tensor("blk.0.attn_k.weight", dims=(N_EMBD, N_EMBD))),
    "unknown_tensor_type": lambda: mutate(_tensor("blk.0.ffn_up.weight", ttype=999)),
    "seven_dimensions": lambda: mutate(_tensor("output_norm.weight", dims=(N_EMBD, 1, 1, 1, 1, 1, 1))),
    "zero_dimension": lambda: mutate(_tensor("output_norm.weight", dims=(0,))),
    "misaligned_offset": lambda: mutate(_tensor("output_norm.weight", offset=4)),
    "overlapping_tensors": lambda: mutate(_tensor("output_norm.weight", offset=0)),
    "offset_past_end": lambda: mutate(_tensor("output_norm.weight", offset=1 << 40)),
    "data_cut_short": lambda: mutate(_set(truncate_data=100)),
    **{f"truncated_at_{n}": (lambda n=n: GOOD[:n]) for n in (5, 8, 16, 24, 40, 200, 600)},
    "truncated_at_header_end": lambda: GOOD[:HEADER_END - 1],
    "truncated_mid_data": lambda: GOOD[: (HEADER_END + len(GOOD)) // 2],
    "truncated_last_byte": lambda: GOOD[:-1],
}


def run_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`tinychat-engine validate PATH` through the engine CLI's own entry point."""
    code = engine_cli(["validate", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_crafted_good_file_is_accepted_so_each_bad_file_breaks_one_thing(tmp_path, capsys):
    path = tmp_path / "good.gguf"
    path.write_bytes(GOOD)
    code, out, err = run_validate(path, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["architecture"] == "llama" and summary["quantization"] == "F32"
    assert summary["parameters"] == sum(
        d[0] * (d[1] if len(d) > 1 else 1) for d, _, _ in good_parts()["tensors"].values())


def test_at_least_thirty_kinds_of_bad_file_are_covered():
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_exits_non_zero_with_one_plain_line(name, tmp_path, capsys):
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(BAD_FILES[name]())
    t0 = time.monotonic()
    code, out, err = run_validate(path, capsys)
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    reason = lines[0].removeprefix("tinychat-engine: ").removeprefix(f"{path}: ")
    assert reason[0].isupper() and reason.endswith("."), reason  # a sentence, not an exception dump
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("name, expected", [
    ("empty", "empty"), ("png_renamed", "not a GGUF"), ("version_4", "version 4"), ("big_endian", "big-endian"),
    ("absurd_tensor_count", "corrupt"), ("wrong_architecture", "'gpt2' model"), ("missing_tensor", "missing"),
    ("truncated_mid_data", "truncated"), ("truncated_at_200", "truncated"),
    ("truncated_at_600", "truncated"), ("huge_array_count", "corrupt"),
])
def test_the_reason_names_what_is_wrong(name, expected, tmp_path, capsys):
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(BAD_FILES[name]())
    _, _, err = run_validate(path, capsys)
    assert expected in err


@pytest.mark.parametrize("level", ["Q2_K", "Q4_K_M", "Q6_K", "Q8_0", "F16"])
def test_generated_models_at_each_quantization_level_are_valid(level, capsys):
    path = build_cached("small", level)
    code, out, err = run_validate(path, capsys)
    assert code == 0, err
    s = json.loads(out)
    assert (s["architecture"], s["quantization"], s["context_length"]) == ("llama", level, 2048)
    assert s["size"] == path.stat().st_size and s["n_layer"] == 2 and s["parameters"] > 1_000_000
    assert s["chat_template"] is False


def test_a_chat_template_in_the_metadata_is_reported(capsys):
    code, out, _ = run_validate(build_cached("tiny", "F32", scripted=True, chat_template=CHATML_TEMPLATE), capsys)
    assert code == 0 and json.loads(out)["chat_template"] is True


def test_a_directory_or_a_missing_path_is_refused_at_once(tmp_path, capsys):
    (tmp_path / "dir.gguf").mkdir()
    for p in (tmp_path / "dir.gguf", tmp_path / "missing.gguf"):
        code, _, err = run_validate(p, capsys)
        assert code != 0 and "not a file" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_that_would_block_a_reader_is_refused_without_hanging(tmp_path, capsys):
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    code, _, err = run_validate(fifo, capsys)
    assert code != 0 and "not a file" in err


def test_a_check_that_overruns_its_time_limit_is_a_plain_sentence(tmp_path):
    path = tmp_path / "slow.gguf"
    path.write_bytes(GOOD)
    with pytest.raises(ModelFileError, match="took longer than"):
        validate.validate_gguf(path, timeout=0.001)  # no child can even start in a millisecond


@pytest.mark.parametrize("child_code", [
    "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",  # a parser crash
    "print('garbage')",  # output that is not the checker's
    "import sys; sys.exit(0)",  # silence
])
def test_a_child_that_crashes_or_talks_nonsense_is_reported_not_propagated(child_code, tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "_child_command", lambda _p: [sys.executable, "-c", child_code])
    path = tmp_path / "x.gguf"
    path.write_bytes(GOOD)
    with pytest.raises(ModelFileError, match="made the model checker fail"):
        validate.validate_gguf(path)


def test_the_installed_console_script_prints_json_or_one_line(tmp_path):
    exe = Path(sys.executable).with_name("tinychat-engine")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "engine"]
    good = subprocess.run([*cmd, "validate", str(build_cached("small", "Q4_K_M"))], capture_output=True, text=True,
                          cwd=ROOT, timeout=30)
    assert good.returncode == 0 and json.loads(good.stdout)["quantization"] == "Q4_K_M"
    bad = tmp_path / "image.gguf"
    bad.write_bytes(PNG)
    refused = subprocess.run([*cmd, "validate", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert refused.returncode != 0 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
