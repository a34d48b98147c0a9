"""Draws the TinyChat app icon and writes every format the installers need into `assets/`.

`tinychat.png` (512 px, Linux and the window icon), `tinychat.ico` (Windows: 16–256 px) and `tinychat.icns`
(macOS). Drawn with Qt so no image tool is needed; run it again only when the design changes:
`QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py` (a script, not a module:
a `packaging` package would shadow the PyPI library of that name).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QImageWriter, QLinearGradient, QPainter, QPainterPath

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def draw(size: int) -> QImage:
    """The icon at `size` pixels: a speech bubble with three dots on a blue rounded square."""
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 512
    grad = QLinearGradient(0, 0, 0, size)
    grad.setColorAt(0, QColor("#4f8ef7"))
    grad.setColorAt(1, QColor("#2755c9"))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(grad)
    p.drawRoundedRect(QRectF(24 * s, 24 * s, 464 * s, 464 * s), 104 * s, 104 * s)

    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(104 * s, 128 * s, 304 * s, 212 * s), 64 * s, 64 * s)
    tail = QPainterPath()
    tail.moveTo(QPointF(168 * s, 320 * s))
    tail.lineTo(QPointF(148 * s, 402 * s))
    tail.lineTo(QPointF(244 * s, 330 * s))
    tail.closeSubpath()
    p.setBrush(QColor("white"))
    p.drawPath(bubble.united(tail))

    p.setBrush(QColor("#2f63d6"))
    for x in (184, 256, 328):
        p.drawEllipse(QPointF(x * s, 234 * s), 26 * s, 26 * s)
    p.end()
    return img


def _write(img: QImage, path: Path, fmt: str) -> None:
    writer = QImageWriter(str(path), fmt.encode())
    if not writer.write(img):
        raise SystemExit(f"could not write {path}: {writer.errorString()}")


def main() -> int:
    """Write tinychat.png, tinychat.ico and tinychat.icns into assets/."""
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    ASSETS.mkdir(exist_ok=True)
    _write(draw(512), ASSETS / "tinychat.png", "png")
    # Qt's ico writer stores one image per file; Windows wants several sizes, so build the container here.
    _write_ico([draw(n) for n in ICO_SIZES], ASSETS / "tinychat.ico")
    _write(draw(1024), ASSETS / "tinychat.icns", "icns")
    del app
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
