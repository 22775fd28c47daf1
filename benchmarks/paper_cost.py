"""What the paper preset costs: projected hours per chapter on 1 and 8 GPUs and on this machine (issue 19).

1. **What is computed.** The paper rehearsal (``tests/paper_inputs.py``: the paper's hub ids, datasets and depths,
   tiny widths) executes Chapters 1–4 into a fresh results store (or ``--store`` names one). Every stored record
   is one unit of work: a sweep configuration evaluates one split; a fine-tuning run trains ``epochs`` passes over
   the training split (plus a few steps, not counted, at most once per run) and evaluates test. The grids, blocks,
   top-k picks, seeds and methods are the paper preset's own, so the counts are too.
2. **How much audio.** Each split's share of the paper's corpora (:data:`PAPER_SECONDS`: LJ Speech 24 h and VCTK
   44 h split 10/10/80 % by hash; ESC-50's 2,000 × 5 s clips in folds 1–3 / 4 / 5).
3. **Unit costs.** FLOPs per audio-second of the full-size models, counted with ``FlopCounterMode`` on random-init
   HuBERT-large (forward; forward + backward with the convolutional encoder frozen, as fine-tuning runs) and BEATs
   (forward; forward + backward). Rates: **GPU** — the H200 record of ``bench_ctc_sweep.py``
   (``--gpu-record``): its audio-seconds per second for ASR sweeps as measured (prefix cache included), and its
   achieved TFLOP/s for everything else (the stated assumption: training and BEATs reach the sweep's share of the
   peak); sweeps in float32 for ``paper`` and bfloat16 for ``paper-bf16``, fine-tuning at the bf16 rate in both
   (it runs under bf16 autocast on a GPU). **CPU** — this machine, measured in this run on a
   24 × 256 HuBERT (forward and forward + backward), scaled by the FLOP ratio to full size. 8 GPUs: sweeps split
   by configuration and fine-tuning data-parallel, taken as linear (an upper bound on the speed-up).

    python benchmarks/paper_cost.py                 # rehearsal (~2 min) + FLOP counts (~1 min) on 2 CPU cores
    python benchmarks/paper_cost.py --store DIR     # count the configurations of an existing results store

The projection is printed and written to ``benchmarks/paper_cost.json`` (:data:`RESULT`), beside ``RESULTS.md``,
for the book's compute appendix (:func:`mamlib.report.compute.paper_projection`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from bench_ctc_sweep import counted_flops, fold_weight_norm

from mamlib.report.compute import DEPTH, SIMILARITY, TABLE5, TASKS, attribute, part_order, task_of
from mamlib.sweeps.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0
#: Seconds of audio per split of the paper's data (dev/test/train shares of LJ Speech and VCTK by hash: 10/10/80 %).
PAPER_SECONDS = {
    "ljspeech": {"dev": 0.1 * 24 * HOUR, "test": 0.1 * 24 * HOUR, "train": 0.8 * 24 * HOUR},
    "vctk": {"dev": 0.1 * 44 * HOUR, "test": 0.1 * 44 * HOUR, "train": 0.8 * 44 * HOUR},
    "esc50": {"dev": 400 * 5.0, "test": 400 * 5.0, "train": 1200 * 5.0},
}
CHAPTERS = ["01_attention_interpolation", "02_layerwise_interpolation", "03_layer_selection", "04_finetuning"]
GPU_RECORD = ROOT / "benchmarks" / "results" / "2026-11-27-h200" / "bench_ctc_sweep_large.json"
#: Where the projection is written for the book (:func:`mamlib.report.compute.paper_projection` reads it).
RESULT = ROOT / "benchmarks" / "paper_cost.json"
#: The presets projected, by the dtype their sweeps run in; the rehearsal's own dtypes (others: the numerics check).
PRESETS = {"float32": "paper", "bfloat16": "paper-bf16"}
DTYPES = {"asr": "float32", "aec": "float32"}


def rehearsal_store(folder: Path) -> Path:
    """Execute Chapters 1–4 of the rehearsal preset into ``folder`` and return its results store."""
    sys.path.insert(0, str(ROOT))
    from tests.paper_inputs import REHEARSAL, write_paper_inputs

    env = {**os.environ, **write_paper_inputs(folder), "MAM_CACHE_DIR": str(folder / "cache")}
    (folder / "rehearsal.yml").write_text(REHEARSAL)
    subprocess.run([sys.executable, "-m", "mamlib.report.execute", "--preset", str(folder / "rehearsal.yml"),
                    "--out", str(folder / "executed"), *(str(ROOT / "book" / f"{c}.ipynb") for c in CHAPTERS)],
                   env=env, cwd=ROOT, check=True)
    return folder / "cache" / "results"


def workload(store: Path) -> dict[tuple[str, str], dict[str, float]]:
    """Audio-seconds of forward and of training work per (part of the book, task) over every stored configuration
    (parts as the compute appendix attributes them: :func:`mamlib.report.compute.attribute`)."""
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    configs = [r["config"] for r in ResultStore(store).records()
               if attribute(r["config"]) not in (DEPTH, SIMILARITY)]  # the similarity pass is charged below
    for config in configs:
        dataset = config["corpus"]["dataset"]
        work = out[(attribute(config, dtypes=DTYPES), task_of(config))]
        work["configs"] += 1
        if config["experiment"].endswith("finetune"):
            work["train"] += config["settings"]["epochs"] * PAPER_SECONDS[dataset]["train"]
            work["forward"] += PAPER_SECONDS[dataset]["test"]
        else:
            work["forward"] += PAPER_SECONDS[dataset][config["split"]]
    for dataset, seconds in PAPER_SECONDS.items():
        # MAM → FT is FT's own run when dev chose λ = 0 (as random models may); the paper's dev chose λ > 0 for
        # every task, so its MAM → FT runs are counted as runs of their own, at FT's cost.
        runs = [c for c in configs if c["experiment"].endswith("finetune") and c["corpus"]["dataset"] == dataset]
        if runs and not any(c["method"] == "mam-ft" for c in runs):
            work = out[(TABLE5, task_of(runs[0]))]
            for c in (c for c in runs if c["method"] == "ft"):
                work["configs"] += 1
                work["train"] += c["settings"]["epochs"] * seconds["train"]
                work["forward"] += seconds["test"]
        if dataset != "esc50" and any(c["corpus"]["dataset"] == dataset for c in configs):
            # Sec. 4.1's similarity pass: the target encodes 10 % of the training audio once (the text side is small).
            out[(SIMILARITY, "asr")]["forward"] += 0.1 * seconds["train"]
    return out


def flops_per_second(seconds: float = 2.0) -> dict[str, float]:
    """FLOPs per audio-second of the full-size models: forward and forward + backward (see module)."""
    from transformers import HubertForCTC

    from mamlib.models.beats import BEATS_ITER3_CONFIG, BEATs
    from mamlib.models.transformers_kinds import hubert_large_config

    out = {}
    torch.manual_seed(0)
    hubert = fold_weight_norm(HubertForCTC(hubert_large_config(mask_time_prob=0.0)))
    hubert.freeze_feature_encoder()
    x = torch.randn(1, int(16000 * seconds))
    labels = torch.randint(5, 32, (1, int(8 * seconds)))
    with torch.no_grad():
        out["asr forward"] = counted_flops(lambda: hubert(x)) / seconds
    out["asr train"] = counted_flops(lambda: hubert(x, labels=labels).loss.backward()) / seconds
    beats = fold_weight_norm(BEATs(BEATS_ITER3_CONFIG))
    clip = torch.randn(1, 16000 * 5)
    with torch.no_grad():
        out["aec forward"] = counted_flops(lambda: beats(clip)) / 5.0
    out["aec train"] = counted_flops(lambda: beats(clip).mean().backward()) / 5.0
    return out


def cpu_rates() -> dict[str, float]:
    """This machine's achieved FLOP/s on a 24 × 256 HuBERT: forward and training step (median of 3)."""
    from transformers import HubertForCTC

    from mamlib.models.transformers_kinds import hubert_large_config

    torch.manual_seed(0)
    model = fold_weight_norm(HubertForCTC(hubert_large_config(hidden_size=256, intermediate_size=1024,
                                                              num_attention_heads=4, mask_time_prob=0.0)))
    model.freeze_feature_encoder()
    x, labels = torch.randn(4, 16000 * 4), torch.randint(5, 32, (4, 24))

    def rate(fn, grad: bool) -> float:
        with torch.set_grad_enabled(grad):
            flops = counted_flops(fn)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return flops / sorted(times)[1]

    return {"forward": rate(lambda: model(x), False), "train": rate(lambda: model(x, labels=labels).loss.backward(),
                                                                   True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="results store to count (default: run the rehearsal)")
    ap.add_argument("--gpu-record", type=Path, default=GPU_RECORD)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or rehearsal_store(Path(tmp))
        work = workload(store)
    flops = flops_per_second()
    record = json.loads(args.gpu_record.read_text())
    ways = record["ways"]
    fast = {"float32": ways["(c) fast fp32, 160 s"],
            "bfloat16": next(v for k, v in ways.items() if k.startswith("(d)") and "160" in k)}
    cpu = cpu_rates()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    f32, b16 = fast["float32"], fast["bfloat16"]
    print(f"GPU record: {record['hardware']['gpu']} ({args.gpu_record.name}); ASR sweep "
          f"{f32['audio_s_per_s']:.0f} audio-s/s fp32, {b16['audio_s_per_s']:.0f} bf16; achieved "
          f"{f32['tflops']:.1f} / {b16['tflops']:.1f} TFLOP/s")
    print("FLOPs per audio-second (full size): " + ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in flops.items()))
    print(f"this CPU: {cpu['forward'] / 1e9:.0f} GFLOP/s forward, {cpu['train'] / 1e9:.0f} GFLOP/s training "
          "(24 × 256 HuBERT)\n")
    header = f"{'chapter':26} {'task':4} {'configs':>7} {'audio h':>9} {'train h':>9} | " \
             f"{'fp32 1 GPU':>10} {'8 GPUs':>7} | {'bf16 1 GPU':>10} {'8 GPUs':>7} | {'this CPU':>9}"
    print(header + "\n" + "-" * len(header))
    totals = defaultdict(float)
    rows = []
    for (part, task), w in sorted(work.items(), key=lambda item: part_order((item[0][0], TASKS[item[0][1]]))):
        row = {}
        for dtype, rec in fast.items():
            rate = rec["tflops"] * 1e12
            sweep = (w["forward"] / rec["audio_s_per_s"] if task == "asr" and part != TABLE5
                     else w["forward"] * flops[f"{task} forward"] / rate)
            train_rate = fast["bfloat16"]["tflops"] * 1e12  # fine-tuning runs under bf16 autocast on a GPU
            row[dtype] = (sweep + w["train"] * flops[f"{task} train"] / train_rate) / HOUR
        row["cpu"] = (w["forward"] * flops[f"{task} forward"] / cpu["forward"]
                      + w["train"] * flops[f"{task} train"] / cpu["train"]) / HOUR
        for k, v in row.items():
            totals[k] += v
        print(f"{part:26} {task:4} {int(w['configs']):7d} {w['forward'] / HOUR:9.1f} {w['train'] / HOUR:9.1f} | "
              f"{row['float32']:10.2f} {row['float32'] / 8:7.2f} | {row['bfloat16']:10.2f} {row['bfloat16'] / 8:7.2f} "
              f"| {row['cpu']:9.0f}")
        rows.append({"chapter": part, "task": TASKS[task], "configurations": int(w["configs"]),
                     "audio_h": w["forward"] / HOUR, "training_audio_h": w["train"] / HOUR or None,
                     "gpu_h": {PRESETS[d]: row[d] for d in PRESETS}, "cpu_h": row["cpu"]})
    print("-" * len(header))
    print(f"{'total':26} {'':4} {'':7} {'':9} {'':9} | {totals['float32']:10.2f} {totals['float32'] / 8:7.2f} | "
          f"{totals['bfloat16']:10.2f} {totals['bfloat16'] / 8:7.2f} | {totals['cpu']:9.0f}")
    RESULT.write_text(json.dumps({
        "source": f"benchmarks/paper_cost.py, {'--store ' + str(args.store) if args.store else 'rehearsal'}",
        "recorded": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "gpu_record": os.path.relpath(args.gpu_record, ROOT),
        "rows": rows, "total_gpu_h": {PRESETS[d]: totals[d] for d in PRESETS}, "total_cpu_h": totals["cpu"],
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"written: {RESULT}")

if __name__ == "__main__":
    main()
