"""glibc's malloc settings for the notebook kernels, measured: Whisper tiny.en transcribing on the CPU, two ways.

(a) glibc's defaults: blocks above its mmap threshold (at most 32 MB, dynamically) are mapped afresh on every
    allocation and unmapped on free, so each 30 s encoder window's activations fault their pages in again;
(b) what :data:`mamlib.report.execute.KERNEL_ENV` gives the book's kernels: a fixed 1 GiB mmap threshold and a
    4 GiB trim threshold, so freed blocks stay in the heap and are reused.

Each way runs in a child process of its own (glibc reads these variables at start-up), alternating, ``--rounds``
times; it prints the mean seconds, the ratio (a)/(b), minor page faults, system time, peak RSS and whether the
transcripts are identical.

    python benchmarks/bench_malloc.py --utterances 16 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time


def child(n: int) -> None:
    from mamlib.asr.corpora import load_corpus
    from mamlib.asr.transcribe import make_transcriber
    from mamlib.common.paths import cache_root
    from mamlib.models.build import build_model
    from mamlib.models.kinds import ModelSpec

    waves = [u.audio for u in load_corpus("lj-like", "test", cache_dir=cache_root(), n=n)]
    transcriber = make_transcriber(build_model(ModelSpec(kind="whisper-tiny-en")), "cpu")
    transcriber.transcribe(waves[:2], batch_size=8)  # warm-up
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    texts = transcriber.transcribe(waves, batch_size=8)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "faults": after.ru_minflt - before.ru_minflt,
                      "system": after.ru_stime - before.ru_stime, "rss_mb": after.ru_maxrss / 1024,
                      "sha": hashlib.sha256("\n".join(texts).encode()).hexdigest()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.utterances)
    from mamlib.report.execute import KERNEL_ENV

    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    ways = {"(a) glibc defaults": plain, "(b) book kernels": {**plain, **KERNEL_ENV}}
    runs: dict[str, list[dict]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, env in ways.items():
            out = subprocess.run([sys.executable, __file__, "--child", "--utterances", str(args.utterances)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; Whisper tiny.en, "
          f"{args.utterances} lj-like test utterances, batches of 8, {args.rounds} alternating rounds")
    mean = {name: sum(r["seconds"] for r in rs) / len(rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        times = ", ".join(f"{r['seconds']:.2f}" for r in rs)
        print(f"{name}: {mean[name]:.2f} s (runs {times}), {sum(r['faults'] for r in rs) / len(rs):,.0f} page faults, "
              f"{sum(r['system'] for r in rs) / len(rs):.2f} s system time, peak RSS "
              f"{max(r['rss_mb'] for r in rs):.0f} MB")
    a, b = runs.values()
    print(f"ratio (a)/(b): {mean['(a) glibc defaults'] / mean['(b) book kernels']:.2f}x; transcripts identical: "
          f"{len({r['sha'] for r in a + b}) == 1}")


if __name__ == "__main__":
    main()
