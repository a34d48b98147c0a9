"""The GGUF fault corpus: hostile model files made from the tiny random-weight test model by small edits.

Each case changes one thing an attacker or a failing disk could change: a header field (magic,
version, tensor and metadata counts), a metadata value or its type (wrong types, absurd lengths
and counts, bad UTF-8, nested and empty arrays), the tokenizer, a hyper-parameter llama.cpp asserts
on, a tensor info (shape, dimensions, type, offset, name), the alignment, or where the file ends.
A few edits are harmless and must be *accepted*: refusing a good file is a failure too.

`CASES` maps a name to a `Case`; `write_corpus(folder)` writes every file and returns their paths.
tests/test_gguf_corpus.py runs each one through `tinychat-engine validate` and `chat`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.corpus.gguf_layout import (
    ARRAY,
    BOOL,
    F32,
    F64,
    I32,
    STRING,
    U8,
    U16,
    U32,
    U64,
    Gguf,
    Tensor,
    array,
    scalar,
    string,
)
from tests.fixtures.gguf_model import build_cached

Edit = Callable[[Gguf], bytes]


@dataclass(frozen=True)
class Case:
    """One hostile file: how to make it, whether TinyChat must refuse or accept it, and a word the
    refusal must contain (the precise reason, not a generic one)."""

    edit: Edit
    expect: Literal["refused", "accepted"]
    reason: str = ""


def base_model() -> bytes:
    """The tiny random-weight llama model every case starts from (632 kB, 2 layers, 627 tokens)."""
    return build_cached("tiny", "F32").read_bytes()


# --- edits --------------------------------------------------------------------------------------------
def meta(key: str, vtype: int, payload: bytes) -> Edit:
    def edit(g: Gguf) -> bytes:
        g.set(key, vtype, payload)
        return g.to_bytes()
    return edit


def u32(key: str, value: int) -> Edit:
    return meta(key, U32, scalar(U32, value))


def f32(key: str, value: float) -> Edit:
    return meta(key, F32, scalar(F32, value))


def text(key: str, value: str | bytes) -> Edit:
    return meta(key, STRING, string(value))


def drop(key: str) -> Edit:
    def edit(g: Gguf) -> bytes:
        g.drop(key)
        return g.to_bytes()
    return edit


def header(**fields: object) -> Edit:
    def edit(g: Gguf) -> bytes:
        for name, value in fields.items():
            setattr(g, name, value)
        return g.to_bytes()
    return edit


def tensor(tensor_name: str, /, **fields: object) -> Edit:
    def edit(g: Gguf) -> bytes:
        t = g.tensor(tensor_name)
        for field, value in fields.items():
            setattr(t, field, value)
        return g.to_bytes()
    return edit


def tokens(change: Callable[[list[bytes]], list[bytes]], count_delta: int = 0) -> Edit:
    """Rewrite the token list (and optionally make its count lie by `count_delta`)."""
    def edit(g: Gguf) -> bytes:
        kv = g.kv("tokenizer.ggml.tokens")
        (n,) = struct.unpack_from("<Q", kv.payload, 4)
        items, pos = [], 12
        for _ in range(n):
            (size,) = struct.unpack_from("<Q", kv.payload, pos)
            items.append(kv.payload[pos + 8:pos + 8 + size])
            pos += 8 + size
        new = change(items)
        kv.payload = array(STRING, [string(t) for t in new], len(new) + count_delta)
        return g.to_bytes()
    return edit


def cut(where: Callable[[Gguf], int]) -> Edit:
    """The file cut short at a position found in the intact layout."""
    def edit(g: Gguf) -> bytes:
        blob = g.to_bytes()
        return blob[:where(g)]
    return edit


def kv_start(key: str, plus: int = 0) -> Callable[[Gguf], int]:
    def where(g: Gguf) -> int:
        at = 24
        for kv in g.kvs:
            if kv.key == key.encode():
                return at + plus
            at += len(kv.to_bytes())
        raise KeyError(key)
    return where


def extra_tensor(name: bytes, dims: list[int]) -> Edit:
    def edit(g: Gguf) -> bytes:
        g.tensors.append(Tensor(name, dims, 0, b"\0" * (4 * math.prod(dims))))
        return g.to_bytes()
    return edit


def without_tensor(name: str) -> Edit:
    def edit(g: Gguf) -> bytes:
        g.tensors = [t for t in g.tensors if t.name != name.encode()]
        return g.to_bytes()
    return edit


def swap_offsets(a: str, b: str) -> Edit:
    def edit(g: Gguf) -> bytes:
        real = dict(zip((t.name for t in g.tensors), g.layout(), strict=True))
        g.tensor(a).offset, g.tensor(b).offset = real[b.encode()], real[a.encode()]
        return g.to_bytes()
    return edit


def shift_offset(name: str, by: int) -> Edit:
    def edit(g: Gguf) -> bytes:
        real = dict(zip((t.name for t in g.tensors), g.layout(), strict=True))
        g.tensor(name).offset = real[name.encode()] + by
        return g.to_bytes()
    return edit


def then(first: Edit, raw: Callable[[bytes], bytes]) -> Edit:
    return lambda g: raw(first(g))


def _dup_key(key: str) -> Edit:
    def edit(g: Gguf) -> bytes:
        g.kvs.append(g.kv(key))
        return g.to_bytes()
    return edit


EPS = "llama.attention.layer_norm_rms_epsilon"
TOKENS = "tokenizer.ggml.tokens"
NAN, INF = math.nan, math.inf
BAD_UTF8 = b"llama\xff\xfe"
R, A = "refused", "accepted"

CASES: dict[str, Case] = {
    # header fields
    "magic_lowercase": Case(header(magic=b"gguf"), R, "signature"),
    "magic_ggjt": Case(header(magic=b"GGJT"), R, "signature"),
    "magic_reversed": Case(header(magic=b"FUGG"), R, "signature"),
    "version_0": Case(header(version=0), R, "version 0"),
    "version_1": Case(header(version=1), R, "version 1"),
    "version_4": Case(header(version=4), R, "version 4"),
    "version_2": Case(header(version=2), A),
    "version_big_endian_3": Case(header(version=0x03000000), R, "big-endian"),
    "version_all_ones": Case(header(version=0xFFFFFFFF), R, "version"),
    "tensor_count_zero": Case(header(n_tensors=0), R, "missing"),
    "tensor_count_one_more": Case(header(n_tensors=22), R, "corrupt"),
    "tensor_count_one_less": Case(header(n_tensors=20), A),  # output.weight is optional: a tied model
    "tensor_count_u64_max": Case(header(n_tensors=2**64 - 1), R, "tensors"),
    "kv_count_zero": Case(header(n_kv=0), R, "corrupt"),
    "kv_count_one_more": Case(header(n_kv=23), R, "corrupt"),
    "kv_count_one_less": Case(header(n_kv=21), R, "corrupt"),
    "kv_count_2_63": Case(header(n_kv=2**63), R, "metadata entries"),
    # metadata: keys, value types, strings, arrays
    "key_empty": Case(lambda g: (setattr(g.kvs[1], "key", b""), g.to_bytes())[1], R, "no name"),
    "key_bad_utf8": Case(lambda g: (setattr(g.kvs[1], "key", b"general.\xffname"), g.to_bytes())[1], R, "UTF-8"),
    "key_length_2_62": Case(lambda g: (lambda b: b[:24] + struct.pack("<Q", 2**62) + b[32:])(g.to_bytes()), R,
                            "text of"),
    "key_duplicated": Case(_dup_key("general.name"), R, "twice"),
    "value_type_13": Case(meta("general.name", 13, b""), R, "unknown type 13"),
    "value_type_all_ones": Case(meta("general.name", 0xFFFFFFFF, b""), R, "unknown type"),
    "string_length_2_40": Case(meta("general.name", STRING, struct.pack("<Q", 2**40)), R, "text of"),
    "string_length_past_eof": Case(meta("general.name", STRING, struct.pack("<Q", 10_000_000)), R, "truncated"),
    "string_1gib_plus_one": Case(meta("general.name", STRING, struct.pack("<Q", (1 << 30) + 1)), R, "text of"),
    "name_bad_utf8": Case(text("general.name", b"caf\xe9"), R, "UTF-8"),
    "name_50k_chars": Case(text("general.name", "n" * 50_000), A),
    "name_terminal_escapes": Case(text("general.name", "\x1b]0;owned\x07\x1b[2J\u202e"), A),
    "name_as_u32": Case(u32("general.name", 7), R, "general.name"),
    "architecture_empty": Case(text("general.architecture", ""), R, "''"),
    "architecture_upper_case": Case(text("general.architecture", "LLAMA"), R, "'LLAMA' model"),
    "architecture_gpt2": Case(text("general.architecture", "gpt2"), R, "'gpt2' model"),
    "architecture_mamba": Case(text("general.architecture", "mamba"), R, "'mamba' model"),
    "architecture_bad_utf8": Case(text("general.architecture", BAD_UTF8), R, "UTF-8"),
    "architecture_with_nul": Case(text("general.architecture", b"llama\0gpt2"), R, "model"),
    "architecture_as_u32": Case(u32("general.architecture", 1), R, "architecture"),
    "architecture_missing": Case(drop("general.architecture"), R, "architecture"),
    "array_nested": Case(meta("general.tags", ARRAY, struct.pack("<IQ", ARRAY, 1)), R, "nested"),
    "array_element_type_99": Case(meta("general.tags", ARRAY, struct.pack("<IQ", 99, 1)), R, "unknown type 99"),
    "array_count_2_62": Case(meta("general.tags", ARRAY, struct.pack("<IQ", U8, 2**62)), R, "values"),
    "array_count_past_eof": Case(meta("general.tags", ARRAY, struct.pack("<IQ", U64, 10_000_000)), R, "truncated"),
    "array_empty_unknown_key": Case(meta("general.tags", ARRAY, array(STRING, [])), A),
    "unknown_key_accepted": Case(meta("tinychat.note", STRING, string("hello")), A),
    # tokenizer
    "tokens_missing": Case(drop(TOKENS), R, "tokenizer"),
    "tokens_as_string": Case(text(TOKENS, "abc"), R, "tokenizer"),
    "tokens_as_u32_array": Case(meta(TOKENS, ARRAY, array(U32, [scalar(U32, 1)] * 627)), R, "tokenizer"),
    "tokens_empty_list": Case(meta(TOKENS, ARRAY, array(STRING, [])), R, "tokenizer"),
    "tokens_count_one_more": Case(tokens(lambda t: t, count_delta=1), R, "corrupt"),
    "tokens_duplicate_text": Case(tokens(lambda t: [*t[:300], t[299], *t[301:]]), R, "twice"),
    "tokens_one_empty": Case(tokens(lambda t: [*t[:400], b"", *t[401:]]), A),
    "tokens_bad_utf8_piece": Case(tokens(lambda t: [*t[:400], b"\xff\xfe", *t[401:]]), A),
    "tokens_bos_bad_utf8": Case(tokens(lambda t: [t[0], b"\xc3", *t[2:]]), R, "BOS"),
    "tokenizer_model_bert": Case(text("tokenizer.ggml.model", "bert"), R, "'bert'"),
    "tokenizer_model_unknown": Case(text("tokenizer.ggml.model", "zzz"), R, "'zzz'"),
    "tokenizer_model_missing": Case(drop("tokenizer.ggml.model"), R, "tokenizer"),
    "tokenizer_gpt2_without_merges": Case(text("tokenizer.ggml.model", "gpt2"), R, "merges"),
    "tokenizer_pre_unknown_on_spm": Case(text("tokenizer.ggml.pre", "no-such-pre"), A),
    "scores_shorter_than_tokens": Case(meta("tokenizer.ggml.scores", ARRAY, array(F32, [scalar(F32, 0)] * 10)), R,
                                       "scores"),
    "scores_as_strings": Case(meta("tokenizer.ggml.scores", ARRAY, array(STRING, [string("x")] * 627)), R, "scores"),
    "token_type_as_u8": Case(meta("tokenizer.ggml.token_type", ARRAY, array(U8, [scalar(U8, 1)] * 627)), R,
                             "token_type"),
    "token_type_unknown_values": Case(meta("tokenizer.ggml.token_type", ARRAY, array(I32, [scalar(I32, 99)] * 627)),
                                      A),
    "bos_id_past_vocab": Case(u32("tokenizer.ggml.bos_token_id", 627), R, "bos_token_id"),
    "eos_id_u32_max": Case(u32("tokenizer.ggml.eos_token_id", 2**32 - 1), R, "eos_token_id"),
    "eos_id_as_i32": Case(meta("tokenizer.ggml.eos_token_id", I32, scalar(I32, 2)), R, "eos_token_id"),
    "padding_id_as_string": Case(text("tokenizer.ggml.padding_token_id", "3"), R, "padding_token_id"),
    "add_bos_as_u8": Case(meta("tokenizer.ggml.add_bos_token", U8, scalar(U8, 1)), R, "add_bos_token"),
    "template_syntax_error": Case(text("tokenizer.chat_template", "{% for m in messages %}{{ m.content }"), R,
                                  "template"),
    "template_named_syntax_error": Case(text("tokenizer.chat_template.tool_use", "{% if %}"), R, "template"),
    "template_200k": Case(text("tokenizer.chat_template", "{{ bos_token }}" + " " * 200_000), R, "kB"),
    "template_as_u32": Case(u32("tokenizer.chat_template", 5), R, "template"),
    # hyper-parameters llama.cpp asserts or throws on
    "eps_negative": Case(f32(EPS, -1e-5), R, "epsilon"),
    "eps_infinite": Case(f32(EPS, INF), R, "epsilon"),
    "eps_zero": Case(f32(EPS, 0.0), A),
    "eps_missing": Case(drop(EPS), R, "epsilon"),
    "eps_as_f64": Case(meta(EPS, F64, scalar(F64, 1e-5)), R, "epsilon"),
    "block_count_zero": Case(u32("llama.block_count", 0), R, "block_count"),
    "block_count_513": Case(u32("llama.block_count", 513), R, "block_count"),
    "block_count_one_fewer": Case(u32("llama.block_count", 1), R, "blk.1"),
    "block_count_one_more": Case(u32("llama.block_count", 3), R, "missing"),
    "block_count_as_u64": Case(meta("llama.block_count", U64, scalar(U64, 2)), R, "block_count"),
    "block_count_missing": Case(drop("llama.block_count"), R, "block_count"),
    "context_length_zero": Case(u32("llama.context_length", 0), R, "context_length"),
    "context_length_u32_max": Case(u32("llama.context_length", 2**32 - 1), R, "context_length"),
    "embedding_length_zero": Case(u32("llama.embedding_length", 0), R, "embedding_length"),
    "embedding_length_off_by_one": Case(u32("llama.embedding_length", 65), R, "heads"),
    "feed_forward_zero": Case(u32("llama.feed_forward_length", 0), R, "feed_forward_length"),
    "feed_forward_per_layer": Case(meta("llama.feed_forward_length", ARRAY, array(U32, [scalar(U32, 128)] * 2)), R,
                                   "per layer"),
    "head_count_zero": Case(u32("llama.attention.head_count", 0), R, "head_count"),
    "head_count_three": Case(u32("llama.attention.head_count", 3), R, "heads"),
    "head_count_kv_zero": Case(u32("llama.attention.head_count_kv", 0), R, "head_count_kv"),
    "head_count_kv_three": Case(u32("llama.attention.head_count_kv", 3), R, "heads"),
    "head_count_kv_above_heads": Case(u32("llama.attention.head_count_kv", 8), R, "head_count_kv"),
    "head_count_kv_missing": Case(drop("llama.attention.head_count_kv"), R, "attn_k"),
    "rope_dimension_half": Case(u32("llama.rope.dimension_count", 8), R, "rope.dimension_count"),
    "key_length_doubled": Case(u32("llama.attention.key_length", 32), R, "key_length"),
    "rope_freq_base_nan": Case(f32("llama.rope.freq_base", NAN), R, "freq_base"),
    "rope_freq_base_negative": Case(f32("llama.rope.freq_base", -10000.0), R, "freq_base"),
    "rope_scaling_type_bogus": Case(text("llama.rope.scaling.type", "bogus"), R, "scaling.type"),
    "rope_scaling_linear_x4": Case(lambda g: (g.set("llama.rope.scaling.type", STRING, string("linear")),
                                              g.set("llama.rope.scaling.factor", F32, scalar(F32, 4.0)),
                                              g.to_bytes())[2], A),
    "rope_scaling_factor_nan": Case(f32("llama.rope.scaling.factor", NAN), R, "scaling.factor"),
    "expert_count_eight": Case(u32("llama.expert_count", 8), R, "mixture-of-experts"),
    "expert_used_without_experts": Case(u32("llama.expert_used_count", 2), R, "mixture-of-experts"),
    "split_count_two": Case(meta("split.count", U16, scalar(U16, 2)), R, "split"),
    "causal_as_u32": Case(u32("llama.attention.causal", 1), R, "causal"),
    "vocab_size_disagrees": Case(u32("llama.vocab_size", 999), A),
    # alignment
    "alignment_zero": Case(u32("general.alignment", 0), R, "alignment"),
    "alignment_three": Case(u32("general.alignment", 3), R, "alignment"),
    "alignment_as_u64": Case(meta("general.alignment", U64, scalar(U64, 32)), R, "alignment"),
    "alignment_2_31": Case(u32("general.alignment", 2**31), R, "alignment"),
    "alignment_64_relaid": Case(lambda g: (setattr(g, "alignment", 64), g.set("general.alignment", U32,
                                                                              scalar(U32, 64)), g.to_bytes())[2], A),
    # tensor infos
    "tensor_name_64_bytes": Case(extra_tensor(b"t" * 64, [64]), R, "bytes long"),
    "tensor_name_empty": Case(tensor("output_norm.weight", name=b""), R, "0 bytes long"),
    "tensor_name_duplicated": Case(tensor("blk.1.attn_norm.weight", name=b"blk.0.attn_norm.weight"), R, "twice"),
    "tensor_unknown_extra": Case(extra_tensor(b"blk.0.extra.weight", [64]), R, "does not have"),
    "tensor_output_removed_tied": Case(without_tensor("output.weight"), A),
    "tensor_required_removed": Case(without_tensor("blk.1.ffn_down.weight"), R, "missing"),
    "tensor_dims_zero": Case(tensor("output_norm.weight", n_dims=0, dims=[]), R, "0 dimensions"),
    "tensor_dims_five": Case(tensor("output_norm.weight", dims=[64, 1, 1, 1, 1]), R, "5 dimensions"),
    "tensor_dims_u32_max": Case(tensor("output_norm.weight", n_dims=2**32 - 1), R, "dimensions"),
    "tensor_dim_zero": Case(tensor("output_norm.weight", dims=[0]), R, "shape"),
    "tensor_dim_negative": Case(tensor("output_norm.weight", dims=[2**63 + 64]), R, "shape"),
    "tensor_dims_overflow": Case(tensor("output_norm.weight", dims=[2**32, 2**32]), R, "shape"),
    "tensor_shape_transposed": Case(tensor("blk.0.ffn_down.weight", dims=[64, 128]), R, "shape"),
    "tensor_type_removed_q4_2": Case(tensor("output_norm.weight", ttype=4), R, "data type"),
    "tensor_type_count": Case(tensor("output_norm.weight", ttype=43), R, "data type"),
    "tensor_type_all_ones": Case(tensor("output_norm.weight", ttype=2**32 - 1), R, "data type"),
    "tensor_type_i32": Case(tensor("output_norm.weight", ttype=26), R, "data type"),
    "tensor_norm_as_f16": Case(tensor("output_norm.weight", ttype=1, data=b"\0" * 128), R, "F32"),
    "tensor_q4k_rows_not_blocks": Case(tensor("output_norm.weight", ttype=12), R, "blocks"),
    "tensor_q4_data_wrong_size": Case(tensor("blk.0.ffn_down.weight", ttype=2), R, "blk.1.attn_norm"),
    "tensor_offset_unaligned": Case(shift_offset("output_norm.weight", 4), R, "output_norm"),
    "tensor_offset_past_eof": Case(shift_offset("output.weight", 1 << 40), R, "output.weight"),
    "tensor_offsets_swapped": Case(swap_offsets("blk.0.attn_k.weight", "blk.0.attn_v.weight"), R, "attn_"),
    "tensor_offset_gap": Case(shift_offset("output.weight", 32), R, "output.weight"),
    "tensor_overlap": Case(shift_offset("blk.1.attn_norm.weight", -256), R, "blk.1.attn_norm"),
    # where the file ends
    "cut_in_magic": Case(cut(lambda g: 2), R, "signature"),
    "cut_in_version": Case(cut(lambda g: 6), R, "truncated"),
    "cut_in_tensor_count": Case(cut(lambda g: 12), R, "truncated"),
    "cut_in_kv_count": Case(cut(lambda g: 20), R, "truncated"),
    "cut_after_counts": Case(cut(lambda g: 24), R, "truncated"),
    "cut_in_key_length": Case(cut(kv_start("general.name", 3)), R, "truncated"),
    "cut_in_key": Case(cut(kv_start("general.name", 12)), R, "truncated"),
    "cut_in_value_type": Case(cut(kv_start("general.name", 22)), R, "truncated"),
    "cut_in_string_value": Case(cut(kv_start("general.name", 32)), R, "truncated"),
    "cut_in_token_list": Case(cut(kv_start(TOKENS, 2000)), R, "truncated"),
    "cut_in_tensor_infos": Case(cut(lambda g: g.notes["tensor_infos"] + 5), R, "truncated"),
    "cut_before_padding": Case(cut(lambda g: g.notes["padding"]), R, "truncated"),
    "cut_at_data_start": Case(cut(lambda g: g.notes["data"]), R, "truncated"),
    "cut_mid_data": Case(cut(lambda g: g.notes["data"] + 300_000), R, "truncated"),
    "cut_last_byte": Case(then(lambda g: g.to_bytes(), lambda b: b[:-1]), R, "truncated"),
    "trailing_garbage": Case(then(lambda g: g.to_bytes(), lambda b: b + b"\xde\xad" * 50_000), A),
    "zeros_after_magic": Case(then(lambda g: g.to_bytes(), lambda b: b[:4] + b"\0" * (len(b) - 4)), R, "version 0"),
    "bool_value_5": Case(meta("tokenizer.ggml.add_bos_token", BOOL, b"\x05"), A),
}


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write every case's file into `folder`; returns name → path."""
    base = base_model()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, case in CASES.items():
        path = folder / f"{name}.gguf"
        path.write_bytes(case.edit(Gguf.parse(base)))
        paths[name] = path
    return paths
