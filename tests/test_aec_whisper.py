"""mamlib.aec.encoders.whisper_encoder_fn: Whisper's encoder as an AEC encoder, with a frame mask over real audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

from mamlib.aec.encoders import embed, pad_batch, whisper_encoder_fn, whisper_frames

SR = 16_000


def tiny_whisper() -> WhisperForConditionalGeneration:
    """A tiny random Whisper (one 16-wide encoder layer) with the real input geometry: 80 mels, 1500 positions."""
    torch.manual_seed(0)
    sizes = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2)
    tokens = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=32,
        **sizes,
        **tokens,
    )
    return WhisperForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def encoder_fn():
    return whisper_encoder_fn(tiny_whisper(), WhisperFeatureExtractor())


def noise(n: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_whisper_frames() -> None:
    assert whisper_frames(SR) == 50  # 100 mel frames of 10 ms, halved by the stride-2 convolution
    assert whisper_frames(SR // 2) == 25
    assert whisper_frames(SR + 1) == 50  # 101 mel frames
    assert whisper_frames(100) == 1 and whisper_frames(1) == 1
    assert whisper_frames(40 * SR) == 1500  # truncated to 30 s


def test_mask_lengths(encoder_fn) -> None:
    lengths = (SR, SR // 2, 3200, 100)
    wave, mask = pad_batch([noise(n, i) for i, n in enumerate(lengths)])
    frames, frame_mask = encoder_fn(wave, mask)
    assert frames.shape == (4, 1500, 16) and frame_mask.shape == (4, 1500) and frame_mask.dtype == torch.bool
    assert (~frame_mask).sum(dim=1).tolist() == [50, 25, 10, 1]
    assert not frame_mask[:, 0].any()  # real frames come first
    assert torch.equal(frame_mask, torch.arange(1500).unsqueeze(0) >= (~frame_mask).sum(dim=1, keepdim=True))


def test_padding_does_not_change_the_pooled_vector(encoder_fn) -> None:
    short, long = noise(7000, 1), noise(SR, 2)
    alone = embed(encoder_fn, [short])
    batched = embed(encoder_fn, [long, short, noise(SR // 4, 3)])
    torch.testing.assert_close(batched[1:2], alone, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)


def test_accepts_a_processor_and_records_grad_only_when_enabled(encoder_fn) -> None:
    class Processor:  # anything with a .feature_extractor, like WhisperProcessor
        feature_extractor = WhisperFeatureExtractor()

    fn = whisper_encoder_fn(tiny_whisper(), Processor())
    wave, mask = pad_batch([noise(SR, 4)])
    with torch.no_grad():  # as embed() runs it
        frames, _ = fn(wave, mask)
        expected, _ = encoder_fn(wave, mask)
    torch.testing.assert_close(frames, expected)
    assert not frames.requires_grad
    # With gradients on (fine-tuning, Chapter 4), the frames are differentiable in the encoder's weights.
    trained, _ = fn(wave, mask)
    assert trained.requires_grad
