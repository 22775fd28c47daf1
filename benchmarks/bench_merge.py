"""``mam merge`` on billion-parameter checkpoints (issue 20): wall time and peak memory against the I/O floor.

For each size, random-weight bfloat16 checkpoints are written to disk — a Whisper-like target (``WhisperForConditional
Generation``, encoder and decoder of L layers × d, vocabulary 51,866; inputs in shards of at most 2 GB with their
index) and a d-wide, 12-layer BERT source — and merged with ``python -m mamlib merge`` (λ = 0.05 on every encoder
layer, the source's layers evenly spaced) in a subprocess, whose wall time and peak RSS (``ru_maxrss`` from
``os.wait4``) are measured. The I/O floor is measured in the same run: every input file read and a copy of the
target written (an output of the merge's size) and fsync'd, with plain file operations. The naive in-memory way
(``from_pretrained``, the book's ``MultiSourceMerger`` in place, ``save_pretrained``) runs beside it at the
sizes in ``--in-memory-sizes``, and ``mam merge --dry-run`` is timed too. A subprocess that only imports what
``mam merge`` imports gives the fixed RSS.

    python benchmarks/bench_merge.py                          # 0.3 B, 1.5 B and 3 B parameters
    python benchmarks/bench_merge.py --sizes 0.3b --in-memory-sizes 0.3b

The checkpoints and outputs go to a temporary folder in ``--workdir`` (default: the system's temporary folder) and
are deleted as soon as each size is done; a size whose files would not fit in the free disk space is skipped with a
message. Goals: wall ≤ 2× the floor, peak RSS flat in the model size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mamlib.merge.streaming import OutputTensor, ShardWriter, format_size, plan_shards

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Size:
    """A benchmark size: the Whisper-like target's width, depth (encoder = decoder), heads, and the source's depth."""

    name: str
    d_model: int
    layers: int
    heads: int
    source_layers: int = 12


SIZES = {
    "smoke": Size("smoke", 256, 4, 4, source_layers=4),  # 21 M parameters: checks the script in seconds
    "0.3b": Size("0.3b", 1024, 8, 16),
    "1.5b": Size("1.5b", 1280, 32, 20),  # Whisper large's layout
    "3b": Size("3b", 1920, 32, 30),
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0.3b,1.5b,3b", help=f"comma-separated, from {list(SIZES)}")
    ap.add_argument("--in-memory-sizes", default="0.3b", help="sizes at which today's in-memory path runs too")
    ap.add_argument("--workdir", type=Path, default=None, help="where checkpoints are written (deleted after)")
    ap.add_argument("--max-shard-size", default="5GB", help="the merge's output shard size")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    return ap.parse_args()


# -- random checkpoints ----------------------------------------------------------------------------------------------


def _configs(size: Size):
    from transformers import BertConfig, WhisperConfig

    target = WhisperConfig(d_model=size.d_model, encoder_layers=size.layers, decoder_layers=size.layers,
                           encoder_attention_heads=size.heads, decoder_attention_heads=size.heads,
                           encoder_ffn_dim=4 * size.d_model, decoder_ffn_dim=4 * size.d_model, vocab_size=51866,
                           num_mel_bins=128, dtype="bfloat16", architectures=["WhisperForConditionalGeneration"])
    source = BertConfig(hidden_size=size.d_model, num_hidden_layers=size.source_layers, num_attention_heads=size.heads,
                        intermediate_size=4 * size.d_model, dtype="bfloat16", architectures=["BertModel"])
    return target, source


def write_random_checkpoint(folder: Path, config, seed: int, max_shard_size: int = 2 * 10**9) -> int:
    """``config.json`` plus random bfloat16 weights for the model ``config.architectures`` names, written tensor by
    tensor (the model is built on the meta device; a tied weight is stored once). Returns the parameter count."""
    import transformers

    folder.mkdir(parents=True)
    config.save_pretrained(folder)
    with torch.device("meta"):
        model = getattr(transformers, config.architectures[0])(config)
    seen: set[int] = set()
    entries: list[tuple[OutputTensor, torch.dtype]] = []
    for key, t in model.state_dict(keep_vars=True).items():
        if id(t) in seen:
            continue
        seen.add(id(t))
        dtype = torch.bfloat16 if t.is_floating_point() else t.dtype
        name = {torch.bfloat16: "BF16", torch.int64: "I64", torch.bool: "BOOL"}[dtype]
        entries.append((OutputTensor(key, name, tuple(t.shape), t.numel() * dtype.itemsize), dtype))
    dtypes = {e.key: d for e, d in entries}
    shards = plan_shards([e for e, _ in entries], max_shard_size)
    gen = torch.Generator().manual_seed(seed)
    for name, shard in shards.items():
        writer = ShardWriter(folder / name, shard)
        for t in shard:
            if dtypes[t.key] == torch.bfloat16:
                writer.write_tensor((torch.randn(t.shape, generator=gen) * 0.02).to(torch.bfloat16))
            else:
                writer.write_tensor(torch.zeros(t.shape, dtype=dtypes[t.key]))
        writer.close()
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(e.nbytes for e, _ in entries)},
                 "weight_map": {t.key: n for n, s in shards.items() for t in s}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return sum(e.nbytes for e, _ in entries) // 2


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# -- measurements ------------------------------------------------------------------------------------------------


def measured(argv: list[str]) -> tuple[float, int, str]:
    """Run ``argv`` in a child process reaped with ``os.wait4``: its wall seconds, its own peak RSS in bytes
    (``ru_maxrss``) and its stdout. A failure raises with the end of its stderr."""
    r, w = os.pipe()
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: a fresh interpreter writing stdout into the pipe
            os.close(r)
            os.dup2(w, 1)
            os.dup2(errors.fileno(), 2)
            os.chdir(REPO)
            os.execv(argv[0], argv)
        os.close(w)
        with os.fdopen(r) as pipe:
            out = pipe.read()
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{argv[1:4]} failed ({os.waitstatus_to_exitcode(status)}): "
                               f"{errors.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss * 1024, out


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def io_floor(inputs: list[Path], copy_of: list[Path], out: Path, chunk: int = 64 * 2**20) -> float:
    """Seconds to read every file of ``inputs`` and write the bytes of ``copy_of`` (the target's files, an output
    of the merge's size) into ``out``, fsync'd — plain reads and writes through one buffer."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    started = time.perf_counter()
    for path in inputs:
        if path in copy_of:
            continue
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    with open(out, "wb", buffering=0) as w:
        for path in copy_of:
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    w.write(view[:n])
        os.fsync(w.fileno())
    seconds = time.perf_counter() - started
    out.unlink()
    return seconds


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".safetensors" or p.name.endswith(".index.json"))


