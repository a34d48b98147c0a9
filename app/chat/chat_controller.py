"""Messages and answers on the GUI thread: turns message actions into store writes and engine requests,
and engine output into store updates and signals for the Session, which decides what is on screen.

A token travels one way: worker `chunk` → `_on_chunk` → StreamingWriter (disk, ≤ every 0.5 s) and
`streamText` (the view paints it at ≤ 30 fps). The user's message is committed before anything is
generated; the answer exists in the store as `partial` from its first moment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from app.background.engine_worker import EngineThread, GenerationResult
from app.chat.answer_keeper import AnswerKeeper, not_started_sentence
from app.chat.message_widget import MessageView
from app.chat.model_state import ModelState
from app.chat.settings_service import SettingsService
from app.core.store import Store
from app.core.store_errors import read_or_tell, write_or_tell
from app.core.store_types import StoredMessage, StoreError
from app.core.store_writer import StreamingWriter
from engine.types import Message

log = logging.getLogger(__name__)

SPEED_EVERY_S = 0.5
BUSY = "An answer is still being generated. Wait for it to finish, or press Stop (Esc) first."


@dataclass
class _Generation:
    """The one answer being generated: where it goes and which stored message each request index is."""

    conversation_id: str
    writer: StreamingWriter
    request_id: int
    message_ids: list[str | None]  # request index → stored message id (None: the system prompt)
    started: float = field(default_factory=time.monotonic)
    pieces: int = 0  # streamed pieces so far: about one per token
    first_at: float | None = None
    spoke_at: float = 0.0  # when the live speed was last announced


def reading_text(done: int, total: int) -> str:
    """What an answer shows while the model reads a long conversation before its first word."""
    return f"*Reading the conversation… {done:,} of {total:,} tokens*"


class ChatController(QObject):
    """Owns the active generation. Its signals name the conversation; the Session filters them."""

    conversationChanged = Signal(str)  # this conversation's title or last activity changed
    branchChanged = Signal(str)  # this conversation's branch must be shown again
    messageAdded = Signal(str, object)  # conversation id, MessageView
    streamText = Signal(str, str, str)  # conversation id, message id, full text so far
    generationStarted = Signal(str, str)  # conversation id, assistant message id
    liveSpeed = Signal(float)  # tokens per second of the answer being streamed
    generationFinished = Signal(str, object, object, object)  # conversation id, StoredMessage, stats, forgotten ids
    notice = Signal(str)  # a sentence for the user (refusals, store errors)

    def __init__(self, store: Store, settings: SettingsService, engine: EngineThread, model: ModelState) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.engine = engine
        self.model = model
        self.active: _Generation | None = None
        self._closed = False
        self.keeper = AnswerKeeper(self)  # answers a full or read-only disk refused, until it takes them
        self.keeper.notice.connect(self.notice)
        self.keeper.savedLate.connect(self.branchChanged)
        engine.chunk.connect(self._on_chunk)
        engine.promptRead.connect(self._on_prompt_read)
        engine.finished.connect(self._on_finished)

    @property
    def generating(self) -> bool:
        return self.active is not None

    def streaming(self) -> tuple[str, str] | None:
        """(message id, text so far) of the answer being generated, if any."""
        return (self.active.writer.message_id, self.active.writer.text) if self.active else None

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
        self.conversationChanged.emit(conversation_id)
        self._start_answer(conversation_id, user.id)
        return conversation_id

    def regenerate(self, message_id: str) -> None:
        """A new answer to the same user message, as a sibling of `message_id` (an assistant message)."""
        if not self._can_generate():
            return
        msg = read_or_tell(lambda: self.store.get_message(message_id), self.notice.emit)
        if msg is None or msg.role != "assistant" or msg.parent_id is None:
            return
        self._start_answer(msg.conversation_id, msg.parent_id, reload=True)

    def regenerate_last(self, conversation_id: str | None) -> None:
        if conversation_id is None:
            return
        branch = self.branch(conversation_id)
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
        self.branchChanged.emit(conv)

    def show_branch_of(self, conversation_id: str, message_id: str) -> bool:
        """Make the branch holding `message_id` the one on show (not while an answer is being generated,
        which must stay on its branch). False when the store failed (the user was told)."""
        try:
            on_branch = any(m.id == message_id for m in self.store.active_branch(conversation_id))
            if not on_branch and not self.generating:
                self.store.switch_branch(message_id)
        except StoreError as e:
            self.notice.emit(e.message)
            return False
        return True

    def delete_message(self, message_id: str) -> None:
        if self.generating:
            self.notice.emit(BUSY)
            return
        msg = read_or_tell(lambda: self.store.get_message(message_id), self.notice.emit)
        if msg is not None and write_or_tell(lambda: self.store.delete_message(message_id), self.notice.emit):
            self.branchChanged.emit(msg.conversation_id)

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
        if not self.model.status.ready:
            self.notice.emit(self.model.status.text or "No model is loaded yet.")
            return False
        return True

    # ------------------------------------------------------------- generation
    def _start_answer(self, conversation_id: str, parent_id: str, reload: bool = False) -> None:
        history = self.history(conversation_id, parent_id)
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
        request_id = self.engine.generate(messages, self.settings.current.generation_params())
        self.active = _Generation(conversation_id, writer, request_id, [mid for _, mid in history])
        if reload:
            self.branchChanged.emit(conversation_id)
        else:
            placeholder = self.store.get_message(writer.message_id)
            self.messageAdded.emit(conversation_id, MessageView(placeholder, streaming=True))
        self.generationStarted.emit(conversation_id, writer.message_id)

    def history(self, conversation_id: str, last_id: str | None) -> list[tuple[Message, str | None]]:
        """The prompt for an answer after `last_id`: system prompt, then the branch up to `last_id`.
        Failed answers are left out; earlier answers carry their token ids so the KV cache is reused."""
        branch = self.store.active_branch(conversation_id) if last_id is not None else []
        ids = [m.id for m in branch]
        # An edit or regenerate may target a branch that is not the current one yet: walk up from it.
        if last_id is not None:
            branch = branch[: ids.index(last_id) + 1] if last_id in ids else self._path_to(last_id)
        out: list[tuple[Message, str | None]] = []
        prompt = self.settings.current.system_prompt
        if prompt.strip():
            out.append((Message("system", prompt), None))
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

    @Slot(int, int, int)
    def _on_prompt_read(self, request_id: int, done: int, total: int) -> None:
        """Say how far a slowly read prompt got, in place of the answer's "…" (shown, never stored)."""
        gen = self.active
        if gen is None or request_id != gen.request_id or gen.writer.text:
            return
        self.streamText.emit(gen.conversation_id, gen.writer.message_id, reading_text(done, total))

    @Slot(int, str)
    def _on_chunk(self, request_id: int, text: str) -> None:
        gen = self.active
        if gen is None or request_id != gen.request_id:
            return
        gen.writer.append(text)
        now = time.monotonic()
        gen.pieces += 1
        if gen.first_at is None:
            gen.first_at = gen.spoke_at = now
        elif now - gen.spoke_at >= SPEED_EVERY_S:  # a steady figure, not a relayout per token
            gen.spoke_at = now
            self.liveSpeed.emit((gen.pieces - 1) / (now - gen.first_at))
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
        forgotten = None
        if result.stats is not None:
            forgotten = frozenset(mid for i in result.stats.forgotten if i < len(gen.message_ids)
                                  for mid in [gen.message_ids[i]] if mid is not None)
        self.generationFinished.emit(gen.conversation_id, final, result.stats, forgotten)
        self.conversationChanged.emit(gen.conversation_id)

    def branch(self, conversation_id: str) -> list[StoredMessage]:
        """The conversation's active branch, answers not saved yet included ([] and a notice when the
        store fails)."""
        try:
            return [self.keeper.overlay(m) for m in self.store.active_branch(conversation_id)]
        except StoreError as e:
            self.notice.emit(e.message)
            return []

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

