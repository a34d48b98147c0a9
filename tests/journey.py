"""Journey tests drive the real app as a person does: its own process on a real X display, a private
home and the local fake Hub, and everything seen or pressed found through the accessibility bus.

- `Desktop`: Xvfb, a private D-Bus session and at-spi2-core's accessibility bus (one per test session).
- `JourneyApp`: `python -m tests.journey_app` (the real app with the fake Hub's catalog; or the installed
  `tinychat`) plus
  `tests/atspi_driver.py` under Debian's Python, which reads and presses its accessibility tree.

Every wait has a timeout and says what it waited for, with the window's accessibility tree attached;
every process started here is killed when the test ends, whether it passed or not.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from app.core.settings import Settings, save_settings
from app.core.store import Store
from engine.catalog import Catalog
from engine.models import ModelManager
from tests.fakehub import FakeHub
from tests.gui_app import make_catalog, publish

REPO_ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("atspi_driver.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-pyatspi lives
BUS_LAUNCHERS = ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher")
STEP_TIMEOUT_S = 20.0  # any one wait: loading a model or a download of the ~1 MB test levels fits easily
T = TypeVar("T")


def missing_tools() -> str:
    """Why journeys cannot run on this machine ("" when they can): `make deps` installs all of these."""
    for tool in ("Xvfb", "dbus-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not any(Path(p).exists() for p in BUS_LAUNCHERS):
        return "at-spi2-core is not installed"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True)
    if probe.returncode != 0:
        return "python3-pyatspi is not installed"
    return ""


def _start(cmd: list[str], **kw: Any) -> subprocess.Popen:
    # Its own process group, so stopping it also stops what it started (the a11y bus's dbus-daemon).
    return subprocess.Popen(cmd, start_new_session=True, **kw)


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=grace_s)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _read_line(stream: Any, timeout_s: float, what: str) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout_s):
            raise TimeoutError(f"{what} did not answer within {timeout_s:.0f} s")
        line = stream.readline()
    finally:
        sel.close()
    if not line:
        raise EOFError(f"{what} ended")
    return line


class Desktop:
    """A private X display, session bus and accessibility bus; `env` is what a program needs to use them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.env: dict[str, str] = {}

    def start(self) -> Desktop:
        try:
            r, w = os.pipe()
            self.procs.append(_start(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                                     pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            os.close(w)
            with os.fdopen(r) as display_pipe:
                display = _read_line(display_pipe, 10, "Xvfb").strip()
            bus = _start(["dbus-daemon", "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
            self.procs.append(bus)
            address = _read_line(bus.stdout, 10, "dbus-daemon").strip()
            self.env = {"DISPLAY": f":{display}", "DBUS_SESSION_BUS_ADDRESS": address,
                        "XDG_RUNTIME_DIR": str(self.workdir)}
            launcher = next(p for p in BUS_LAUNCHERS if Path(p).exists())
            self.procs.append(_start([launcher, "--launch-immediately"], env={**os.environ, **self.env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()


@dataclass(frozen=True)
class Node:
    """One accessible object as the driver saw it (a snapshot: find it again after the window changes)."""

    path: tuple[int, ...]
    role: str
    name: str
    description: str
    id: str
    states: tuple[str, ...]
    text: str | None = None
    extents: tuple[int, int, int, int] | None = None  # x, y, width, height on screen

    @property
    def selected(self) -> bool:
        return "selected" in self.states

    @property
    def enabled(self) -> bool:
        return "enabled" in self.states


@dataclass
class Home:
    """A private TINYCHAT_HOME with the fake Hub's catalog; `install` puts levels on disk as a download would."""

    path: Path
    hub: FakeHub
    catalog_path: Path

    @classmethod
    def create(cls, path: Path, hub: FakeHub, settings: Settings | None = None) -> Home:
        path.mkdir(parents=True, exist_ok=True)
        home = cls(path, hub, path.parent / "journey-catalog.json")
        commit = hub.commit if hasattr(hub, "commit") else publish(hub)
        make_catalog(home.catalog_path, commit)
        save_settings(settings or replace(Settings(), engine="llama.cpp", model_id="tiny", quant="Q4_K_M"),
                      path / "config" / "settings.json")
        return home

    @property
    def env(self) -> dict[str, str]:
        return {"TINYCHAT_HOME": str(self.path), "HF_ENDPOINT": self.hub.endpoint, "HF_HUB_DISABLE_XET": "1",
                "TINYCHAT_JOURNEY_CATALOG": str(self.catalog_path)}

    def add_chat(self, title: str, turns: list[tuple[str, str]], quant: str = "Q4_K_M") -> str:
        """Store a conversation of (question, answer) turns before the app starts; returns its id."""
        store, _ = Store.open(self.path / "data" / "tinychat.db")
        try:
            conv = store.create_conversation(title=title)
            parent = None
            for question, answer in turns:
                parent = store.add_message(conv.id, parent, "user", question).id
                parent = store.add_message(conv.id, parent, "assistant", answer, quant=quant).id
            return conv.id
        finally:
            store.close()

    def install(self, *levels: str) -> None:
        manager = ModelManager(self.path / "data" / "models", Catalog.load(self.catalog_path),
                               endpoint=self.hub.endpoint)
        for level in levels:
            manager.ensure_available("tiny", level)


class JourneyApp:
    """The app under test and the driver that looks at it; use as a context manager."""

    def __init__(self, desktop: Desktop, home: Home, workdir: Path, command: list[str] | None = None) -> None:
        """`command` starts the app (default: this checkout's, with the fake Hub's catalog)."""
        self.desktop, self.home, self.workdir = desktop, home, workdir
        self.command = command or [sys.executable, "-m", "tests.journey_app"]
        self.proc: subprocess.Popen | None = None
        self.driver: subprocess.Popen | None = None

    # -------------------------------------------------------------- process
    def __enter__(self) -> JourneyApp:
        env = {k: v for k, v in os.environ.items() if k not in ("TINYCHAT_MODEL", "HF_TOKEN", "QT_QPA_PLATFORM")}
        env.update(self.desktop.env)
        env.update(self.home.env)
        env.update(QT_QPA_PLATFORM="xcb", QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1", QT_ACCESSIBILITY="1",
                   PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        if self.command[0] != sys.executable:  # an installed app brings its own Python and libraries
            for name in ("PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV"):
                env.pop(name, None)
        self.stderr_path = self.workdir / "app-stderr.txt"
        try:
            with open(self.stderr_path, "w") as err:
                self.proc = _start(self.command, env=env, cwd=REPO_ROOT,
                                   stdout=subprocess.DEVNULL, stderr=err)
            self.driver = _start([SYSTEM_PYTHON, str(DRIVER), str(self.proc.pid), str(STEP_TIMEOUT_S)],
                                 env={**os.environ, **self.desktop.env}, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            hello = json.loads(_read_line(self.driver.stdout, STEP_TIMEOUT_S + 5, "the accessibility driver"))
            if not hello["ok"]:
                raise AssertionError(f"{hello['error']}\n{self.logs()}")
            self.wait(lambda: self.main_window(), "the main window")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.driver is not None and self.driver.stdin is not None:
            self.driver.stdin.close()
        _stop(self.driver)
        _stop(self.proc, grace_s=15)  # SIGTERM closes the window the normal way

    def quit(self) -> int:
        """Close the app as the desktop does at logout; returns its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=STEP_TIMEOUT_S)

    def logs(self) -> str:
        parts = []
        for path in (self.stderr_path, self.home.path / "logs" / "tinychat.log"):
            if path.exists():
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    # --------------------------------------------------------------- driver
    def _call(self, op: str, **args: Any) -> Any:
        assert self.driver is not None and self.driver.stdin is not None
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the app exited with code {self.proc.returncode}\n{self.logs()}")
        self.driver.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.driver.stdin.flush()
        reply = json.loads(_read_line(self.driver.stdout, STEP_TIMEOUT_S, "the accessibility driver"))
        if not reply["ok"]:
            raise LookupError(reply["error"])
        return reply["result"]

    def find(self, role: str | None = None, name: str | None = None, *, within: Node | None = None,
             **match: Any) -> list[Node]:
        """Showing accessible objects by role and name (`name_contains=`, `id_suffix=`, `with_text=` too)."""
        found = self._call("find", role=role, name=name, root=list(within.path) if within else None, **match)
        return [Node(tuple(n["path"]), n["role"], n["name"], n["description"], n["id"], tuple(n["states"]),
                     n.get("text"), tuple(n["extents"]) if "extents" in n else None) for n in found]

    def tree(self, within: Node | None = None) -> str:
        return self._call("tree", root=list(within.path) if within else None)

    def wait(self, probe: Callable[[], T], what: str, timeout_s: float = STEP_TIMEOUT_S) -> T:
        """Poll `probe` until it returns something truthy; fail with `what` and the tree if it never does."""
        end = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while True:
            try:
                value = probe()
                if value:
                    return value
            except (LookupError, AssertionError) as e:  # the window changed under the probe: look again
                last_error = e
            if time.monotonic() > end:
                break
            time.sleep(0.05)
        try:
            tree = self.tree()
        except Exception as e:  # the app is gone: say that instead
            tree = f"(no tree: {e})"
        raise AssertionError(f"waited {timeout_s:.0f} s for {what}; last error: {last_error}\n"
                             f"--- what the window shows:\n{tree}\n{self.logs()}")

    def find_one(self, role: str | None = None, name: str | None = None, *, within: Node | None = None,
                 **match: Any) -> Node:
        """The one showing object that matches now (LookupError otherwise: use inside `wait`)."""
        found = self.find(role, name, within=within, **match)
        if len(found) != 1:
            raise LookupError(f"{len(found)} showing {role or 'object'}s named {name or match!r}, not one")
        return found[0]

    def one(self, role: str | None = None, name: str | None = None, *, within: Node | None = None,
            **match: Any) -> Node:
        """Wait until exactly one showing object matches, and return it."""
        return self.wait(lambda: self.find_one(role, name, within=within, **match),
                         f"one {role or 'object'} named {name or match!r}")

    # ---------------------------------------------------------------- acts
    def press(self, role: str, name: str, *, within: Node | None = None, action: str = "Press") -> None:
        """Press the one showing button (or menu item, …) called `name`, once it is enabled."""
        node = self.wait(lambda: next((n for n in self.find(role, name, within=within) if n.enabled), None),
                         f"an enabled {role} named {name!r}")
        self._call("press", path=list(node.path), action=action)

    def click(self, node: Node, button: int = 1) -> None:
        """Click the middle of `node` with the mouse (button 3: the context menu)."""
        self._call("click", path=list(node.path), button=button)

    def wheel(self, node: Node, notches: int) -> None:
        """Turn the mouse wheel over `node`: positive scrolls up, negative down."""
        self._call("wheel", path=list(node.path), notches=notches)

    def context_menu(self, node: Node, item: str) -> None:
        """Right-click `node` and click `item` in the menu that pops up."""
        self.click(node, button=3)
        target = self.wait(lambda: self._menu_items(item), f"menu item {item!r} in the context menu")[0]
        self.click(target)
        # The menu closes and then runs its action in one event: once it is gone, the action ran (an
        # editor it opened has the focus), so what is typed next cannot land in the menu.
        self.wait(lambda: not self._menu_items(item), "the context menu to close")

    def menu(self, *names: str) -> None:
        """Choose a menu item, e.g. `menu("Model", "Settings…")`, as a screen reader user does."""
        bar = self.one("menu bar", within=self.main_window())
        item = self.one("menu item", names[0], within=bar)
        self._call("press", path=list(item.path), action="ShowMenu")
        for name in names[1:-1]:
            sub = self.wait(lambda n=name: self._menu_items(n), f"menu item {name!r}")[0]
            self._call("press", path=list(sub.path), action="ShowMenu")
        target = self.wait(lambda: self._menu_items(names[-1]), f"menu item {names[-1]!r}")[0]
        self._call("press", path=list(target.path))

    def _menu_items(self, name: str) -> list[Node]:
        return [n for n in self.find("menu item", name) if n.enabled]

    def type_text(self, node: Node, text: str) -> None:
        """Replace the text of an editable field, as dictation or a paste would."""
        self._call("set_text", path=list(node.path), text=text)

    def type_keys(self, text: str) -> None:
        """Type `text` on the keyboard, into whatever has the focus."""
        self._call("type", text=text)

    def text(self, node: Node) -> str:
        """The whole text of a text box or label, as a screen reader reads it."""
        return self._call("text", path=list(node.path))

    def key(self, key: str, node: Node | None = None) -> None:
        """Press `key` (e.g. "Return", "Escape") on the keyboard, after clicking into `node` if given. Keys
        go to the window under the pointer (there is no window manager to give a window the focus)."""
        if node is not None:
            self.click(node)
            self.wait(lambda: any("focused" in n.states for n in self.find(node.role, node.name, id_suffix=node.id)),
                      f"the keyboard focus in {node.role} {node.name!r}")
        self._call("key", key=key)

    # ------------------------------------------------------------- looking
    def main_window(self) -> Node | None:
        return next((n for n in self.find("frame", id_suffix="MainWindow") if n.path and len(n.path) == 1), None)

    def title(self) -> str:
        window = self.main_window()
        return window.name if window else ""

    def dialog(self, title: str) -> Node:
        return self.one("dialog", title)

    def message_panels(self) -> list[Node]:
        """The messages in view in the chat pane (at least partly), top to bottom."""
        pane = self.find_one(id_suffix="ChatScroll.qt_scrollarea_viewport", with_extents=True).extents
        assert pane is not None
        top, bottom = pane[1], pane[1] + pane[3]
        return [n for n in self.find("panel", id_suffix="Message", with_extents=True)
                if n.name in ("You", "Assistant") and n.extents is not None
                and n.extents[1] < bottom and n.extents[1] + n.extents[3] > top]

    def shown_messages(self) -> list[tuple[Node, str]]:
        """(panel, text) of each message showing in the chat pane, top to bottom."""
        out = []
        for panel in self.message_panels():
            parts = [n.text or "" for n in self.find(within=panel, id_contains="MarkdownBody", with_text=True)
                     if n.role in ("label", "text")]
            out.append((panel, "\n".join(p for p in parts if p)))
        return out

    def messages(self) -> list[tuple[str, str]]:
        """(who, text) of each message showing in the chat pane, top to bottom."""
        return [(panel.name, text) for panel, text in self.shown_messages()]

    def chat(self, text: str) -> None:
        """Type `text` into the message box, press Send and wait until the answer is complete."""
        before = len(self.message_panels())
        self.type_text(self.one("text", "Message"), text)
        self.press("push button", "Send")

        def answered() -> bool:
            panels = self.message_panels()
            return (len(panels) >= before + 2 and panels[-1].name == "Assistant"
                    and bool(self.find("push button", "Regenerate", within=panels[-1])))
        self.wait(answered, f"the answer to {text!r}")

    def chat_rows(self) -> list[Node]:
        """The sidebar's rows (date headings included), top to bottom."""
        return self.find("list item", within=self.find_one("list", "Conversations"))

    def selected_chat(self) -> str | None:
        """The title of the chat highlighted in the sidebar."""
        rows = [n for n in self.chat_rows() if n.selected]
        return rows[0].name if rows else None

    def open_chat(self, title: str) -> None:
        """Click a chat in the sidebar and wait for the window to show it."""
        self.click(self.one("list item", title, within=self.find_one("list", "Conversations")))
        self.wait(lambda: self.title() == f"{title} — TinyChat", f"the chat {title!r} to open")

    def status(self) -> str:
        """The status bar's text: model, level and speed."""
        bar = self.find_one("status bar", within=self.main_window())
        return " · ".join(n.name for n in self.find("label", within=bar) if n.name)

    def meter(self) -> str:
        """What the context meter says."""
        return self.find_one("progress bar", "Context", within=self.main_window()).description


def journey_desktop(workdir: Path) -> Iterator[Desktop]:
    """The fixture body behind `desktop` (tests/conftest.py)."""
    desktop = Desktop(workdir).start()
    try:
        yield desktop
    finally:
        desktop.stop()
