"""Choosing which layers to merge from data (Sec. 4.1, Table 3).

The target encodes utterances, the source encodes their transcripts; each layer's pooled representations are
compared (:mod:`mamlib.selection.scores`) and the top-k most similar layers are merged with Eq. 2. This module connects
those pieces to the presets: it encodes a corpus split with both models and evaluates the picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from mamlib.asr.metrics import normalize_transcript
from mamlib.asr.recognizers import CTCTranscriber, Transcriber, Utterance
from mamlib.selection.representations import (
    HIGHER_IS_MORE_SIMILAR,
    METRICS,
    Normalization,
    audio_layer_representations,
    text_layer_representations,
    whisper_layer_representations,
)
from mamlib.selection.scores import similarity_table, top_k_layers
from mamlib.sweeps.choose import best_lambda
from mamlib.sweeps.grid import Sweep, SweepGrid, layer_label

#: How the book names the metrics, in the paper's column order.
METRIC_LABELS = {"euclidean": "Euclidean", "swd": "SWD", "inner_product": "Inner product"}


def scaled_ks(num_layers: int, paper_ks: Sequence[int] = (4, 6, 8), paper_layers: int = 24) -> list[int]:
    """Table 3's k values for one corpus (``paper_ks``: the paper's for the matching dataset, LJ Speech 4, 6, 8 and
    VCTK 6, 8, 10, on its 24 layers) scaled to a target of ``num_layers`` layers; for shallow targets (< 12 layers,
    where the scaled values collapse) every proper subset size ``1 … L−1``."""
    if num_layers < 2:
        raise ValueError(f"a model of {num_layers} layer(s) has no proper subset to select")
    if num_layers < 12:
        return list(range(1, num_layers))
    return sorted({max(1, min(num_layers - 1, round(k * num_layers / paper_layers))) for k in paper_ks})


@torch.inference_mode()
def layer_similarities(
    transcriber: Transcriber, source: nn.Module, tokenizer: Any, utterances: Sequence[Utterance],
    layer_map: Sequence[int] | None, *, batch_size: int = 8, batch_seconds: float | None = None,
    normalizations: Sequence[Normalization] = ("none", "l2"),
) -> pd.DataFrame:
    """Scores of every metric for every target layer, one block of rows per normalization (long format): the target
    (CTC or Whisper) encodes the utterances' audio (batches of ``batch_size`` clips and, for CTC, ``batch_seconds``),
    the text ``source`` with its ``tokenizer`` — e.g. ``build_model(preset.asr.source)`` — their normalized
    transcripts."""
    waves = [u.audio for u in utterances]
    if isinstance(transcriber, CTCTranscriber):
        t = audio_layer_representations(transcriber.model, transcriber.feature_extractor, waves,
                                        batch_size=batch_size, batch_seconds=batch_seconds)
    elif hasattr(transcriber, "feature_extractor") and hasattr(transcriber.model, "get_encoder"):
        t = whisper_layer_representations(transcriber.model, transcriber.feature_extractor, waves,
                                          batch_size=batch_size)
    else:
        raise ValueError(f"no layer-representation reader for a {type(transcriber).__name__}")
    s = text_layer_representations(source, tokenizer, [normalize_transcript(u.text) for u in utterances])
    return pd.concat([similarity_table(t, s, layer_map=layer_map, normalize=norm).reset_index()
                      .melt(id_vars="layer", var_name="metric", value_name="score").assign(normalization=norm)
                      for norm in normalizations], ignore_index=True)


def picks(
    scores: pd.DataFrame, ks: Sequence[int], normalization: Normalization = "none"
) -> dict[tuple[str, int], list[int]]:
    """The top-k layers of every metric and k (Eq. 2's subset ℓ) under one normalization."""
    part = scores[scores["normalization"] == normalization]
    col = {m: part[part["metric"] == m].sort_values("layer")["score"].to_numpy() for m in METRICS}
    return {(m, k): top_k_layers(col[m], m, k) for m in METRICS for k in ks}


def picks_table(picked: Mapping[tuple[str, int], Sequence[int]]) -> pd.DataFrame:
    """Which layers each metric picks for each k, as a table (rows k, columns metric under the book's names in the
    paper's order: Euclidean, SWD, Inner product)."""
    rows: dict[int, dict[str, str]] = {}
    for (metric, k), layers in picked.items():
        rows.setdefault(k, {})[metric] = layer_label(layers)
    table = pd.DataFrame(rows).T.rename_axis("k")
    return table[[m for m in METRIC_LABELS if m in table.columns]].rename(columns=METRIC_LABELS)


def similarity_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` with a ``rank`` column: 1 = the layer each metric finds most similar (per normalization)."""
    out = scores.copy()
    groups = out.groupby(["metric", "normalization"])["score"]
    ascending, descending = (groups.rank(method="first", ascending=up) for up in (True, False))
    out["rank"] = descending.where(out["metric"].map(HIGHER_IS_MORE_SIMILAR), ascending).astype(int)
    return out


def table3_block(sweep: Sweep, picked: Mapping[tuple[str, int], Sequence[int]], ks: Sequence[int]
                 ) -> tuple[pd.DataFrame, float]:
    """Table 3 for one corpus and λ — the non-zero λ with the lowest dev WER merging all layers (Chapter 1's sweep,
    read back from the results store): the test WER (%) of every metric's top-k pick merged at λ (rows (λ, k),
    columns metric), and λ."""
    full = sweep.run(SweepGrid(variants=("source",)))
    lam = best_lambda(full[(full["split"] == "dev") & (full["source"] == "source")], sweep.value)
    sets = sorted({tuple(v) for v in picked.values()})
    runs = sweep.run(SweepGrid(variants=("source",), lambdas=(lam,), layer_sets=tuple(sets), splits=("test",)))
    error_of = {row["layers"]: row[sweep.value] for _, row in runs.iterrows() if row["source"] == "source"}
    rows = {(lam, k): {m: error_of[layer_label(picked[(m, k)])] for m in METRIC_LABELS} for k in ks}
    return pd.DataFrame(rows).T.rename_axis(["λ", "k"]).rename(columns=METRIC_LABELS), lam
