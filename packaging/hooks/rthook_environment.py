"""PyInstaller runtime hook: give programs TinyChat launches the user's environment, not the bundle's.

On Linux the bootloader points LD_LIBRARY_PATH at the bundle (keeping the user's value in
LD_LIBRARY_PATH_ORIG). The dynamic loader read it once at start-up, so TinyChat itself is unaffected by
restoring it here; without this, a link or folder opened through xdg-open would start the browser or file
manager with TinyChat's Qt and glib libraries, and such programs crash or misbehave.
"""

import os
import sys

if sys.platform.startswith("linux"):
    _orig = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if _orig is not None:
        os.environ["LD_LIBRARY_PATH"] = _orig
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
