"""L-MAM (Eq. 3) and the fine-tuning loop: the blend against a hand computation and the merger, gradients, bake and
reload, resumption after a kill, divergence, gradient accumulation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mamlib.asr.recognizers import Utterance
from mamlib.finetune.loop import TrainingDiverged, step_groups, train
from mamlib.finetune.settings import TrainSettings
from mamlib.finetune.tasks import CTCTask, pad_labels
from mamlib.merge.learnable import LearnableMerge
from mamlib.merge.merger import AttentionMerger
from mamlib.models.build import build_model
from mamlib.models.kinds import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def tiny(kind: str, seed: int, layers: int = 4):
    return build_model(ModelSpec(kind=kind, options={"seed": seed, "hidden_size": 32, "num_layers": layers,
                                                     "heads": 2}), "cpu")


def utterances(n: int = 6) -> list[Utterance]:
    rng = np.random.default_rng(0)
    words = ["a cat", "the dog ran", "blue sky", "one two", "hello there", "go home now"]
    return [Utterance(f"u{i}", (0.1 * rng.standard_normal(4000 + 800 * i)).astype(np.float32), words[i % 6])
            for i in range(n)]


def test_eq3_is_the_hand_computed_blend_and_equals_the_merger():
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    x = torch.randn(2, 6000)
    lams = [0.1, 0.2, 0.3, 0.4]
    q_t = target.model.hubert.encoder.layers[2].attention.q_proj.weight.detach().clone()
    q_s = source.model.encoder.layer[2].attention.self.query.weight.detach().clone()
    with AttentionMerger(target.model, source.model).merged(lams):
        expected = target.model(x).logits
    lmam = LearnableMerge(target.model, source.model, init=lams)
    lin = target.model.hubert.encoder.layers[2].attention.q_proj
    torch.testing.assert_close(lin.weight, 0.3 * q_s + 0.7 * q_t, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(target.model(x).logits, expected, rtol=0, atol=0)
    assert lmam.lambdas() == pytest.approx(lams)


def test_gradients_reach_lambda_and_the_target_not_the_source():
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    lmam = LearnableMerge(target.model, source.model, init=0.05)
    target.model(torch.randn(1, 5000)).logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().item() > 0 for p in lmam.parameters())
    lin = target.model.hubert.encoder.layers[0].attention.k_proj
    assert lin.parametrizations.weight.original.grad.abs().sum() > 0
    assert not lin.parametrizations.weight[0].source.requires_grad
    # The frozen source is not part of the model's state (nor of any checkpoint); λ's logits and W_t are.
    keys = target.model.state_dict().keys()
    assert not any(k.endswith(".source") for k in keys)
    assert sum(k.endswith("factor.logit") for k in keys) == 4 * 3
    # λ_i is shared by Q, K and V of a layer: one logit per layer among the parameters.
    assert len(lmam.parameters()) == 4
    assert len(lmam.other_parameters(target.model)) == sum(1 for _ in target.model.parameters()) - 4


def test_lambda_keeps_receiving_gradient_past_the_logit_bound():
    """Unbounded, float32 sigmoid is exactly 1.0 at θ = 200 and its gradient exactly 0: λ would stop learning. L-MAM
    reads θ through ±15, so after θ is pushed to ±200 λ stays inside (0, 1) and the gradient reaching θ is not 0."""
    plain = torch.tensor(200.0, requires_grad=True)
    y = torch.sigmoid(plain)
    y.backward()
    assert float(y.detach()) == 1.0 and float(plain.grad) == 0.0  # what the bound prevents
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    lmam = LearnableMerge(target.model, source.model, init=0.05)
    with torch.no_grad():
        lmam.factors[0].logit.fill_(200.0)
        lmam.factors[1].logit.fill_(-200.0)
    lams = lmam.lambdas()
    assert 1 - 1e-6 < lams[0] < 1.0 and 0.0 < lams[1] < 1e-6 and lams[2:] == pytest.approx([0.05, 0.05])
    target.model(torch.randn(1, 5000)).logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().item() > 0 for p in lmam.parameters())
    # Past the bound θ gets λ's gradient at the bound: sigmoid'(±15), about 3.6e-7 in float32, never 0.
    for factor, edge in ((lmam.factors[0], 15.0), (lmam.factors[1], -15.0)):
        at_edge = torch.tensor(edge, requires_grad=True)
        torch.sigmoid(at_edge).backward()
        factor.logit.grad = None
        factor().backward()
        assert float(factor.logit.grad) == float(at_edge.grad) > 2e-7
    with pytest.raises(ValueError, match=r"\|logit\(λ\)\| ≤ 15"):
        LearnableMerge(tiny("tiny-hubert-ctc", 0).model, source.model, init=1e-9)


def test_layer_map_for_different_depths_and_bad_inputs():
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1, layers=2)
    # No layer map: the one default, evenly spaced (the same map as given below).
    assert LearnableMerge(tiny("tiny-hubert-ctc", 0).model, source.model).layer_map == [0, 0, 1, 1]
    lmam = LearnableMerge(target.model, source.model, layer_map=[0, 0, 1, 1], init=0.5)
    lin = target.model.hubert.encoder.layers[3].attention.v_proj
    src = source.model.encoder.layer[1].attention.self.value.weight
    torch.testing.assert_close(lin.weight, 0.5 * src + 0.5 * lin.parametrizations.weight.original)
    assert lmam.num_layers == 4
    fresh = tiny("tiny-hubert-ctc", 0)
    for bad in (0.0, 1.0, 1.5, float("nan"), [0.1, 0.2]):
        with pytest.raises(ValueError):
            LearnableMerge(fresh.model, tiny("tiny-bert", 1).model, init=bad)
    with pytest.raises(ValueError, match="already parametrized"):
        LearnableMerge(target.model, source.model, layer_map=[0, 0, 1, 1])


def test_bake_writes_an_ordinary_checkpoint(tmp_path):
    from transformers import HubertForCTC

    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    lmam = LearnableMerge(target.model, source.model, init=[0.2, 0.4, 0.6, 0.8])
    with torch.no_grad():
        lmam.factors[1].logit.add_(0.5)  # as if training had moved it
    x = torch.randn(2, 6000)
    before = target.model(x).logits.detach()
    lams = lmam.bake()
    assert lams[1] == pytest.approx(float(torch.sigmoid(torch.logit(torch.tensor(0.4)) + 0.5)), abs=1e-6)
    assert not any("attention" in k and "parametrizations" in k for k in target.model.state_dict())
    target.model.save_pretrained(tmp_path)
    reloaded = HubertForCTC.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(x).logits, before, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="already baked"):
        lmam.bake()


def test_bfloat16_lmam_bakes_what_the_merger_and_mam_merge_write():
    """One blend kernel: a bfloat16 target's L-MAM weights, in the forward pass and baked, are the merger's bits —
    λ·W_s + (1 − λ)·W_t computed in float32 and rounded once, not bfloat16 arithmetic."""
    lams = [0.1, 0.25, 0.3, 0.05]
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    target.model.to(torch.bfloat16)
    lmam = LearnableMerge(target.model, source.model, init=lams)
    lams = lmam.lambdas()  # sigmoid(logit(λ)) in float32: what the merger must be given for the same bits
    reference = tiny("tiny-hubert-ctc", 0).model.to(torch.bfloat16)
    merger = AttentionMerger(reference, source.model)
    merger.apply(lams)
    lin = target.model.hubert.encoder.layers[1].attention.k_proj
    q_t = lin.parametrizations.weight.original.detach().float()
    q_s = source.model.encoder.layer[1].attention.self.key.weight.detach()
    assert torch.equal(lin.weight, (lams[1] * q_s + (1 - lams[1]) * q_t).to(torch.bfloat16))
    lmam.bake()
    for i in range(4):
        for p in ("q", "k", "v"):
            assert torch.equal(merger.projection(i, p).weight, lmam.target.hubert.encoder.layers[i].attention
                               .get_submodule(f"{p}_proj").weight), (i, p)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="multiple of finetune.micro_batch"):
        TrainSettings(batch_size=32, micro_batch=5)
    with pytest.raises(ValueError, match="lr"):
        TrainSettings(lr=0)
    with pytest.raises(ValueError, match="lambda_init"):
        TrainSettings(lambda_init=0.0)
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainSettings(mixed_precision="fp8")


def test_step_groups_cover_each_example_once_per_epoch():
    s = TrainSettings(batch_size=4, micro_batch=2)
    groups = step_groups(9, s, seed=3, epoch=1)
    flat = [i for g in groups for mb in g for i in mb]
    assert sorted(flat) == list(range(9)) and groups == step_groups(9, s, seed=3, epoch=1)  # the same every time
    assert groups != step_groups(9, s, seed=3, epoch=2)  # another order each epoch
    assert [len(g) for g in groups] == [2, 2, 1]
    two = [step_groups(9, s, seed=3, epoch=1, rank=r, world=2) for r in (0, 1)]
    # 5 micro-batches: 4 shared (2 per device, one per step), the fifth dropped; together they are disjoint.
    assert [len(g) for g in two[0]] == [1, 1] and len(two[1]) == 2
    assert not {i for g in two[0] for mb in g for i in mb} & {i for g in two[1] for mb in g for i in mb}


def test_ctc_labels_keep_numbers_as_spoken_words():
    loaded = tiny("tiny-hubert-ctc", 0)
    task = CTCTask(loaded.feature_extractor, loaded.tokenizer)

    def spelled(text: str) -> str:
        ids = task.labels(text)
        assert loaded.tokenizer.unk_token_id not in ids, text
        return "".join(loaded.tokenizer.convert_ids_to_tokens(ids))

    assert spelled("Hello, World!") == "HELLO|WORLD"
    # The WER normalizer writes these as digits (1899, 5, 10), which HuBERT's alphabet lacks.
    assert spelled("in eighteen ninety-nine") == "IN|EIGHTEEN|NINETY|NINE"
    assert spelled("five pounds") == "FIVE|POUNDS"
    assert spelled("ten o’clock") == "TEN|O'CLOCK"
    assert spelled("in 1899, 2,500 men") == "IN|EIGHTEEN|NINETY|NINE|TWO|THOUSAND|FIVE|HUNDRED|MEN"
    assert spelled("Café") == "CAFE"
    assert pad_labels([[1, 2], [3]]).tolist() == [[1, 2], [3, -100]]


def test_low_precision_models_train_with_float32_master_weights(tmp_path):
    """One AdamW step at lr 1e-5 on a bfloat16 model: pure bfloat16 updates would round most of them away; with
    float32 master weights the result is the float32 run from the same (bfloat16-rounded) start, cast back."""
    settings = TrainSettings(lr=1e-5, batch_size=2, micro_batch=2, epochs=1, max_steps=1, warmup=0.0)

    def one_step(dtype: torch.dtype, run: str) -> tuple[nn.Module, nn.Module]:
        loaded = tiny("tiny-hubert-ctc", 0)
        start = loaded.model.to(torch.bfloat16).to(dtype)
        before = {n: p.detach().clone() for n, p in start.named_parameters()}
        train(start, CTCTask(loaded.feature_extractor, loaded.tokenizer), utterances(2), settings, seed=0,
              run_dir=tmp_path / run, progress=False)
        return start, before

    low, before = one_step(torch.bfloat16, "bf16")
    high, _ = one_step(torch.float32, "fp32")
    assert all(p.dtype == torch.bfloat16 for p in low.parameters())
    for (name, p), q in zip(low.named_parameters(), high.parameters()):
        torch.testing.assert_close(p, q.to(torch.bfloat16), rtol=0, atol=0, msg=name)
    changed = sum(int((p != before[n]).sum()) for n, p in high.named_parameters() if p.requires_grad)
    trainable = sum(p.numel() for p in high.parameters() if p.requires_grad)
    assert changed / trainable > 0.5


def _run(tmp_path, lmam: bool, **kw):
    target, source = tiny("tiny-hubert-ctc", 0), tiny("tiny-bert", 1)
    merge = LearnableMerge(target.model, source.model, init=0.1) if lmam else None
    settings = TrainSettings(lr=1e-3, lambda_lr=0.1, batch_size=4, micro_batch=2, epochs=2, checkpoint_every=1)
    log = train(target.model, CTCTask(target.feature_extractor, target.tokenizer), utterances(), settings, seed=7,
                run_dir=tmp_path, lmam=merge, progress=False, **kw)
    return target.model, merge, log


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    model, merge, log = _run(tmp_path / "whole", lmam=True)
    assert log.steps == 4 and len(log.losses) == 4 and len(log.lambdas) == 4
    assert merge.lambdas() != pytest.approx([0.1] * 4)  # λ moved

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", lmam=True, on_step=stop)
    model2, merge2, log2 = _run(tmp_path / "cut", lmam=True)
    assert log2.resumed_at == 3 and log2.losses == log.losses and log2.lambdas == log.lambdas
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    # A finished run's checkpoint returns the same result without training again.
    _, _, again = _run(tmp_path / "whole", lmam=True)
    assert again.resumed_at == 4 and again.losses == log.losses


@pytest.mark.parametrize("damage", ["optimizer", "host_rng", "numpy_key", "python_state"])
def test_corrupt_checkpoint_starts_over(tmp_path, damage):
    _, _, log = _run(tmp_path, lmam=False)
    if damage == "optimizer":
        (tmp_path / "checkpoint" / "optimizer.pt").write_bytes(b"garbage")
    else:  # a state.json without the host generators, or with a damaged one: nothing may be restored before that
        state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
        if damage == "host_rng":
            del state["host_rng"]
        elif damage == "numpy_key":
            state["host_rng"]["numpy"][1] = state["host_rng"]["numpy"][1][:10]  # a truncated key
        else:
            state["host_rng"]["python"] = [3, [1, 2], None]
        (tmp_path / "checkpoint" / "state.json").write_text(json.dumps(state))
    with pytest.warns(UserWarning, match="unreadable"):
        _, _, log2 = _run(tmp_path, lmam=False)
    assert log2.resumed_at is None and log2.losses == log.losses


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_finetune import _run
    from pathlib import Path
    _run(Path({run!r}), lmam=True, on_step=lambda step, loss: time.sleep(0.4))
""")


