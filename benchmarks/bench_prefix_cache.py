"""Wall time of a Table-2-shaped layer-subset sweep (Sec. 3.2, Eq. 2), evaluated three ways.

(a) naive: per configuration, re-build the CTC model, reload both models' saved state dicts, merge the block's Q/K/V
    in the state dict by hand, and transcribe utterance by utterance;
(b) merger: one :class:`mamlib.merge.merger.AttentionMerger` writing each configuration in place, length-sorted batches;
(c) merger + prefix cache: as (b), but layers below each configuration's first merged layer are never recomputed
    (:class:`mamlib.asr.prefix_cache.CachedCTCTranscriber`, one cache level per block start; building it is timed).

The models are random-init (no hub access): a HubertForCTC with HuBERT-large's layout (stable layer norm, layer-norm
convolutions, attention masks) and a BertModel of the same width and depth; the audio is white noise. Transcripts of
(b) and (c) must be identical (asserted); (a) runs without padding, so its agreement with (b) is reported (batched
and one-by-one forward passes can differ in the last float bits, which may flip an arg-max of a random model).

    python benchmarks/bench_prefix_cache.py --layers 6 --hidden 256 --utterances 8 --seconds 2
    python benchmarks/bench_prefix_cache.py --large --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertModel, HubertConfig, HubertForCTC

from mamlib.asr.prefix_cache import CachedCTCTranscriber
from mamlib.asr.recognizers import CTCTranscriber
from mamlib.merge.merger import AttentionMerger
from mamlib.models.transformers_kinds import (
    bert_large_config,
    char_ctc_tokenizer,
    hubert_large_config,
    speech_feature_extractor,
)

Config = tuple[float, tuple[int, ...]]  # (λ, merged layers); () = no merge


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=12, help="transformer layers (default 12)")
    p.add_argument("--hidden", type=int, default=768, help="width (default 768)")
    p.add_argument("--heads", type=int, default=12, help="attention heads (default 12)")
    p.add_argument("--large", action="store_true", help="HuBERT-large / BERT-large size: 24 layers x 1024, 16 heads")
    p.add_argument("--utterances", type=int, default=16, help="number of synthetic utterances (default 16)")
    p.add_argument("--seconds", type=float, default=3.0, help="mean utterance length in seconds (default 3)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.05, 0.1, 0.25])
    p.add_argument("--block", type=int, default=None, help="layers per merged block (default: layers / 3)")
    p.add_argument("--stride", type=int, default=None, help="step between block starts (default: block / 2)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--skip-naive", action="store_true", help="skip (a), the slowest way")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.large:
        args.layers, args.hidden, args.heads = 24, 1024, 16
    return args


def sweep_configs(num_layers: int, block: int, stride: int, lambdas: list[float]) -> list[Config]:
    """Table 2's shape: blocks of ``block`` consecutive layers every ``stride`` layers, each λ, plus "None"."""
    if not 1 <= block <= num_layers or stride < 1:
        raise ValueError(f"bad block/stride {block}/{stride} for {num_layers} layers")
    starts = range(0, num_layers - block + 1, stride)
    return [(lam, tuple(range(s, s + block))) for s in starts for lam in lambdas] + [(0.0, ())]