def bench_size(size: Size, work: Path, args: argparse.Namespace, in_memory: bool) -> dict:
    root = work / size.name
    target_cfg, source_cfg = _configs(size)
    t0 = time.perf_counter()
    params = write_random_checkpoint(root / "target", target_cfg, seed=0)
    source_params = write_random_checkpoint(root / "source", source_cfg, seed=1)
    made = time.perf_counter() - t0
    target_bytes, source_bytes = folder_bytes(root / "target"), folder_bytes(root / "source")
    log(f"{size.name}: target {params / 1e9:.2f} B parameters ({format_size(target_bytes)}), source "
        f"{source_params / 1e9:.2f} B ({format_size(source_bytes)}); written in {made:.0f} s")
    config = {"target": "target", "sources": [{"model": "source", "lambda": 0.05}], "output": "merged"}
    (root / "merge.yml").write_text(json.dumps(config))
    dry_wall, dry_rss, _ = measured([sys.executable, "-m", "mamlib", "merge", str(root / "merge.yml"), "--dry-run"])
    log(f"{size.name}: dry run {dry_wall:.1f} s, peak RSS {format_size(dry_rss)}")
    inputs = weight_files(root / "target") + weight_files(root / "source")
    floor = io_floor(inputs, [p for p in weight_files(root / "target") if p.suffix == ".safetensors"],
                     root / "floor.bin")
    log(f"{size.name}: I/O floor {floor:.1f} s")
    wall, rss, _ = measured([sys.executable, "-m", "mamlib", "merge", str(root / "merge.yml"),
                             "--max-shard-size", args.max_shard_size])
    record = json.loads((root / "merged" / "merge_record.json").read_text())
    out_bytes = sum((root / "merged" / f).stat().st_size for f in record["merge"]["weight_files"])
    row = {"size": size.name, "parameters": params, "source_parameters": source_params, "target_bytes": target_bytes,
           "source_bytes": source_bytes, "output_bytes": out_bytes, "output_files": record["merge"]["weight_files"],
           "dry_run_s": dry_wall, "dry_run_peak_rss": dry_rss, "floor_s": floor, "stream_wall_s": wall,
           "stream_merge_s": record["merge"]["seconds"],
           "stream_peak_rss": rss, "ratio": wall / floor, "dtype": record["dtype"]}
    log(f"{size.name}: streamed merge {wall:.1f} s ({record['merge']['seconds']:.1f} s writing), peak RSS "
        f"{format_size(rss)}, {wall / floor:.2f}× the floor")
    shutil.rmtree(root / "merged")
    if in_memory:
        code = ("from transformers import AutoModel; from mamlib import MultiSourceMerger; "  # the naive way
                f"t = AutoModel.from_pretrained({str(root / 'target')!r}, dtype='auto'); "
                f"s = AutoModel.from_pretrained({str(root / 'source')!r}, dtype='auto'); "
                "MultiSourceMerger(t, [s]).apply([0.05]); "
                f"t.save_pretrained({str(root / 'merged')!r}, max_shard_size={args.max_shard_size!r})")
        mem_wall, mem_rss, _ = measured(python(code))
        row.update(memory_wall_s=mem_wall, memory_peak_rss=mem_rss, memory_ratio=mem_wall / floor)
        log(f"{size.name}: in-memory merge {mem_wall:.1f} s, peak RSS {format_size(mem_rss)}")
        shutil.rmtree(root / "merged")
    shutil.rmtree(root)
    return row


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    args = parse_args()
    sizes = [SIZES[s.strip()] for s in args.sizes.split(",") if s.strip()]
    in_memory = {s.strip() for s in args.in_memory_sizes.split(",") if s.strip()}
    base = args.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-merge-", dir=base))
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    _, import_rss, _ = measured(python("import mamlib.cli.merge_command, transformers, safetensors; "
                                       "from transformers import WhisperForConditionalGeneration, BertModel"))
    rows = []
    try:
        for size in sizes:
            target_cfg, source_cfg = _configs(size)
            need = 2.3 * _estimate_bytes(target_cfg) + 1.1 * _estimate_bytes(source_cfg)
            free = shutil.disk_usage(work).free
            if need > 0.9 * free:
                log(f"{size.name}: skipped — needs about {format_size(int(need))} of disk, {format_size(free)} free")
                continue
            rows.append(bench_size(size, work, args, size.name in in_memory))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, import_rss)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "import_rss": import_rss, "rows": rows}, indent=2))


