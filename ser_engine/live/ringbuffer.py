"""Single-producer, multi-reader ring buffer of float32 samples (Friture-style).

The producer (typically a sounddevice callback on the audio thread) calls
:meth:`RingBuffer.write`; readers (the live worker, a recorder, a waveform
view) each own a :class:`RingReader` with their own cursor.

Design
------
* Storage is preallocated and **doubled**: every sample is stored at
  ``i`` and ``i + capacity``, so any run of up to ``capacity`` samples is one
  contiguous slice and a read is a single copy.
* ``write_position`` counts every sample ever written; it only grows.
* The write path allocates no array memory: slice assignments into the
  preallocated storage and two integer updates. There is no lock on it.
* Consistency is seqlock-style: the writer publishes ``_claimed`` (the end of
  the block it is about to write) before touching the storage and
  ``_written`` after. A reader copies its samples, then re-reads ``_claimed``;
  if the writer may have overwritten part of what was copied, those samples
  are counted in :attr:`RingReader.lost` and skipped, never returned corrupt.
  Under CPython attribute stores and loads of ints are atomic, which is all
  this needs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError

__all__ = ["RingBuffer", "RingReader"]

FloatArray = npt.NDArray[np.float32]


class RingBuffer:
    """Fixed-capacity ring of mono float32 samples.

    Parameters
    ----------
    capacity : int
        Samples kept (the newest ``capacity`` samples are readable).
    """

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
            raise ParameterError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = capacity
        self._data: FloatArray = np.zeros(2 * capacity, dtype=np.float32)
        self._written = 0  # samples fully written (readable up to here)
        self._claimed = 0  # end of the block being written (>= _written)

    # ------------------------------------------------------------------ producer
    def write(self, block: npt.NDArray[np.floating]) -> None:
        """Append samples (producer only; allocation-free for float32 input).

        Parameters
        ----------
        block : ndarray, shape (n,) or (n, 1)
            New samples, float32 ideally (other float dtypes are converted
            during the copy). A block longer than the capacity keeps only its
            newest ``capacity`` samples; the position still advances by ``n``.
        """
        x = block.reshape(-1) if block.ndim != 1 else block
        n = x.shape[0]
        if n == 0:
            return
        cap = self.capacity
        start = self._written
        if n > cap:
            x = x[n - cap :]
            start += n - cap
        m = x.shape[0]
        self._claimed = self._written + n
        i = start % cap
        first = min(m, cap - i)
        data = self._data
        data[i : i + first] = x[:first]
        data[i + cap : i + cap + first] = x[:first]
        rest = m - first
        if rest:
            data[0:rest] = x[first:]
            data[cap : cap + rest] = x[first:]
        self._written = self._claimed

    # ------------------------------------------------------------------ readers
    @property
    def write_position(self) -> int:
        """Total samples ever written."""
        return self._written

    def reader(self, *, from_start: bool = False) -> RingReader:
        """Return a new reader whose cursor starts at the current write position.

        Parameters
        ----------
        from_start : bool
            Start at the oldest sample still held instead.
        """
        return RingReader(self, from_start=from_start)

    def _oldest_safe(self, claimed: int) -> int:
        return claimed - self.capacity

    def copy_range(self, start: int, n: int) -> FloatArray | None:
        """Copy of samples ``[start, start + n)`` in stream positions, or None.

        None when the range is not fully written yet or was (possibly)
        overwritten while copying.
        """
        if n < 0 or n > self.capacity:
            raise ParameterError(f"n must be in [0, capacity={self.capacity}], got {n}")
        if start < 0 or start + n > self._written or start < self._oldest_safe(self._claimed):
            return None
        i = start % self.capacity
        out = self._data[i : i + n].copy()
        if start < self._oldest_safe(self._claimed):
            return None  # the writer overtook us during the copy
        return out

    def latest(self, n: int) -> FloatArray:
        """Copy of the newest ``n`` samples (zeros before the first sample).

        Parameters
        ----------
        n : int
            ``0 <= n <= capacity``.

        Returns
        -------
        ndarray, shape (n,), float32
        """
        if n < 0 or n > self.capacity:
            raise ParameterError(f"n must be in [0, capacity={self.capacity}], got {n}")
        for _ in range(8):
            end = self._written
            avail = min(n, end)
            out = np.zeros(n, dtype=np.float32)
            start = end - avail
            i = start % self.capacity
            out[n - avail :] = self._data[i : i + avail]
            if start >= self._oldest_safe(self._claimed):
                return out
        return out  # pathological contention: return the last attempt


class RingReader:
    """A cursor into a :class:`RingBuffer` (one consumer thread per reader)."""

    def __init__(self, ring: RingBuffer, *, from_start: bool = False) -> None:
        self.ring = ring
        w = ring.write_position
        self._pos = max(0, w - ring.capacity) if from_start else w
        self.lost = 0
        """Samples overwritten before this reader could read them."""

    @property
    def position(self) -> int:
        """Stream position of the next sample this reader returns."""
        return self._pos

    def _catch_up(self) -> None:
        oldest = self.ring._oldest_safe(self.ring._claimed)
        if self._pos < oldest:
            self.lost += oldest - self._pos
            self._pos = oldest

    def available(self) -> int:
        """Return how many samples are readable now (after accounting for any overrun)."""
        self._catch_up()
        return self.ring.write_position - self._pos

    def read(self, n: int) -> FloatArray | None:
        """Read exactly ``n`` contiguous samples and advance, or return None.

        Parameters
        ----------
        n : int
            ``0 < n <= capacity``.

        Returns
        -------
        ndarray, shape (n,), float32, or None when fewer than ``n`` samples
        are available. Samples overwritten before or during the copy are
        skipped and added to :attr:`lost`.
        """
        if n <= 0 or n > self.ring.capacity:
            raise ParameterError(f"n must be in (0, capacity={self.ring.capacity}], got {n}")
        for _ in range(8):
            if self.available() < n:
                return None
            out = self.ring.copy_range(self._pos, n)
            if out is not None:
                self._pos += n
                return out
        return None

    def read_available(self, max_n: int | None = None) -> FloatArray:
        """Read everything available (at most ``max_n`` or the capacity).

        Returns
        -------
        ndarray, shape (k,), float32, possibly empty
        """
        limit = self.ring.capacity if max_n is None else min(max_n, self.ring.capacity)
        k = min(self.available(), limit)
        if k <= 0:
            return np.zeros(0, dtype=np.float32)
        out = self.read(k)
        return out if out is not None else np.zeros(0, dtype=np.float32)

    def peek_window(self, n: int) -> FloatArray | None:
        """Copy of the ``n`` samples just before the cursor (no advance), or None.

        None when fewer than ``n`` samples precede the cursor or they were
        overwritten.
        """
        if n <= 0 or n > self.ring.capacity:
            raise ParameterError(f"n must be in (0, capacity={self.ring.capacity}], got {n}")
        if self._pos < n:
            return None
        return self.ring.copy_range(self._pos - n, n)

    def skip_to_latest(self) -> int:
        """Jump to the write position; returns the samples skipped (not counted as lost)."""
        w = self.ring.write_position
        skipped = max(0, w - self._pos)
        self._pos = w
        return skipped
