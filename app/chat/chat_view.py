"""The conversation on screen: a centred column of MessageWidgets in a scroll area.

Only a window of messages exists as widgets at any time (at most MAX_BUILT): the newest screenful when a chat opens,
then batches built at the edge the user scrolls towards while the far edge is taken down. A box layout
re-lays out every child it holds, so a chat with 500 built messages would stall each scroll step and each
streamed frame for ~200 ms; with the window, opening and scrolling cost the same for 50 or 5,000 messages.
Streamed text is held and painted at most ~30 times a second. One divider marks where the messages the
model no longer sees end, and a search result opens with the window built around it, highlighted.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import replace

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from app.chat.empty_state import INVITATION, EmptyState
from app.chat.forgotten_divider import ForgottenDivider
from app.chat.message_widget import MessageView, MessageWidget
from app.chat.scroll_anchor import ScrollAnchor
from app.chat.stream_painter import StreamPainter
from app.ui.wiring import connect_signals

FIRST_WINDOW = 30  # most messages built when a conversation opens (fewer when they fill the view)
BATCH = 6  # messages built each time the user scrolls near an edge (one scroll step stays < 50 ms)
MAX_BUILT = 48  # widgets alive at once; the far edge is taken down beyond this
EDGE_PX = 600  # how close to an edge (in pixels) building starts
COLUMN_MAX = 860  # the readable line length of the chat column, like LM Studio and ChatGPT
PAINT_FIRST_S = 0.05  # after opening, the first screenful is painted before the edge zone is built
REVEAL_MARGIN = 40  # a revealed message sits this far below the top of the view


class ChatView(QScrollArea):
    """Shows one conversation's active branch. It renders; the ChatController decides."""

    regenerateRequested = Signal(str)
    editSubmitted = Signal(str, str)
    deleteRequested = Signal(str)
    branchRequested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatScroll")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.column = QWidget()
        self.column.setObjectName("ChatColumn")
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(24, 16, 24, 16)
        self._layout.setSpacing(8)
        self._layout.addStretch(1)  # keeps a short conversation at the top
        self.setWidget(self.column)
        self._empty = EmptyState(self.column)
        self.empty_hint = self._empty.hint
        self._layout.insertWidget(0, self._empty)
        self.divider = ForgottenDivider(self.column)
        self._forgotten: frozenset[str] = frozenset()
        self._found: str | None = None

        self._widgets: dict[str, MessageWidget] = {}
        self._order: list[str] = []  # ids on screen, oldest first
        self._above: list[MessageView] = []  # older messages not built, oldest first
        self._below: list[MessageView] = []  # newer messages not built (the user scrolled far up)
        self._painter = StreamPainter(self._paint_stream, self)
        self._edges_after = 0.0  # monotonic time before which no batch is built at the edges
        self._anchor = ScrollAnchor(self.verticalScrollBar(), self)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # ------------------------------------------------------------ whole chat
    def show_messages(self, views: Sequence[MessageView], reveal: str | None = None) -> None:
        """Replace everything with `views` (a conversation's active branch, oldest first): the newest in
        view, or message `reveal` in view and highlighted."""
        self._painter.drop()
        self._anchor.release()
        self.column.setUpdatesEnabled(False)
        for w in self._widgets.values():
            self._layout.removeWidget(w)
            w.hide()  # at once: deleteLater only runs when control is back in the event loop
            w.deleteLater()
        self._widgets.clear()
        self._order.clear()
        ids = [v.message.id for v in views]
        self._found = reveal if reveal in ids else None
        if self._found is None:
            self._above, self._below = list(views), []
            self._build_screenful()
        else:
            start = max(min(ids.index(self._found) - FIRST_WINDOW // 3, len(views) - FIRST_WINDOW), 0)
            end = min(start + FIRST_WINDOW, len(views))
            self._above, self._below = list(views[:start]), list(views[end:])
            for view in views[start:end]:
                self._insert(len(self._order), view)
        self._forgotten = frozenset(v.message.id for v in views if v.forgotten)
        self._place_divider()
        self._empty.setVisible(not views)
        self.column.setUpdatesEnabled(True)
        if self._found is None:
            self._anchor.stick_to_bottom = True
            self.scroll_to_bottom()
        else:
            self._reveal(self._widgets[self._found])

    def _build_screenful(self) -> None:
        """Build the newest messages, newest first, until they fill the view (at most FIRST_WINDOW): a
        Markdown message costs several ms to build and lay out, and most of a long chat is off screen.
        The edge zone above is built once this screenful has been painted, older ones as the user scrolls."""
        width = max(self.viewport().width() - 2 * self._layout.contentsMargins().left(), 200)
        need, height = self.viewport().height(), 0
        self._edges_after = time.monotonic() + PAINT_FIRST_S
        while self._above and height < need and len(self._order) < FIRST_WINDOW:
            w = self._insert(0, self._above.pop())
            fits = w.heightForWidth(width)  # -1: the message's height does not depend on its width
            height += self._layout.spacing() + (fits if fits >= 0 else w.sizeHint().height())
        self._read_in_order()

    def _read_in_order(self) -> None:
        """Put the built messages in reading order among the column's children: assistive technology
        lists children in that order, and messages built above others were made after them."""
        for mid in self._order:
            self._widgets[mid].raise_()

    def _reveal(self, widget: MessageWidget) -> None:
        """Lay the column out now and put `widget` near the top of the view, highlighted, before anything
        is painted; it stays there while the heights above it settle."""
        widget.set_found(True)
        self._anchor.stick_to_bottom = False
        for _ in range(3):
            QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        self._anchor.hold(widget, REVEAL_MARGIN)

    def set_forgotten(self, message_ids: Collection[str]) -> None:
        """Grey out the messages the model no longer sees, and put the divider after the newest of them."""
        ids = frozenset(message_ids)
        if ids == self._forgotten:
            return
        self._forgotten = ids
        for w in self._widgets.values():
            if w.view.forgotten != (w.view.message.id in ids):
                w.set_view(replace(w.view, forgotten=w.view.message.id in ids))
        self._above = [self._marked(v) for v in self._above]
        self._below = [self._marked(v) for v in self._below]
        self._place_divider()

    def _marked(self, view: MessageView) -> MessageView:
        forgotten = view.message.id in self._forgotten
        return view if view.forgotten == forgotten else replace(view, forgotten=forgotten)

    def _place_divider(self) -> None:
        """After the newest forgotten message when it is built; at the top of the built window when it is
        older than all of them; hidden when there is none, or it is newer than the window."""
        ids = self.message_ids()
        last = max((i for i, mid in enumerate(ids) if mid in self._forgotten), default=None)
        if last is None or not self._order or last >= len(self._above) + len(self._order):
            self.divider.place(self._layout, None)
        elif last < len(self._above):
            self.divider.place(self._layout, self._widgets[self._order[0]])
        else:
            self.divider.place(self._layout, self._widgets[ids[last]], after=True)

    def restyle(self) -> None:
        """Build the messages again with the current theme and font, keeping what is shown."""
        views = [*self._above, *(self._widgets[mid].view for mid in self._order), *self._below]
        self.show_messages(views, reveal=self._found)

    def set_empty_hint(self, text: str | None) -> None:
        """Why the chat cannot start (None: it can, and the hint invites a question)."""
        self.empty_hint.setText(text or INVITATION)

    def message_widget(self, message_id: str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def message_ids(self) -> list[str]:
        """Every message of the branch on show, oldest first (built or not)."""
        return [v.message.id for v in self._above] + list(self._order) + [v.message.id for v in self._below]

    def built_count(self) -> int:
        return len(self._order)

    # ---------------------------------------------------------- single ones
    @Slot(object)
    def append_message(self, view: MessageView) -> MessageWidget:
        self._empty.hide()
        while self._below:  # the user scrolled far up: a new message brings the newest part back
            self._build_newer()
        w = self._insert(len(self._order), view)
        self._trim_top()
        self._place_divider()
        self.scroll_to_bottom()
        return w

    @Slot(object)
    def finish_message(self, view: MessageView) -> None:
        """An answer ended: paint the last of its text, then show it as stored."""
        self.flush_stream()
        self.update_message(view)

    def update_message(self, view: MessageView) -> None:
        w = self._widgets.get(view.message.id)
        if w is not None:
            w.set_view(view)
        else:
            self._above = [view if v.message.id == view.message.id else v for v in self._above]
            self._below = [view if v.message.id == view.message.id else v for v in self._below]

    def _insert(self, index: int, view: MessageView) -> MessageWidget:
        w = MessageWidget(view, self.column)
        connect_signals(w, regenerateRequested=self.regenerateRequested, editSubmitted=self.editSubmitted,
                        deleteRequested=self.deleteRequested, branchRequested=self.branchRequested)
        w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        w.set_bubble_max_width(self._bubble_width())
        # Style sheet fonts apply at polish; done later, they would change the height after the scroll
        # position was anchored, and the text being read would jump.
        w.ensurePolished()
        view_forgotten = view.message.id in self._forgotten
        if view.forgotten != view_forgotten:
            w.set_view(replace(view, forgotten=view_forgotten))
        # Before the message that will follow it, or at the end (before the stretch that keeps a short
        # chat at the top); the empty-state box and the divider keep their own places.
        after = self._widgets.get(self._order[index]) if index < len(self._order) else None
        self._layout.insertWidget(self._layout.indexOf(after) if after else self._layout.count() - 1, w)
        w.show()  # now: a layout only queues the show, and a hidden widget takes no space in it yet
        self._widgets[view.message.id] = w
        self._order.insert(index, view.message.id)
        return w

    # -------------------------------------------------------------- streaming
    @Slot(str, str)
    def stream(self, message_id: str, text: str) -> None:
        """Record the latest text of a streaming answer; it is painted on the next frame tick."""
        self._painter.push(message_id, text)

    def _paint_stream(self, message_id: str, text: str) -> None:
        w = self._widgets.get(message_id)
        if w is not None:
            w.set_streaming_text(text)
        else:  # scrolled out of the window: keep the text for when it is built again
            self._below = [replace(v, message=replace(v.message, content=text))
                           if v.message.id == message_id else v for v in self._below]

    def flush_stream(self) -> None:
        """Paint any held text now (the answer finished)."""
        self._painter.flush()

    # -------------------------------------------------------------- scrolling
    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._anchor.stick_to_bottom = value >= bar.maximum() - 24 and not self._below
        if (value < EDGE_PX and self._above) or (value > bar.maximum() - EDGE_PX and self._below):
            wait = max(self._edges_after - time.monotonic(), 0.0)  # a chat just opened paints first
            QTimer.singleShot(round(wait * 1000), self, self._fill_edges)

    @Slot()
    def _fill_edges(self) -> None:
        """Build one batch at the edge the view is near, and take down the far edge."""
        bar = self.verticalScrollBar()
        if bar.value() < EDGE_PX and self._above:
            self._build_older()
        elif bar.value() > bar.maximum() - EDGE_PX and self._below:
            self._build_newer()
        else:
            return
        # Lay the new messages out now (the column and the scroll area both re-layout through posted
        # events), so the reading position is restored before anything is painted.
        for _ in range(3):
            QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        self._anchor.apply()
        # Still near the edge once laid out (short messages)? Then one more batch, in a later event.
        QTimer.singleShot(0, self, self._recheck_edges)

    @Slot()
    def _recheck_edges(self) -> None:
        bar = self.verticalScrollBar()
        if (bar.value() < EDGE_PX and self._above) or (bar.value() > bar.maximum() - EDGE_PX and self._below):
            self._fill_edges()

    def _set_anchor(self) -> None:
        """Remember where the first message in view is, so a change above it does not move the text."""
        self._anchor.hold_first_visible(self._widgets[mid] for mid in self._order)

    def _build_older(self) -> None:
        self._set_anchor()
        batch = self._above[-BATCH:]
        del self._above[-BATCH:]
        for i, view in enumerate(batch):
            self._insert(i, view)
        self._read_in_order()
        excess = len(self._order) - MAX_BUILT
        if excess > 0:
            self._below[:0] = [self._take_down(mid) for mid in self._order[-excess:]]
            del self._order[-excess:]
        self._place_divider()

    def _build_newer(self) -> None:
        self._set_anchor()
        batch = self._below[:BATCH]
        del self._below[:BATCH]
        for view in batch:
            self._insert(len(self._order), view)
        self._trim_top()
        self._place_divider()

    def _trim_top(self) -> None:
        excess = len(self._order) - MAX_BUILT
        if excess <= 0:
            return
        if not self._anchor.holding:
            self._set_anchor()
        for mid in self._order[:excess]:
            self._above.append(self._take_down(mid))
        del self._order[:excess]

    def _take_down(self, message_id: str) -> MessageView:
        """Remove a built message; returns its view with the text it showed (it may have been streaming)."""
        w = self._widgets.pop(message_id)
        if message_id == self._found:
            self._found = None  # scrolled far away from it: built again, it is just a message
        self._anchor.release(w)
        self._layout.removeWidget(w)
        w.hide()
        w.deleteLater()
        view = w.view
        if w.body.text != view.message.content and view.streaming:
            view = replace(view, message=replace(view.message, content=w.body.text))
        return view

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        side = max((self.viewport().width() - COLUMN_MAX) // 2, 24)
        self._layout.setContentsMargins(side, 16, side, 16)
        width = self._bubble_width()
        for w in self._widgets.values():
            w.set_bubble_max_width(width)

    def _bubble_width(self) -> int:
        return int(min(self.viewport().width(), COLUMN_MAX) * 0.8)
