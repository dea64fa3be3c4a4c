"""Reader of CTranslate2's ``model.bin`` (binary version 6), with ``struct`` and NumPy only.

The layout, as ``ctranslate2.specs.model_spec.ModelSpec._serialize`` writes it (little endian)::

    uint32 binary_version            (6)
    string spec_name                 (e.g. "WhisperSpec")
    uint32 spec_revision
    uint32 n_variables
    n_variables times:
        string name; uint8 rank; uint32 dims[rank]; uint8 dtype_id; uint32 n_bytes; bytes data
    uint32 n_aliases
    n_aliases times:
        string alias; string variable_name

where ``string`` is ``uint16 length`` (counting a final NUL byte), the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError

__all__ = ["BINARY_VERSION", "CT2FormatError", "CT2Model", "read_ct2_model"]

BINARY_VERSION = 6
"""The only ``model.bin`` version read (CTranslate2 >= 3 writes it)."""

# dtype ids, in the order of CTranslate2's DataType enum (include/ctranslate2/types.h);
# "bfloat16" has no NumPy type: it is read as uint16 and widened to float32.
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_MAX_RANK = 8


class CT2FormatError(ParameterError):
    """The file is not a CTranslate2 ``model.bin`` of a version this reader knows, or it is truncated."""


@dataclass(frozen=True)
class CT2Model:
    """The variables of a CTranslate2 model.

    Attributes
    ----------
    spec : str
        The model specification's name, e.g. ``"WhisperSpec"``.
    revision : int
        The specification's revision.
    variables : dict of str to ndarray
        Named arrays, aliases resolved (an alias maps to the same array as its target).
    """

    spec: str
    revision: int
    variables: dict[str, npt.NDArray[Any]]


class _Cursor:
    """Bounds-checked little-endian reads from a bytes-like buffer."""

    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise CT2FormatError(
                f"{self.path}: truncated or not a CTranslate2 model.bin: {what} needs {n} bytes at offset "
                f"{self.pos}, the file has {len(self.buf)} bytes"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, fmt: str, what: str) -> int:
        size = struct.calcsize("<" + fmt)
        value: int = struct.unpack("<" + fmt, self.take(size, what))[0]
        return value

    def string(self, what: str) -> str:
        n = self.uint("H", what)
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1] != 0:
            raise CT2FormatError(
                f"{self.path}: not a CTranslate2 model.bin: {what} at offset {self.pos - n} is malformed"
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CT2FormatError(f"{self.path}: not a CTranslate2 model.bin: {what} is not UTF-8") from exc


def read_ct2_model(
    path: str | Path,
    *,
    prefix: str = "",
    float32: bool = True,
) -> CT2Model:
    """Read the variables of a CTranslate2 ``model.bin``.

    Parameters
    ----------
    path : path-like
        The ``model.bin`` file.
    prefix : str
        Decode only the variables whose names start with it (e.g. ``"encoder/"``); the others
        are skipped (but their headers are still checked). Empty: all of them.
    float32 : bool
        Convert float16 and bfloat16 arrays to float32; otherwise float16 stays float16
        (bfloat16 has no NumPy type and is always widened to float32).

    Returns
    -------
    CT2Model
        Each variable an ndarray of its stored shape (rank 0 for scalars), a fresh copy that
        does not refer to the file.

    Raises
    ------
    CT2FormatError
        When the file is truncated, has trailing bytes, is of another binary version, or is not
        a ``model.bin`` at all; the message names the file.
    """
    p = Path(path)
    data = p.read_bytes()
    cur = _Cursor(memoryview(data), p)
    version = cur.uint("I", "the binary version")
    if version != BINARY_VERSION:
        raise CT2FormatError(
            f"{p}: not a CTranslate2 model.bin of binary version {BINARY_VERSION} (the header says {version})"
        )
    spec = cur.string("the spec name")
    revision = cur.uint("I", "the spec revision")
    n_vars = cur.uint("I", "the variable count")
    variables: dict[str, npt.NDArray[Any]] = {}
    for _ in range(n_vars):
        name = cur.string("a variable name")
        rank = cur.uint("B", f"the rank of {name!r}")
        if rank > _MAX_RANK:
            raise CT2FormatError(f"{p}: not a CTranslate2 model.bin: variable {name!r} has rank {rank}")
        dims = tuple(cur.uint("I", f"the shape of {name!r}") for _ in range(rank))
        type_id = cur.uint("B", f"the dtype of {name!r}")
        if type_id >= len(_DTYPES):
            raise CT2FormatError(f"{p}: not a CTranslate2 model.bin: variable {name!r} has dtype id {type_id}")
        dtype_name = _DTYPES[type_id]
        n_bytes = cur.uint("I", f"the size of {name!r}")
        stored = np.dtype("uint16") if dtype_name == "bfloat16" else np.dtype(dtype_name)
        expected = int(np.prod(dims, dtype=np.int64)) * stored.itemsize
        if n_bytes != expected:
            raise CT2FormatError(
                f"{p}: not a CTranslate2 model.bin: variable {name!r} of shape {dims} {dtype_name} "
                f"declares {n_bytes} bytes, expected {expected}"
            )
        raw = cur.take(n_bytes, f"the data of {name!r}")
        if not name.startswith(prefix):
            continue
        arr: npt.NDArray[Any] = np.frombuffer(raw, dtype=stored.newbyteorder("<")).reshape(dims)
        if dtype_name == "bfloat16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dtype_name == "float16" and float32:
            arr = arr.astype(np.float32)
        else:
            arr = arr.astype(arr.dtype.newbyteorder("="), copy=True)
        variables[name] = arr
    n_aliases = cur.uint("I", "the alias count")
    for _ in range(n_aliases):
        alias = cur.string("an alias name")
        target = cur.string(f"the target of alias {alias!r}")
        if not alias.startswith(prefix):
            continue
        if target not in variables:
            if target.startswith(prefix):
                raise CT2FormatError(f"{p}: alias {alias!r} points to the unknown variable {target!r}")
            raise CT2FormatError(
                f"{p}: alias {alias!r} points to {target!r}, outside prefix {prefix!r}: read with a wider prefix"
            )
        variables[alias] = variables[target]
    if cur.pos != len(data):
        raise CT2FormatError(f"{p}: not a CTranslate2 model.bin: {len(data) - cur.pos} bytes after the aliases")
    return CT2Model(spec=spec, revision=revision, variables=variables)
