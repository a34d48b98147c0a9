"""The application's version, below everything that shows it (CLI, About, diagnostics)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def app_version() -> str:
    """The installed package version ("dev" when running from an uninstalled tree)."""
    try:
        return version("tinychat")
    except PackageNotFoundError:
        return "dev"
