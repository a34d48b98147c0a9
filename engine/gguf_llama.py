"""What makes a GGUF file a llama model the bundled llama.cpp loads and runs without aborting.

llama.cpp stops a process with GGML_ASSERT (SIGABRT, no exception) on several hyper-parameters,
and throws on others; both must be caught here first. Each rule below names the check it mirrors in
the llama.cpp that llama-cpp-python 0.3.36 vendors (vendor/llama.cpp):
- src/llama-model.cpp `load_hparams`: `n_layer` in 1..LLAMA_MAX_LAYERS (assert), expert counts
  (asserts), `rope.scaling.type` one of LLAMA_ROPE_SCALING_TYPES (assert), `rope.dimension_count`
  equal to the head size for llama (throw), exact value types (llama-model-loader.cpp `GKV::get_kv`
  throws "key has wrong type");
- src/models/llama.cpp: the rms epsilon is required, and every tensor's shape; ggml-cpu/ops.cpp
  asserts `eps >= 0` when the first token is computed, so a NaN passes loading and aborts later;
- src/llama-model-loader.cpp: `create_tensor` asserts every dimension >= 1 (a zero width, head count
  or feed-forward size aborts) and throws on a wrong shape; `done_getting_tensors` throws when the
  file holds tensors the model does not use;
- src/llama-vocab.cpp: known tokenizer and pre-tokenizer, token list, scores and types of the right
  type and length, unique token texts (assert); special token ids in range;
- llama-cpp-python `Llama.__init__`: decodes the BOS/EOS token texts as UTF-8.
Plausibility bounds beyond llama.cpp's (a context of at most 2^24, heads that divide the width, finite
rope values, a vocabulary of at most 2^20 for the logits buffer) refuse what no real model has.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from engine.chat_template import MAX_TEMPLATE_SIZE as MAX_TEMPLATE
from engine.chat_template import vet_template
from engine.gguf_inspect import (
    ARRAY,
    BOOL,
    F32,
    I32,
    STRING,
    TENSOR_TYPES,
    TYPE_NAMES,
    U16,
    U32,
    GgufHeader,
    GgufProblem,
    file_type_name,
    read_header,
)

MAX_LAYERS = 512  # LLAMA_MAX_LAYERS
MAX_VOCAB = 1 << 20
ROPE_SCALING = ("none", "linear", "yarn", "longrope")
TOKENIZERS = ("llama", "gpt2")  # SentencePiece and byte-level BPE: what llama-architecture models use
# Pre-tokenizers src/llama-vocab.cpp knows (any other throws "unknown pre-tokenizer type").
PRE_TOKENIZERS = frozenset((
    "default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
    "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "falcon", "mpt",
    "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
    "mellum", "modern-bert", "jais-2", "gemma4", "granite-embed-multi-311m", "sarvam-moe", "jina-v1-en",
    "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r", "qwen2", "deepseek-r1-qwen", "kormo",
    "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe", "glm4", "glm5",
    "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe",
    "chameleon", "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m",
    "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2", "llada-moe",
    "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4", "joyai-llm", "ufakzeka", "grok-2", "afmoe", "laguna",
    "minimax-m2", "solar-open", "mellum2",
))
SPECIAL_TOKENS = ("bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "cls", "mask", "fim_pre",
                  "fim_suf", "fim_mid", "fim_pad", "fim_rep", "fim_sep", "prefix", "suffix", "middle")
# Keys llama.cpp reads for a llama model, with the one value type it accepts ("key has wrong type").
KEY_TYPES: dict[str, int] = {
    "general.name": STRING, "general.file_type": U32, "tokenizer.ggml.model": STRING, "tokenizer.ggml.pre": STRING,
    "tokenizer.ggml.add_bos_token": BOOL, "tokenizer.ggml.add_eos_token": BOOL, "tokenizer.ggml.add_sep_token": BOOL,
    "tokenizer.ggml.add_space_prefix": BOOL, "tokenizer.ggml.remove_extra_whitespaces": BOOL,
    "tokenizer.ggml.token_type_count": U32,
    **{f"tokenizer.ggml.{t}_token_id": U32 for t in SPECIAL_TOKENS},
    **{f"llama.{k}": U32 for k in (
        "context_length", "embedding_length", "embedding_length_out", "block_count", "feed_forward_length",
        "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
        "attention.key_length_swa", "attention.value_length_swa", "rope.dimension_count",
        "rope.dimension_count_swa", "rope.scaling.original_context_length", "vocab_size", "pooling_type",
        "expert_count", "expert_used_count", "expert_group_count", "expert_group_used_count",
        "nextn_predict_layers")},
    **{f"llama.{k}": F32 for k in (
        "attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.scaling.factor", "rope.scale_linear",
        "rope.scaling.attn_factor", "rope.scaling.alpha")},
    "llama.rope.scaling.type": STRING, "llama.rope.scaling.finetuned": BOOL, "llama.attention.causal": BOOL,
}


def _implausible(key: str, value: Any) -> GgufProblem:
    shown = f"{value:g}" if isinstance(value, float) else repr(value)
    return GgufProblem(f"The model's metadata is implausible ({key} = {shown}).")


def _check_types(h: GgufHeader) -> None:
    for key in ("feed_forward_length", "attention.head_count", "attention.head_count_kv", "expert_used_count"):
        if f"llama.{key}" in h.arrays:  # llama.cpp allows per-layer values here; no TinyLlama-like model uses them
            raise GgufProblem(f"The model sets llama.{key} per layer; TinyChat runs models with one value for all.")
    if "split.count" in h.types and (h.types["split.count"] != U16 or h.metadata["split.count"] != 1):
        raise GgufProblem("This model is split over several files; TinyChat loads single-file models only.")
    for key, want in KEY_TYPES.items():
        have = h.types.get(key)
        if have is not None and have != want:
            raise GgufProblem(f"The model's metadata is damaged: {key} is stored as {TYPE_NAMES[have]}, "
                              f"where llama.cpp needs {TYPE_NAMES[want]}.")


def _int(h: GgufHeader, key: str, lo: int, hi: int, default: int | None = None) -> int:
    value = h.metadata.get(key, default)
    if value is None:
        raise GgufProblem(f"The model is missing required metadata ({key}).")
    if not lo <= value <= hi:
        raise _implausible(key, value)
    return value


def _float(h: GgufHeader, key: str, lo: float, hi: float, default: float | None = None) -> float:
    value = h.metadata.get(key, default)
    if value is None:
        raise GgufProblem(f"The model is missing required metadata ({key}).")
    if not math.isfinite(value) or not lo <= value <= hi:  # NaN fails GGML_ASSERT(eps >= 0.0f) mid-answer
        raise _implausible(key, value)
    return value


def _hyper_parameters(h: GgufHeader) -> dict[str, int]:
    n_layer = _int(h, "llama.block_count", 1, MAX_LAYERS)
    n_embd = _int(h, "llama.embedding_length", 1, 1 << 16)
    n_ff = _int(h, "llama.feed_forward_length", 1, 1 << 18)
    n_head = _int(h, "llama.attention.head_count", 1, 1024)
    n_head_kv = _int(h, "llama.attention.head_count_kv", 1, n_head, default=n_head)
    n_ctx = _int(h, "llama.context_length", 1, 1 << 24)
    if n_embd % n_head or n_head % n_head_kv:
        raise GgufProblem("The model's metadata is implausible (attention heads do not divide the model width).")
    head = n_embd // n_head
    for key in ("attention.key_length", "attention.value_length", "rope.dimension_count"):
        _int(h, f"llama.{key}", head, head, default=head)  # llama.cpp: "invalid n_rot", graph asserts
    for key in ("expert_count", "expert_used_count", "expert_group_count", "expert_group_used_count",
                "nextn_predict_layers"):
        if h.metadata.get(f"llama.{key}", 0):
            raise GgufProblem("This is a mixture-of-experts or multi-token model; TinyChat runs plain llama models.")
    _float(h, "llama.attention.layer_norm_rms_epsilon", 0.0, 1.0)
    _float(h, "llama.rope.freq_base", 1e-3, 1e12, default=10000.0)
    for key in ("rope.scaling.factor", "rope.scale_linear", "rope.scaling.attn_factor", "rope.scaling.alpha"):
        _float(h, f"llama.{key}", 0.0, 1e6, default=1.0)
    scaling = h.metadata.get("llama.rope.scaling.type", "linear")
    if scaling not in ROPE_SCALING:
        raise _implausible("llama.rope.scaling.type", scaling)
    _int(h, "llama.rope.scaling.original_context_length", 1, 1 << 24, default=n_ctx)
    return {"n_layer": n_layer, "n_embd": n_embd, "n_ff": n_ff, "n_embd_kv": head * n_head_kv, "n_ctx": n_ctx,
            "n_rot": head}


def _array(h: GgufHeader, key: str, etypes: tuple[int, ...], n_min: int) -> None:
    if key not in h.types:
        return
    etype, count = h.arrays.get(key, (None, 0))
    if h.types[key] != ARRAY or etype not in etypes or count < n_min:
        raise GgufProblem(f"The model's tokenizer is damaged ({key} does not match the token list).")


def _tokenizer(h: GgufHeader) -> int:
    model = h.metadata.get("tokenizer.ggml.model")
    tokens = h.tokens
    if model is None or "tokenizer.ggml.tokens" not in h.types:
        raise GgufProblem("The model has no tokenizer (its token list is missing).")
    if model not in TOKENIZERS:
        raise GgufProblem(f"The model's tokenizer ({model!r}) is not one TinyChat runs; it needs a llama or gpt2 one.")
    if tokens is None or not 1 <= len(tokens) <= MAX_VOCAB:
        raise GgufProblem("The model's tokenizer is damaged (its token list is not a list of texts of a usable size).")
    _array(h, "tokenizer.ggml.scores", (F32, I32), len(tokens))
    _array(h, "tokenizer.ggml.token_type", (I32,), len(tokens))
    if model == "gpt2":
        _array(h, "tokenizer.ggml.merges", (STRING,), 0)
        pre = h.metadata.get("tokenizer.ggml.pre", "default")
        if "tokenizer.ggml.merges" not in h.types or pre not in PRE_TOKENIZERS:
            raise GgufProblem("The model's gpt2 tokenizer is incomplete (merges or pre-tokenizer unknown or missing).")
    texts = {t or f"[EMPTY_{i}]".encode() for i, t in enumerate(tokens)}  # llama-vocab.cpp renames empty ones
    if len(texts) != len(tokens):  # GGML_ASSERT(id_to_token.size() == token_to_id.size())
        raise GgufProblem("The model's tokenizer is damaged (the same token text appears twice).")
    for kind in SPECIAL_TOKENS:
        key = f"tokenizer.ggml.{kind}_token_id"
        if key in h.metadata and h.metadata[key] >= len(tokens):
            raise _implausible(key, h.metadata[key])
    spm = model == "llama"  # SentencePiece defaults: BOS 1, EOS 2 (llama-vocab.cpp)
    for kind, default in (("bos", 1 if spm else None), ("eos", 2 if spm else None)):
        tid = h.metadata.get(f"tokenizer.ggml.{kind}_token_id", default)
        if tid is not None and tid < len(tokens):
            try:
                tokens[tid].decode("utf-8")
            except UnicodeDecodeError:
                raise GgufProblem(f"The model's {kind.upper()} token is not valid UTF-8 text.") from None
    return len(tokens)


def _expected_tensors(d: dict[str, int], n_vocab: int) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple]]:
    """The tensors src/models/llama.cpp creates: required ones, and optional ones with their shapes."""
    e, ff, kv = d["n_embd"], d["n_ff"], d["n_embd_kv"]
    need: dict[str, tuple[int, ...]] = {"token_embd.weight": (e, n_vocab), "output_norm.weight": (e,)}
    may: dict[str, tuple] = {"output.weight": (e, n_vocab), "rope_freqs.weight": (d["n_rot"] // 2,)}
    for i in range(d["n_layer"]):
        b = f"blk.{i}."
        need |= {b + "attn_norm.weight": (e,), b + "ffn_norm.weight": (e,), b + "attn_q.weight": (e, e),
                 b + "attn_k.weight": (e, kv), b + "attn_v.weight": (e, kv), b + "attn_output.weight": (e, e),
                 b + "ffn_gate.weight": (e, ff), b + "ffn_up.weight": (e, ff), b + "ffn_down.weight": (ff, e)}
        may |= {b + "attn_q.bias": (e,), b + "attn_k.bias": (kv,), b + "attn_v.bias": (kv,),
                b + "attn_output.bias": (e,), b + "ffn_gate.bias": (ff,), b + "ffn_up.bias": (ff,),
                b + "ffn_down.bias": (e,)}
    return need, may


def _check_tensors(h: GgufHeader, d: dict[str, int], n_vocab: int) -> None:
    need, may = _expected_tensors(d, n_vocab)
    for name in need:
        if name not in h.tensors:
            raise GgufProblem(f"The model is incomplete: tensor {name} is missing.")
    for name, t in h.tensors.items():
        shape = need.get(name) or may.get(name)
        if shape is None:  # llama-model-loader.cpp: "wrong number of tensors"
            raise GgufProblem(f"The model holds a tensor a llama model does not have ({name!r}).")
        if t.dims != shape:
            raise GgufProblem(f"The model is damaged: tensor {name} has shape {list(t.dims)}, expected {list(shape)}.")
        if len(shape) == 1 and t.type != 0:
            raise GgufProblem(f"The model is damaged: tensor {name} must be stored as F32.")


def _chat_templates(h: GgufHeader) -> None:
    """llama-cpp-python compiles `tokenizer.chat_template` and every `tokenizer.chat_template.<name>` with
    Jinja while it loads the model (`Jinja2ChatFormatter`): a syntax error there is an exception the
    loader does not expect, and compile time grows with size (100 kB: ~2 s, 1 MB: ~20 s here)."""
    keys = [k for k in h.types if k == "tokenizer.chat_template" or k.startswith("tokenizer.chat_template.")]
    if not keys:
        return
    if any(h.types[k] != STRING for k in keys):
        raise GgufProblem("The model's chat template is damaged (it is not a text).")
    if max(len(h.metadata[k].encode()) for k in keys) > MAX_TEMPLATE:
        raise GgufProblem(f"The model's chat template is larger than {MAX_TEMPLATE >> 10} kB; real templates "
                          "are a few kB, so TinyChat does not load it.")
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from engine.jinja_sandbox import GenerationTag

    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, "jinja2.ext.loopcontrols"])
    for key in keys:
        try:
            env.from_string(h.metadata[key])
        except (jinja2.TemplateError, RecursionError, MemoryError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            raise GgufProblem(f"The model's chat template ({key}) is not a valid template: {first}.") from None


def _quantization(h: GgufHeader) -> str:
    named = file_type_name(h.metadata.get("general.file_type"))
    if named is not None:
        return named
    common = Counter(t.type for t in h.tensors.values() if len(t.dims) >= 2).most_common(1)
    return TENSOR_TYPES[common[0][0]][0] if common else "unknown"


def inspect(path: Path) -> dict[str, Any]:
    """Check that `path` is a llama GGUF model llama.cpp runs; return its summary or raise GgufProblem."""
    return check_header(read_file_header(path))


def read_file_header(path: Path) -> GgufHeader:
    """The header of `path` (read within fixed bounds); raises GgufProblem."""
    path = Path(path)
    if not path.is_file():
        raise GgufProblem(f"{path} is not a file.")
    return read_header(path)


def check_header(h: GgufHeader) -> dict[str, Any]:
    """Check a header read by `read_file_header` against the llama rules; return the file's summary."""
    arch = h.metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise GgufProblem("The model does not say which architecture it is (general.architecture is missing).")
    if arch != "llama":
        raise GgufProblem(f"This is a {arch!r} model; TinyChat runs llama-architecture models (like TinyLlama) only.")
    _check_types(h)
    dims = _hyper_parameters(h)
    n_vocab = _tokenizer(h)
    _check_tensors(h, dims, n_vocab)
    _chat_templates(h)
    template = h.metadata.get("tokenizer.chat_template")
    verdict = vet_template(template) if isinstance(template, str) and template.strip() else None
    if verdict is not None and verdict.hostile:
        raise GgufProblem(verdict.problem)
    name = h.metadata.get("general.name")
    return {
        "architecture": arch,
        "name": name[:200] if isinstance(name, str) else None,
        "parameters": sum(math.prod(t.dims) for t in h.tensors.values()),
        "quantization": _quantization(h),
        "context_length": dims["n_ctx"],
        "chat_template": verdict is not None and verdict.usable,  # usable as the model's default format
        "size": h.file_size,
        "n_vocab": n_vocab,
        "n_layer": dims["n_layer"],
        "gguf_version": h.version,
    }
