"""Child process for test_store_crash: chats into the store as the app does until it is killed.

Prints (flushed, so the parent sees each line before the next write begins):
  OPEN                        the store is open
  USER <message id>           a user message is committed
  FLUSH <message id> <chars>  that many answer characters are committed
  DONE <message id>           the answer is finalised as complete
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.store import Store
from app.core.store_writer import StreamingWriter

# The answer every turn streams: deterministic, so the parent knows what each prefix must be.
ANSWER = "".join(f"w{i} é世🎉 " for i in range(120))
TOKEN = 9  # characters per streamed piece


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(db: Path, run: int) -> None:
    store, notice = Store.open(db)
    if notice:
        say(f"NOTICE {notice}")
    say("OPEN")
    turn = 0
    while True:
        conv = store.create_conversation(title=f"run {run}")
        parent = None
        for _ in range(3):
            turn += 1
            question = store.add_message(conv.id, parent, "user", f"question {run}-{turn}")
            say(f"USER {question.id}")
            writer = StreamingWriter.start(store, conv.id, question.id, interval=0.004)
            for i in range(0, len(ANSWER), TOKEN):
                time.sleep(0.0005)  # a token arrives
                if writer.append(ANSWER[i : i + TOKEN]):
                    say(f"FLUSH {writer.message_id} {len(writer.flushed_text)}")
            parent = writer.finish("complete").id
            say(f"DONE {parent}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
