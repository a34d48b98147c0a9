"""A separate process that downloads one catalog level, for tests that kill it, fill its disk, or
start it with `HF_HUB_OFFLINE=1` like the app does. Prints one JSON line: what happened.

    python -m tests.download_child CATALOG ROOT ENDPOINT MODEL LEVEL [--stall-timeout S] [--free-space-lie]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    for name in ("catalog", "root", "endpoint", "model", "level"):
        ap.add_argument(name)
    ap.add_argument("--stall-timeout", type=float, default=5.0)
    ap.add_argument("--free-space-lie", action="store_true", help="report a huge free space (a disk that fills later)")
    args = ap.parse_args()

    import huggingface_hub.constants as hf_constants
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.utils import get_session

    from engine.catalog import Catalog
    from engine.download import TransferSettings
    from engine.models import ModelManager
    from engine.types import DownloadError

    # The app's guard stays in force for every other caller: huggingface_hub's own session refuses.
    try:
        get_session().get(args.endpoint)
        hf_session_refused = False
    except OfflineModeIsEnabled:
        hf_session_refused = True
    report: dict = {"hf_offline": hf_constants.HF_HUB_OFFLINE, "hf_session_refused": hf_session_refused}
    kw = {"free_space": lambda _p: 1 << 50} if args.free_space_lie else {}
    mm = ModelManager(Path(args.root), Catalog.load(Path(args.catalog)), endpoint=args.endpoint,
                      settings=TransferSettings(backoff_base_s=0.01, retries=2, margin_bytes=0),
                      stall_timeout=args.stall_timeout, **kw)
    try:
        report["path"] = str(mm.ensure_available(args.model, args.level))
        code = 0
    except DownloadError as e:
        report["error"] = e.message
        code = 1
    parts = list(Path(args.root).rglob("*.part"))
    report["part_size"] = parts[0].stat().st_size if parts else None
    print(json.dumps(report), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
