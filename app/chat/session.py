"""What the window shows, owned in one place: the open conversation, the model and the settings.

The window never keeps its own idea of which chat is open and never writes the store: it calls a
Session method for every action and shows what the Session signals. Every signal already concerns the
open chat (answers streaming into another chat are not announced to the pane), and carries what the
widgets need: the messages with their sibling positions, the ids the model no longer sees, the finished
answer. Messages and answers are written by the ChatController; conversations (rename, pin, trash)
here — the only two writers, both in this package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal, Slot

from app.background.engine_worker import ContextUsage, EngineThread
from app.chat.chat_controller import ChatController
from app.chat.message_widget import MessageView
from app.chat.model_state import ModelState, ModelStatus
from app.chat.settings_service import SettingsService
from app.core.store import Store
from app.core.store_errors import read_or_tell, write_or_tell
from app.core.store_types import StoredMessage, StoreError
from app.ui.wiring import connect_signals
from engine.types import GenerationStats, ModelInfo

log = logging.getLogger(__name__)
GENERATING_REFUSAL = "This chat is still generating an answer. Stop it first (Esc), then delete it."


@dataclass(frozen=True)
class OpenChat:
    """The chat the pane shows: None for a new chat, stored once its first message is sent."""

    conversation_id: str | None
    title: str
    views: tuple[MessageView, ...]
    reveal: str | None = None  # a message to bring into view and highlight (a search result)


@dataclass(frozen=True)
class ChatUsage:
    """How much of the model's context the open chat takes, and which messages no longer fit."""

    tokens: int
    n_ctx: int
    forgotten: frozenset[str] = frozenset()
    overflow: str | None = None  # the newest message alone does not fit: this sentence says so


@dataclass(frozen=True)
class Speed:
    """How fast answers come: live while one streams (no first-token time yet), then the final figures."""

    tokens_per_s: float
    ttft_s: float | None = None


