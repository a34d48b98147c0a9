"""A model's own chat template, run where it can be stopped: a child process with hard limits.

A chat template is a program read from a model file. The Jinja sandbox (engine/jinja_sandbox.py)
keeps it from touching anything unsafe, but only the operating system bounds every construct: a loop
over `messages * 100000`, `'a' * 10**10`, a macro that calls itself. So the template is compiled and
rendered in a child process (engine/template_child.py) that caps its own memory and CPU time; the
parent waits at most TEMPLATE_TIME_LIMIT_S (plus a short grace) for each answer, kills the child
otherwise and starts a fresh one for the next render. A template longer than MAX_TEMPLATE_SIZE is
refused before anything compiles it. Each failure is a `ChatTemplateError` with a plain sentence.

A child lives as long as a format uses its template, so a prompt costs one pipe round trip (about
1 ms), not a process start. `vet_template` is the check validation runs once per file: a hostile
template refuses the file, a broken one only keeps the template from being the file's default format.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from engine.jinja_sandbox import BROKEN, FAILED, REJECTED, RUNAWAY, UNSAFE
from engine.template_child import PACKAGE_PARENT, child_command, decode, encode
from engine.types import EngineError

log = logging.getLogger(__name__)

TEMPLATE_TIME_LIMIT_S = 2.0  # per render, both passes together; real templates need milliseconds
COMPILE_TIME_LIMIT_S = 3.0  # once per load; a 60 kB template compiles in under a second
MAX_TEMPLATE_SIZE = 64 * 1024  # bytes of UTF-8; real templates are a few kB, the largest about 15
MAX_TEMPLATE_OUTPUT = 16 * 1024 * 1024  # characters per rendered prompt
START_TIMEOUT_S = 30.0  # starting Python on a busy machine is slow; that is not the template's fault
_GRACE_S = 0.5  # for the child's own deadline to answer before it is killed
# The parent's own failure kinds, besides the sandbox's: too large to compile, crashed the child,
# or the child could not be started at all.
TOO_LARGE, CRASHED, UNAVAILABLE = "too-large", "crashed", "unavailable"
HOSTILE = frozenset({TOO_LARGE, RUNAWAY, UNSAFE, CRASHED})  # an attack on the limits, not a mistake
_CHOOSE = "Choose another chat format (chatml, llama-2 or zephyr) in Settings."
_SENTENCES = {
    BROKEN: "The chat template stored in this model file is broken{line}. " + _CHOOSE,
    REJECTED: "The model's chat template rejected this conversation: {said} Choose another chat format in Settings.",
    RUNAWAY: "The chat template stored in this model file runs away (too slow, or an endless prompt) "
             "and was stopped. " + _CHOOSE,
    UNSAFE: "The chat template stored in this model file tried to do something unsafe and was stopped. " + _CHOOSE,
    FAILED: "The chat template stored in this model file failed on this conversation. " + _CHOOSE,
    TOO_LARGE: "The chat template stored in this model file is {size} KiB, far longer than a real chat template "
               f"(at most {MAX_TEMPLATE_SIZE // 1024} KiB), so TinyChat does not run it. " + _CHOOSE,
    CRASHED: "The chat template stored in this model file made its renderer crash and was stopped. " + _CHOOSE,
    UNAVAILABLE: "TinyChat could not start the helper that runs this model's chat template. "
                 "Choose another chat format in Settings, or reinstall TinyChat.",
}
# Why a file is refused when its template is hostile (see `vet_template`).
_REFUSALS = {
    TOO_LARGE: "is far longer than a real chat template",
    RUNAWAY: "runs away (too slow, or an endless prompt)",
    UNSAFE: "tries to do something unsafe",
    CRASHED: "makes the program that runs it crash",
}
_SAID_MAX = 200  # characters of a template's own raise_exception text shown to the user


class ChatTemplateError(EngineError):
    """A chat template that could not be compiled or rendered; `kind` says why (see HOSTILE)."""

    def __init__(self, kind: str, detail: str = "", *, line: int | None = None, said: str = "",
                 size: int = 0) -> None:
        super().__init__(_SENTENCES[kind].format(line=f" (line {line})" if line else "", said=_plain(said),
                                                 size=-(-size // 1024)), detail)
        self.kind = kind


def _plain(said: str) -> str:
    """A template's own message, made safe to show: one line, printable, short, ending in a stop."""
    text = " ".join("".join(c if c.isprintable() else " " for c in said[:_SAID_MAX * 2]).split())
    if len(text) > _SAID_MAX:
        text = text[:_SAID_MAX].rstrip() + "…"
    text = text or "it gave no reason"
    return text if text.endswith((".", "!", "?", "…")) else text + "."


