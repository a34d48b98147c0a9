"""Looks at and operates one running app through the accessibility bus (AT-SPI), as a screen reader does.

Runs under Debian's own Python (`/usr/bin/python3`), where `python3-pyatspi` is installed: the project's
venv may be another CPython build, and PyGObject is a compiled module of the system Python. So this file
imports nothing from the project; `tests/journey.py` starts it and talks to it in JSON lines on
stdin/stdout:

    {"op": "find", "role": "push button", "name": "Send"}   →  {"ok": true, "result": [node, ...]}

A node is a dict (path, role, name, id, description, states) where `path` is the chain of child indices
from the application; `press`, `set_text`, `text`, `focus` take that path. Only showing nodes are searched
unless asked otherwise, because a hidden widget is not something a person can see or press.
"""

from __future__ import annotations

import json
import sys
import time

import pyatspi
from gi.repository import GLib

STATES = {
    pyatspi.STATE_SHOWING: "showing", pyatspi.STATE_FOCUSED: "focused", pyatspi.STATE_SELECTED: "selected",
    pyatspi.STATE_CHECKED: "checked", pyatspi.STATE_ENABLED: "enabled", pyatspi.STATE_ACTIVE: "active",
    pyatspi.STATE_EDITABLE: "editable",
}
KEYSYMS = {"Return": 0xFF0D, "Escape": 0xFF1B, "Tab": 0xFF09, "F2": 0xFFBF, "Down": 0xFF54, "Up": 0xFF52,
           "Delete": 0xFFFF, "BackSpace": 0xFF08}
MAX_NODES = 5000  # a runaway tree is a failure to report, not a reason to hang