def test_killed_process_resumes_to_the_same_result(tmp_path):
    """A separate process is killed with SIGKILL mid-run; the run resumes here and matches an uninterrupted one."""
    run = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(ROOT / "tests"), run=str(run))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoint" / "state.json").is_file():
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    model, merge, log = _run(run, lmam=True)
    assert log.resumed_at is not None and 1 <= log.resumed_at < 4, "the kill should land mid-run"
    ref_model, ref_merge, ref = _run(tmp_path / "whole", lmam=True)
    assert log.losses == ref.losses and merge.lambdas() == ref_merge.lambdas()
    for (k, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


class _NaNAt:
    """A task whose loss turns NaN at a given step (to provoke divergence)."""

    def __init__(self, inner, at_call: int) -> None:
        self.inner, self.at_call, self.calls = inner, at_call, 0

    def prepare(self, model):
        self.inner.prepare(model)

    def collate(self, items):
        return self.inner.collate(items)

    def loss(self, model, batch):
        self.calls += 1
        loss = self.inner.loss(model, batch)
        return loss * float("nan") if self.calls >= self.at_call else loss


def test_nan_loss_stops_the_run_naming_the_step(tmp_path):
    target = tiny("tiny-hubert-ctc", 0)
    task = _NaNAt(CTCTask(target.feature_extractor, target.tokenizer), at_call=3)  # micro-batch 3 = step 2
    settings = TrainSettings(lr=1e-3, batch_size=4, micro_batch=2, epochs=2)
    with pytest.raises(TrainingDiverged, match="at step 2"):
        train(target.model, task, utterances(), settings, seed=0, run_dir=tmp_path, progress=False)


class _Regression:
    def prepare(self, model):
        return None

    def collate(self, items):
        return {"x": torch.stack([i[0] for i in items]), "y": torch.stack([i[1] for i in items])}

    def loss(self, model, batch):
        return (model(batch["x"]) - batch["y"]).square().mean()


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """Micro-batches of 2 accumulated to 8 give the same step as one forward pass of 8 (the mean over examples)."""
    torch.manual_seed(0)
    data = [(torch.randn(3), torch.randn(1)) for _ in range(8)]
    results = []
    for micro in (2, 8):
        torch.manual_seed(1)
        model = nn.Linear(3, 1)
        settings = TrainSettings(lr=0.1, batch_size=8, micro_batch=micro, warmup=0.0, max_grad_norm=1e9)
        train(model, _Regression(), data, settings, seed=0, run_dir=tmp_path / str(micro), progress=False)
        results.append(torch.cat([model.weight.flatten(), model.bias]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_presets_check_the_finetune_section():
    from mamlib.presets.schema import load_preset, parse_preset

    mini = load_preset("mini")
    assert mini.asr.finetune.corpora == ("lj-like",) and mini.asr.finetune.seeds == (0, 1, 2)
    paper = load_preset("paper")
    assert paper.asr.finetune.settings_for("ljspeech").epochs == 2
    assert paper.asr.finetune.settings_for("vctk").epochs == 1 and paper.aec.finetune.settings.lr == 1e-3
    raw = load_preset("smoke").raw

    def with_ft(**ft):
        return {**raw, "asr": {**raw["asr"], "finetune": {"corpora": ["synthetic"], **ft}}}

    with pytest.raises(ValueError, match=r"asr\.finetune\.learning_rate: unknown key"):
        parse_preset(with_ft(learning_rate=1e-5))
    with pytest.raises(ValueError, match="multiple of finetune.micro_batch"):
        parse_preset(with_ft(batch_size=6, micro_batch=4))
    with pytest.raises(ValueError, match="must name a corpus"):
        parse_preset(with_ft(corpora=["nowhere"]))
    with pytest.raises(ValueError, match=r"epochs names \['other'\]"):
        parse_preset(with_ft(epochs={"other": 2}))
    with pytest.raises(ValueError, match="repeats a seed"):
        parse_preset(with_ft(seeds=[0, 0]))


def test_mam_ft_from_lambda_zero_is_the_ft_run_and_is_trained_once():
    from types import SimpleNamespace

    from mamlib.presets.schema import load_preset
    from mamlib.sweeps.finetune import FinetuneStudy, MAMChoice
    from mamlib.sweeps.store import config_key

    preset = load_preset("smoke")
    rig = SimpleNamespace(setup=preset.asr, preset=preset)
    target = SimpleNamespace(data={"kind": "smoke"})

    def study(choice):
        return FinetuneStudy(rig, target, TrainSettings(), [0, 1], choice, store=None, run_root=Path("."))

    at_zero = study(MAMChoice(0.0, None, 1.0, 1.0)).runs()
    assert [m for m, _ in at_zero] == ["ft", "mam-ft", "l-mam"] * 2
    assert [c["method"] for _, c in at_zero] == ["ft", "ft", "l-mam"] * 2
    keys = [config_key(c) for _, c in at_zero]
    assert len(keys) == 6 and keys[0] == keys[1] and keys[3] == keys[4] and len(set(keys)) == 4
    merged = study(MAMChoice(0.1, (2, 3), 1.0, 1.0)).runs()
    assert [c["method"] for _, c in merged[:3]] == ["ft", "mam-ft", "l-mam"]
    assert merged[1][1]["start"] == {"lambda": 0.1, "layers": [2, 3]} and len({config_key(c) for _, c in merged}) == 6


def test_fine_tuning_studies_differing_only_in_batching_have_different_keys():
    from dataclasses import replace
    from types import SimpleNamespace

    from mamlib.presets.schema import load_preset
    from mamlib.sweeps.finetune import FinetuneStudy, MAMChoice
    from mamlib.sweeps.store import config_key

    preset = load_preset("smoke")

    def keys(setup):
        rig = SimpleNamespace(setup=setup, preset=preset)
        study = FinetuneStudy(rig, SimpleNamespace(data={"kind": "smoke"}), TrainSettings(), [0],
                              MAMChoice(0.1, None, 1.0, 1.0), store=None, run_root=Path("."))
        return {config_key(c) for _, c in study.runs()}

    plain = keys(preset.asr)
    assert len(plain) == 3
    assert keys(replace(preset.asr, batch_seconds=30.0)).isdisjoint(plain)
    assert keys(replace(preset.asr, batch_size=preset.asr.batch_size + 1)).isdisjoint(plain)


def test_table5_statistics_and_verdicts():
    import pandas as pd

    from mamlib.report.table5 import Table5
    from mamlib.sweeps.finetune import MAMChoice

    runs = pd.DataFrame([{"corpus": "c", "method": m, "seed": s, "value": v, "lambdas": [0.1, 0.2] if m == "l-mam"
                          else None} for m, vals in (("ft", [10, 12, 14]), ("mam-ft", [10, 12, 14]),
                                                     ("l-mam", [4, 5, 6])) for s, v in enumerate(vals)])
    t5 = Table5(runs, {"c": MAMChoice(0.0, None, 20.0, 20.0)}, {"c": 20.0}, {"c": "lj-like"}, {"c": 0.05})
    stats = t5.stats().set_index("row")
    assert stats.loc["ft", "mean"] == 12 and stats.loc["ft", "sd"] == pytest.approx(2.0)
    assert stats.loc["l-mam", "sd"] == pytest.approx(1.0) and stats.loc["none", "n"] == 1
    # L-MAM − FT = −7; standard error sqrt(4/3 + 1/3) ≈ 1.29; beyond twice that.
    assert "-7.00 points (fewer errors, beyond the seed-to-seed noise; standard error 1.29)" in t5.verdicts()["c"]
    diff, se, beyond = t5.versus_ft("c")
    assert (diff, round(se, 4), beyond) == (-7.0, round((4 / 3 + 1 / 3) ** 0.5, 4), True)
    near = runs.assign(value=[10, 12, 14, 10, 12, 14, 9, 11, 13])  # L-MAM − FT = −1 < 2 × 1.63: within noise
    t5_near = Table5(near, t5.mam, t5.unmerged, t5.datasets, t5.lambda_init)
    assert t5_near.versus_ft("c")[2] is False and "within the seed-to-seed noise" in t5_near.verdicts()["c"]
    layout = t5.layout("smoke")
    assert layout[("ours (smoke)", "c")].tolist() == ["20.00", "20.00", "12.00 ± 2.00", "12.00 ± 2.00", "5.00 ± 1.00"]
    assert layout[("paper", "LJ Speech")].tolist() == ["9.25", "8.63", "8.52", "8.40", "8.29"]
    assert t5.lambdas()["λ"].tolist() == [0.1, 0.2] * 3


def test_bf16_fine_tuned_model_evaluates_as_plain_float32_weights(tmp_path):
    """Under mixed precision Accelerate's ``prepare`` wraps the model's forward in autocast; after ``train`` the
    model's own forward is back, so a fine-tuned row is scored in float32 like the rows it is compared with."""
    settings = TrainSettings(lr=1e-3, batch_size=2, micro_batch=2, epochs=1, max_steps=1, warmup=0.0,
                             mixed_precision="bf16")
    loaded = tiny("tiny-hubert-ctc", 0)
    model = loaded.model
    train(model, CTCTask(loaded.feature_extractor, loaded.tokenizer), utterances(2), settings, seed=0,
          run_dir=tmp_path / "run", progress=False)
    assert "forward" not in vars(model) and "_original_forward" not in vars(model)
    assert model.forward.__func__ is type(model).forward
    plain = tiny("tiny-hubert-ctc", 0).model
    plain.load_state_dict(model.state_dict())
    plain.eval()
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ours, reference = model(x).logits, plain(x).logits
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)


def test_runs_with_different_mixed_precision_in_one_process(tmp_path):
    """Accelerate keeps one mixed-precision setting per process; Table 5's ASR and AEC runs may differ."""
    loaded = tiny("tiny-hubert-ctc", 0)
    task = CTCTask(loaded.feature_extractor, loaded.tokenizer)
    for i, precision in enumerate(("bf16", "no", "bf16")):
        settings = TrainSettings(lr=1e-3, batch_size=2, micro_batch=2, epochs=1, max_steps=1, warmup=0.0,
                                 mixed_precision=precision)
        log = train(loaded.model, task, utterances(2), settings, seed=0, run_dir=tmp_path / str(i), progress=False)
        assert log.steps == 1
