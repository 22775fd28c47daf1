"""Throughput of a Table-1-shaped ASR sweep (Sec. 3.1, Eq. 1: all layers merged at each λ) on a CTC target.

Ways, each evaluating every configuration on the same utterances:

(a) naive: per configuration, rebuild the model from its saved state dict, merge Q/K/V by hand (Eq. 1 on the state
    dict), transcribe one utterance at a time; float32;
(b) per-configuration batches (the book's path before issue 11): ``AttentionMerger`` in place, the feature
    extractor and the whole network run for every configuration, length-sorted batches of a fixed count; float32;
(c) fast, float32: what no configuration changes (the convolutional features, the feature projection and the
    positional convolution, i.e. the input of layer 0) computed once and kept on the device
    (``CachedCTCTranscriber``), batches by a budget of padded audio seconds, arg-max on the device, decoding after
    the last batch; float32 (``asr.dtype: float32``, ``asr.batch_seconds``);
(c0) as (c) with (b)'s count batches — must give (b)'s transcripts exactly (the script exits with status 1 if not);
(d) as (c) with the target and the merge in bfloat16 (``asr.dtype: bfloat16``), for each ``--budgets`` value;
(e) optional (``--compile``): as (d) with ``torch.compile``'d encoder layers.

For every way it prints the sweep's wall time, audio-seconds per second (audio × configurations / wall time), the
FLOPs executed (counted with ``torch.utils.flop_counter.FlopCounterMode`` on one configuration, not estimated),
achieved TFLOP/s, that as a share of a bfloat16 (and float32) matrix-product peak measured in the same run, and its
ratio against (b) and (a); transcripts of every way are compared with (b)'s (identical count, and the character
error rate between them via jiwer).

The models are random-init (no hub access): HubertForCTC with HuBERT-large's layout (``--size large``: 24 layers ×
1024) and a BertModel of the same shape; the audio is white noise with LJ-Speech-like lengths (1.5–10 s).

    python benchmarks/bench_ctc_sweep.py                                 # CPU, small, about a minute
    python benchmarks/bench_ctc_sweep.py --size large --device cuda --utterances 128 --compile
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import torch
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertModel, HubertForCTC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prefix_cache import hardware, naive_merged_state  # noqa: E402

from mamlib.asr.prefix_cache import CachedCTCTranscriber  # noqa: E402
from mamlib.asr.recognizers import CTCTranscriber  # noqa: E402
from mamlib.merge.merger import AttentionMerger  # noqa: E402
from mamlib.models.transformers_kinds import (  # noqa: E402
    bert_large_config,
    char_ctc_tokenizer,
    hubert_large_config,
    speech_feature_extractor,
)

SIZES = {"small": (4, 256, 4), "base": (12, 768, 12), "large": (24, 1024, 16)}
Config = tuple[float, tuple[int, ...] | None]  # (λ, layers); None: all layers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small", help="model size (default small)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--utterances", type=int, default=8, help="synthetic utterances (default 8)")
    p.add_argument("--min-seconds", type=float, default=1.5)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.25],
                   help="merged configurations, all layers (the unmerged model is added)")
    p.add_argument("--configs", type=int, default=None,
                   help="instead of --lambdas: this many configurations, λ evenly spaced in (0, 0.25] plus λ = 0 "
                        "(25 is one split of Table 1: 5 λ x 5 sources, which cost the same)")
    p.add_argument("--batch-size", type=int, default=16, help="(b)'s count, and the cap of budget batches")
    p.add_argument("--budgets", type=float, nargs="+", default=[160.0],
                   help="padded audio seconds per batch for (c)-(e); (c) uses the first, (d) each")
    p.add_argument("--cap", type=int, default=256, help="most clips per budget batch (default 256)")
    p.add_argument("--naive-configs", type=int, default=1, help="configurations timed for (a); 0 skips it")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of the fast sweeps (median reported)")
    p.add_argument("--compile", action="store_true", help="also time (e), torch.compile'd layers")
    p.add_argument("--skip-fp32-fast", action="store_true", help="skip (c0) and (c)")
    p.add_argument("--profile", action="store_true", help="print the top operators of one (d) sweep (torch.profiler)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def matmul_peak(device: str, dtype: torch.dtype) -> float:
    """Measured TFLOP/s of a square matrix product in ``dtype`` (8192 on a GPU, 2048 on a CPU): the best of three
    timed rounds after two warm-up products."""
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 20 if device.startswith("cuda") else 4
    for _ in range(2):
        a @ b
    best = min(timed(lambda: [a @ b for _ in range(reps)], device)[1] for _ in range(3))
    return 2 * n**3 * reps / best / 1e12


def fold_weight_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the positional convolution's weight-norm parametrization by the plain weight it computes (same
    forward pass; ``FlopCounterMode`` and ``copy.deepcopy`` cannot see through the parametrization)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def counted_flops(fn: Callable[[], Any]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def lj_like_waves(n: int, lo: float, hi: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(16_000 * s))).astype(np.float32) for s in rng.uniform(lo, hi, size=n)]


def agreement(hyps: list[list[str]], ref: list[list[str]]) -> tuple[int, int, float]:
    """(identical transcripts, transcripts, character error rate of ``hyps`` against ``ref``)."""
    pairs = [(h, r) for hs, rs in zip(hyps, ref, strict=True) for h, r in zip(hs, rs, strict=True)]
    same = sum(h == r for h, r in pairs)
    refs = [r if r else "-" for _, r in pairs]  # jiwer refuses empty references
    cer = float(jiwer.cer(refs, [h if h else "-" for h, _ in pairs]))
    return same, len(pairs), cer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    layers, hidden, heads = SIZES[args.size]
    if args.configs is not None:
        args.lambdas = [round(float(x), 4) for x in np.linspace(0.25 / (args.configs - 1), 0.25, args.configs - 1)]
    configs: list[Config] = [(0.0, None)] + [(lam, None) for lam in args.lambdas]
    tokenizer, fe = char_ctc_tokenizer(), speech_feature_extractor()
    torch.manual_seed(args.seed)
    size = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden)
    cfg = hubert_large_config(vocab_size=len(tokenizer), **size)
    hubert, bert = fold_weight_norm(HubertForCTC(cfg).eval()), BertModel(bert_large_config(**size)).eval()
    waves = lj_like_waves(args.utterances, args.min_seconds, args.max_seconds, args.seed)
    audio_s = sum(len(w) for w in waves) / 16_000
    info = hardware(device)
    info["attention"] = hubert.config._attn_implementation
    peak_bf16 = matmul_peak(device, torch.bfloat16)
    peak_fp32 = matmul_peak(device, torch.float32)
    info.update(peak_bf16_tflops=round(peak_bf16, 2), peak_fp32_tflops=round(peak_fp32, 2))
    print(f"hardware: {json.dumps(info)}")
    print(f"model: {layers} layers x {hidden} ({sum(p.numel() for p in hubert.parameters()) / 1e6:.0f} M params); "
          f"{len(waves)} utterances, {audio_s:.1f} s of audio ({args.min_seconds}-{args.max_seconds} s); "
          f"{len(configs)} configurations (all layers, λ 0 and {len(args.lambdas)} λ in "
          f"[{min(args.lambdas)}, {max(args.lambdas)}])")
    print(f"measured matmul peak: bf16 {peak_bf16:.1f} TFLOP/s, fp32 {peak_fp32:.2f} TFLOP/s")

    results: dict[str, Any] = {"hardware": info, "size": args.size, "utterances": len(waves),
                               "audio_seconds": audio_s, "configs": len(configs), "ways": {}}
    hyps: dict[str, list[list[str]]] = {}

    def report(name: str, seconds: float, flops: float, n_configs: int = len(configs)) -> None:
        per_config = seconds / n_configs
        row = {"seconds_per_config": per_config, "audio_s_per_s": audio_s / per_config,
               "tflops": flops / n_configs / per_config / 1e12}
        row["share_bf16_peak"] = row["tflops"] / peak_bf16
        row["share_fp32_peak"] = row["tflops"] / peak_fp32
        results["ways"][name] = row
        print(f"{name:<28} {per_config:8.3f} s/config {row['audio_s_per_s']:10.1f} audio-s/s "
              f"{row['tflops']:8.2f} TFLOP/s  {100 * row['share_bf16_peak']:5.1f} % of bf16 peak "
              f"({100 * row['share_fp32_peak']:5.1f} % of fp32)", flush=True)

    # (b) per-configuration batches, float32
    tr32 = CTCTranscriber(hubert, fe, tokenizer, device)
    bert32 = bert.to(device)
    merger32 = AttentionMerger(tr32.model, bert32)
    tr32.transcribe(waves[:2], batch_size=2)  # warm-up

    def sweep_b() -> list[list[str]]:
        out = []
        for lam, lay in configs:
            with merger32.merged(lam, lay):
                out.append(tr32.transcribe(waves, batch_size=args.batch_size))
        return out

    B = "(b) per-config batches fp32"
    hyps[B], t_b = timed(sweep_b, device)
    flops_b = counted_flops(lambda: tr32.transcribe(waves, batch_size=args.batch_size)) * len(configs)
    report(B, t_b, flops_b)

    # (c0) prefix cache with (b)'s batches: identical transcripts required
    def cache(tr: CTCTranscriber, budget: float | None, cap: int) -> CachedCTCTranscriber:
        return CachedCTCTranscriber(tr, waves, 0, batch_size=cap, batch_seconds=budget)

    def merged(cached: CachedCTCTranscriber, merger: AttentionMerger, config: Config) -> list[str]:
        with merger.merged(*config):
            return cached.transcribe()

    def fast_sweep(tr: CTCTranscriber, merger: AttentionMerger, budget: float | None, cap: int) -> list[list[str]]:
        cached = cache(tr, budget, cap)
        return [merged(cached, merger, config) for config in configs]

    def fast_flops(tr: CTCTranscriber, merger: AttentionMerger, budget: float | None, cap: int) -> float:
        build = counted_flops(lambda: cache(tr, budget, cap))
        cached = cache(tr, budget, cap)
        return build + counted_flops(lambda: merged(cached, merger, configs[1])) * len(configs)

    def run_fast(name: str, tr: CTCTranscriber, merger: AttentionMerger, budget: float | None, cap: int) -> None:
        cached = cache(tr, budget, cap)  # warm-up (kernel selection, allocator, compilation)
        merged(cached, merger, configs[1])
        _, t_build = timed(lambda: cache(tr, budget, cap), device)
        times = []
        for _ in range(max(1, args.repeats)):
            hyps[name], t = timed(lambda: fast_sweep(tr, merger, budget, cap), device)
            times.append(t)
        report(name, statistics.median(times), fast_flops(tr, merger, budget, cap))
        print(f"    of which building the cache (features, batches, frontend; once per split): {t_build:.3f} s; "
              f"{len(cached._batches)} batches", flush=True)

    C0 = "(c0) cached, (b)'s batches"
    identical_c0 = True
    if not args.skip_fp32_fast:
        run_fast(C0, tr32, merger32, None, args.batch_size)
        identical_c0 = hyps[C0] == hyps[B]
        print(f"    transcripts (c0) == (b): {identical_c0}")
        run_fast(f"(c) fast fp32, {args.budgets[0]:g} s", tr32, merger32, args.budgets[0], args.cap)

    # (d) bfloat16
    model16 = copy.deepcopy(hubert).to(device=device, dtype=torch.bfloat16)
    tr16 = CTCTranscriber(model16, fe, tokenizer, device)
    merger16 = AttentionMerger(model16, copy.deepcopy(bert32).to(torch.bfloat16))
    for budget in args.budgets:
        run_fast(f"(d) fast bf16, {budget:g} s", tr16, merger16, budget, args.cap)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
        with profile(activities=activities) as prof:
            fast_sweep(tr16, merger16, args.budgets[-1], args.cap)
            sync(device)
        sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60), flush=True)

    if args.compile:
        try:
            for layer in model16.base_model.encoder.layers:
                layer.compile(dynamic=True)
            _, t_compile = timed(lambda: fast_sweep(tr16, merger16, args.budgets[-1], args.cap), device)
            print(f"    (e) first sweep incl. compilation: {t_compile:.1f} s", flush=True)
            run_fast(f"(e) compiled bf16, {args.budgets[-1]:g} s", tr16, merger16, args.budgets[-1], args.cap)
        except Exception as err:  # noqa: BLE001 - report and go on: compilation is optional
            print(f"    (e) torch.compile failed: {type(err).__name__}: {err}", flush=True)

    # (a) naive, on the first configurations
    if args.naive_configs > 0:
        work = Path(tempfile.mkdtemp(prefix="bench_ctc_sweep_"))
        torch.save(hubert.state_dict(), work / "hubert.pt")
        torch.save(bert32.state_dict(), work / "bert.pt")
        naive_configs = configs[: args.naive_configs]

        def sweep_a() -> list[list[str]]:
            out = []
            for lam, _ in naive_configs:
                model = fold_weight_norm(HubertForCTC(cfg))
                state = naive_merged_state(torch.load(work / "hubert.pt", map_location="cpu", weights_only=True),
                                           torch.load(work / "bert.pt", map_location="cpu", weights_only=True),
                                           (lam, tuple(range(layers))))
                model.load_state_dict(state)
                naive = CTCTranscriber(model, fe, tokenizer, device)
                out.append([naive.transcribe([w], batch_size=1)[0] for w in waves])
            return out

        A = f"(a) naive ({len(naive_configs)} config)"
        hyps[A], t_a = timed(sweep_a, device)
        flops_a = counted_flops(lambda: [tr32.transcribe([w], batch_size=1) for w in waves])  # no padding
        report(A, t_a, flops_a * len(naive_configs), len(naive_configs))

    print("\nratios (time per configuration) and transcripts against (b):")
    ways = results["ways"]
    b_time = ways[B]["seconds_per_config"]
    a_time = next((r["seconds_per_config"] for k, r in ways.items() if k.startswith("(a)")), None)
    for name, row in ways.items():
        same = agreement(hyps[name], hyps[B][: len(hyps[name])])
        row.update(vs_b=b_time / row["seconds_per_config"], identical=same[0], compared=same[1], cer=same[2],
                   vs_a=None if a_time is None else a_time / row["seconds_per_config"])
        vs_a = "" if a_time is None else f"  {row['vs_a']:7.2f}x vs (a)"
        print(f"{name:<28} {row['vs_b']:7.2f}x vs (b){vs_a}  identical {same[0]}/{same[1]}, "
              f"CER {100 * same[2]:.2f} %")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    if not identical_c0:
        print("ERROR: the cached path with (b)'s batches changed a transcript", file=sys.stderr)
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