# --- the parent's side -----------------------------------------------------------------------------

def _pump(stream: IO[bytes], replies: queue.Queue[bytes | None]) -> None:
    """Forward the child's reply lines (None at its end), so the parent can wait with a timeout."""
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            replies.put(line)
    replies.put(None)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class _Child:
    """One running child and the thread that reads its answers; killed when dropped."""

    def __init__(self) -> None:
        try:
            self.proc = subprocess.Popen(
                child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=PACKAGE_PARENT, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError as exc:
            raise ChatTemplateError(UNAVAILABLE, repr(exc)) from exc
        self.replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self.replies), daemon=True,
                         name="chat-template-reader").start()
        self.stop = weakref.finalize(self, _stop, self.proc)

    def ask(self, request: dict[str, Any] | None, timeout: float) -> dict[str, Any] | None:
        """Send `request` (None: only wait for the next line) and return the reply, or None if the
        child did not answer within `timeout` seconds or died."""
        if request is not None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(encode(request))
                self.proc.stdin.flush()
            except OSError:
                return None
        try:
            line = self.replies.get(timeout=timeout)
            return decode(line) if line is not None else None
        except (queue.Empty, ValueError):  # no answer in time, or a line cut short as the child died
            return None

    def failure(self, detail: str) -> ChatTemplateError:
        """Why the child gave no answer: killed for its time, or crashed (it is stopped either way)."""
        running = self.proc.poll() is None
        self.stop()
        log.warning("chat template child %s: %s (exit %s)", "killed" if running else "died", detail,
                    self.proc.returncode)
        return ChatTemplateError(RUNAWAY if running else CRASHED, detail)


def _fault(reply: dict[str, Any]) -> ChatTemplateError:
    return ChatTemplateError(reply["kind"], reply.get("detail", ""), line=reply.get("line"),
                             said=reply.get("said") or "")


class ChatTemplate:
    """A chat template from a model file, compiled and rendered in a limited child process.

    Raises `ChatTemplateError` at once when the template is too large or does not compile."""

    def __init__(self, source: str) -> None:
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > MAX_TEMPLATE_SIZE:
            raise ChatTemplateError(TOO_LARGE, f"template of {size} bytes", size=size)
        self._source = source
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._started()

    def _started(self) -> _Child:
        """The running child, starting one and compiling the template in it if there is none."""
        if self._child is not None and self._child.proc.poll() is None:
            return self._child
        self._child = None
        child = _Child()
        if child.ask(None, START_TIMEOUT_S) is None:  # the child says it is ready before the clock starts
            child.stop()
            raise ChatTemplateError(UNAVAILABLE, "the template child did not start")
        limit = COMPILE_TIME_LIMIT_S
        reply = child.ask({"template": self._source, "time_limit": limit}, limit + _GRACE_S)
        if reply is None:
            raise child.failure("compiling the template did not finish")
        if "kind" in reply:
            child.stop()
            log.warning("GGUF chat template does not compile: %r", reply.get("detail"))
            raise _fault(reply)
        self._child = child
        return child

    def outcomes(self, contexts: Sequence[dict[str, Any]]) -> list[str | ChatTemplateError]:
        """Each context's rendered text or its error, all within one TEMPLATE_TIME_LIMIT_S; a
        runaway or unsafe render ends the request, and the contexts after it are not tried."""
        limit = TEMPLATE_TIME_LIMIT_S
        request = {"contexts": list(contexts), "time_limit": limit, "max_output": MAX_TEMPLATE_OUTPUT}
        with self._lock:
            child = self._started()
            reply = child.ask(request, limit + _GRACE_S)
            if reply is None:
                self._child = None
                raise child.failure("rendering did not finish in time")
        results: list[str | ChatTemplateError] = []
        for item in reply["results"]:
            if "kind" in item:
                log.warning("GGUF chat template %s: %r", item["kind"], item.get("detail"))
                results.append(_fault(item))
                if item["kind"] in HOSTILE:
                    break
            else:
                results.append(item["text"])
        return results

    def render(self, contexts: Sequence[dict[str, Any]]) -> list[str]:
        """The text for each context (the template's variables); raises the first `ChatTemplateError`."""
        texts = []
        for outcome in self.outcomes(contexts):
            if isinstance(outcome, ChatTemplateError):
                raise outcome
            texts.append(outcome)
        return texts

    def close(self) -> None:
        """Stop the child now (it also stops when this object is dropped)."""
        with self._lock:
            if self._child is not None:
                self._child.stop()
                self._child = None


