"""Chapter 1's description of a build's data (Sec. 4's setup) and of the transcripts that pass 100 % WER, checked
against counts made by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from mamlib.aec.esc50 import Clip
from mamlib.aec.sound_clips import SoundClip
from mamlib.asr.recognizers import Utterance
from mamlib.report.chapter import open_chapter
from mamlib.report.describe import (
    aec_facts,
    chance_levels,
    clip_rows,
    corpus_row,
    describe_aec,
    describe_corpora,
    loop_findings,
    looping_transcripts,
    signed,
)
from mamlib.sweeps.choose import relative_change


def _utt(uid, text, speaker, seconds=1.5):
    return Utterance(uid, np.zeros(int(16000 * seconds), dtype=np.float32), text, speaker)


def test_signed_uses_a_true_minus_and_no_signed_zero():
    assert signed(-6.7, 1) == "−6.7" and signed(1.234) == "+1.23" and signed(-0.001) == "0.00"
    assert signed(float("nan")) == "–"


def test_relative_change_is_negative_for_fewer_errors():
    # the paper's abstract: "relative reduction of 6.70 %" (LJ Speech, 9.25 → 8.63 % WER) is −6.70 % in our sign
    assert relative_change(9.25, 8.63) == pytest.approx(-6.7027, abs=1e-4)
    assert relative_change(10.0, 12.0) == pytest.approx(20.0)
    assert math.isnan(relative_change(0.0, 1.0))


def test_corpus_row_counts_items_words_speakers():
    splits = {"dev": [_utt("d1", "one two", "a")],
              "test": [_utt("t1", "one two three", "a"), _utt("t2", "four", "b", 3.0)]}
    row = corpus_row("lj-like", splits)
    assert row["speakers"] == 2 and row["dev items"] == "1" and row["test items"] == 2
    assert row["test words"] == 4 and row["test minutes"] == pytest.approx(round(4.5 / 60, 2))
    assert row["speech"].startswith("synthetic") and row["paper counterpart"] == "LJ Speech"
    real = corpus_row("alsa-real", {"test": splits["test"]}, select_on="lj-like")
    assert real["dev items"] == "none (λ from lj-like's dev)" and real["paper counterpart"] == "none"
    assert real["speech"].startswith("real")


def test_clip_rows_and_chance_levels():
    train = [Clip(np.zeros(8000, np.float32), i % 3, 1, f"r{i % 3}@{i}-{i + 1}", f"c{i % 3}") for i in range(6)]
    dev = [Clip(np.zeros(8000, np.float32), 0, 4, "r0@9-10", "c0")]
    test = [Clip(np.zeros(8000, np.float32), lab, 5, f"t{i}", f"c{lab}") for i, lab in enumerate([0, 0, 0, 1])]
    splits = {"train": train, "dev": dev, "test": test}
    rows = clip_rows(splits)
    assert list(rows.index) == ["train", "dev", "test", "all"]
    assert rows.loc["train", "clips"] == 6 and rows.loc["train", "classes"] == 3
    assert rows.loc["test", "largest class"] == "c0 (75.0 %)" and rows.loc["all", "clips"] == 11
    assert rows.loc["dev", "audio (s)"] == pytest.approx(0.5)
    cut = [SoundClip(np.zeros(8000, np.float32), 0, 1, f"cow@{i}-{i + 1}", "cow", source="cow") for i in range(4)]
    assert clip_rows({"train": cut}).loc["train", "recordings"] == 1  # four clips cut from one recording
    levels = chance_levels(splits)
    assert levels == {"classes": 3, "chance": pytest.approx(100 / 3), "majority": pytest.approx(75.0)}


def _sweep_rows():
    ref = ["a b c", "d e"]
    rows = [
        {"split": "test", "layers": "all", "source": "none", "lambda": 0.0, "wer": 20.0, "ids": ["u1", "u2"],
         "references": ref, "hypotheses": ["a b c", "d"]},
        {"split": "test", "layers": "all", "source": "noise-standard", "lambda": 0.2, "wer": 350.0,
         "ids": ["u1", "u2"], "references": ref, "hypotheses": ["a " * 10, "d e"]},
        {"split": "test", "layers": "all", "source": "source", "lambda": 0.2, "wer": 120.0, "ids": ["u1", "u2"],
         "references": ref, "hypotheses": ["a b c", "d e d e d"]},
        {"split": "dev", "layers": "all", "source": "source", "lambda": 0.2, "wer": 900.0, "ids": ["u1"],
         "references": ["a"], "hypotheses": ["a " * 50]},  # dev rows are not Table 1's test rows
    ]
    return {"lj-like": pd.DataFrame(rows)}


def test_looping_transcripts_are_found_and_ranked():
    loops = looping_transcripts(_sweep_rows())
    assert list(loops.index) == [("lj-like", "N(0,1)", 0.2), ("lj-like", "Source", 0.2)]
    assert loops.iloc[0]["words (ref → hyp)"] == "3 → 10" and loops.iloc[1]["item"] == "u2"
    assert not loops.isna().any().any()
    facts = loop_findings(_sweep_rows())
    assert facts["loops_n"] == "2" and facts["loops_over_100"] == "2"
    assert "2 of the 6 test transcripts" in facts["loops"] and "350.0 %" in facts["loops"]


def test_no_loops_gives_an_empty_table_and_says_so():
    df = _sweep_rows()["lj-like"].iloc[:1]
    assert looping_transcripts({"x": df}).empty
    assert loop_findings({"x": df})["loops"].startswith("None of the 2 test transcripts")


def test_chapter_descriptions_build_no_model(tmp_path):
    ch = open_chapter("smoke", tmp_path, name="t")
    table = describe_corpora(ch)
    spec = ch.preset.asr.corpora["synthetic"]
    assert table.loc["synthetic", "test items"] == len(ch.corpora["synthetic"]["test"]) == spec.n_test
    assert table.loc["synthetic", "test words"] == sum(len(u.text.split()) for u in ch.corpora["synthetic"]["test"])
    aec = describe_aec(ch)
    clips = ch.aec_rig.clips
    assert aec.loc["test", "clips"] == len(clips.test) and aec.loc["all", "classes"] == 5
    facts = aec_facts(ch)
    assert facts["aec_classes"] == "5" and facts["aec_chance"] == "20.0" and facts["aec_chance_error"] == "80.0"
    assert "asr_rig" not in vars(ch)
    assert not {"encoder", "mergers"} & set(vars(ch.aec_rig))


def _block(values):
    return pd.DataFrame({"Source": values, "N(0,1)": [np.nan] + [v + 50 for v in values[1:]]},
                        index=pd.Index([0.0, 0.1, 0.2], name="λ"))


def test_a_corpus_without_counterpart_stands_beside_no_paper_number():
    import matplotlib.pyplot as plt

    from mamlib.report.table1 import NO_COUNTERPART, Table1

    choices = pd.DataFrame({"lj": {"lambda": 0.1, "dev": 5.0, "test": 9.0, "test_unmerged": 10.0,
                                   "relative_change": -10.0},
                            "alsa": {"lambda": 0.1, "dev": 5.0, "test": 30.0, "test_unmerged": 20.0,
                                     "relative_change": 50.0}}).T
    paper = _block([9.25, 9.06, 9.62])
    paper.attrs["dataset"] = "LJ Speech"
    t1 = Table1({}, {"lj": _block([10.0, 9.0, 12.0]), "alsa": _block([20.0, 30.0, 250.0])},
                {"lj": paper, "alsa": None}, choices, "wer", "whisper ← minilm", {"alsa": "lj"})
    tables = t1.tables("mini")
    assert set(tables["alsa"].index.get_level_values(0)) == {"ours (mini: alsa, test)"}
    assert tables["lj"].index.get_level_values(0).unique().tolist() == ["ours (mini: lj, test)", "paper (LJ Speech)"]
    assert list(tables["lj"].columns) == ["Source", "N(0,1)"]  # one set of source columns, read down
    assert tables["lj"].loc[("paper (LJ Speech)", 0.1), "Source"] == pytest.approx(9.06)
    assert t1.caption("alsa").endswith(NO_COUNTERPART) and "LJ Speech (HuBERT-large" in t1.caption("lj")
    lj_fig, alsa_fig = t1.figures()
    titles = [ax.get_title() for ax in lj_fig.axes]
    assert titles == ["ours: lj (whisper ← minilm)", "paper: LJ Speech (HuBERT-large ← BERT-large)"]
    assert lj_fig.axes[0].get_shared_y_axes().joined(*lj_fig.axes)  # both within 0–100 %: one y-scale
    assert len(alsa_fig.axes) == 1 and NO_COUNTERPART in alsa_fig.axes[0].get_title()
    assert all(ax.get_legend() is None for ax in lj_fig.axes) and len(lj_fig.legends) == 1  # legend off the data
    choices_table = t1.choices_table()
    assert choices_table.loc["alsa", "chosen on"] == "lj dev" and choices_table.loc["lj", "chosen on"] == "lj dev"
    assert choices_table.loc["lj", "Δ test (points)"] == pytest.approx(-1.0)
    assert choices_table.loc["lj", "relative change %"] == pytest.approx(-10.0)
    plt.close("all")


def test_sweep_figure_keeps_its_own_scale_when_ours_pass_100():
    import matplotlib.pyplot as plt

    from mamlib.report.plots import plot_lambda_sweep

    fig = plot_lambda_sweep(_block([20.0, 30.0, 250.0]), _block([9.25, 9.06, 9.62]), "ours", "paper: LJ Speech")
    assert not fig.axes[0].get_shared_y_axes().joined(*fig.axes)
    assert "own y-scale" in fig.axes[0].get_title() and "300 %" in fig.axes[0].get_title()
    plt.close("all")


def test_the_learned_lambda_figure_is_the_same_on_every_draw():
    import hashlib
    import io

    import matplotlib.pyplot as plt

    from mamlib.report.table5 import Table5, plot_learned_lambdas
    from mamlib.sweeps.finetune import MAMChoice

    runs = pd.DataFrame([{"corpus": "lj", "method": "l-mam", "seed": s, "value": 1.0,
                          "lambdas": [0.04 + 0.001 * s, 0.05, 0.045]} for s in range(3)])
    t5 = Table5(runs, {"lj": MAMChoice(0.1, None, 1.0, 1.0)}, {"lj": 2.0}, {"lj": "lj-like"}, {"lj": 0.05})
    drawn = []
    for state in (0, 1):  # whatever numpy's global random state, no point moves
        np.random.seed(state)
        buf = io.BytesIO()
        plot_learned_lambdas(t5).savefig(buf, format="png")
        drawn.append(hashlib.sha256(buf.getvalue()).hexdigest())
    assert drawn[0] == drawn[1]
    plt.close("all")
