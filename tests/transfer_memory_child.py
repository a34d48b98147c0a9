"""Child process for tests/test_transfer_scale.py: runs one import or export of a whole history with the
app's own code and prints its peak resident memory (ru_maxrss, KB on Linux) as JSON.

    python tests/transfer_memory_child.py import FILE DB
    python tests/transfer_memory_child.py export DB FILE
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from app.core import transfer
from app.core.store import Store


def main() -> None:
    what, first, second = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    store, _ = Store.open(second if what == "import" else first)
    try:
        if what == "import":
            count = transfer.import_file(store, first).conversations_added
        else:
            count = transfer.export_to_file(store, second)
    finally:
        store.close()
    print(json.dumps({"count": count, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
