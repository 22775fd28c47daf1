"""Merging checkpoints larger than memory: tensor by tensor, from the files on disk, into sharded safetensors.

A :class:`Checkpoint` is a model folder's weights as stored (safetensors, sharded or not, or PyTorch ``.bin``),
described from the headers alone; :func:`locate_attention` finds a family's Q/K/V among the stored keys (which may
carry another prefix or an older spelling). :func:`stream_merge` writes each merged Q/K/V weight (and bias, when
biases are interpolated), ``Σ_s λ_s·W_s + (1 − Σ_s λ_s)·W_target``, with the book merger's blend kernel
:func:`~mamlib.merge.interpolation.combine`, so both write the same bits, and copies every other tensor byte for byte
into shards of at most ``max_shard_size`` bytes. Memory stays flat: positioned reads (a memory map keeps every page
it touched resident), ``os.copy_file_range``, and ``.bin`` files only through ``torch.load(..., weights_only=True,
mmap=True)``, so nothing is ever unpickled.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mamlib.merge.families import PROJECTIONS, AttentionFamily
from mamlib.merge.interpolation import combine

Key = tuple[int, str]

SAFETENSORS_INDEX = "model.safetensors.index.json"
#: Where a folder's weights are looked for, in the order ``from_pretrained`` prefers them.
WEIGHT_LAYOUTS: tuple[tuple[str, str], ...] = (
    (SAFETENSORS_INDEX, "safetensors"), ("model.safetensors", "safetensors"),
    ("pytorch_model.bin.index.json", "bin"), ("pytorch_model.bin", "bin"),
)
#: ``save_pretrained``'s default shard size in transformers 4 and the Hugging Face hub's usual one (decimal GB).
DEFAULT_MAX_SHARD_SIZE = 5 * 10**9
#: Bytes copied per ``copy_file_range`` / read-write round when a tensor is copied as stored.
COPY_CHUNK = 64 * 2**20
#: The largest safetensors header accepted (the format's own reader refuses more than 100 MB).
MAX_HEADER = 100 * 10**6

#: safetensors dtype names → torch's (``"BF16"`` → ``"bfloat16"``).
TORCH_DTYPE_NAMES: dict[str, str] = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "U16": "uint16", "U32": "uint32", "U64": "uint64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu", "C64": "complex64",
}
#: safetensors dtype names → the torch dtypes this build of torch has.
DTYPES: dict[str, torch.dtype] = {k: getattr(torch, v) for k, v in TORCH_DTYPE_NAMES.items() if hasattr(torch, v)}
_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}
#: The stored dtypes a Q/K/V tensor may have to be merged (a quantized checkpoint is refused).
BLENDABLE: tuple[str, ...] = ("F16", "BF16", "F32", "F64")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or merged as stored; the message names the file or the tensor."""


@dataclass(frozen=True)
class OutputTensor:
    """One tensor of a safetensors file: its key, safetensors dtype name, shape and size in bytes; for a tensor of a
    checkpoint as stored, also its file and where its bytes start (-1 in a ``.bin`` file, whose tensors are read
    through ``torch.load``)."""

    key: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: Path | None = None
    offset: int = -1


# -- reading -------------------------------------------------------------------------------------------------------


