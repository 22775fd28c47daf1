"""Whisper's unmerged bottom reused across a Table-2-shaped sweep (issue 21): the mini preset's Whisper tiny.en with
MiniLM merged into one encoder block at a time, transcribed (a) from scratch per configuration, as before, and (b)
through :class:`~mamlib.asr.whisper.CachedWhisperTranscriber`, which computes the log-mel features, the
convolutions and the layers below each block once. Prints both times, their ratio and whether every transcript is
identical; a Table-1-shaped sweep (all layers) is timed the same way (only the features and convolutions are
shared there).

    python benchmarks/bench_whisper_prefix.py                 # the 8 real alsa-utils clips, blocks × λ ∈ {0.1, 0.2}
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from mamlib.asr.corpora import load_corpus
from mamlib.asr.whisper import CachedWhisperTranscriber, WhisperTranscriber
from mamlib.merge.merger import AttentionMerger
from mamlib.models.minilm import load_minilm
from mamlib.models.whisper_tiny import load_whisper_tiny_en
from mamlib.sweeps.choose import table2_blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    model, processor = load_whisper_tiny_en()
    text, _ = load_minilm()
    transcriber, merger = WhisperTranscriber(model, processor), AttentionMerger(model, text)
    waves = [u.audio for u in load_corpus("alsa-real", "test")]
    blocks = table2_blocks("asr", merger.num_layers)
    print(f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads;"
          f" {len(waves)} clips, {merger.num_layers} encoder layers")
    for name, subsets in (("Table 2 (blocks)", blocks), ("Table 1 (all layers)", [None])):
        configs = [(lam, b) for b in subsets for lam in args.lambdas]
        t0 = time.perf_counter()
        plain = []
        for lam, layers in configs:
            with merger.merged(lam, layers):
                plain.append(transcriber.transcribe(waves, batch_size=args.batch_size))
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        starts = sorted({0 if b is None else b[0] for b in subsets})
        cached = CachedWhisperTranscriber(transcriber, waves, starts, batch_size=args.batch_size)
        fast = []
        for lam, layers in configs:
            with merger.merged(lam, layers):
                fast.append(cached.transcribe())
        t_fast = time.perf_counter() - t0
        same = sum(a == b for p, f in zip(plain, fast) for a, b in zip(p, f))
        print(f"{name}: {len(configs)} configurations; (a) from scratch {t_plain:.1f} s, (b) cached {t_fast:.1f} s "
              f"(cache build included): (a)/(b) = {t_plain / t_fast:.2f}×; transcripts identical {same}/"
              f"{len(configs) * len(waves)}")


if __name__ == "__main__":
    main()
