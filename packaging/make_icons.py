"""Renders TinyChat's icon from its one source, the hand-drawn vector `assets/tinychat.svg`, in every format.

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py            # assets/ (design changes)
    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py --hicolor DIR  # at build time

Without arguments it rewrites the checked-in `tinychat.png` (512 px, the window icon), `tinychat.ico`
(Windows: 16–256 px) and `tinychat.icns` (macOS). `--hicolor DIR` writes the freedesktop icon theme tree
the Linux packages install: `DIR/hicolor/NxN/apps/tinychat.png` for every size desktops look for, and the
SVG itself as `DIR/hicolor/scalable/apps/tinychat.svg`. A script, not a module: a `packaging` package would
shadow the PyPI library of that name.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SOURCE = ASSETS / "tinychat.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# The sizes of the hicolor theme's fixed-size folders that desktops (GNOME, KDE, Xfce) look in first.
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def render(size: int) -> QImage:
    """The icon at `size`×`size` pixels, drawn from the SVG."""
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        raise SystemExit(f"{SOURCE} is not an SVG image Qt can draw")
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(p)
    p.end()
    return img


def write_hicolor(dest: Path) -> list[Path]:
    """Write the hicolor tree under `dest`; returns the files written."""
    written = []
    for size in HICOLOR_SIZES:
        path = dest / "hicolor" / f"{size}x{size}" / "apps" / "tinychat.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(render(size), path, "png")
        written.append(path)
    scalable = dest / "hicolor" / "scalable" / "apps" / "tinychat.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE, scalable)
    return [*written, scalable]


def write_assets() -> None:
    """Rewrite tinychat.png, tinychat.ico and tinychat.icns in assets/."""
    _write(render(512), ASSETS / "tinychat.png", "png")
    # Qt's ico writer stores one image per file; Windows wants several sizes, so build the container here.
    _write_ico([render(n) for n in ICO_SIZES], ASSETS / "tinychat.ico")
    _write(render(1024), ASSETS / "tinychat.icns", "icns")


def _write(img: QImage, path: Path, fmt: str) -> None:
    writer = QImageWriter(str(path), fmt.encode())
    if not writer.write(img):
        raise SystemExit(f"could not write {path}: {writer.errorString()}")


def _write_ico(images: list[QImage], path: Path) -> None:
    """An .ico holding one PNG-compressed image per size (valid since Windows Vista)."""
    blobs = []
    for img in images:
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        img.save(buf, "PNG")
        blobs.append(bytes(data.data()))
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries = b""
    for img, blob in zip(images, blobs, strict=True):
        side = img.width() if img.width() < 256 else 0  # 0 means 256 in the ICO format
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
    path.write_bytes(header + entries + b"".join(blobs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hicolor", type=Path, metavar="DIR", help="write the hicolor icon tree under DIR")
    args = ap.parse_args(argv)
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    if args.hicolor:
        write_hicolor(args.hicolor)
    else:
        write_assets()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