def _estimate_bytes(config) -> int:
    import transformers

    with torch.device("meta"):
        model = getattr(transformers, config.architectures[0])(config)
    return 2 * sum(p.numel() for p in model.parameters())


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {format_size(mem)} RAM, Python {platform.python_version()}, "
            f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")


def print_table(rows: list[dict], import_rss: int) -> None:
    print(f"machine: {machine()}")
    print(f"RSS of a process that only imports mamlib.cli.merge_command and transformers: {format_size(import_rss)}")
    head = ("| size | parameters | target + source on disk | dry run | floor (read inputs, write + fsync) | "
            "streamed wall (writing) | × floor | streamed peak RSS | in-memory wall | in-memory peak RSS | output |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        mem = (f"{r['memory_wall_s']:.1f} s ({r['memory_ratio']:.2f}×) | {format_size(r['memory_peak_rss'])}"
               if "memory_wall_s" in r else "— | —")
        print(f"| {r['size']} | {r['parameters'] / 1e9:.2f} B + {r['source_parameters'] / 1e9:.2f} B | "
              f"{format_size(r['target_bytes'])} + {format_size(r['source_bytes'])} | {r['dry_run_s']:.1f} s | "
              f"{r['floor_s']:.1f} s | "
              f"{r['stream_wall_s']:.1f} s ({r['stream_merge_s']:.1f} s) | {r['ratio']:.2f}× | "
              f"{format_size(r['stream_peak_rss'])} | {mem} | {len(r['output_files'])} file(s), {r['dtype']} |")


if __name__ == "__main__":
    main()
