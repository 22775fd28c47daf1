"""The cost of L-MAM (Eq. 3) per training step, against plain fine-tuning of the same model, in one run.

Three ways to take one AdamW step of CTC fine-tuning of a HuBERT-CTC target with BERT as the source:

(a) plain fine-tuning (the baseline, no merge);
(b) L-MAM as the book does it: ``torch.nn.utils.parametrize`` recomputes each merged Q/K/V weight in the forward pass
    (:class:`~mamlib.merge.learnable.LearnableMerge`);
(c) the naive way: the blended Q/K/V handed to the model each step through ``torch.func.functional_call``.

It prints the median time per step of each, the ratios (b)/(a) (goal: at most 1.10) and (c)/(a), the FLOPs of one
step counted with ``torch.utils.flop_counter.FlopCounterMode``, the achieved throughput against the matmul peak
measured in the same run (float32 on the CPU, bf16 on a GPU, where the step runs under bf16 autocast), and the extra
memory of L-MAM: the tensors it adds (source matrices, logits) and, on a GPU, the peak allocated memory of (a) and
(b).

    python benchmarks/bench_lmam_step.py                         # smoke size, CPU
    python benchmarks/bench_lmam_step.py --size large --device cuda  # HuBERT-large layout, random init
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mamlib.finetune.tasks import CTCTask
from mamlib.merge.learnable import LearnableMerge
from mamlib.merge.merger import AttentionMerger
from mamlib.models.transformers_kinds import (
    bert_large_config,
    char_ctc_tokenizer,
    hubert_large_config,
    speech_feature_extractor,
)

SIZES = {"smoke": dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256),
         "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
         "large": {}}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="smoke")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each synthetic utterance")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per variant (after 2 warm-up steps)")
    return ap.parse_args()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int = 4096) -> float:
    """Measured matmul throughput, FLOP/s (best of 10)."""
    n = n if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(10):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    args = parse_args()
    from transformers import BertModel, HubertForCTC

    device, cuda = args.device, args.device.startswith("cuda")
    torch.manual_seed(0)
    tokenizer = char_ctc_tokenizer()
    target = HubertForCTC(hubert_large_config(vocab_size=len(tokenizer), **SIZES[args.size])).to(device)
    source = BertModel(bert_large_config(**SIZES[args.size])).to(device)
    task = CTCTask(speech_feature_extractor(), tokenizer)
    rng = np.random.default_rng(0)

    class Utt:
        def __init__(self, i: int) -> None:
            self.audio = (0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32)
            self.text = "the quick brown fox jumps over the lazy dog"

    batch = {k: v.to(device) for k, v in task.collate([Utt(i) for i in range(args.batch)]).items()}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def make(variant: str) -> Callable[[], float]:
        model = copy.deepcopy(target)
        task.prepare(model)
        model.train()
        lmam = LearnableMerge(model, source, init=0.05) if variant == "lmam" else None
        extra: list[torch.nn.Parameter] = []
        blend: Callable[[], dict[str, torch.Tensor]] | None = None
        if variant == "naive":
            merger = AttentionMerger(model, source)
            names = {id(p): n for n, p in model.named_parameters()}
            logits = [torch.nn.Parameter(torch.logit(torch.tensor(0.05, device=device))) for _ in
                      range(merger.num_layers)]
            extra = logits
            pairs = [(names[id(merger.projection(i, p).weight)], merger.source_matrix(i, p).to(device), i)
                     for i in range(merger.num_layers) for p in merger.projections]
            params = dict(model.named_parameters())

            def blend() -> dict[str, torch.Tensor]:
                out: dict[str, torch.Tensor] = {}
                for name, src, i in pairs:
                    lam = torch.sigmoid(logits[i])
                    out[name] = lam * src + (1 - lam) * params[name]
                return out

        weights = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW([*weights, *extra], lr=1e-5)

        def step() -> float:
            sync(device)
            t0 = time.perf_counter()
            with autocast:
                if blend is not None:
                    loss = torch.func.functional_call(model, blend(), args=(), kwargs=batch, strict=False).loss
                else:
                    loss = task.loss(model, batch)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(device)
            return time.perf_counter() - t0

        step.model = model  # type: ignore[attr-defined]
        step.lmam = lmam  # type: ignore[attr-defined]
        return step

    results: dict[str, list[float]] = {}
    memory: dict[str, int] = {}
    steps = {v: make(v) for v in ("plain", "lmam", "naive")}
    for step in steps.values():
        for _ in range(2):
            step()
    for _ in range(args.steps):  # interleaved, so that drift of the machine hits every variant alike
        for v, step in steps.items():
            results.setdefault(v, []).append(step())
    if cuda:
        for v in ("plain", "lmam"):
            torch.cuda.reset_peak_memory_stats()
            steps[v]()
            memory[v] = torch.cuda.max_memory_allocated()

    with FlopCounterMode(display=False) as counter:
        steps["plain"]()
    flops = counter.get_total_flops()
    peak = matmul_peak(device, torch.bfloat16 if cuda else torch.float32)
    med = {v: statistics.median(t) for v, t in results.items()}
    lmam = steps["lmam"].lmam  # type: ignore[attr-defined]
    added = sum(b.numel() * b.element_size() for m in steps["lmam"].model.modules()  # type: ignore[attr-defined]
                for name, b in m.named_buffers(recurse=False) if name == "source")
    added += sum(p.numel() * p.element_size() for p in lmam.parameters())

    cpu = platform.processor() or platform.machine()
    hw = torch.cuda.get_device_name() if cuda else f"{cpu}, {torch.get_num_threads()} threads"
    n_params = sum(p.numel() for p in target.parameters())
    print(f"hardware: {hw}; torch {torch.__version__}")
    print(f"model: HubertForCTC '{args.size}' layout ({n_params / 1e6:.1f} M parameters), source BertModel; batch "
          f"{args.batch} × {args.seconds:g} s; {'bf16 autocast' if cuda else 'float32'}")
    print(f"one step = {flops / 1e9:.1f} GFLOP (forward + backward, counted); matmul peak measured now: "
          f"{peak / 1e12:.2f} TFLOP/s")
    for v, label in (("plain", "(a) plain fine-tuning"), ("lmam", "(b) L-MAM, parametrize"),
                     ("naive", "(c) L-MAM, naive functional_call")):
        rate = flops / med[v]
        print(f"{label:34s} {med[v] * 1e3:9.1f} ms/step  {rate / 1e12:7.3f} TFLOP/s  {rate / peak:6.1%} of peak")
    print(f"ratio (b)/(a) = {med['lmam'] / med['plain']:.3f}  (goal ≤ 1.10);  (c)/(a) = "
          f"{med['naive'] / med['plain']:.3f};  (c)/(b) = {med['naive'] / med['lmam']:.3f}")
    print(f"L-MAM adds {added / 2**20:.1f} MiB of tensors (frozen source Q/K/V + {lmam.num_layers} logits)")
    if memory:
        print(f"peak GPU memory: plain {memory['plain'] / 2**30:.2f} GiB, L-MAM {memory['lmam'] / 2**30:.2f} GiB "
              f"(+{(memory['lmam'] - memory['plain']) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