def hardware(device: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def build_models(args: argparse.Namespace, vocab_size: int) -> tuple[HubertConfig, HubertForCTC, BertModel]:
    """HuBERT-large's layout (``transformers_kinds.hubert_large_config``) and BERT's, at the requested size."""
    torch.manual_seed(args.seed)
    size = dict(hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=args.heads,
                intermediate_size=4 * args.hidden)
    cfg = hubert_large_config(vocab_size=vocab_size, **size)
    return cfg, HubertForCTC(cfg).eval(), BertModel(bert_large_config(**size)).eval()


def synthetic_waves(n: int, seconds: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(0.6 * seconds, 1.4 * seconds, size=n)
    return [(0.1 * rng.standard_normal(int(16_000 * s))).astype(np.float32) for s in lengths]


def naive_merged_state(hubert_sd: dict[str, torch.Tensor], bert_sd: dict[str, torch.Tensor], config: Config) -> dict:
    """Eq. 2 by hand on state dicts, independent of mamlib's merger."""
    lam, layers = config
    merged = dict(hubert_sd)
    for i in layers:
        for h, b in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")):
            key = f"hubert.encoder.layers.{i}.attention.{h}.weight"
            merged[key] = lam * bert_sd[f"encoder.layer.{i}.attention.self.{b}.weight"] + (1 - lam) * hubert_sd[key]
    return merged


def timed(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    block = args.block or max(1, args.layers // 3)
    stride = args.stride or max(1, block // 2)
    configs = sweep_configs(args.layers, block, stride, args.lambdas)
    device = args.device
    work = Path(tempfile.mkdtemp(prefix="bench_prefix_cache_"))
    tokenizer = char_ctc_tokenizer()
    fe = speech_feature_extractor()
    cfg, hubert, bert = build_models(args, len(tokenizer))
    torch.save(hubert.state_dict(), work / "hubert.pt")
    torch.save(bert.state_dict(), work / "bert.pt")
    waves = synthetic_waves(args.utterances, args.seconds, args.seed)
    audio_s = sum(len(w) for w in waves) / 16_000
    info = hardware(device)
    print(f"hardware: {json.dumps(info)}")
    print(
        f"model: {args.layers} layers x {args.hidden} ({sum(p.numel() for p in hubert.parameters()) / 1e6:.0f} M "
        f"params); {len(waves)} utterances, {audio_s:.1f} s of audio; batch {args.batch_size}; "
        f"{len(configs)} configurations (blocks of {block} every {stride} layers x λ {args.lambdas} + none)"
    )

    transcriber = CTCTranscriber(hubert, fe, tokenizer, device)
    bert.to(device)
    merger = AttentionMerger(transcriber.model, bert)
    transcriber.transcribe(waves[:2], batch_size=2)  # warm-up (kernel selection, allocator)

    # (b) merger + batched, uncached
    def run_b() -> list[list[str]]:
        out = []
        for lam, layers in configs:
            with merger.merged(lam, list(layers)):
                out.append(transcriber.transcribe(waves, batch_size=args.batch_size))
        return out

    hyps_b, t_b = timed(run_b, device)
    print(f"(b) merger + batched:                {t_b:8.2f} s")

    # (c) merger + batched + prefix cache (one level per block start and the head-only level)
    levels = sorted({min(layers) if layers else args.layers for _, layers in configs})

    def run_c() -> list[list[str]]:
        cached = CachedCTCTranscriber(transcriber, waves, levels, batch_size=args.batch_size)
        out = []
        for lam, layers in configs:
            with merger.merged(lam, list(layers)):
                out.append(cached.transcribe())
        return out

    hyps_c, t_c = timed(run_c, device)
    print(f"(c) merger + batched + prefix cache: {t_c:8.2f} s   (cache levels {levels})")
    identical_bc = hyps_b == hyps_c
    print(f"transcripts (b) == (c): {identical_bc}")
    assert identical_bc, "prefix-cached transcripts differ from uncached ones"

    results: dict[str, Any] = {
        "hardware": info, "layers": args.layers, "hidden": args.hidden, "utterances": len(waves),
        "audio_seconds": audio_s, "configs": len(configs), "levels": levels,
        "t_b": t_b, "t_c": t_c, "b_over_c": t_b / t_c, "identical_b_c": identical_bc,
    }

    if not args.skip_naive:
        hubert_path, bert_path = work / "hubert.pt", work / "bert.pt"

        def run_a() -> list[list[str]]:
            out = []
            for config in configs:
                torch.manual_seed(args.seed)
                model = HubertForCTC(cfg)
                hubert_sd = torch.load(hubert_path, map_location="cpu", weights_only=True)
                bert_sd = torch.load(bert_path, map_location="cpu", weights_only=True)
                model.load_state_dict(naive_merged_state(hubert_sd, bert_sd, config))
                naive = CTCTranscriber(model, fe, tokenizer, device)
                out.append([naive.transcribe([w], batch_size=1)[0] for w in waves])
            return out

        hyps_a, t_a = timed(run_a, device)
        pairs = [(x, y) for ha, hb in zip(hyps_a, hyps_b, strict=True) for x, y in zip(ha, hb, strict=True)]
        agree = sum(x == y for x, y in pairs)
        print(f"(a) naive reload + one by one:       {t_a:8.2f} s")
        print(f"transcripts (a) == (b): {agree}/{len(pairs)}")
        results.update(t_a=t_a, a_over_c=t_a / t_c, a_over_b=t_a / t_b, agree_a_b=agree)
        print(f"speed-up (a)/(c): {t_a / t_c:6.2f}x   (a)/(b): {t_a / t_b:6.2f}x")
    print(f"speed-up (b)/(c): {t_b / t_c:6.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
