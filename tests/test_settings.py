"""Settings survive bad files, bad values, newer versions and crashes mid-write."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.settings import (
    PRESETS,
    Sampling,
    Settings,
    SettingsError,
    load_settings,
    preset_name_for,
    save_settings,
)


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    settings, warnings = load_settings(tmp_path / "settings.json")
    assert settings == Settings()
    assert warnings == []
    assert (settings.engine, settings.quant, settings.context_policy) == ("auto", "Q4_K_M", "drop-oldest")


def test_saved_settings_load_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    settings = replace(Settings(), engine="llama.cpp", quant="Q8_0", chat_format="llama-2",
                       system_prompt="Be brief. é世🎉", n_threads=2, theme="dark", font_size=14,
                       sampling=Sampling(temperature=0.3, seed=42, max_tokens=100))
    save_settings(settings, path)
    loaded, warnings = load_settings(path)
    assert loaded == settings
    assert warnings == []


def test_unknown_keys_from_a_newer_version_are_kept_on_save(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"theme": "light", "future_feature": {"x": [1, 2]}, "version": 7}))
    settings, _ = load_settings(path)
    assert settings.extra == {"future_feature": {"x": [1, 2]}}
    save_settings(replace(settings, font_size=13), path)
    data = json.loads(path.read_text())
    assert data["future_feature"] == {"x": [1, 2]}
    assert data["font_size"] == 13 and data["theme"] == "light"


def test_bad_values_become_defaults_with_a_log_line_and_good_values_stay(tmp_path: Path, caplog) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "engine": "cuda", "font_size": "huge", "theme": "dark", "n_threads": 0, "quant": "",
        "sampling": {"temperature": 9.5, "top_k": 10, "seed": -1, "top_p": True},
    }))
    with caplog.at_level(logging.WARNING, logger="app.core.settings"):
        settings, warnings = load_settings(path)
    defaults = Settings()
    assert settings.engine == defaults.engine
    assert settings.font_size == defaults.font_size
    assert settings.n_threads is None and settings.quant == "Q4_K_M"
    assert settings.theme == "dark"
    assert settings.sampling == replace(Sampling(), top_k=10)
    bad_keys = ("engine", "font_size", "n_threads", "quant", "sampling.temperature", "sampling.seed",
                "sampling.top_p")
    assert len(warnings) == len(bad_keys)
    for key in bad_keys:
        assert any(key in record.getMessage() for record in caplog.records), key


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"", b"[" * 100000])
def test_unreadable_file_is_kept_as_bad_and_defaults_are_used(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    settings, warnings = load_settings(path)
    assert settings == Settings()
    assert not path.exists()
    assert (tmp_path / "settings.json.bad").read_bytes() == content
    assert len(warnings) == 1 and "settings.json.bad" in warnings[0]


def test_a_second_bad_file_does_not_overwrite_the_first_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{first")
    load_settings(path)
    path.write_text("{second")
    load_settings(path)
    kept = sorted(p.read_text() for p in tmp_path.glob("settings.json*.bad"))
    assert kept == ["{first", "{second"]


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_settings(Settings(), path)
    inode_before = path.stat().st_ino
    save_settings(replace(Settings(), font_size=20), path)
    assert path.stat().st_ino != inode_before  # a new file was renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    assert json.loads(path.read_text())["font_size"] == 20


def test_save_into_an_unwritable_place_raises_settings_error_with_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the config directory should be")
    with pytest.raises(SettingsError) as info:
        save_settings(Settings(), blocker / "settings.json")
    assert "could not be saved" in info.value.message
    assert blocker.read_text().startswith("a file")


def test_presets_differ_and_are_recognised_from_their_values() -> None:
    assert set(PRESETS) == {"Precise", "Balanced", "Creative"}
    assert PRESETS["Precise"].temperature < PRESETS["Balanced"].temperature < PRESETS["Creative"].temperature
    settings = replace(Settings(), sampling=Sampling(max_tokens=300, seed=5)).with_preset("Creative")
    assert settings.sampling_preset == "Creative"
    assert settings.sampling.max_tokens == 300 and settings.sampling.seed == 5
    assert preset_name_for(settings.sampling) == "Creative"
    assert preset_name_for(replace(settings.sampling, temperature=0.55)) == "Custom"


def test_sampling_becomes_engine_generation_params() -> None:
    sampling = Sampling(temperature=0.2, top_p=0.9, top_k=5, repeat_penalty=1.3, max_tokens=64, seed=7)
    params = sampling.to_params()
    assert (params.temperature, params.top_p, params.top_k, params.repeat_penalty, params.max_tokens,
            params.seed) == (0.2, 0.9, 5, 1.3, 64, 7)


def test_settings_file_is_utf8_json_readable_by_other_tools(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_settings(replace(Settings(), system_prompt="Réponds en français 🎉"), path)
    assert "Réponds en français 🎉" in path.read_text(encoding="utf-8")


def test_context_policy_reaches_the_engine_with_the_sampling_values():
    from app.core.settings import Settings

    keep = Settings().generation_params()
    refuse = replace(Settings(), context_policy="refuse").with_preset("Creative").generation_params()
    assert keep.forget_oldest and not refuse.forget_oldest
    assert refuse.temperature == Settings().with_preset("Creative").sampling.temperature


def test_server_and_remote_settings_round_trip_and_bad_values_fall_back(tmp_path):
    from app.core.settings import RemoteSettings, ServeSettings

    path = tmp_path / "settings.json"
    s = Settings(serve=ServeSettings(enabled=True, port=9000, lan=True, api_key="k"),
                 remote=RemoteSettings(enabled=True, url="http://10.0.0.2:8000/v1", model="m"))
    save_settings(s, path)
    assert load_settings(path) == (s, [])
    path.write_text('{"serve": {"enabled": "yes", "port": 70000}, "remote": "http://x"}')
    loaded, warnings = load_settings(path)
    assert loaded.serve == ServeSettings() and loaded.remote == RemoteSettings()
    assert len(warnings) == 3


@pytest.mark.parametrize(("stored", "loaded", "warned"), [(True, True, False), (False, False, False),
                                                          ("yes", False, True), (1, False, True)])
def test_airplane_mode_is_off_unless_stored_as_true(tmp_path: Path, stored: object, loaded: bool,
                                                    warned: bool) -> None:
    assert Settings().airplane_mode is False
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"airplane_mode": stored}))
    settings, warnings = load_settings(path)
    assert settings.airplane_mode is loaded and bool(warnings) is warned
    save_settings(settings, path)
    assert json.loads(path.read_text())["airplane_mode"] is loaded


def test_the_saved_state_cap_and_prompt_lookup_round_trip_and_reach_the_engine(tmp_path: Path) -> None:
    assert Settings().saved_states_cap == 2 * 2**30  # the engine's default cap, 2 GB
    path = tmp_path / "settings.json"
    s = replace(Settings(), saved_states_cap_mb=300, prompt_lookup=not Settings().prompt_lookup)
    save_settings(s, path)
    assert load_settings(path) == (s, [])
    assert s.saved_states_cap == 300 * 2**20
    assert s.generation_params().prompt_lookup is False  # off
    assert replace(s, prompt_lookup=True).generation_params().prompt_lookup is None  # on: where it pays


@pytest.mark.parametrize("stored", [-1, "big", 1.5, True, 10**9])
def test_a_bad_saved_state_cap_falls_back_to_2_gb_with_a_warning(tmp_path: Path, stored: object) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"saved_states_cap_mb": stored, "prompt_lookup": "no"}))
    settings, warnings = load_settings(path)
    assert settings.saved_states_cap_mb == 2048 and settings.prompt_lookup is Settings().prompt_lookup
    assert len(warnings) == 2
