"""Fixtures shared by the GUI tests that download from the fake Hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakehub import FakeHub


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake Hub serving the generated models of the GUI tests' catalog (test files that need a
    differently stocked hub define their own `hub`)."""
    from tests.gui_app import publish

    with FakeHub() as h:
        h.commit = publish(h)
        yield h


@pytest.fixture
def hub_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub: FakeHub) -> Path:
    """A private TINYCHAT_HOME (returned) whose downloads go to the fake Hub: no token, no xet,
    no model forced by TINYCHAT_MODEL."""
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("TINYCHAT_MODEL", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private X display with a session bus and an accessibility bus, for journey tests."""
    from tests.journey import journey_desktop, missing_tools

    missing = missing_tools()
    if missing:
        pytest.fail(f"journey tests need the desktop tools `make deps` installs: {missing}")
    yield from journey_desktop(tmp_path_factory.mktemp("desktop"))
