"""Search speed over a store of 10,000 messages (target: < 50 ms per search).

Builds a real SQLite store in a temp dir — 200 conversations of 50 messages, text drawn from a
Zipf-distributed vocabulary so common and rare words behave as in real chats — then times
`Store.search` for a mix of queries (common word, rare word, two words, prefix, no match, syntax
characters). Also times one streaming flush (`update_message` on a 2,000-character answer), the
write the app repeats every 0.5 s while an answer streams.

    python -m bench.search_speed [--messages 10000] [--repeats 5]

Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from app.core.store import Store

COMMON_WORDS = (
    "the be to of and a in that have it for not on with he as you do at this but his by from "
    "they we say her she or an will my one all would there their what so up out if about who "
    "get which go me when make can like time no just him know take people into year your good "
    "some could them see other than then now look only come its over think also back after "
    "use two how our work first well way even new want because any these give day most us "
    "python error model chat answer"
)
SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vor", "el", "qui", "dan", "po", "ser", "in", "ta", "ghu")
MESSAGES_PER_CONVERSATION = 50
ROLES = ("user", "assistant")


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    words = COMMON_WORDS.split()
    while len(words) < size:
        words.append("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return words


def build(path: Path, messages: int, rng: random.Random) -> tuple[Store, list[str], str]:
    """A store with `messages` messages; returns it, the vocabulary and one long answer's id."""
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    store, _ = Store.open(path)
    db = store._conn  # one transaction for the bulk fill: the benchmark measures search, not inserts
    db.execute("BEGIN")
    long_answer = ""
    made = 0
    while made < messages:
        cid = f"{made:032x}"
        now = time.time()
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                   (cid, " ".join(rng.choices(words[:300], k=4)), now, now))
        parent = None
        for i in range(min(MESSAGES_PER_CONVERSATION, messages - made)):
            mid = f"{made:016x}{i:016x}"
            text = " ".join(rng.choices(words, weights, k=rng.randint(10, 300)))
            db.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (mid, cid, parent, ROLES[i % 2], text, now))
            parent = mid
            long_answer = mid
            made += 1
    db.execute("COMMIT")
    return store, words, long_answer


def queries(words: list[str]) -> dict[str, str]:
    return {
        "common word": "the",
        "frequent word": "model",
        "rarest vocabulary word": words[-1],
        "two words": f"{words[60]} {words[900]}",
        "prefix": words[1500][:3],
        "no match": "zzzzqqq",
        "FTS syntax typed by a user": 'model" OR (answer* NEAR',
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, words, long_answer = build(Path(tmp) / "bench.db", args.messages, rng)
        build_s = time.perf_counter() - t0
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 2**20
        rows = []
        all_times: list[float] = []
        for name, query in queries(words).items():
            store.search(query)  # warm the page cache, as a second search in the app would be
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                hits = store.search(query)
                times.append((time.perf_counter() - t) * 1000)
            all_times += times
            median = statistics.median(times)
            rows.append(f"| {name} | `{query}` | {len(hits)} | {median:.1f} | {max(times):.1f} |")
        flush_times = []
        text = ""
        for _ in range(40):
            text += " ".join(rng.choices(words[:500], k=8)) + " "
            text = text[-2000:] if len(text) > 2000 else text
            t = time.perf_counter()
            store.update_message(long_answer, content=text)
            flush_times.append((time.perf_counter() - t) * 1000)
        store.close()

    print(f"## Search\n\n`python -m bench.search_speed` — {args.messages:,} messages in "
          f"{args.messages // MESSAGES_PER_CONVERSATION} conversations ({size_mb:.1f} MB database, built in "
          f"{build_s:.1f} s), limit 50 hits, {args.repeats} timed runs per query after one warm-up; "
          f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}.\n")
    print("| query | text | hits | median ms | max ms |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nAll searches: median {statistics.median(all_times):.1f} ms, "
          f"p95 {percentile(all_times, 0.95):.1f} ms, max {max(all_times):.1f} ms (target < 50 ms).\n")
    print("One streaming flush (rewrite a ~2,000-character answer, FTS index included, synchronous=FULL, "
          f"fsync on the temp dir's disk): median {statistics.median(flush_times):.1f} ms, "
          f"p95 {percentile(flush_times, 0.95):.1f} ms — paid at most every 0.5 s while an answer streams.")


if __name__ == "__main__":
    main()
