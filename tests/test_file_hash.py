"""The background hasher a download feeds: the same digest as hashing in place, in order, mid-way
digests that let a resumed download go on, and no more data accepted once closed."""

from __future__ import annotations

import hashlib
import os

import pytest

from engine.file_hash import BackgroundHasher, new_hasher


def test_pieces_hashed_in_the_background_give_the_digest_of_the_whole_file():
    data = os.urandom(3 << 20)
    hasher = BackgroundHasher(new_hasher("sha256", len(data)), depth=2)  # a short queue: the feeder waits
    for i in range(0, len(data), 100_000):  # network-sized pieces, views and bytes mixed, many per batch
        hasher.update_many([memoryview(data)[i : i + 40_000], data[i + 40_000 : i + 100_000]])
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    hasher.close()


def test_a_digest_mid_way_does_not_end_the_hash_so_a_resumed_download_continues():
    head, tail = os.urandom(1 << 20), os.urandom(1 << 19)
    hasher = BackgroundHasher(new_hasher("git-sha1", len(head) + len(tail)))
    hasher.update(head)
    midway = hasher.hexdigest()
    hasher.update(tail)
    whole = hashlib.sha1(b"blob %d\0" % (len(head) + len(tail)) + head + tail).hexdigest()
    assert hasher.hexdigest() == whole != midway
    hasher.close()


def test_a_closed_hasher_refuses_more_data_and_keeps_its_digest():
    hasher = BackgroundHasher(new_hasher("sha256", 3))
    hasher.update(b"abc")
    hasher.close()
    hasher.close()  # idempotent: a failed transfer and its caller may both close it
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(RuntimeError):
        hasher.update(b"d")
