"""Chapter 4 (Sec. 3.3 and 4.2, Table 5): fine-tuning with and without merging, and the λ_i that L-MAM learns."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from mamlib.analysis.bootstrap import select_row
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_counterpart, paper_table
from mamlib.report.table2 import dev_block_label
from mamlib.sweeps.choose import layerwise_sweep, table2_blocks
from mamlib.sweeps.finetune import (
    METHOD_LABELS,
    METHODS,
    FinetuneStudy,
    FinetuneTarget,
    MAMChoice,
    aec_target,
    asr_target,
    choose_mam,
)
from mamlib.sweeps.grid import SweepGrid, layer_label

#: Table 5's rows in the paper's order, with its check marks (MAM, FT, L-MAM).
ROWS: dict[str, tuple[str, str, str]] = {"none": ("", "", ""), "mam": ("✓", "", ""), "ft": ("", "✓", ""),
                                         "mam-ft": ("✓", "✓", ""), "l-mam": ("", "✓", "✓")}


@dataclass
class Table5:
    """Every fine-tuned run (``runs``), the MAM choice and unmerged test error per task, and the chosen blocks."""

    runs: pd.DataFrame
    mam: dict[str, MAMChoice]
    unmerged: dict[str, float]
    datasets: dict[str, str]
    lambda_init: dict[str, float]
    best_blocks: dict[str, list[int] | None] = field(default_factory=dict)
    #: The dtype every row of each task is scored in: the target's own, for the fine-tuned rows too (their training
    #: may use bf16 autocast; :func:`mamlib.finetune.loop.train` gives the model its own forward back).
    scored_in: dict[str, str] = field(default_factory=dict)

    def precision_note(self) -> str:
        """One phrase for the caption: the precision every row is scored in, per task when they differ."""
        kinds = sorted(set(self.scored_in.values()))
        if len(kinds) == 1:
            return f"every row scored in {kinds[0]}, no autocast"
        return "rows scored in " + ", ".join(f"{d} ({label})" for label, d in self.scored_in.items()) + ", no autocast"

    def stats(self) -> pd.DataFrame:
        """Mean, standard deviation (over seeds) and count of the test error per task and row (a copy of
        :attr:`_stats`, computed once)."""
        return self._stats.copy()

    @cached_property
    def _stats(self) -> pd.DataFrame:
        rows = []
        for label in self.mam:
            rows.append({"corpus": label, "row": "none", "mean": self.unmerged[label], "sd": float("nan"), "n": 1})
            rows.append({"corpus": label, "row": "mam", "mean": self.mam[label].test, "sd": float("nan"), "n": 1})
            part = self.runs[self.runs["corpus"] == label]
            for method in METHODS:
                v = part[part["method"] == method]["value"]
                rows.append({"corpus": label, "row": method, "mean": float(v.mean()), "sd": float(v.std()),
                             "n": len(v)})
        return pd.DataFrame(rows)

    def layout(self, preset: str) -> pd.DataFrame:
        """Table 5 in the paper's layout: our mean ± sd beside the paper's number for the dataset each task stands
        in for."""
        stats = self.stats()
        paper = paper_table("table5").set_axis(list(ROWS))
        cols: dict[tuple[str, str], list[str]] = {}
        for label in self.mam:
            part = stats[stats["corpus"] == label].set_index("row")
            cols[(f"ours ({preset})", label)] = [f"{m:.2f} ± {sd:.2f}" if n > 1 else f"{m:.2f}" for m, sd, n in
                                                 part.loc[list(ROWS), ["mean", "sd", "n"]].itertuples(index=False)]
            dataset = paper_counterpart(self.datasets[label])
            if dataset is not None and ("paper", dataset) not in cols:
                cols[("paper", dataset)] = [f"{x:.2f}" for x in paper[dataset]]
        index = pd.MultiIndex.from_tuples([(*ROWS[r], METHOD_LABELS[r]) for r in ROWS],
                                          names=["MAM", "FT", "L-MAM", "row"])
        return pd.DataFrame(cols, index=index)

    def mam_table(self) -> pd.DataFrame:
        """The MAM row's configuration per task, as chosen on dev, with its dev and test error; λ = 0 reads as
        "dev chose not to merge"."""
        return pd.DataFrame({label: {"chosen on dev": "not to merge (λ = 0)" if c.lam == 0 else
                                     f"λ = {c.lam:.2f}, layers {layer_label(c.layers)}",
                                     "dev error %": f"{c.dev:.2f}", "test error %": f"{c.test:.2f}"}
                             for label, c in self.mam.items()})

    def lambda_range(self, label: str) -> tuple[float, float, float] | None:
        """Where L-MAM took task ``label``'s λ_i: (start, lowest, highest learned over layers and seeds); None
        without an L-MAM run."""
        lam = self.lambdas()
        part = lam[lam["corpus"] == label]["λ"]
        return (self.lambda_init[label], float(part.min()), float(part.max())) if len(part) else None

    def lambda_movement(self) -> str:
        """One sentence per task on where L-MAM took its λ_i (:meth:`lambda_range`), and whether every λ_i fell
        (training moved the attention away from the source) or rose."""
        out = []
        for label in self.mam:
            if (moved := self.lambda_range(label)) is None:
                continue
            start, low, high = moved
            if high < start:
                how = "every λ_i fell below its start: training moved the attention away from the source"
            elif low > start:
                how = "every λ_i rose above its start: training moved the attention towards the source"
            else:
                how = "some λ_i rose and some fell"
            out.append(f"on {label}, from {start:.3f} to between {low:.4f} and {high:.4f} ({how})")
        return "; ".join(out) or "no L-MAM run in this build"

    def lambdas(self) -> pd.DataFrame:
        """The learned λ_i of every L-MAM run: one row per task, seed and layer (a copy of :attr:`_lambdas`, computed
        once)."""
        return self._lambdas.copy()

    @cached_property
    def _lambdas(self) -> pd.DataFrame:
        part = self.runs[self.runs["method"] == "l-mam"]
        return pd.DataFrame([{"corpus": r["corpus"], "seed": r["seed"], "layer": i, "λ": lam}
                             for _, r in part.iterrows() for i, lam in enumerate(r["lambdas"])])

    def differences(self) -> pd.DataFrame:
        """Per task: L-MAM + FT minus FT and MAM → FT minus FT (means over seeds), with the spread of FT's seeds,
        so the prose can say whether a difference is larger than seed-to-seed noise."""
        stats = self.stats().pivot(index="corpus", columns="row").loc[list(self.mam)]
        mean = stats["mean"]
        return pd.DataFrame({"L-MAM + FT − FT": mean["l-mam"] - mean["ft"],
                             "MAM → FT − FT": mean["mam-ft"] - mean["ft"], "FT − unmerged": mean["ft"] - mean["none"],
                             "sd of FT over seeds": stats[("sd", "ft")]}).round(2)

    def versus_ft(self, label: str) -> tuple[float, float, bool]:
        """L-MAM + FT against FT on task ``label``: the difference of the means over seeds, its standard error from
        the seeds' spread (NaN with one seed), and whether the difference exceeds twice that standard error (with 3
        seeds, a rough screen, not a test)."""
        stats = self.stats().set_index(["corpus", "row"])
        ft, lm = stats.loc[(label, "ft")], stats.loc[(label, "l-mam")]
        diff = float(lm["mean"] - ft["mean"])
        se = float(((ft["sd"] ** 2) / ft["n"] + (lm["sd"] ** 2) / lm["n"]) ** 0.5) if ft["n"] > 1 else float("nan")
        return diff, se, bool(diff != 0 and se == se and abs(diff) > 2 * se)

    def verdicts(self) -> dict[str, str]:
        """Per task, one sentence comparing L-MAM + FT with FT (:meth:`versus_ft`)."""
        out = {}
        for label in self.mam:
            diff, se, beyond = self.versus_ft(label)
            if diff == 0:
                verdict = "no difference at all"
            elif not beyond:
                verdict = "within the seed-to-seed noise"
            else:
                verdict = f"{'fewer' if diff < 0 else 'more'} errors, beyond the seed-to-seed noise"
            out[label] = f"{label}: L-MAM + FT − FT = {diff:+.2f} points ({verdict}; standard error {se:.2f})"
        return out


def settings_table(ch: Chapter) -> pd.DataFrame:
    """The fine-tuning settings of the preset, per task, for the top of Chapter 4."""
    cols = {}
    ft = ch.preset.asr.finetune
    if ft is not None:
        for label in ft.corpora:
            spec = ch.preset.asr.corpora[label]
            cols[label] = {**ft.settings_for(label).as_dict(), "seeds": list(ft.seeds),
                           "training data": f"{spec.n_train if spec.n_train is not None else 'all'} utterances"}
    if ch.preset.aec is not None and ch.preset.aec.finetune is not None:
        aft = ch.preset.aec.finetune
        cols[ch.preset.aec.data.label] = {**aft.settings.as_dict(), "seeds": list(aft.seeds),
                                          "training data": f"folds {list(ch.preset.aec.train_folds)}"}
    return pd.DataFrame(cols).map(lambda v: "none" if v is None else str(v))


def finetune_table5(ch: Chapter, progress: bool = True) -> Table5:
    """Table 5's protocol on every task the preset fine-tunes: its ASR corpora (``asr.finetune.corpora``) and the
    AEC clips (when ``aec.finetune`` is set)."""
    runs, mam, unmerged, datasets, init, blocks, scored_in = [], {}, {}, {}, {}, {}, {}

    def study(rig, task: str, target: FinetuneTarget, sweep, lambdas, setup_ft, settings) -> None:
        choice = choose_mam(sweep, lambdas, table2_blocks(task, ch.depth(task)))
        df = FinetuneStudy(rig, target, settings, setup_ft.seeds, choice, ch.store, ch.cache / "finetune",
                           progress).run()
        runs.append(df.assign(value=df[target.value])[["corpus", "method", "seed", "value", "lambdas", "losses",
                                                        "steps", "train_seconds"]])
        mam[target.label] = choice
        unmerged[target.label] = float(select_row(sweep.run(SweepGrid(variants=("source",), lambdas=(0.0,),
                                                                      splits=("test",))), lam=0.0)[sweep.value])
        init[target.label] = settings.lambda_init
        scored_in[target.label] = rig.setup.dtype

    ft = ch.preset.asr.finetune
    if ft is not None:
        asr_blocks = table2_blocks("asr", ch.depth("asr"))
        for label in ft.corpora:
            sweep = ch.sweep(label)
            datasets[label] = ch.preset.asr.corpora[label].dataset
            study(ch.asr_rig, "asr", asr_target(sweep, partial(ch.train_utterances, label)), sweep,
                  ch.preset.asr.lambdas, ft, ft.settings_for(label))
            rows, lam = layerwise_sweep(sweep, ch.preset.asr.lambdas, asr_blocks)
            best = dev_block_label(rows, lam, value=sweep.value)  # Table 2's block chosen on dev, as Chapter 2's
            blocks[label] = next(b for b in asr_blocks if layer_label(b) == best)
    if ch.preset.aec is not None and ch.preset.aec.finetune is not None:
        rig, ft_aec, data = ch.aec_rig, ch.preset.aec.finetune, ch.preset.aec.data
        datasets[data.label] = data.dataset
        study(rig, "aec", aec_target(rig), ch.aec_sweep, ch.preset.aec.lambdas, ft_aec, ft_aec.settings)
    return Table5(pd.concat(runs, ignore_index=True), mam, unmerged, datasets, init, blocks, scored_in)


def plot_learned_lambdas(t5: Table5):
    """The λ_i that L-MAM learned, per layer: one dot per seed, the mean as a line, the start as a dashed line,
    and Table 2's best block shaded where the task has one."""
    sns.set_theme(style="whitegrid")
    lam = t5.lambdas()
    tasks = list(t5.mam)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.4), squeeze=False)
    for ax, label in zip(axes[0], tasks):
        part = lam[lam["corpus"] == label]
        block = t5.best_blocks.get(label)
        if block:
            ax.axvspan(block[0] - 0.4, block[-1] + 0.4, color="tab:orange", alpha=0.15,
                       label=f"Table 2 block chosen on dev (layers {layer_label(block)})")
        sns.stripplot(data=part, x="layer", y="λ", hue="seed", native_scale=True, jitter=False, dodge=True, ax=ax,
                      palette="Blues_d")  # seeds side by side, not jittered at random: a rebuild draws the same figure
        means = part.groupby("layer")["λ"].mean()
        ax.plot(means.index, means.to_numpy(), color="black", marker="o", label="mean over seeds")
        ax.axhline(t5.lambda_init[label], color="grey", ls="--", label="start λ")
        ax.set_title(f"{label}: learned λ_i")
        ax.set_xlabel("target layer i")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  title="seed / line", title_fontsize=7)
    fig.tight_layout()
    return fig
