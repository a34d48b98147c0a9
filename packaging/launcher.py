"""Entry script of the frozen app: PyInstaller runs this file as `__main__`.

One executable, two commands: started through its `tinychat-engine` link (Linux builds) it is the engine's
command line, otherwise TinyChat itself. The engine costs nothing extra: the app bundles all of it anyway.
"""

import os
import sys

if os.path.basename(sys.argv[0]) == "tinychat-engine":
    from engine.cli import main
else:
    from app.__main__ import main

sys.exit(main())
