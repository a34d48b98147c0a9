"""The catalog of models and quantization levels TinyChat offers (engine/catalog.json)."""

from __future__ import annotations

import json
import re

import pytest

from engine.catalog import Catalog, CatalogError
from tests.fakehub import gguf_entry, write_catalog

MODEL = "tinyllama-1.1b-chat-v0.4"
GGUF_LEVELS = ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_every_gguf_level_comes_from_the_afrideva_repo_with_its_file_name(catalog):
    levels = catalog.levels(MODEL, "llama.cpp")
    assert tuple(e.level for e in levels) == GGUF_LEVELS
    for e in levels:
        stem = "fp16" if e.level == "F16" else e.level.lower()
        assert e.repo == "afrideva/TinyLlama-1.1B-Chat-v0.4-GGUF"
        assert [f.name for f in e.files] == [f"tinyllama-1.1b-chat-v0.4.{stem}.gguf"]


def test_gguf_sizes_grow_with_the_quantization_level(catalog):
    sizes = [e.size_mb for e in catalog.levels(MODEL, "llama.cpp")]
    assert sizes == sorted(sizes) and sizes[0] == 482 and sizes[-1] == 2201
    assert all(e.memory_mb > e.size_mb for e in catalog.entries)


def test_defaults_are_q4_k_m_for_llama_cpp_and_4_bit_for_mlx(catalog):
    assert catalog.default(MODEL, "llama.cpp").level == "Q4_K_M"
    assert catalog.default(MODEL, "mlx").level == "4bit"


def test_mlx_levels_share_one_download_of_the_original_weights(catalog):
    mlx = catalog.levels(MODEL, "mlx")
    assert [e.bits for e in mlx] == [4, 8, 16]
    assert {e.repo for e in mlx} == {"TinyLlama/TinyLlama-1.1B-Chat-v0.4"}
    assert len({e.source_id for e in mlx}) == 1
    for e in mlx:
        assert e.needs_conversion
        assert {"config.json", "model.safetensors", "tokenizer.model"} <= set(e.allow_patterns)
        assert "pytorch_model.bin" not in e.allow_patterns  # the 4.4 GB pickle twin is never fetched


def test_every_entry_is_chatml_with_a_2048_context_and_a_note(catalog):
    for e in catalog.entries:
        assert e.chat_format == "chatml" and e.context == 2048
        assert e.note and "\n" not in e.note and e.label


def test_no_hash_is_ever_invented(catalog):
    """A sha256 in the catalog must be a real 64-hex digest on an entry marked verified; unknown
    values are null and the entry says it is unverified (the Hub's metadata is used at download)."""
    for e in catalog.entries:
        for f in e.files:
            if f.sha256 is None:
                assert not e.verified
            else:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and e.verified
        assert e.provenance


def test_every_gguf_level_is_pinned_to_one_commit_and_six_are_verified_byte_for_byte(catalog):
    levels = catalog.levels(MODEL, "llama.cpp")
    assert {e.revision for e in levels} == {"152c6e7406bda27ccfc42137380dac5f78a53cf8"}
    verified = [e.level for e in levels if e.verified]
    assert verified == ["Q2_K", "Q3_K_M", "Q4_K_M", "Q6_K", "Q8_0", "F16"]
    for e in levels:
        f = e.files[0]
        if e.verified:
            assert f.size is not None and e.size_mb == round(f.size / 1e6)
        else:  # Q5_K_M: checked against the Hub's LFS sha256 when it is downloaded
            assert f.size is None and f.sha256 is None


def test_revisions_are_commit_shas_or_main(catalog):
    for e in catalog.entries:
        assert e.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", e.revision)


def test_levels_are_looked_up_case_insensitively(catalog):
    assert catalog.get(MODEL, "q4_k_m") is catalog.get(MODEL, "Q4_K_M")
    assert catalog.by_id("tinyllama-1.1b-chat-v0.4-q4_k_m").level == "Q4_K_M"


def test_an_unknown_level_is_a_plain_sentence(catalog):
    with pytest.raises(CatalogError, match="does not offer"):
        catalog.get(MODEL, "Q1_XS")


def test_a_custom_catalog_file_can_replace_the_packaged_one(tmp_path):
    c = Catalog.load(write_catalog(tmp_path / "c.json", [gguf_entry("me/repo", "main", "m.gguf", model="m")]))
    assert [e.id for e in c.entries] == ["m-q4_k_m"]


@pytest.mark.parametrize("content", ["", "{", "[]", '{"schema": 99, "entries": []}', '{"schema": 1}',
                                     '{"schema": 1, "entries": [{"id": "x"}]}'])
def test_a_malformed_catalog_is_refused_with_a_sentence(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CatalogError, match="could not be read"):
        Catalog.load(path)


def test_duplicate_ids_are_refused(tmp_path):
    entry = gguf_entry("me/repo", "main", "m.gguf")
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"schema": 1, "entries": [entry, entry]}))
    with pytest.raises(CatalogError, match="twice"):
        Catalog.load(path)


# --- recognising a GGUF file as a catalog level ------------------------------------------------------


def published_header(tmp_path, level: str, shape: str = "tinyllama", **kind) -> tuple[dict, list[bytes] | None]:
    """The header of a file shaped like the published v0.4 GGUF at `level` (no tensors: only the
    header is read), as gguf_inspect reads it: its metadata and its token list."""
    from engine.gguf_inspect import read_header
    from tests.fixtures.gguf_model import SHAPES, write_gguf

    path = write_gguf(tmp_path / f"{level}.gguf", SHAPES[shape], dtype=level, header_only=True, **kind)
    header = read_header(path)
    return header.metadata, header.tokens


@pytest.mark.parametrize("level", ["Q2_K", "Q4_K_M", "Q6_K", "Q8_0", "F16"])
def test_a_published_file_is_recognised_as_tinyllama_at_its_level(catalog, tmp_path, level):
    entry = catalog.match_gguf(*published_header(tmp_path, level, published=True))
    assert entry is not None and entry.model == MODEL and entry.level == level
    assert entry.label == f"TinyLlama 1.1B Chat v0.4 · {level}"


def test_recognition_does_not_depend_on_how_the_file_types_its_added_tokens(catalog, tmp_path):
    assert catalog.match_gguf(*published_header(tmp_path, "Q4_K_M")).level == "Q4_K_M"


def test_other_models_and_levels_the_catalog_lacks_are_not_recognised(catalog, tmp_path):
    assert catalog.match_gguf(*published_header(tmp_path, "Q4_K_M", shape="tiny", published=True)) is None
    assert catalog.match_gguf(*published_header(tmp_path, "Q4_K_M", chatml=False)) is None  # a 32001 vocab
    assert catalog.match_gguf(*published_header(tmp_path, "F32", published=True)) is None  # not offered
    meta, tokens = published_header(tmp_path, "Q4_K_M", published=True)
    assert catalog.match_gguf({**meta, "llama.block_count": 24}, tokens) is None
    assert catalog.match_gguf(meta, None) is None


@pytest.mark.parametrize("level", ["Q4_K_M", "Q8_0"])
def test_llama_cpps_quantizer_writes_the_level_recognition_reads(level):
    from engine.gguf_inspect import file_type_name, read_header
    from tests.fixtures.gguf_model import build_cached

    meta = read_header(build_cached("small", level, published=True)).metadata
    assert file_type_name(meta["general.file_type"]) == level
