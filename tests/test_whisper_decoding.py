"""TokenMask: the suppressed-token masks of Whisper's decoding, built once, equal transformers' per-step ones."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import SuppressTokensAtBeginLogitsProcessor, SuppressTokensLogitsProcessor

from mamlib.asr.whisper import TokenMask

TOKENS = [1, 2, 7, 50, 99, 1000]


def test_every_step_mask_equals_transformers():
    scores = torch.randn(3, 1200)
    for length in (2, 3, 9):
        ids = torch.zeros(3, length, dtype=torch.long)
        ours = TokenMask(TOKENS)(ids, scores.clone())
        theirs = SuppressTokensLogitsProcessor(TOKENS)(ids, scores.clone())
        assert torch.equal(ours, theirs)
    assert torch.isinf(ours[:, TOKENS]).all() and torch.isfinite(ours[:, 3]).all()


def test_first_step_mask_equals_transformers_at_and_after_the_begin_index():
    scores = torch.randn(2, 1200)
    ours, theirs = TokenMask(TOKENS, first_step_only=True), SuppressTokensAtBeginLogitsProcessor(TOKENS, 2)
    ours.set_begin_index(2)
    for length in (2, 3):
        ids = torch.zeros(2, length, dtype=torch.long)
        assert torch.equal(ours(ids, scores.clone()), theirs(ids, scores.clone()))
    assert torch.equal(ours(torch.zeros(2, 3, dtype=torch.long), scores), scores)  # later steps untouched


def test_no_tokens_and_a_new_vocabulary_size():
    scores = torch.randn(1, 10)
    assert torch.equal(TokenMask([])(torch.zeros(1, 2, dtype=torch.long), scores), scores)
    mask = TokenMask([3, 20])
    out = mask(torch.zeros(1, 2, dtype=torch.long), scores)
    assert torch.isinf(out[0, 3]) and torch.isfinite(out[0, :3]).all()  # token 20 lies outside this vocabulary
    assert torch.isinf(mask(torch.zeros(1, 2, dtype=torch.long), torch.randn(1, 30))[0, 20])
