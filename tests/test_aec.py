"""mamlib.aec: pooled embeddings, the linear head, classification error, synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mamlib.aec.encoders import beats_encoder_fn, embed, pad_batch
from mamlib.aec.esc50 import split_folds
from mamlib.aec.head import classification_error, labels, predict, train_linear_head
from mamlib.aec.synthetic import synthetic_clips
from mamlib.models.beats import BEATs, fbank_features, tiny_beats_config


def sample_frames(waveform: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A stand-in encoder: every sample is a 1-d frame, the padding mask passes through."""
    return waveform.unsqueeze(-1), padding_mask


def fbank_encoder(waveform: torch.Tensor, padding_mask: torch.Tensor) -> tuple[torch.Tensor, None]:
    """Log-mel frames as "features": enough to separate the synthetic classes."""
    return fbank_features(waveform), None


def test_pad_batch() -> None:
    wave, mask = pad_batch([np.ones(3, np.float32), np.full(5, 2.0, np.float32)])
    assert wave.tolist() == [[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]]
    assert mask.tolist() == [[False, False, False, True, True], [False] * 5]
    with pytest.raises(ValueError, match="empty"):
        pad_batch([np.ones(2), np.zeros(0)])


def test_embed_mean_pools_without_padding() -> None:
    waves = [np.full(n, float(v), np.float32) for n, v in ((4, 1.0), (10, 3.0), (7, -2.0), (2, 5.0))]
    for batch_size in (1, 3, 4):
        pooled = embed(sample_frames, waves, batch_size=batch_size)
        assert pooled.shape == (4, 1)
        assert pooled[:, 0].tolist() == [1.0, 3.0, -2.0, 5.0]  # padding zeros would pull these toward 0
    ramp = np.arange(6, dtype=np.float32)
    assert embed(sample_frames, [ramp, np.zeros(9, np.float32)])[0, 0].item() == pytest.approx(2.5)


def test_classification_error_hand_counted() -> None:
    head = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3))  # predicts the index of the largest feature
    features = torch.tensor(
        [[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [1.0, 2.0, 0], [0, 0, 1.0]]
    )
    targets = torch.tensor([0, 1, 2, 1, 1, 0, 1, 2])  # rows 3 and 5 are wrong: 2 of 8
    assert predict(head, features).tolist() == [0, 1, 2, 0, 1, 2, 1, 2]
    assert classification_error(predict(head, features), targets) == 25.0
    assert classification_error(predict(head, features[:3]), targets[:3]) == 0.0
    with pytest.raises(ValueError, match="as many predictions as labels"):
        classification_error(torch.tensor([0, 1]), targets[:3])
    with pytest.raises(ValueError, match="at least one"):
        classification_error(targets[:0], targets[:0])


def test_synthetic_clips_are_deterministic_and_balanced() -> None:
    a = synthetic_clips(n_classes=4, n_per_class=5, seed=3, seconds=0.5)
    b = synthetic_clips(n_classes=4, n_per_class=5, seed=3, seconds=0.5)
    c = synthetic_clips(n_classes=4, n_per_class=5, seed=4, seconds=0.5)
    assert len(a) == 20 and [x.id for x in a] == [x.id for x in b]
    assert all(np.array_equal(x.waveform, y.waveform) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].waveform, c[0].waveform)
    assert sorted({x.label for x in a}) == [0, 1, 2, 3]
    assert sorted(x.fold for x in a if x.label == 2) == [1, 2, 3, 4, 5]
    assert all(x.waveform.dtype == np.float32 and len(x.waveform) == 8000 for x in a)
    assert max(float(np.abs(x.waveform).max()) for x in a) < 1.0


def test_linear_head_learns_separable_synthetic_clips() -> None:
    clips = synthetic_clips(n_classes=6, n_per_class=10, seed=0)
    split = split_folds(clips, train=(1, 2, 3), dev=4, test=5)
    train_x, test_x = embed(fbank_encoder, split.train), embed(fbank_encoder, split.dev + split.test)
    head = train_linear_head(train_x, labels(split.train), epochs=30, lr=1e-2, seed=0)
    assert classification_error(predict(head, train_x), labels(split.train)) == 0.0
    assert classification_error(predict(head, test_x), labels(split.dev + split.test)) <= 10.0
    again = train_linear_head(train_x, labels(split.train), epochs=30, lr=1e-2, seed=0)
    assert torch.equal(head.weight, again.weight) and torch.equal(head.bias, again.bias)
    other = train_linear_head(train_x, labels(split.train), epochs=30, lr=1e-2, seed=1)
    assert not torch.equal(head.weight, other.weight)


def test_standardization_is_folded_into_the_head() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen) * torch.tensor([1.0, 100.0, 0.01, 5.0, 1.0]) + 50.0
    y = (x[:, 0] > 50.0).long()
    head = train_linear_head(x, y, epochs=40, lr=5e-2, seed=0)
    # trained on z-scores, applied to raw features: the raw features classify as the z-scores did
    assert classification_error(predict(head, x), y) <= 5.0
    assert not head.weight.requires_grad


def test_beats_encoder_fn_masks_padding() -> None:
    torch.manual_seed(0)
    model = BEATs(tiny_beats_config()).eval()
    fn = beats_encoder_fn(model)
    clips = synthetic_clips(n_classes=2, n_per_class=2, seed=0, seconds=1.0)
    short = clips[1].waveform[:12000]
    together = embed(fn, [clips[0].waveform, short], batch_size=2)
    alone = embed(fn, [short], batch_size=1)
    assert together.shape == (2, 64)
    torch.testing.assert_close(together[1], alone[0], atol=1e-5, rtol=1e-5)


def test_nan_features_are_refused():
    import torch

    from mamlib.aec.head import train_linear_head

    x = torch.randn(6, 4)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="1 of 6 training feature vectors contain NaN"):
        train_linear_head(x, torch.tensor([0, 1, 0, 1, 0, 1]), epochs=1)
