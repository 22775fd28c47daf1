"""Sweeps sharded over processes and data-parallel fine-tuning, under ``accelerate launch`` with 2 CPU processes
(the workers are ``tests/shard_worker.py``): the results equal a single process's, no configuration is stored twice,
and a launch killed mid-run resumes without loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mamlib.sweeps.store import process_rank

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "shard_worker.py"
ACCELERATE = Path(sys.executable).with_name("accelerate")
pytestmark = pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate is not installed in this environment")


def launch(folder: Path, *args: str, processes: int = 2) -> subprocess.CompletedProcess:
    """Run the worker under ``accelerate launch`` (``processes`` > 1) or plainly."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAM_CACHE_DIR": str(folder / "cache")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(name, None)
    cmd = [sys.executable, str(WORKER), str(folder), *args]
    if processes > 1:
        cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", *cmd[1:]]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def stored(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}


def test_process_rank_reads_the_launcher_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert process_rank() == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert process_rank() == (1, 2)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match=r"RANK 2 is not in \[0, WORLD_SIZE=2\)"):
        process_rank()


def test_a_sharded_sweep_stores_what_one_process_stores(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, processes in ((one, 1), (two, 2)):
        folder.mkdir()
        done = launch(folder, "sweep", processes=processes)
        assert done.returncode == 0, done.stderr[-3000:]
    a, b = stored(one / "sweep"), stored(two / "sweep")
    assert len(a) == 17 and a.keys() == b.keys()
    for key in a:
        assert a[key]["result"]["hypotheses"] == b[key]["result"]["hypotheses"]
        assert a[key]["result"]["wer"] == b[key]["result"]["wer"]


def test_each_configuration_is_stored_once_and_a_killed_launch_resumes(tmp_path):
    died = launch(tmp_path, "grid", "2")  # rank 1 dies after storing 2 of its 6 configurations
    assert died.returncode != 0
    first = sum(len(p.read_text().split()) for p in tmp_path.glob("puts-*.log"))
    assert 2 <= first < 12 and len(stored(tmp_path / "grid")) == first
    done = launch(tmp_path, "grid")
    assert done.returncode == 0, done.stderr[-3000:]
    puts = [k for p in sorted(tmp_path.glob("puts-*.log")) for k in p.read_text().split()]
    assert len(puts) == 12 and len(set(puts)) == 12  # every configuration stored exactly once over both launches
    assert len(stored(tmp_path / "grid")) == 12


def test_data_parallel_fine_tuning_matches_one_process(tmp_path):
    for processes in (2, 1):
        done = launch(tmp_path, "finetune", processes=processes)
        assert done.returncode == 0, done.stderr[-3000:]
    sys.path.insert(0, str(ROOT / "tests"))
    from shard_worker import finetune_model

    start = finetune_model()[0].state_dict()
    two, one = (torch.load(tmp_path / f"finetune-{n}.pt", weights_only=True) for n in (2, 1))
    moved = max(float((one[k] - start[k]).abs().max()) for k in one)
    assert moved > 1e-3  # the steps changed the weights
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-5, msg=k)


def test_a_run_trained_alone_ignores_the_launchers_process_group(tmp_path):
    """The book's sharded builds give whole fine-tuning runs to processes: with ``data_parallel=False`` a rank
    trains without joining a process group (a rank 1 of 2 whose peer never comes finishes on its own), and
    gets the single-process weights."""
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517"}
    plain = launch(tmp_path, "finetune", processes=1)
    assert plain.returncode == 0, plain.stderr[-3000:]
    os_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "MAM_CACHE_DIR": str(tmp_path / "cache")}
    alone = subprocess.run([sys.executable, str(WORKER), str(tmp_path), "alone"], env=os_env, capture_output=True,
                           text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one, other = (torch.load(tmp_path / f"finetune-{n}.pt", weights_only=True) for n in ("1", "alone"))
    for k in one:
        torch.testing.assert_close(other[k], one[k], rtol=0, atol=0, msg=k)
