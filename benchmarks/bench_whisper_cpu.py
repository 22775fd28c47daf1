"""The mini preset's recognizer (Whisper tiny.en, encoder merged) in a λ sweep on the CPU, two ways.

(a) naive: per configuration, re-load Whisper from its packaged weights, merge Q/K/V by hand in a state dict, and
    transcribe utterance by utterance;
(b) the book's path: one :class:`~mamlib.merge.merger.AttentionMerger` writing each configuration in place and
    :class:`~mamlib.asr.whisper.WhisperTranscriber` on length-sorted batches.

It prints audio-seconds per second for each, the FLOPs of one configuration counted with
``torch.utils.flop_counter.FlopCounterMode`` and the achieved GFLOP/s, the fraction of this machine's float32
matmul peak measured in the same run (a 2048² ``torch.mm``), the ratio (a)/(b), and how many transcripts of (a) and
(b) agree (one-by-one and batched forward passes may differ in the last float bits).

    python benchmarks/bench_whisper_cpu.py --utterances 16 --lambdas 0 0.1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mamlib.asr.corpora import load_corpus
from mamlib.asr.whisper import WhisperTranscriber
from mamlib.common.paths import cache_root
from mamlib.merge.interpolation import interpolate
from mamlib.merge.merger import AttentionWeights, evenly_spaced_layer_map
from mamlib.merge.sources import build_mergers
from mamlib.models.build import build_model
from mamlib.models.kinds import ModelSpec
from mamlib.models.whisper_tiny import load_whisper_tiny_en


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matmul throughput of this machine, GFLOP/s (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def naive(lam: float, source: AttentionWeights, waves) -> list[str]:
    """(a): reload, merge by hand, one utterance at a time."""
    model, processor = load_whisper_tiny_en()
    state = model.state_dict()
    layers = len(model.model.encoder.layers)
    lmap = evenly_spaced_layer_map(layers, source.num_layers)
    for i in range(layers):
        for p in "qkv":
            key = f"model.encoder.layers.{i}.self_attn.{p}_proj.weight"
            state[key] = interpolate(source.weights[(lmap[i], p)], state[key], lam) if lam else state[key]
    model.load_state_dict(state)
    t = WhisperTranscriber(model, processor)
    return [t.transcribe([w], batch_size=1)[0] for w in waves]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", type=int, default=16)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    utts = load_corpus("lj-like", "dev", cache_dir=cache_root(), n=args.utterances)
    waves = [u.audio for u in utts]
    audio = sum(len(w) for w in waves) / 16_000
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{len(waves)} lj-like dev utterances, {audio:.1f} s of audio; λ grid {args.lambdas}")
    peak = matmul_peak()
    model, processor = load_whisper_tiny_en()
    source_model = build_model(ModelSpec(kind="minilm")).model
    merger = build_mergers(model, source_model, ["source"])["source"]
    ours = WhisperTranscriber(model, processor)
    with FlopCounterMode(display=False) as counter:
        ours.transcribe(waves, batch_size=args.batch_size)
    flops = counter.get_total_flops()
    seconds = {"naive": 0.0, "book": 0.0}
    agree = 0
    for lam in args.lambdas:
        with merger.merged(lam):
            t0 = time.perf_counter()
            book = ours.transcribe(waves, batch_size=args.batch_size)
            seconds["book"] += time.perf_counter() - t0
        if not args.skip_naive:
            t0 = time.perf_counter()
            agree += sum(a == b for a, b in zip(naive(lam, merger.source, waves), book))
            seconds["naive"] += time.perf_counter() - t0
    n = len(args.lambdas)
    print(f"float32 matmul peak measured now: {peak:.1f} GFLOP/s; one configuration = {flops / 1e9:.1f} GFLOP")
    for way, s in seconds.items():
        if s:
            rate = flops * n / s / 1e9
            print(f"({way:5s}) {s:7.1f} s  {audio * n / s:6.2f} audio-s/s  {rate:6.1f} GFLOP/s  "
                  f"{rate / peak:6.1%} of peak")
    if seconds["naive"]:
        ratio = seconds["naive"] / seconds["book"]
        print(f"ratio naive/book {ratio:.2f}x; transcripts equal: {agree}/{n * len(waves)}")


if __name__ == "__main__":
    main()
