"""The application's and its libraries' versions, below everything that shows them (CLI, About,
diagnostics, the self-test)."""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import PackageNotFoundError, version

NOT_INSTALLED = "not installed"
# (shown name, distribution name, module whose __version__ says the same): the libraries a bug report needs.
LIBRARIES: tuple[tuple[str, str, str], ...] = (
    ("PySide6", "PySide6-Essentials", "PySide6"),
    ("llama-cpp-python", "llama_cpp_python", "llama_cpp"),
    ("MLX", "mlx", "mlx.core"),
    ("mlx-lm", "mlx-lm", "mlx_lm"),
)


def app_version() -> str:
    """The installed package version ("dev" when running from an uninstalled tree)."""
    try:
        return version("tinychat")
    except PackageNotFoundError:
        return "dev"


def library_version(dist: str, module: str) -> str:
    """The version of an installed library: its package metadata, else the module's own `__version__`
    (a frozen app carries the modules but usually not their metadata), else "not installed"."""
    try:
        return version(dist)
    except PackageNotFoundError:
        pass
    try:
        if importlib.util.find_spec(module) is None:
            return NOT_INSTALLED
        found = getattr(importlib.import_module(module), "__version__", None)
    except (ImportError, ValueError):  # a parent package missing, or a module that fails to import
        return NOT_INSTALLED
    return str(found) if found else "installed, version unknown"


def library_versions() -> dict[str, str]:
    """Shown name → version of every library in LIBRARIES."""
    return {name: library_version(dist, module) for name, dist, module in LIBRARIES}
