"""`python -m tests.journey_app`: the real app (`app.__main__.main`), offering the levels the local fake
Hub serves instead of the packaged catalog.

The packaged catalog names the real TinyLlama files by hash, which a test cannot serve; everything
else — settings, store, downloads over HTTP, the engine — is the installed app's own code path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CATALOG_ENV = "TINYCHAT_JOURNEY_CATALOG"


def main() -> int:
    from engine.catalog import Catalog

    packaged_load = Catalog.load.__func__
    test_catalog = Path(os.environ[CATALOG_ENV])

    def load(cls: type[Catalog], path: Path | None = None) -> Catalog:
        return packaged_load(cls, path or test_catalog)

    Catalog.load = classmethod(load)  # type: ignore[method-assign]
    from app.__main__ import main as app_main

    return app_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
