"""Where TinyChat keeps its files, and the one switch that moves them all."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.core import paths
from app.core.logging_setup import LOG_FILENAME, setup_logging


def test_tinychat_home_puts_every_directory_under_one_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path / "portable"))
    home = tmp_path / "portable"
    found = [paths.data_dir(), paths.config_dir(), paths.cache_dir(), paths.log_dir(), paths.models_dir()]
    assert all(p.is_dir() and p.is_relative_to(home) for p in found)
    assert len(set(found)) == len(found)
    assert paths.models_dir() == paths.data_dir() / "models"
    assert paths.db_path().parent == paths.data_dir()
    assert paths.settings_path().parent == paths.config_dir()


def test_relative_tinychat_home_is_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TINYCHAT_HOME", "rel")
    assert paths.data_dir() == (tmp_path / "rel" / "data")


def test_without_tinychat_home_platformdirs_locations_named_tinychat_are_used(tmp_path: Path,
                                                                             monkeypatch) -> None:
    monkeypatch.delenv("TINYCHAT_HOME", raising=False)
    # Point the XDG variables (honoured by platformdirs on Linux) at a temp tree so nothing real is touched.
    for var, sub in (("XDG_DATA_HOME", "xd"), ("XDG_CONFIG_HOME", "xc"), ("XDG_CACHE_HOME", "xk"),
                     ("XDG_STATE_HOME", "xs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    if not str(paths.data_dir()).startswith(str(tmp_path)):
        pytest.skip("platformdirs on this OS does not follow XDG variables")
    assert paths.data_dir() == tmp_path / "xd" / "TinyChat"
    assert paths.config_dir() == tmp_path / "xc" / "TinyChat"
    assert paths.cache_dir() == tmp_path / "xk" / "TinyChat"
    assert paths.log_dir().is_relative_to(tmp_path) and paths.log_dir().is_dir()


def test_logging_goes_to_a_file_in_the_log_dir_and_a_second_setup_adds_no_handlers(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        path = setup_logging()
        count = len(root.handlers)
        assert setup_logging() == path
        assert len(root.handlers) == count
        logging.getLogger("tinychat.test").info("a line worth keeping")
        for h in root.handlers:
            h.flush()
        assert path == paths.log_dir() / LOG_FILENAME
        assert "a line worth keeping" in path.read_text(encoding="utf-8")
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
                h.close()
