"""RingBuffer / RingReader: contiguity across the wrap, overrun accounting, threads."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from ser_engine.live.ringbuffer import RingBuffer


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def test_reads_are_contiguous_across_the_wrap() -> None:
    ring = RingBuffer(100)
    r = ring.reader()
    pos = 0
    got: list[tuple[int, np.ndarray]] = []
    for size in [30, 45, 60, 7, 99, 13, 100, 3]:
        ring.write(ramp(pos, size))
        pos += size
        while (block := r.read(17)) is not None:
            got.append((r.position - 17, block))
    assert ring.write_position == pos
    for start, block in got:  # each block is exactly the samples of its stream positions
        assert np.array_equal(block, ramp(start, 17))
    assert sum(len(b) for _, b in got) + r.lost + r.available() == pos
    assert r.lost > 0  # the 100-sample write overran the reader once


def test_overrun_is_counted_and_skipped() -> None:
    ring = RingBuffer(50)
    r = ring.reader()
    ring.write(ramp(0, 40))
    assert r.read(10) is not None
    assert r.position == 10
    ring.write(ramp(40, 60))  # total 100: positions < 50 are gone
    assert r.available() == 50
    assert r.lost == 40  # positions 10..49 were overwritten before being read
    block = r.read(50)
    assert block is not None
    assert np.array_equal(block, ramp(50, 50))


def test_block_longer_than_capacity_keeps_newest() -> None:
    ring = RingBuffer(16)
    ring.write(ramp(0, 40))
    assert ring.write_position == 40
    assert np.array_equal(ring.latest(16), ramp(24, 16))


def test_latest_pads_with_zeros_before_first_sample() -> None:
    ring = RingBuffer(10)
    ring.write(np.ones(3, dtype=np.float32))
    out = ring.latest(5)
    assert out.tolist() == [0, 0, 1, 1, 1]


def test_accepts_sounddevice_shaped_blocks() -> None:
    ring = RingBuffer(8)
    ring.write(ramp(0, 6).reshape(-1, 1))
    r = ring.reader(from_start=True)
    assert np.array_equal(r.read(6), ramp(0, 6))


def test_peek_window_and_skip() -> None:
    ring = RingBuffer(32)
    r = ring.reader()
    ring.write(ramp(0, 20))
    assert r.peek_window(4) is None  # nothing before the cursor yet
    r.read(12)
    assert np.array_equal(r.peek_window(4), ramp(8, 4))
    assert r.skip_to_latest() == 8
    assert r.available() == 0
    assert r.lost == 0


def test_several_readers_are_independent() -> None:
    ring = RingBuffer(64)
    a, b = ring.reader(), ring.reader()
    ring.write(ramp(0, 30))
    assert np.array_equal(a.read(30), ramp(0, 30))
    assert np.array_equal(b.read(10), ramp(0, 10))
    assert a.available() == 0
    assert b.available() == 20


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_capacity(bad: object) -> None:
    with pytest.raises(ParameterError):
        RingBuffer(bad)  # type: ignore[arg-type]


def test_bad_read_sizes() -> None:
    ring = RingBuffer(8)
    r = ring.reader()
    with pytest.raises(ParameterError):
        r.read(9)
    with pytest.raises(ParameterError):
        r.read(0)


def test_write_path_allocates_no_array_memory() -> None:
    ring = RingBuffer(48000)
    block = np.ones(512, dtype=np.float32)
    for _ in range(10):
        ring.write(block)
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(2000):  # wraps the ring many times
        ring.write(block)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename") if s.size_diff > 0)
    assert grown < 16 * 1024  # a 512-sample block is 2 kB: nothing per write is kept or copied into new arrays


def test_threaded_producer_and_readers_see_an_exact_stream() -> None:
    """One producer, two readers (one slow): no corrupt sample is ever returned."""
    ring = RingBuffer(4096)
    total = 400_000
    fast, slow = ring.reader(), ring.reader()
    results: dict[str, list[np.ndarray]] = {"fast": [], "slow": []}
    done = threading.Event()

    def producer() -> None:
        pos = 0
        rng = np.random.default_rng(0)
        while pos < total:
            n = int(rng.integers(64, 1024))
            n = min(n, total - pos)
            ring.write(ramp(pos, n))
            pos += n
        done.set()

    def consumer(name: str, reader: object, size: int, pause: float) -> None:
        import time

        while True:
            block = reader.read(size)  # type: ignore[attr-defined]
            if block is None:
                if done.is_set() and reader.available() < size:  # type: ignore[attr-defined]
                    return
                time.sleep(pause)
                continue
            results[name].append((reader.position - size, block))  # type: ignore[attr-defined]

    threads = [
        threading.Thread(target=producer),
        threading.Thread(target=consumer, args=("fast", fast, 256, 0.0)),
        threading.Thread(target=consumer, args=("slow", slow, 3000, 0.002)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for name in ("fast", "slow"):
        for start, block in results[name]:  # type: ignore[misc]
            assert np.array_equal(block, ramp(start, len(block))), name
    read_fast = sum(len(b) for _, b in results["fast"])  # type: ignore[misc]
    read_slow = sum(len(b) for _, b in results["slow"])  # type: ignore[misc]
    assert read_fast + fast.lost + fast.available() == total
    assert read_slow + slow.lost + slow.available() == total