_recent: OrderedDict[str, ChatTemplate] = OrderedDict()
_RECENT_SIZE = 2
_recent_lock = threading.Lock()


def shared_template(source: str) -> ChatTemplate:
    """A running `ChatTemplate` for `source`, reused while it is one of the last few asked for, so
    reloading a model or switching formats back does not start and compile a new child each time."""
    with _recent_lock:
        template = _recent.pop(source, None) or ChatTemplate(source)
        _recent[source] = template
        while len(_recent) > _RECENT_SIZE:
            _recent.popitem(last=False)  # its child stops once no format uses it any more
        return template


# --- the load-time check ---------------------------------------------------------------------------

_PROBES = (
    (("user", "Hello!"),),
    (("system", "You are a helpful assistant."), ("user", "Hello!"), ("assistant", "Hi! How can I help?"),
     ("user", "Tell me a joke.")),
    (("user", "Hello!"), ("assistant", "Hi!"), ("user", "Bye.")),
)


def template_context(messages: Sequence[tuple[str, str]], add_generation_prompt: bool, bos: str,
                     eos: str) -> dict[str, Any]:
    """The variables a chat template sees, as transformers passes them."""
    return {"messages": [{"role": r, "content": c} for r, c in messages],
            "add_generation_prompt": add_generation_prompt, "bos_token": bos, "eos_token": eos}


@dataclass(frozen=True)
class TemplateVerdict:
    """What `vet_template` found: `usable` as the model's default format; otherwise `problem` says
    why, and `hostile` is true when the template attacks its limits or its sandbox (then `problem`
    is the sentence that refuses the file)."""

    usable: bool
    hostile: bool = False
    problem: str | None = None

    @classmethod
    def of(cls, error: ChatTemplateError) -> TemplateVerdict:
        if error.kind in HOSTILE:
            return cls(False, True, f"The chat template stored in this model file {_REFUSALS[error.kind]}, "
                                    "so TinyChat refuses the file. Use a copy of the model from a source you trust.")
        return cls(False, False, error.message)


def vet_template(source: str, bos: str = "<s>", eos: str = "</s>") -> TemplateVerdict:
    """Check a model file's chat template once, in the limited child, on sample conversations.

    Hostile (too large, runs away, unsafe, crashes): refuse the file. Broken (does not compile, or
    fails or refuses every sample): keep the file, but do not make the template its default format."""
    try:
        template = ChatTemplate(source)
    except ChatTemplateError as exc:
        return TemplateVerdict.of(exc)
    try:
        outcomes = template.outcomes([template_context(p, True, bos, eos) for p in _PROBES])
    except ChatTemplateError as exc:
        return TemplateVerdict.of(exc)
    finally:
        template.close()
    errors = sorted((o for o in outcomes if isinstance(o, ChatTemplateError)), key=lambda e: e.kind not in HOSTILE)
    if errors and (errors[0].kind in HOSTILE or len(errors) == len(_PROBES)):
        return TemplateVerdict.of(errors[0])
    return TemplateVerdict(True)
