"""A numpy reader for CTranslate2 ``model.bin`` files (no ctranslate2 needed).

The layout, as read from the bytes of a Whisper tiny.en model (binary version 6); all integers little-endian::

    u32 binary_version
    str spec_name                      # e.g. "WhisperSpec"
    u32 spec_revision
    u32 num_variables
    num_variables × (str name, u8 rank, rank × u32 dim, u8 dtype, u32 num_bytes, num_bytes of data)
    u32 num_aliases
    num_aliases × (str alias, str variable_name)

where ``str`` is a ``u16`` byte count (terminating NUL included) followed by the bytes. Rank-0 variables are
scalar settings (``encoder/num_heads``, ``decoder/pre_norm``, ...). dtype codes: 0 float32, 1 int8, 2 int16,
3 int32, 4 float16, 5 bfloat16 (returned as float32, numpy has no bfloat16).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: CTranslate2 dtype code (the index) → numpy dtype; bfloat16 is read as raw uint16 and widened.
_DTYPES = tuple(np.dtype(d) for d in ("<f4", "i1", "<i2", "<i4", "<f2", "<u2"))
_BFLOAT16 = 5
#: The binary version this reader understands (the layout above was checked on it only).
_VERSION = 6
_MAX_VARIABLES = 100_000


@dataclass
class CT2Model:
    """The content of a ``model.bin`` (of binary version 6): its variables by name, aliases and header fields."""

    path: Path
    spec: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        """A variable by name or alias."""
        return self.variables[self.aliases.get(name, name)]

    def scalars(self) -> dict[str, int | float]:
        """The rank-0 variables (model settings such as ``encoder/num_heads``) as Python numbers."""
        return {k: v.item() for k, v in self.variables.items() if v.ndim == 0}

    def tensors(self) -> dict[str, np.ndarray]:
        """The variables of rank ≥ 1 (the weights)."""
        return {k: v for k, v in self.variables.items() if v.ndim > 0}


@dataclass
class _Cursor:
    """Bounds-checked sequential reads over a byte buffer; errors name the file and offset."""

    data: memoryview
    path: Path
    pos: int = 0

    def fail(self, what: str, at: int | None = None) -> ValueError:
        at = self.pos if at is None else at
        return ValueError(f"{self.path}: not a valid CTranslate2 model.bin at byte offset {at}: {what}")

    def take(self, n: int, what: str) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise self.fail(f"expected {n} bytes of {what}, only {len(self.data) - self.pos} left (truncated file?)")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, what: str) -> int:
        return int(struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0])

    def string(self, what: str, max_len: int = 4096) -> str:
        start = self.pos
        n = self.unpack("H", f"length of {what}")
        if n == 0 or n > max_len:
            raise self.fail(f"implausible length {n} of {what}", start)
        raw = bytes(self.take(n, what))
        text = raw[:-1].decode("utf-8", errors="replace")
        if raw[-1] != 0 or "\ufffd" in text or not text.isprintable():
            raise self.fail(f"{what} is not NUL-terminated printable UTF-8 text: {raw[:40]!r}", start)
        return text


def read_ct2(path: str | Path, *, float32: bool = False) -> CT2Model:
    """Read a CTranslate2 ``model.bin``; ``float32=True`` casts every floating variable to float32.

    Raises ValueError naming the file and byte offset when the file is truncated, corrupt or of an unknown
    version / dtype. Arrays are copies (the file is not kept open).
    """
    path = Path(path)
    cur = _Cursor(memoryview(path.read_bytes()), path)
    version = cur.unpack("I", "the binary version")
    if version != _VERSION:
        raise cur.fail(f"binary version {version}, expected {_VERSION}", 0)
    spec = cur.string("the spec name")
    revision = cur.unpack("I", "the spec revision")
    count = cur.unpack("I", "the number of variables")
    if count > _MAX_VARIABLES:
        raise cur.fail(f"implausible number of variables {count}", cur.pos - 4)
    variables: dict[str, np.ndarray] = {}
    for i in range(count):
        var_at = cur.pos
        name = cur.string(f"the name of variable {i}")
        rank = cur.unpack("B", f"the rank of {name!r}")
        if rank > 8:
            raise cur.fail(f"implausible rank {rank} of {name!r}", var_at)
        shape = tuple(cur.unpack("I", f"dimension {d} of {name!r}") for d in range(rank))
        code = cur.unpack("B", f"the dtype of {name!r}")
        if code >= len(_DTYPES):
            raise cur.fail(f"unknown dtype code {code} of {name!r}, expected 0-{len(_DTYPES) - 1}", cur.pos - 1)
        nbytes = cur.unpack("I", f"the byte count of {name!r}")
        expected = int(np.prod(shape, dtype=np.int64)) * _DTYPES[code].itemsize
        if nbytes != expected:
            raise cur.fail(f"{name!r} of shape {shape} and dtype code {code} needs {expected} bytes, header says "
                           f"{nbytes}", cur.pos - 4)
        if name in variables:
            raise cur.fail(f"variable {name!r} appears twice", var_at)
        array = np.frombuffer(cur.take(nbytes, f"the data of {name!r}"), dtype=_DTYPES[code]).reshape(shape).copy()
        if code == _BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array.astype(np.float32) if float32 and array.dtype.kind == "f" else array
    aliases: dict[str, str] = {}
    for i in range(cur.unpack("I", "the number of aliases")):
        alias_at = cur.pos
        alias = cur.string(f"alias {i}")
        target = cur.string(f"the target of alias {alias!r}")
        if target not in variables:
            raise cur.fail(f"alias {alias!r} points to the unknown variable {target!r}", alias_at)
        aliases[alias] = target
    if cur.pos != len(cur.data):
        raise cur.fail(f"{len(cur.data) - cur.pos} unexpected trailing bytes after the last alias")
    return CT2Model(path, spec, revision, variables, aliases)