class Session(QObject):
    """The state behind the main window. Create it, connect to its signals, then `start(model)`."""

    opened = Signal(object)  # OpenChat: show these messages (a chat was opened, or its branch changed)
    titleChanged = Signal(str)  # the open chat's title ("" for a new chat)
    conversationsChanged = Signal(object, object)  # list[Conversation], the open conversation id
    conversationChanged = Signal(object, object)  # Conversation added or changed (title, pin, activity), open id
    conversationRemoved = Signal(str)  # conversation id: it went to the trash
    messageAdded = Signal(object)  # MessageView appended to the open chat
    streamText = Signal(str, str)  # message id, text so far, of an answer streaming into the open chat
    messageFinished = Signal(object)  # MessageView of an answer of the open chat that just ended
    usageChanged = Signal(object)  # ChatUsage of the open chat
    modelChanged = Signal(object)  # ModelStatus
    generatingChanged = Signal(object)  # the conversation id being answered, or None
    speedChanged = Signal(object)  # Speed, or None when there is nothing to show
    notice = Signal(str)  # a sentence for the user
    undoOffered = Signal(str, str)  # conversation id, title: it went to the trash

    def __init__(self, store: Store, settings: SettingsService, engine: EngineThread) -> None:
        super().__init__()
        self.store = store
        self.settings = settings
        self.engine = engine
        self.model = ModelState(engine, settings)
        self.controller = ChatController(store, settings, engine, self.model)
        self.open_id: str | None = None
        self._forgotten: dict[str, frozenset[str]] = {}  # conversation → messages left out of its prompt
        self._count_targets: dict[int, tuple[str | None, list[str | None]]] = {}
        self._adopting = False  # a message sent from a new chat creates the conversation it opens
        self._reopen_on_undo: str | None = None
        connect_signals(
            self.controller, messageAdded=self._on_message_added, streamText=self._on_stream_text,
            generationStarted=self._on_generation_started, generationFinished=self._on_generation_finished,
            branchChanged=self._on_branch_changed, conversationChanged=self.refresh_conversation,
            liveSpeed=self._on_live_speed, notice=self.notice)
        connect_signals(self.model, changed=self._on_model, notice=self.notice)
        engine.usage.connect(self._on_usage)

    def start(self, model: ModelInfo | None, missing_reason: str = "") -> None:
        """Empty the trash of earlier sessions, show the conversation list and load `model`."""
        try:
            self.store.purge_trash()  # conversations deleted in an earlier session and not undone
        except StoreError as e:
            log.warning("could not empty the trash: %s", e.detail)
        self.refresh_conversations()
        self.model.load(model, missing_reason)

    @property
    def generating(self) -> bool:
        return self.controller.generating

    # ---------------------------------------------------------- conversations
    def open(self, conversation_id: str | None, reveal: str | None = None) -> None:
        """Show a conversation (None: a new, empty chat), optionally bringing message `reveal` into view."""
        if conversation_id == self.open_id and conversation_id is not None and reveal is None:
            return
        self.open_id = conversation_id
        self._show(reveal)
        self.titleChanged.emit(self._title())
        self._request_usage()

    def new_chat(self) -> None:
        self.open(None)

    def open_message(self, conversation_id: str, message_id: str) -> None:
        """Open a conversation on the branch holding `message_id`, with that message in view."""
        if not self.controller.show_branch_of(conversation_id, message_id):
            return
        self.open_id = None  # shown again even when it is the open chat: its branch may have changed
        self.open(conversation_id, reveal=message_id)

    @Slot()
    def refresh_conversations(self) -> None:
        """Announce the conversation list (and the open chat's title, which a first message sets)."""
        conversations = read_or_tell(self.store.list_conversations, self.notice.emit)
        if conversations is None:
            return
        self.conversationsChanged.emit(conversations, self.open_id)
        self.titleChanged.emit(self._title())

    @Slot(str)
    def refresh_conversation(self, conversation_id: str) -> None:
        """Announce one conversation as stored now (and the open chat's title, which a first message sets);
        the list updates that one row instead of being listed again."""
        conv = read_or_tell(lambda: self.store.get_conversation(conversation_id), self.notice.emit)
        if conv is None:
            return
        self.conversationChanged.emit(conv, self.open_id)
        if conversation_id == self.open_id:
            self.titleChanged.emit(conv.title)

    def rename(self, conversation_id: str, title: str) -> None:
        write_or_tell(lambda: self.store.rename(conversation_id, title), self.notice.emit)
        self.refresh_conversation(conversation_id)

    def set_pinned(self, conversation_id: str, pinned: bool) -> None:
        write_or_tell(lambda: self.store.set_pinned(conversation_id, pinned), self.notice.emit)
        self.refresh_conversation(conversation_id)

    def trash(self, conversation_id: str) -> None:
        """Move a conversation to the trash and offer Undo (it is purged at the next start)."""
        active = self.controller.active
        if active is not None and active.conversation_id == conversation_id:
            self.notice.emit(GENERATING_REFUSAL)
            return
        conv = read_or_tell(lambda: self.store.get_conversation(conversation_id), self.notice.emit)
        if conv is None or not write_or_tell(lambda: self.store.trash_conversation(conversation_id), self.notice.emit):
            return
        self._reopen_on_undo = conversation_id if conversation_id == self.open_id else None
        if conversation_id == self.open_id:
            self.open(None)
        self.conversationRemoved.emit(conversation_id)
        self.undoOffered.emit(conversation_id, conv.title)

    def undo_trash(self, conversation_id: str) -> None:
        """Bring a trashed conversation back; it opens again if it was the open one and no other is."""
        if not write_or_tell(lambda: self.store.restore_conversation(conversation_id), self.notice.emit):
            return
        self.refresh_conversation(conversation_id)
        if self._reopen_on_undo == conversation_id and self.open_id is None:
            self.open(conversation_id)

    def _title(self) -> str:
        if self.open_id is None:
            return ""
        try:
            return self.store.get_conversation(self.open_id).title
        except StoreError:
            return ""

    # -------------------------------------------------------------- messages
    def send(self, text: str) -> bool:
        """Send `text` in the open chat (a new chat becomes a stored one). False: refused, keep the text."""
        self._adopting = self.open_id is None
        try:
            conversation_id = self.controller.send(self.open_id, text)
        finally:
            self._adopting = False
        return conversation_id is not None

    def stop(self) -> None:
        self.controller.stop()

    def regenerate(self, message_id: str) -> None:
        self.controller.regenerate(message_id)

    def regenerate_last(self) -> None:
        self.controller.regenerate_last(self.open_id)

    def edit(self, message_id: str, text: str) -> None:
        self.controller.edit(message_id, text)

    def delete_message(self, message_id: str) -> None:
        self.controller.delete_message(message_id)

    def switch_branch(self, message_id: str, step: int) -> None:
        self.controller.switch_branch(message_id, step)

    def views(self, conversation_id: str) -> list[MessageView]:
        """The active branch as the chat shows it: sibling positions, forgotten and streaming marks."""
        branch = self.controller.branch(conversation_id)
        if not branch:
            return []
        children: dict[str | None, list[str]] = {}
        for m in self.store.messages(conversation_id):  # one query for every sibling count
            children.setdefault(m.parent_id, []).append(m.id)
        forgotten = self._forgotten.get(conversation_id, frozenset())
        streaming_id, streaming_text = self.controller.streaming() or (None, "")
        out = []
        for m in branch:
            sibs = children.get(m.parent_id, [m.id])
            streaming = m.id == streaming_id
            shown = _with_content(m, streaming_text) if streaming else m
            out.append(MessageView(shown, sibs.index(m.id) if m.id in sibs else 0, len(sibs), m.id in forgotten,
                                   streaming))
        return out

    def _show(self, reveal: str | None = None) -> None:
        cid = self.open_id
        views = tuple(self.views(cid)) if cid else ()
        self.opened.emit(OpenChat(cid, self._title(), views, reveal))

    @Slot(str, object)
    def _on_message_added(self, conversation_id: str, view: MessageView) -> None:
        if self._adopting and self.open_id is None:
            self.open_id = conversation_id  # the new chat's first message stored it
        if conversation_id == self.open_id:
            self.messageAdded.emit(view)

    @Slot(str, str, str)
    def _on_stream_text(self, conversation_id: str, message_id: str, text: str) -> None:
        if conversation_id == self.open_id:
            self.streamText.emit(message_id, text)

    @Slot(str, str)
    def _on_generation_started(self, conversation_id: str, _message_id: str) -> None:
        self.generatingChanged.emit(conversation_id)

    @Slot(float)
    def _on_live_speed(self, tokens_per_s: float) -> None:
        self.speedChanged.emit(Speed(tokens_per_s))

    @Slot(str, object, object, object)
    def _on_generation_finished(self, conversation_id: str, final: StoredMessage | None,
                                stats: GenerationStats | None, forgotten: frozenset[str] | None) -> None:
        self.generatingChanged.emit(None)
        done = stats is not None and stats.completion_tokens > 0
        self.speedChanged.emit(Speed(stats.tokens_per_s, stats.ttft_s) if done and stats else None)
        if forgotten is not None:
            self._forgotten[conversation_id] = forgotten
        if conversation_id == self.open_id and final is not None:
            view = next((v for v in self.views(conversation_id) if v.message.id == final.id), MessageView(final))
            self.messageFinished.emit(view)
            self._request_usage()

    @Slot(str)
    def _on_branch_changed(self, conversation_id: str) -> None:
        if conversation_id == self.open_id:
            self._show()
            self._request_usage()

    # ------------------------------------------------------------ model, context
    @Slot(object)
    def _on_model(self, status: ModelStatus) -> None:
        if status.state != "ready":
            self.speedChanged.emit(None)  # the last figures were another model's
        self.modelChanged.emit(status)
        if status.ready:
            self._request_usage()

    def _request_usage(self) -> None:
        """Ask the worker how much of the context the open chat takes (answer: usageChanged)."""
        if not self.model.status.ready:
            return
        cid = self.open_id
        branch = self.controller.branch(cid) if cid else []
        history = self.controller.history(cid or "", branch[-1].id if branch else None)
        if not history:
            self.usageChanged.emit(ChatUsage(0, self.model.n_ctx))
            return
        rid = self.engine.count(tuple(m for m, _ in history), self.settings.current.sampling.max_tokens)
        self._count_targets[rid] = (cid, [mid for _, mid in history])

    @Slot(object)
    def _on_usage(self, usage: ContextUsage) -> None:
        target = self._count_targets.pop(usage.request_id, None)
        if target is None:
            return
        cid, ids = target
        forgotten = frozenset(mid for i in usage.forgotten if i < len(ids) for mid in [ids[i]] if mid is not None)
        if cid is not None:
            self._forgotten[cid] = forgotten
        if cid == self.open_id:
            self.usageChanged.emit(ChatUsage(usage.tokens, usage.n_ctx, forgotten, usage.overflow))

    def shutdown(self) -> None:
        """Stop any answer (kept as partial) and join the engine thread."""
        self.controller.shutdown()


def _with_content(m: StoredMessage, text: str) -> StoredMessage:
    return replace(m, content=text)