def read_safetensors_header(path: Path) -> dict[str, OutputTensor]:
    """The tensors a safetensors file holds, from its header alone; CheckpointError naming the file when the header
    is not a valid one or points outside the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, too short for a header)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: not a safetensors file (header length {length} in a {size}-byte file)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: not a safetensors file (its header is not JSON: {err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (its header is not a JSON object)")
    header.pop("__metadata__", None)
    start = 8 + length
    tensors: dict[str, OutputTensor] = {}
    for key, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(map(int, info["shape"])), map(int, info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {key!r} has a malformed header entry {info!r}") from None
        if not 0 <= begin <= end <= size - start:
            raise CheckpointError(f"{path}: tensor {key!r} lies outside the file (bytes {begin}..{end} of the data, "
                                  f"which has {size - start})")
        if dtype in DTYPES and math.prod(shape) * DTYPES[dtype].itemsize != end - begin:
            raise CheckpointError(f"{path}: tensor {key!r} ({dtype} {list(shape)}) spans {end - begin} bytes, "
                                  f"not {math.prod(shape) * DTYPES[dtype].itemsize}")
        tensors[key] = OutputTensor(key, dtype, shape, end - begin, path, start + begin)
    return tensors


def load_bin(path: Path) -> dict[str, Tensor]:
    """A PyTorch ``.bin`` state dict through ``torch.load(weights_only=True, mmap=True)`` only; anything it cannot
    read (other pickled objects, the legacy format), or that safetensors cannot store, is refused naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - every way torch.load can fail is a refusal naming the file
        raise CheckpointError(
            f"{path}: refused: torch.load(weights_only=True, mmap=True) cannot read it ({one_line(err, 300)}); mam "
            "merge unpickles nothing else — convert it to safetensors, or save it again with torch.save"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: refused: not a flat state dict of named tensors ({type(state).__name__})")
    for key, tensor in state.items():
        if tensor.dtype not in _NAMES:
            raise CheckpointError(f"{path}: tensor {key!r} has dtype {tensor.dtype}, which safetensors cannot store")
    return state


def one_line(err: BaseException, limit: int = 400) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _index_files(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{index}: not a weight index (a JSON object with a weight_map): {err}") from None
    files = [index.parent / name for name in names]
    if missing := [f.name for f in files if not f.is_file()]:
        raise CheckpointError(f"{index} lists shard(s) that are not in the folder: {missing}")
    return files


@dataclass
class Checkpoint:
    """A model folder's weights as stored, read without loading the model: ``tensors`` maps every stored key to its
    :class:`OutputTensor`, in file order; ``format`` is ``"safetensors"`` or ``"bin"``."""

    files: list[Path]
    tensors: dict[str, OutputTensor]
    format: str
    index: Path | None = None
    _bin: tuple[Path, dict[str, Tensor]] | None = field(default=None, init=False, repr=False)

    @classmethod
    def find(cls, folder: str | Path) -> Checkpoint | None:
        """The weights of ``folder`` (see :data:`WEIGHT_LAYOUTS`) from their headers (a ``.bin`` file's from its
        memory-mapped state dict), or None when it holds none of those files."""
        folder = Path(folder)
        path, fmt = next(((folder / n, f) for n, f in WEIGHT_LAYOUTS if (folder / n).is_file()), (None, ""))
        if path is None:
            return None
        index = path if path.name.endswith(".index.json") else None
        files = _index_files(path) if index else [path]
        tensors: dict[str, OutputTensor] = {}
        for file in files:
            found = read_safetensors_header(file) if fmt == "safetensors" else {
                k: OutputTensor(k, _NAMES[t.dtype], tuple(t.shape), t.nbytes, file, -1)
                for k, t in load_bin(file).items()}
            for key, entry in found.items():
                if key in tensors:
                    raise CheckpointError(f"{folder}: tensor {key!r} is stored twice ({tensors[key].file.name} and "
                                          f"{file.name})")
                tensors[key] = entry
        if not tensors:
            raise CheckpointError(f"{folder}: {', '.join(f.name for f in files)} hold no tensors")
        order = sorted(tensors.values(), key=lambda t: (files.index(t.file), t.offset))
        return cls(files, {t.key: t for t in order}, fmt, index)

    @property
    def total_size(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def describe(self) -> str:
        """``2 safetensors shards, 3.09 GB (bfloat16)``: the dtypes by their stored bytes."""
        sizes: Counter[str] = Counter()
        for t in self.tensors.values():
            sizes[t.dtype] += t.nbytes
        kinds = ", ".join(TORCH_DTYPE_NAMES.get(d, d) for d, _ in sizes.most_common())
        what = f"{len(self.files)} {self.format} shards" if len(self.files) > 1 else self.files[0].name
        return f"{what}, {format_size(self.total_size)} ({kinds})"

    def read(self, key: str) -> Tensor:
        """Tensor ``key`` as stored (a fresh CPU tensor of its stored dtype and shape)."""
        entry = self.tensors[key]
        if self.format == "bin":
            return self._bin_tensor(entry).clone()
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{entry.file}: tensor {key!r} has dtype {entry.dtype}, which torch cannot read")
        buf = torch.empty(entry.nbytes, dtype=torch.uint8)
        with open(entry.file, "rb") as f:  # a buffered reader's readinto fills the buffer unless the file ends
            f.seek(entry.offset)
            if f.readinto(buf.numpy()) != entry.nbytes:
                raise CheckpointError(f"{entry.file}: ends inside tensor {key!r}")
        return buf.view(DTYPES[entry.dtype]).reshape(entry.shape)

    def copy_to(self, key: str, writer: ShardWriter) -> None:
        """Write tensor ``key``'s stored bytes into ``writer``, unchanged."""
        entry = self.tensors[key]
        if self.format == "bin":
            writer.write_tensor(self._bin_tensor(entry))
        else:
            writer.copy_range(entry.file, entry.offset, entry.nbytes)

    def _bin_tensor(self, entry: OutputTensor) -> Tensor:
        # One .bin file's memory map at a time: the pages a map has touched stay resident until it is dropped.
        if self._bin is None or self._bin[0] != entry.file:
            self._bin = None
            self._bin = (entry.file, load_bin(entry.file))
        return self._bin[1][entry.key]

    def release(self) -> None:
        """Drop the memory map of the ``.bin`` file read last (safetensors files are never mapped)."""
        self._bin = None


def format_size(nbytes: int) -> str:
    """Bytes in decimal units: ``3.09 GB``, ``512 kB``."""
    size, units = float(nbytes), ["B", "kB", "MB", "GB", "TB"]
    while size >= 1000 and len(units) > 1:
        size, units = size / 1000, units[1:]
    return f"{size:.0f} B" if units[0] == "B" else f"{size:.3g} {units[0]}"


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """``"5GB"`` → 5·10⁹, ``"500MiB"`` → 500·2²⁰, ``1000`` → 1000 bytes (as ``save_pretrained``'s max_shard_size)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif m := _SIZE.fullmatch(str(text)):
        value = int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])
    else:
        raise ValueError(f"not a size: {text!r} (write e.g. 5GB, 500MB or 2GiB)")
    if value < 1:
        raise ValueError(f"a shard size must be positive, got {text!r}")
    return value


# -- where the Q/K/V tensors are -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionKeys:
    """Where a model's Q/K/V tensors are stored: ``(layer, projection)`` → the weight's key, and the bias's key
    (None where the checkpoint has no bias); ``how`` says how the module names were matched to stored keys."""

    weights: dict[Key, str]
    biases: dict[Key, str | None]
    how: str

    @property
    def num_layers(self) -> int:
        return 1 + max(layer for layer, _ in self.weights)

    def key(self, layer: int, proj: str, leaf: str) -> str | None:
        """The stored key of ``leaf`` (``"weight"`` or ``"bias"``) of one projection."""
        return self.weights[(layer, proj)] if leaf == "weight" else self.biases[(layer, proj)]


def locate_attention(
    stored: Mapping[str, OutputTensor], modules: Mapping[Key, str], family: AttentionFamily,
    shapes: Mapping[Key, tuple[int, ...]] | None = None, *, what: str = "checkpoint",
) -> AttentionKeys:
    """The stored keys of the Q/K/V ``modules`` (``(layer, projection)`` → module name) among ``stored``: each module
    name plus ``.weight`` with a prefix dropped and/or added (:func:`_prefix_rule`), else ``family``'s pattern over
    the stored names (both spellings of models transformers renames); the model's ``shapes`` are checked."""
    order = sorted(modules, key=lambda k: (k[0], PROJECTIONS.index(k[1])))
    names = [modules[k] for k in order]
    rule = _prefix_rule(names, stored)
    if rule is not None:
        drop, add = rule
        weights = {k: add + name[len(drop):] + ".weight" for k, name in zip(order, names)}
        how = "module names" + (f" without the prefix {drop!r}" if drop else "") + (
            f" with the prefix {add!r}" if add else "")
    else:  # the stored weights the family's pattern finds, each projection exactly once
        hits: dict[Key, list[str]] = {}
        for key in stored:
            if key.endswith(".weight") and (hit := family.match(key.removesuffix(".weight"))) is not None:
                hits.setdefault(hit, []).append(key)
        weights = {k: keys[0] for k, keys in hits.items() if len(keys) == 1}
        if set(weights) != set(modules):
            sample = [k for k in stored if k.endswith(".weight")][:6]
            raise CheckpointError(
                f"{what} stores no tensor for {names[0]}.weight (nor under another prefix), and family "
                f"{family.name!r} finds {len(weights)} of the {len(modules)} Q/K/V weights among its keys "
                f"(some of them: {sample})"
            )
        how = f"the {family.name!r} pattern over the stored names"
    for k, key in weights.items():
        if shapes is not None and tuple(shapes[k]) != stored[key].shape:
            raise CheckpointError(f"{what}: {key} is stored as {list(stored[key].shape)}, but the model's config makes "
                                  f"it {list(shapes[k])}")
    biases = {k: key.removesuffix("weight") + "bias" for k, key in weights.items()}
    return AttentionKeys(weights, {k: b if b in stored else None for k, b in biases.items()}, how)


def _prefix_rule(names: Sequence[str], stored: Mapping[str, OutputTensor]) -> tuple[str, str] | None:
    """``(drop, add)`` such that ``add + name.removeprefix(drop) + ".weight"`` is stored for every module name (a
    ``bert.`` the model has and the checkpoint lacks, or the other way round), tried from the longest suffix that a
    stored key shares with the first name."""
    parts = names[0].split(".")
    for i in range(len(parts)):
        tail = ".".join(parts[i:]) + ".weight"
        drop = ".".join(parts[:i]) + "." if i else ""
        for key in sorted(k for k in stored if k == tail or k.endswith("." + tail)):
            add = key[: len(key) - len(tail)]
            if all(n.startswith(drop) and add + n[len(drop):] + ".weight" in stored for n in names):
                return drop, add
    return None


def check_blendable(stored: Mapping[str, OutputTensor], keys: AttentionKeys, projections: Sequence[str],
                    *, what: str = "checkpoint") -> None:
    """CheckpointError unless every Q/K/V weight and bias of ``projections`` is stored as F16, BF16, F32 or F64."""
    for (layer, proj), key in keys.weights.items():
        for k in (key, keys.biases[(layer, proj)]) if proj in projections else ():
            if k is not None and stored[k].dtype not in BLENDABLE:
                raise CheckpointError(f"{what}: {k} is stored as {stored[k].dtype}; mam merge blends only "
                                      f"{'/'.join(BLENDABLE)} tensors (not quantized ones)")


# -- writing -------------------------------------------------------------------------------------------------------


def plan_shards(tensors: Sequence[OutputTensor], max_shard_size: int) -> dict[str, list[OutputTensor]]:
    """File name → its tensors: ``tensors`` split into shards of at most ``max_shard_size`` bytes and named as
    ``save_pretrained`` does (``huggingface_hub``'s splitter); within a shard, wider dtypes first (as safetensors)."""
    from huggingface_hub import split_state_dict_into_shards_factory

    by_key = {t.key: t for t in tensors}
    split = split_state_dict_into_shards_factory(by_key, get_storage_size=lambda t: t.nbytes,
                                                 filename_pattern="model{suffix}.safetensors",
                                                 max_shard_size=max_shard_size)
    width = {t.key: DTYPES[t.dtype].itemsize if t.dtype in DTYPES else 1 for t in tensors}
    return {name: [by_key[k] for k in sorted(keys, key=lambda k: -width[k])]
            for name, keys in sorted(split.filename_to_tensors.items())}


class ShardWriter:
    """One safetensors file written front to back: the header (known in advance from the tensors' shapes), then
    each tensor's bytes in header order. :meth:`close` flushes it to disk and checks every byte was written."""

    def __init__(self, path: Path, tensors: Sequence[OutputTensor]):
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for t in tensors:
            header[t.key] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
            offset += t.nbytes
        blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
        blob += b" " * (-len(blob) % 8)
        self.path = path
        self.expected = 8 + len(blob) + offset
        self.written = 0
        self._file = open(path, "xb", buffering=0)
        self._copy_file_range = hasattr(os, "copy_file_range")
        self.write(struct.pack("<Q", len(blob)) + blob)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``."""
        view = memoryview(data).cast("B")
        while view:
            n = self._file.write(view)
            if not n:
                raise OSError(errno.EIO, f"could not write to {self.path}")
            self.written += n
            view = view[n:]

    def write_tensor(self, tensor: Tensor) -> None:
        """Append ``tensor``'s bytes (C order)."""
        self.write(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy())

    def copy_range(self, source: Path, offset: int, nbytes: int) -> None:
        """Append ``nbytes`` of ``source`` from ``offset``, in chunks: in the kernel (``copy_file_range``) where it
        can, else through a bounded buffer."""
        with open(source, "rb", buffering=0) as src:
            end = offset + nbytes
            while offset < end:
                count, n = min(COPY_CHUNK, end - offset), 0
                if self._copy_file_range:
                    try:
                        n = os.copy_file_range(src.fileno(), self._file.fileno(), count, offset)
                        self.written += n
                    except OSError as err:
                        if err.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM):
                            raise
                        self._copy_file_range = False
                if not self._copy_file_range:
                    data = os.pread(src.fileno(), count, offset)
                    self.write(data)
                    n = len(data)
                if not n:
                    raise CheckpointError(f"{source}: ends inside a tensor (byte {offset})")
                offset += n

    def close(self) -> None:
        """Flush to the disk (fsync) and close; OSError when fewer bytes were written than the header promises."""
        try:
            if self.written != self.expected:
                raise OSError(errno.EIO, f"{self.path}: wrote {self.written} of {self.expected} bytes")
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class SourceTerms:
    """One source of a streamed merge: its checkpoint and where its Q/K/V are stored in it, its layer map (target
    layer → source layer) and whether each source matrix is rescaled to the target matrix's Frobenius norm."""

    checkpoint: Checkpoint
    keys: AttentionKeys
    layer_map: Sequence[int]
    norm_matched: bool = False


def stream_merge(
    target: Checkpoint, target_keys: AttentionKeys, sources: Sequence[SourceTerms], table: Sequence[Sequence[float]],
    folder: Path, *, projections: Sequence[str] = PROJECTIONS, bias: str = "target",
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE, on_file: Callable[[Path], None],
) -> dict[str, Any]:
    """Write the merge of ``sources`` into ``target`` (``table`` is the checked ``[source][layer]`` λ) into the
    existing folder ``folder`` as safetensors shards (and their index when there are several); ``on_file`` gets each
    file once it is complete (e.g. to hash it while the next is written). Returns the record of what was written."""
    # Every Q/K/V weight (and, with bias="interpolate", bias) some source changes → its layer, projection, leaf and
    # the sources entering that layer with a non-zero λ.
    blends: dict[str, tuple[int, str, str, list[tuple[SourceTerms, float]]]] = {}
    leaves = ("weight", "bias") if bias == "interpolate" else ("weight",)
    for layer in range(target_keys.num_layers):
        active = [(src, row[layer]) for src, row in zip(sources, table) if row[layer] != 0.0]
        for proj, leaf in product(projections if active else (), leaves):
            if (key := target_keys.key(layer, proj, leaf)) is not None:
                blends[key] = (layer, proj, leaf, active)
    shards = plan_shards(list(target.tensors.values()), max_shard_size)
    try:
        for name, shard in shards.items():
            writer = ShardWriter(folder / name, shard)
            try:
                for t in shard:
                    if t.key not in blends:
                        target.copy_to(t.key, writer)
                        continue
                    layer, proj, leaf, active = blends[t.key]  # each source read when the blend kernel adds it
                    keys = (src.keys.key(src.layer_map[layer], proj, leaf) for src, _ in active)
                    reads = (None if key is None else src.checkpoint.read(key) for (src, _), key in zip(active, keys))
                    writer.write_tensor(combine(target.read(t.key), reads, [lam for _, lam in active],
                                                [src.norm_matched and leaf == "weight" for src, _ in active]))
                writer.close()
            except BaseException:
                writer.abort()
                raise
            on_file(folder / name)
    finally:
        target.release()
    if len(shards) > 1:
        index = {"metadata": {"total_size": target.total_size},
                 "weight_map": {t.key: name for name, shard in shards.items() for t in shard}}
        (folder / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        on_file(folder / SAFETENSORS_INDEX)
    merged = [t for shard in shards.values() for t in shard if t.key in blends]
    return {"weight_files": list(shards) + [SAFETENSORS_INDEX] * (len(shards) > 1), "total_size": target.total_size,
            "tensors_merged": len(merged), "tensors_copied": len(target.tensors) - len(merged),
            "merged_dtypes": dict(Counter(TORCH_DTYPE_NAMES[t.dtype] for t in merged))}
