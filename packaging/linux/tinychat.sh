#!/bin/sh
# /usr/bin/tinychat: TinyChat itself is the self-contained folder /opt/tinychat (PyInstaller onedir).
exec /opt/tinychat/tinychat "$@"
