"""The local model registry: installed models, one-call level switching, delete, disk usage,
verification, importing a user's GGUF, and the MLX path (original snapshot → local conversion)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.download import TransferSettings
from engine.models import MANIFEST, ModelManager
from engine.types import (
    DownloadCancelled,
    DownloadError,
    EngineError,
    GenerationParams,
    LoadOptions,
    Message,
    ModelFileError,
)
from tests.fakehub import FakeHub, gguf_entry, mlx_entry, write_catalog
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.hf_model import build_hf_cached
from tests.fixtures.vocab import SCRIPT_TEXT

REPO = "test/Tiny-GGUF"
HF_REPO = "test/Tiny-HF"
SETTINGS = TransferSettings(backoff_base_s=0.01, retries=2, margin_bytes=0, report_interval_s=0)
LEVELS = {"Q4_K_M": "tiny.q4_k_m.gguf", "Q8_0": "tiny.q8_0.gguf"}
SNAPSHOT = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    return {name: build_cached("small", level, scripted=True) for level, name in LEVELS.items()}


@pytest.fixture
def hub(files: dict[str, Path]):
    with FakeHub() as h:
        h.commit = h.add_repo(REPO, {**files, "README.md": b"# tiny\n"})
        hf = build_hf_cached("tiny")
        h.hf_commit = h.add_repo(HF_REPO, {**{p.name: p for p in hf.iterdir()}, "pytorch_model.bin": b"\0" * 5000,
                                           "README.md": b"# original\n"})
        yield h


@pytest.fixture
def mm(tmp_path: Path, hub: FakeHub) -> ModelManager:
    entries = [gguf_entry(REPO, hub.commit, name, level=level) for level, name in LEVELS.items()]
    entries.append(mlx_entry(HF_REPO, "main", SNAPSHOT, bits=4))
    catalog = Catalog.load(write_catalog(tmp_path / "catalog.json", entries))
    return ModelManager(tmp_path / "models", catalog, endpoint=hub.endpoint, settings=SETTINGS, stall_timeout=5)


def test_a_fresh_models_folder_has_nothing_installed(mm):
    assert mm.installed() == () and mm.disk_usage() == ()


def test_switching_levels_is_one_call_each_and_both_stay_installed(mm, files):
    q4 = mm.ensure_available("tiny", "Q4_K_M")
    q8 = mm.ensure_available("tiny", "q8_0")
    assert q4.read_bytes() == files["tiny.q4_k_m.gguf"].read_bytes()
    assert q8.read_bytes() == files["tiny.q8_0.gguf"].read_bytes()
    assert {(m.level, m.path) for m in mm.installed()} == {("Q4_K_M", q4), ("Q8_0", q8)}
    info = mm.find("tiny", "Q8_0").model_info()
    assert (info.path, info.engine, info.quant, info.chat_format, info.n_ctx) == (q8, "llama.cpp", "Q8_0", "chatml",
                                                                                 2048)


def test_an_installed_level_returns_at_once_without_touching_the_network(mm, hub):
    path = mm.ensure_available("tiny", "Q4_K_M")
    hub.stop()
    hub.reset_counters()
    seen = []
    assert mm.ensure_available("tiny", "Q4_K_M", progress=seen.append) == path
    assert hub.requests == []
    assert [p.phase for p in seen] == ["done"]


def test_a_downloaded_model_loads_and_answers_with_llama_cpp(mm):
    from engine.llamacpp_backend import LlamaCppEngine

    mm.ensure_available("tiny", "Q4_K_M")
    engine = LlamaCppEngine()
    engine.load(mm.find("tiny", "Q4_K_M").model_info(), LoadOptions(n_threads=1))
    try:
        chunks = engine.generate([Message("user", "hi")], GenerationParams(temperature=0), threading.Event())
        text = "".join(c.text for c in chunks)
    finally:
        engine.unload()
    assert text == SCRIPT_TEXT


def test_delete_frees_the_space_and_forgets_the_model(mm, files):
    mm.ensure_available("tiny", "Q4_K_M")
    freed = mm.delete("tiny-q4_k_m")
    assert freed >= files["tiny.q4_k_m.gguf"].stat().st_size
    assert mm.installed() == () and mm.find("tiny", "Q4_K_M") is None
    assert not (mm.root / "llama.cpp" / "tiny-q4_k_m").exists()


@pytest.mark.parametrize("bad_id", ["nope", "../catalog.json", "", "llama.cpp/../x"])
def test_deleting_something_that_is_not_there_is_a_plain_sentence(mm, bad_id):
    with pytest.raises(EngineError, match="no model called"):
        mm.delete(bad_id)


def test_disk_usage_lists_installed_models_and_partial_downloads(mm, hub, files):
    mm.ensure_available("tiny", "Q4_K_M")
    hub.faults.trickle_bps, cancel = 400_000, threading.Event()
    with pytest.raises(DownloadError):
        mm.ensure_available("tiny", "Q8_0", progress=lambda p: p.done > 100_000 and cancel.set(), cancel=cancel)
    usage = {u.id: u for u in mm.disk_usage()}
    assert usage["tiny-q4_k_m"].state == "installed"
    assert usage["tiny-q4_k_m"].bytes >= files["tiny.q4_k_m.gguf"].stat().st_size
    assert usage["tiny-q8_0"].state == "partial" and usage["tiny-q8_0"].bytes >= 100_000
    assert usage["tiny-q8_0"].label == "tiny Q8_0"
    assert mm.delete("tiny-q8_0") == usage["tiny-q8_0"].bytes  # a partial download can be thrown away too


def test_verify_detects_a_byte_changed_on_disk_after_installation(mm):
    path = mm.ensure_available("tiny", "Q4_K_M")
    assert mm.verify("tiny-q4_k_m") is True
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert mm.verify("tiny-q4_k_m") is False


def test_a_model_file_cut_short_on_disk_is_not_installed_and_is_fetched_again(mm, hub, files):
    path = mm.ensure_available("tiny", "Q4_K_M")
    path.write_bytes(path.read_bytes()[:1000])
    assert mm.installed() == ()
    assert mm.ensure_available("tiny", "Q4_K_M").read_bytes() == files["tiny.q4_k_m.gguf"].read_bytes()


def test_an_unreadable_manifest_means_not_installed_rather_than_a_crash(mm):
    path = mm.ensure_available("tiny", "Q4_K_M")
    (path.parent / MANIFEST).write_text("{ not json")
    assert mm.installed() == ()
    assert [u.state for u in mm.disk_usage()] == ["partial"]


def test_a_file_that_passes_the_checksum_but_is_no_model_is_not_installed(tmp_path, hub):
    hub.add_repo("test/Png", {"x.gguf": b"\x89PNG\r\n\x1a\n" + b"\0" * 100})
    catalog = Catalog.load(write_catalog(tmp_path / "c.json", [gguf_entry("test/Png", "main", "x.gguf")]))
    mm = ModelManager(tmp_path / "models", catalog, endpoint=hub.endpoint, settings=SETTINGS)
    with pytest.raises(DownloadError, match="not a model TinyChat can run"):
        mm.ensure_available("tiny", "Q4_K_M")
    assert mm.installed() == ()


# --- import -------------------------------------------------------------------------------------
def test_import_copies_a_valid_gguf_and_registers_it(mm, files):
    source = files["tiny.q8_0.gguf"]
    model = mm.import_gguf(source)
    assert model.kind == "imported" and model.engine == "llama.cpp" and model.level == "Q8_0"
    assert model.label == "tinychat-test-small-scripted · Q8_0"
    assert model.path.read_bytes() == source.read_bytes() and model.path != source
    assert model.context == 2048 and model.chat_format == "chatml"
    assert model in mm.installed()
    assert mm.verify(model.id) is True


def test_a_file_used_where_it_is_is_registered_without_a_copy(mm, files, tmp_path):
    source = tmp_path / "mine" / "my-model.gguf"
    source.parent.mkdir()
    source.write_bytes(files["tiny.q8_0.gguf"].read_bytes())
    model = mm.import_gguf(source, in_place=True)
    assert model.path == source.resolve() and model.level == "Q8_0"
    assert model in mm.installed() and mm.verify(model.id) is True
    assert not list(model.folder.glob("*.gguf"))  # nothing copied into the models folder
    mm.delete(model.id)  # forgetting it leaves the user's own file alone
    assert source.is_file() and mm.installed() == ()

    model = mm.import_gguf(source, in_place=True)
    source.rename(source.with_name("moved.gguf"))  # the user moved it: TinyChat no longer offers it
    assert mm.installed() == ()


def test_importing_the_same_file_twice_gives_two_separate_entries(mm, files):
    a = mm.import_gguf(files["tiny.q4_k_m.gguf"])
    b = mm.import_gguf(files["tiny.q4_k_m.gguf"])
    assert a.id != b.id and len(mm.installed()) == 2
    assert a.model != b.model  # a file the catalog does not know is a model of its own


def test_a_gguf_the_catalog_does_not_know_is_listed_under_its_own_name_at_its_real_level(mm):
    model = mm.import_gguf(build_cached("small", "Q6_K"))
    assert model.model == model.id and model.level == "Q6_K"
    assert model.label == "tinychat-test-small · Q6_K"


def test_a_file_of_tinyllama_is_recognised_as_that_catalog_level_whatever_its_name(tmp_path):
    """The TinyLlama-shaped test model is TinyLlama-1.1B-Chat-v0.4 to the catalog by its metadata (shapes,
    vocab, file type); its general.name and file name say otherwise."""
    mm = ModelManager(tmp_path / "models")  # the packaged catalog
    source = build_cached("tinyllama", "Q4_K_M")
    model = mm.import_gguf(source, in_place=True)  # hashing, not copying, 668 MB
    assert model.label == "TinyLlama 1.1B Chat v0.4 · Q4_K_M"
    assert (model.model, model.level, model.kind) == ("tinyllama-1.1b-chat-v0.4", "Q4_K_M", "imported")
    assert mm.find("tinyllama-1.1b-chat-v0.4", "Q4_K_M") == model
    assert mm.find("tinyllama-1.1b-chat-v0.4", "Q8_0") is None


def test_an_in_place_import_records_the_file_where_it_is_and_removing_it_keeps_the_file(mm, tmp_path, files):
    source = tmp_path / "mine.gguf"
    source.write_bytes(files["tiny.q8_0.gguf"].read_bytes())
    model = mm.import_gguf(source, in_place=True)
    assert model.path == source.resolve() and model.size_bytes == source.stat().st_size
    assert not any(p.suffix == ".gguf" for p in model.folder.iterdir())
    assert mm.verify(model.id) is True
    mm.delete(model.id)
    assert source.is_file() and mm.installed() == ()


def test_an_in_place_import_notices_when_the_file_is_changed_afterwards(mm, tmp_path, files):
    source = tmp_path / "mine.gguf"
    source.write_bytes(files["tiny.q8_0.gguf"].read_bytes())
    model = mm.import_gguf(source, in_place=True)
    data = bytearray(source.read_bytes())
    data[-1] ^= 0xFF
    source.write_bytes(bytes(data))
    assert mm.verify(model.id) is False


def test_a_model_with_a_template_imports_with_the_gguf_jinja_format(mm):
    from tests.fixtures.gguf_model import CHATML_TEMPLATE

    model = mm.import_gguf(build_cached("tiny", "F32", scripted=True, chat_template=CHATML_TEMPLATE))
    assert model.chat_format == "gguf-jinja"


@pytest.mark.parametrize("content", [b"", b"GGUF\x03\x00\x00\x00", b"\x89PNG\r\n\x1a\n" + b"\0" * 64])
def test_a_bad_file_is_refused_and_nothing_is_added(mm, tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError):
        mm.import_gguf(bad)
    assert mm.installed() == ()
    assert not (mm.root / "llama.cpp").exists() or not any((mm.root / "llama.cpp").iterdir())


def test_import_is_refused_when_the_disk_is_too_small(tmp_path, hub, files):
    catalog = Catalog.load(write_catalog(tmp_path / "c.json", [gguf_entry(REPO, hub.commit, "x.gguf")]))
    mm = ModelManager(tmp_path / "models", catalog, settings=SETTINGS, free_space=lambda _p: 1000)
    with pytest.raises(DownloadError, match="Not enough disk space"):
        mm.import_gguf(files["tiny.q4_k_m.gguf"])
    assert mm.installed() == ()


def test_a_cancelled_import_leaves_nothing_behind(mm, files):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadError, match="cancelled"):
        mm.import_gguf(files["tiny.q4_k_m.gguf"], cancel=cancel)
    assert mm.installed() == () and mm.disk_usage() == ()


# --- MLX: one download of the original, converted locally ----------------------------------------
def test_mlx_level_is_downloaded_once_converted_and_installed(mm, hub):
    pytest.importorskip("mlx.core")
    phases: list[str] = []
    path = mm.ensure_available("tiny", "4bit", progress=lambda p: phases.append(p.phase))
    assert path == mm.root / "mlx" / "tiny-mlx-4bit"
    assert json.loads((path / "config.json").read_text())["quantization"]["bits"] == 4
    assert {"metadata", "downloading", "converting", "done"} <= set(phases)
    assert phases.index("downloading") < phases.index("converting") < phases.index("done")
    (installed,) = mm.installed()
    assert installed.engine == "mlx" and installed.path == path
    states = {u.id: u.state for u in mm.disk_usage()}
    assert states == {"tiny-mlx-4bit": "installed", "tiny-hf": "source"}  # the original is kept for 8/16-bit
    (source,) = [m for m in mm.installed(include_sources=True) if m.kind == "source"]
    assert sorted(p.name for p in source.folder.iterdir() if p.name != MANIFEST) == sorted(SNAPSHOT)
    assert source.commit == hub.hf_commit
    kinds = {f.name: f.digest_kind for f in source.files}
    assert kinds["model.safetensors"] == "sha256" and kinds["config.json"] == "git-sha1"  # every file verified
    assert hub.served("pytorch_model.bin") == 0 and hub.served("README.md") == 0


def test_a_second_mlx_level_reuses_the_downloaded_original(mm, hub, tmp_path):
    pytest.importorskip("mlx.core")
    entries = [mlx_entry(HF_REPO, "main", SNAPSHOT, bits=b) for b in (4, 8)]
    catalog = Catalog.load(write_catalog(tmp_path / "c2.json", entries))
    mm = ModelManager(mm.root, catalog, endpoint=hub.endpoint, settings=SETTINGS)
    mm.ensure_available("tiny", "4bit")
    hub.reset_counters()
    path = mm.ensure_available("tiny", "8bit")
    assert json.loads((path / "config.json").read_text())["quantization"]["bits"] == 8
    assert hub.requests == []  # converted from the kept original, no second download


def test_a_second_download_of_the_same_model_is_refused_while_one_runs(mm, hub):
    # What another TinyChat process holds during its download (flock: per open file, so this is a real clash).
    with mm.installer.exclusive("tiny-q4_k_m"), pytest.raises(DownloadError, match="already being downloaded"):
        mm.ensure_available("tiny", "Q4_K_M")
    assert hub.served("tiny.q4_k_m.gguf") == 0
    assert mm.ensure_available("tiny", "Q4_K_M").is_file()  # free again once the other one is done


def test_a_cancelled_conversion_is_a_cancel_and_keeps_the_original(mm, hub):
    pytest.importorskip("mlx.core")
    cancel = threading.Event()
    with pytest.raises(DownloadCancelled) as e:
        mm.ensure_available("tiny", "4bit", progress=lambda p: p.phase == "converting" and cancel.set(), cancel=cancel)
    assert e.value.message.startswith("Conversion cancelled.")
    assert {u.id: u.state for u in mm.disk_usage()} == {"tiny-hf": "source"}
    hub.reset_counters()
    assert mm.ensure_available("tiny", "4bit").is_dir()
    assert hub.requests == []  # the retry converted the kept original


def test_conversion_progress_counts_through_the_originals_real_size_and_ends_at_the_levels_size(mm, hub):
    pytest.importorskip("mlx.core")
    seen = []
    path = mm.ensure_available("tiny", "4bit", progress=seen.append)
    original = sum((build_hf_cached("tiny") / name).stat().st_size for name in SNAPSHOT)
    converting = [p for p in seen if p.phase == "converting"]
    assert converting and {p.total for p in converting} == {original}
    assert [p.done for p in converting] == sorted(p.done for p in converting)
    made = sum(p.stat().st_size for p in path.iterdir() if p.name != MANIFEST)
    assert (seen[-1].phase, seen[-1].done, seen[-1].total) == ("done", made, made)


def test_download_size_is_the_hubs_figure_until_the_original_is_kept(mm, hub, files):
    pytest.importorskip("mlx.core")
    four = mm.catalog.get("tiny", "4bit")
    original = sum((build_hf_cached("tiny") / name).stat().st_size for name in SNAPSHOT)
    assert mm.download_size(four) == original != four.size_mb * 1_000_000
    mm.ensure_available("tiny", "4bit")
    assert mm.download_size(four) == 0
    assert mm.download_size(mm.catalog.get("tiny", "Q8_0")) == files["tiny.q8_0.gguf"].stat().st_size