class Driver:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.app = None
        # Qt lists pop-up menus (a context menu) under no window: like a screen reader, learn of them
        # from the events they send when they appear.
        self.popups: list = []
        pyatspi.Registry.registerEventListener(self._on_event, "object:state-changed:showing", "window:create",
                                               "object:state-changed:focused")

    def _on_event(self, event) -> None:
        try:
            acc = event.source
            while acc is not None and acc.getRoleName() not in ("popup menu", "menu", "application"):
                acc = acc.parent
            if (acc is not None and acc.getRoleName() != "application" and acc not in self.popups
                    and acc.get_process_id() == self.pid):
                self.popups.append(acc)
        except Exception:  # the source vanished before we looked
            pass

    def pump(self) -> None:
        """Deliver the accessibility events that arrived since the last request."""
        context = GLib.MainContext.default()
        while context.pending():
            context.iteration(False)

    def attach(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            desktop = pyatspi.Registry.getDesktop(0)
            for app in desktop:
                try:
                    if app is not None and app.get_process_id() == self.pid:
                        self.app = app
                        return
                except Exception:  # an app that is going away while we look
                    continue
            time.sleep(0.1)
        raise TimeoutError(f"no application with process id {self.pid} appeared on the accessibility bus")

    # ------------------------------------------------------------------ nodes
    def node(self, path: list[int]):
        """Index chains start at the application; a negative first index -k-1 is pop-up menu k."""
        acc = self.app
        if path and path[0] < 0:
            acc, path = self.popups[-path[0] - 1], path[1:]
        for i in path:
            acc = acc.getChildAtIndex(i)
            if acc is None:
                raise LookupError(f"no node at {path}: the window changed")
        return acc

    @staticmethod
    def describe(acc, path: list[int], with_text: bool = False) -> dict:
        state = acc.getState()
        out = {"path": path, "role": acc.getRoleName(), "name": acc.name or "",
               "description": acc.description or "", "id": _accessible_id(acc),
               "states": [n for s, n in STATES.items() if state.contains(s)]}
        if with_text:
            out["text"] = _text_of(acc)
        return out

    def walk(self, root: list[int], showing: bool):
        """(accessible, path) for every node under `root`, depth first, pruning hidden subtrees; with no
        root, the application and then any pop-up menu."""
        stack = [(self.node(root), list(root))]
        if not root:
            stack += [(p, [-i - 1]) for i, p in reversed(list(enumerate(self.popups)))]
        seen = 0
        while stack:
            acc, path = stack.pop()
            seen += 1
            if seen > MAX_NODES:
                raise RuntimeError(f"the accessibility tree has more than {MAX_NODES} nodes")
            if showing and path and not _showing(acc):
                continue
            yield acc, path
            kids = []
            for i in range(acc.childCount):
                child = acc.getChildAtIndex(i)
                if child is not None:
                    kids.append((child, [*path, i]))
            stack.extend(reversed(kids))

    # ------------------------------------------------------------------- ops
    def op_find(self, role: str | None = None, name: str | None = None, name_contains: str | None = None,
                id_suffix: str | None = None, id_contains: str | None = None, root: list[int] | None = None,
                showing: bool = True, with_text: bool = False, with_extents: bool = False,
                limit: int = 0) -> list[dict]:
        found = []
        for acc, path in self.walk(root or [], showing):
            if role is not None and acc.getRoleName() != role:
                continue
            if name is not None and (acc.name or "") != name:
                continue
            if name_contains is not None and name_contains not in (acc.name or ""):
                continue
            if id_suffix is not None and not _accessible_id(acc).endswith(id_suffix):
                continue
            if id_contains is not None and id_contains not in _accessible_id(acc):
                continue
            node = self.describe(acc, path, with_text)
            if with_extents:
                box = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
                node["extents"] = [box.x, box.y, box.width, box.height]
            found.append(node)
            if limit and len(found) >= limit:
                break
        return found

    def op_tree(self, root: list[int] | None = None, showing: bool = True) -> str:
        lines = []
        base = len(root or [])
        for acc, path in self.walk(root or [], showing):
            d = self.describe(acc, path)
            about = f" ({d['description']})" if d["description"] else ""
            lines.append("  " * (len(path) - base) + f"{d['role']} {d['name']!r}{about} [{d['id']}] {d['states']}")
        return "\n".join(lines)

    def op_press(self, path: list[int], action: str = "Press") -> None:
        acc = self.node(path)
        act = acc.queryAction()
        names = [act.getName(i) for i in range(act.nActions)]
        if action not in names:
            raise LookupError(f"{acc.getRoleName()} {acc.name!r} has no {action!r} action (it has {names})")
        act.doAction(names.index(action))

    def op_set_text(self, path: list[int], text: str) -> None:
        acc = self.node(path)
        if not acc.queryEditableText().setTextContents(text):
            raise RuntimeError(f"{acc.getRoleName()} {acc.name!r} refused the text")

    def op_text(self, path: list[int]) -> str:
        return _text_of(self.node(path))

    def op_focus(self, path: list[int]) -> None:
        self.node(path).queryComponent().grabFocus()

    def op_key(self, key: str) -> None:
        keysym = KEYSYMS[key] if key in KEYSYMS else ord(key)
        pyatspi.Registry.generateKeyboardEvent(keysym, None, pyatspi.KEY_SYM)

    def op_type(self, text: str) -> None:
        """Type `text` on the keyboard into whatever has the focus."""
        pyatspi.Registry.generateKeyboardEvent(0, text, pyatspi.KEY_STRING)

    def op_click(self, path: list[int], button: int = 1) -> None:
        """A mouse click in the middle of the node, as a person clicks it (XTest on the X display)."""
        box = self.node(path).queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        if box.width <= 0 or box.height <= 0:
            raise LookupError("the node has no area on screen to click")
        x, y = box.x + box.width // 2, box.y + box.height // 2
        pyatspi.Registry.generateMouseEvent(x, y, "abs")
        pyatspi.Registry.generateMouseEvent(x, y, f"b{button}c")

    def op_text_extents(self, path: list[int]) -> list[int]:
        """Where the first and the last character of the node's text are drawn: [x0, x1] on screen."""
        text = self.node(path).queryText()
        n = text.characterCount
        if n == 0:
            return []
        first = text.getCharacterExtents(0, pyatspi.DESKTOP_COORDS)
        last = text.getCharacterExtents(n - 1, pyatspi.DESKTOP_COORDS)
        return [first[0], last[0] + last[2]]

    def op_wheel(self, path: list[int], notches: int) -> None:
        """Turn the mouse wheel over the middle of the node: up for notches > 0, down for < 0."""
        box = self.node(path).queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        x, y = box.x + box.width // 2, box.y + box.height // 2
        pyatspi.Registry.generateMouseEvent(x, y, "abs")
        for _ in range(abs(notches)):
            pyatspi.Registry.generateMouseEvent(x, y, "b4c" if notches > 0 else "b5c")

    def op_extents(self, path: list[int]) -> list[int]:
        box = self.node(path).queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        return [box.x, box.y, box.width, box.height]


def _showing(acc) -> bool:
    try:
        return acc.getState().contains(pyatspi.STATE_SHOWING)
    except Exception:  # a pop-up that closed
        return False


def _accessible_id(acc) -> str:
    try:
        return acc.get_accessible_id() or ""
    except Exception:  # older at-spi without accessible ids
        return ""


def _text_of(acc) -> str:
    try:
        t = acc.queryText()
    except NotImplementedError:
        return acc.name or ""
    return t.getText(0, -1)


def main() -> int:
    driver = Driver(int(sys.argv[1]))
    try:
        driver.attach(float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)
        print(json.dumps({"ok": True}), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "error": str(e)}), flush=True)
        return 1
    for line in sys.stdin:
        request = json.loads(line)
        driver.pump()
        op = getattr(driver, "op_" + request.pop("op"))
        try:
            reply = {"ok": True, "result": op(**request)}
        except Exception as e:  # the test sees what went wrong, and the driver keeps serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
