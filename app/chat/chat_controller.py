"""The chat's logic on the GUI thread: turns user actions into store writes and engine requests, and
engine output into store updates and view signals.

A token travels one way: worker `chunk` → `_on_chunk` → StreamingWriter (disk, ≤ every 0.5 s) and
`streamText` (the view paints it at ≤ 30 fps). The user's message is committed before anything is
generated; the answer exists in the store as `partial` from its first moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal, Slot

from app.background.engine_worker import ContextUsage, EngineThread, GenerationResult, LoadedModel
from app.chat.answer_keeper import AnswerKeeper, not_started_sentence
from app.chat.message_widget import MessageView
from app.core import paths
from app.core.settings import Settings
from app.core.store import Store
from app.core.store_types import StoredMessage, StoreError
from app.core.store_writer import StreamingWriter
from engine.types import LoadOptions, Message, ModelInfo

log = logging.getLogger(__name__)

BUSY = "An answer is still being generated. Wait for it to finish, or press Stop (Esc) first."


@dataclass
class _Generation:
    """The one answer being generated: where it goes and which stored message each request index is."""

    conversation_id: str
    writer: StreamingWriter
    request_id: int
    message_ids: list[str | None]  # request index → stored message id (None: the system prompt)


@dataclass
class _ModelState:
    state: str = "none"  # none | loading | ready | failed
    text: str = "No model loaded."
    loaded: LoadedModel | None = None


class ChatController(QObject):
    """Owns the engine thread and the active generation; the main window shows what it signals."""

    modelStateChanged = Signal(str, str)  # state, sentence for the user
    conversationsChanged = Signal()  # titles, order or the list itself changed
    conversationChanged = Signal(str)  # this conversation's branch must be shown again
    messageAdded = Signal(str, object)  # conversation id, MessageView
    streamText = Signal(str, str, str)  # conversation id, message id, full text so far
    generationStarted = Signal(str, str)  # conversation id, assistant message id
    generationFinished = Signal(str, object, object)  # conversation id, StoredMessage, stats
    contextUsage = Signal(str, object)  # conversation id, ContextUsage
    notice = Signal(str)  # a sentence for the user (refusals, store errors)

    def __init__(self, store: Store, settings: Settings, engine: EngineThread) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.engine = engine
        self.model = _ModelState()
        self.active: _Generation | None = None
        self.forgotten: dict[str, set[str]] = {}  # conversation → messages left out of the last prompt
        self._count_targets: dict[int, tuple[str, list[str | None]]] = {}
        self._closed = False
        self.keeper = AnswerKeeper(self)  # answers a full or read-only disk refused, until it takes them
        self.keeper.notice.connect(self.notice)
        self.keeper.savedLate.connect(self.conversationChanged)
        engine.loadStarted.connect(self._on_load_started)
        engine.loaded.connect(self._on_loaded)
        engine.loadFailed.connect(self._on_load_failed)
        engine.chunk.connect(self._on_chunk)
        engine.finished.connect(self._on_finished)
        engine.usage.connect(self._on_usage)

    # ------------------------------------------------------------------ model
    def load_model(self, model: ModelInfo | None, missing_reason: str = "") -> None:
        """Load `model` on the worker thread, or show why there is none."""
        if model is None:
            self._set_model_state("none", missing_reason or "No model loaded — choose or download a model first.")
            return
        self._set_model_state("loading", f"Loading {model.label or model.path.name}…")
        fmt = self.settings.chat_format
        self.engine.load(model, LoadOptions(n_ctx=model.n_ctx, n_threads=self.settings.n_threads, chat_format=fmt,
                                            state_dir=paths.cache_dir() / "states"))

    def _set_model_state(self, state: str, text: str) -> None:
        self.model.state, self.model.text = state, text
        self.modelStateChanged.emit(state, text)

    @Slot(object)
    def _on_load_started(self, model: ModelInfo) -> None:
        self._set_model_state("loading", f"Loading {model.label or model.path.name}…")

    @Slot(object)
    def _on_loaded(self, loaded: LoadedModel) -> None:
        self.model.loaded = loaded
        for w in loaded.report.warnings:
            self.notice.emit(w)
        self._set_model_state("ready", "")

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.model.loaded = None
        self._set_model_state("failed", message)

    @property
    def ready(self) -> bool:
        return self.model.state == "ready"

    @property
    def generating(self) -> bool:
        return self.active is not None

    # ---------------------------------------------------------------- actions
    def send(self, conversation_id: str | None, text: str) -> str | None:
        """Commit the user's message, then start the answer. Returns the conversation id, or None when
        the message was not accepted (the caller keeps the text so nothing typed is lost)."""
        if not self._can_generate():
            return None
        try:
            if conversation_id is None:
                conversation_id = self.store.create_conversation().id
            branch = self.store.active_branch(conversation_id)
            parent = branch[-1].id if branch else None
            user = self.store.add_message(conversation_id, parent, "user", text)
        except StoreError as e:
            log.error("could not store the user's message: %s", e.detail)
            self.notice.emit(e.message)
            return None
        if not branch:
            try:
                self.store.auto_title(conversation_id)
            except StoreError as e:  # the message is saved; the chat just keeps its "New chat" title
                log.warning("could not title the conversation: %s", e.detail)
        self.messageAdded.emit(conversation_id, MessageView(user))
        self.conversationsChanged.emit()
        self._start_answer(conversation_id, user.id)
        return conversation_id

    def regenerate(self, message_id: str) -> None:
        """A new answer to the same user message, as a sibling of `message_id` (an assistant message)."""
        if not self._can_generate():
            return
        try:
            msg = self.store.get_message(message_id)
        except StoreError as e:
            self.notice.emit(e.message)
            return
        if msg.role != "assistant" or msg.parent_id is None:
            return
        self._start_answer(msg.conversation_id, msg.parent_id, reload=True)

    def regenerate_last(self, conversation_id: str | None) -> None:
        if conversation_id is None:
            return
        branch = self._branch(conversation_id)
        if branch and branch[-1].role == "assistant":
            self.regenerate(branch[-1].id)
        elif branch and branch[-1].role == "user" and self._can_generate():
            self._start_answer(conversation_id, branch[-1].id, reload=True)  # answer a message left unanswered

    def edit(self, message_id: str, text: str) -> None:
        """Store the edited text as a sibling of user message `message_id` (a new branch) and answer it."""
        if not self._can_generate():
            return
        try:
            old = self.store.get_message(message_id)
            new = self.store.add_message(old.conversation_id, old.parent_id, "user", text)
        except StoreError as e:
            self.notice.emit(e.message)
            return
        self._start_answer(new.conversation_id, new.id, reload=True)

    def switch_branch(self, message_id: str, step: int) -> None:
        """Show the previous (-1) or next (+1) alternative of `message_id`."""
        if self.generating:
            self.notice.emit(BUSY)
            return
        try:
            siblings, index = self.store.siblings(message_id)
            target = index + step
            if not 0 <= target < len(siblings):
                return
            self.store.switch_branch(siblings[target].id)
        except StoreError as e:
            self.notice.emit(e.message)
            return
        conv = siblings[target].conversation_id
        self.conversationChanged.emit(conv)
        self.request_usage(conv)

    def delete_message(self, message_id: str) -> None:
        if self.generating:
            self.notice.emit(BUSY)
            return
        try:
            conv = self.store.get_message(message_id).conversation_id
            self.store.delete_message(message_id)
        except StoreError as e:
            self.notice.emit(e.message)
            return
        self.conversationChanged.emit(conv)
        self.request_usage(conv)

    def stop(self) -> None:
        """Stop the answer being generated (the worker sees the Event between tokens)."""
        if self.active is not None:
            self.engine.cancel()

    def _can_generate(self) -> bool:
        if self._closed:
            return False
        if self.generating:
            self.notice.emit(BUSY)
            return False
        if not self.ready:
            self.notice.emit(self.model.text or "No model is loaded yet.")
            return False
        return True

    # ------------------------------------------------------------- generation
    def _start_answer(self, conversation_id: str, parent_id: str, reload: bool = False) -> None:
        history = self._history(conversation_id, parent_id)
        loaded = self.model.loaded
        assert loaded is not None
        try:
            writer = StreamingWriter.start(
                self.store, conversation_id, parent_id, model_id=loaded.model.model_id,
                quant=loaded.model.quant or None, chat_format=loaded.report.chat_format)
        except StoreError as e:
            log.error("could not start the answer: %s", e.detail)
            self.notice.emit(not_started_sentence(e))
            return
        messages = tuple(m for m, _ in history)
        request_id = self.engine.generate(messages, self.settings.generation_params())
        self.active = _Generation(conversation_id, writer, request_id, [mid for _, mid in history])
        if reload:
            self.conversationChanged.emit(conversation_id)
        else:
            placeholder = self.store.get_message(writer.message_id)
            self.messageAdded.emit(conversation_id, MessageView(placeholder, streaming=True))
        self.generationStarted.emit(conversation_id, writer.message_id)

    def _history(self, conversation_id: str, last_id: str) -> list[tuple[Message, str | None]]:
        """The prompt for an answer after `last_id`: system prompt, then the branch up to `last_id`.
        Failed answers are left out; earlier answers carry their token ids so the KV cache is reused."""
        branch = self.store.active_branch(conversation_id)
        ids = [m.id for m in branch]
        # An edit or regenerate may target a branch that is not the current one yet: walk up from it.
        branch = branch[: ids.index(last_id) + 1] if last_id in ids else self._path_to(last_id)
        out: list[tuple[Message, str | None]] = []
        if self.settings.system_prompt.strip():
            out.append((Message("system", self.settings.system_prompt), None))
        for m in map(self.keeper.overlay, branch):  # an answer not saved yet is still part of the chat
            if m.role == "assistant" and (m.status == "error" or not m.content):
                continue
            tokens = m.token_ids if m.role == "assistant" else None
            out.append((Message(m.role, m.content, tokens), m.id))
        return out

    def _path_to(self, message_id: str) -> list[StoredMessage]:
        path: list[StoredMessage] = []
        mid: str | None = message_id
        while mid is not None:
            m = self.store.get_message(mid)
            path.append(m)
            mid = m.parent_id
        return path[::-1]

    @Slot(int, str)
    def _on_chunk(self, request_id: int, text: str) -> None:
        gen = self.active
        if gen is None or request_id != gen.request_id:
            return
        gen.writer.append(text)
        if gen.writer.error is not None:
            self.keeper.write_failed(gen.writer.error)
        self.streamText.emit(gen.conversation_id, gen.writer.message_id, gen.writer.text)

    @Slot(object)
    def _on_finished(self, result: GenerationResult) -> None:
        gen = self.active
        if gen is None or result.request_id != gen.request_id:
            return
        self.active = None
        status = {"stop": "complete", "length": "complete", "cancelled": "partial"}.get(result.finish_reason, "error")
        if status == "error" and not result.error:
            status = "partial"
        final = self.keeper.finish(gen.writer, status, result.stats, error=result.error)  # type: ignore[arg-type]
        if result.stats is not None:
            self.forgotten[gen.conversation_id] = {
                mid for i in result.stats.forgotten if i < len(gen.message_ids)
                for mid in [gen.message_ids[i]] if mid is not None}
        self.generationFinished.emit(gen.conversation_id, final, result.stats)
        self.conversationsChanged.emit()
        self.request_usage(gen.conversation_id)

    # ---------------------------------------------------------------- context
    def request_usage(self, conversation_id: str | None) -> None:
        """Ask the worker how much of the context the conversation takes now (answer: contextUsage)."""
        if conversation_id is None or not self.ready or self._closed:
            return
        branch = self._branch(conversation_id)
        if not branch:
            self.contextUsage.emit(conversation_id, ContextUsage(0, 0, self._n_ctx(), ()))
            return
        history = self._history(conversation_id, branch[-1].id)
        rid = self.engine.count(tuple(m for m, _ in history), self.settings.sampling.max_tokens)
        self._count_targets[rid] = (conversation_id, [mid for _, mid in history])

    @Slot(object)
    def _on_usage(self, usage: ContextUsage) -> None:
        target = self._count_targets.pop(usage.request_id, None)
        if target is None:
            return
        conv, ids = target
        self.forgotten[conv] = {ids[i] for i in usage.forgotten if i < len(ids) and ids[i] is not None}
        self.contextUsage.emit(conv, usage)

    def _n_ctx(self) -> int:
        return self.model.loaded.report.n_ctx if self.model.loaded else 0

    # ------------------------------------------------------------------ views
    def _branch(self, conversation_id: str) -> list[StoredMessage]:
        try:
            return self.store.active_branch(conversation_id)
        except StoreError as e:
            self.notice.emit(e.message)
            return []

    def views(self, conversation_id: str) -> list[MessageView]:
        """The active branch as the chat shows it: sibling positions, forgotten and streaming marks."""
        branch = self._branch(conversation_id)
        if not branch:
            return []
        children: dict[str | None, list[str]] = {}
        for m in self.store.messages(conversation_id):  # one query for every sibling count
            children.setdefault(m.parent_id, []).append(m.id)
        forgotten = self.forgotten.get(conversation_id, set())
        streaming = self.active.writer.message_id if self.active else None
        out = []
        for m in map(self.keeper.overlay, branch):
            sibs = children.get(m.parent_id, [m.id])
            view = MessageView(m, sibs.index(m.id) if m.id in sibs else 0, len(sibs), m.id in forgotten,
                               m.id == streaming)
            if view.streaming and self.active is not None:
                view = MessageView(_with_content(m, self.active.writer.text), view.sibling_index,
                                   view.sibling_count, view.forgotten, True)
            out.append(view)
        return out

    # --------------------------------------------------------------- shutdown
    def shutdown(self) -> None:
        """Stop any answer, join the engine thread, and make sure the partial answer is on disk."""
        self._closed = True
        # Delivers the stopped answer's last chunks and its result before it returns, so the answer is
        # finalised with its stats exactly as if the user had pressed Stop.
        self.engine.shutdown()
        gen, self.active = self.active, None
        if gen is not None:
            self.keeper.finish(gen.writer, "partial")
        self.keeper.stop()
        if len(self.keeper):
            log.error("%d answer(s) not saved yet at exit", len(self.keeper))


def _with_content(m: StoredMessage, text: str) -> StoredMessage:
    return replace(m, content=text)
