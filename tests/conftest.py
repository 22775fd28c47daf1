from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, HubertConfig, HubertForCTC


def tiny_hubert(seed: int = 0, hidden: int = 32, layers: int = 3) -> HubertForCTC:
    torch.manual_seed(seed)
    cfg = HubertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
                       conv_dim=(16,) * 7, num_conv_pos_embeddings=16, vocab_size=32, do_stable_layer_norm=True,
                       feat_extract_norm="layer")
    return HubertForCTC(cfg).eval()


def tiny_bert(seed: int = 1, hidden: int = 32, layers: int = 3) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                                intermediate_size=64)).eval()


@pytest.fixture
def hubert() -> HubertForCTC:
    return tiny_hubert()


@pytest.fixture
def bert() -> BertModel:
    return tiny_bert()


@pytest.fixture
def waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 9000, 12500)]
