"""The evidence of a build as a reviewer reads it first: every clear result (harms first), what each test set can
detect, and the negative and null results — all generated from the stored results, for the front page.

* **Clear results** — every comparison of a real-source merge with the unmerged model on test that a chapter makes
  (Table 1's every λ, Table 2's blocks at the dev-chosen λ, Table 3's picks), whose paired 95% interval excludes
  zero. A harm is listed like a gain; which setting dev chose is said, so a result on a λ or block that dev did not
  choose reads as what it is.
* **Resolution** — per corpus, the test and dev sizes and the smallest difference the test set can tell from noise
  (:func:`mamlib.analysis.bootstrap.detectable_difference`, Chapter 5), beside the paper's effect.
* **Negative and null results** — sentences built from the data: significant harms, noise controls that match or
  beat the real source, selections that degenerate, λ that L-MAM moved away from the source, fine-tuned rows worse
  than the unmerged model.

Signs follow the book's convention: Δ = merged − unmerged in points, negative = fewer errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mamlib.analysis.bootstrap import PairedInterval, compare_to_unmerged, item_errors, items_needed
from mamlib.merge.sources import source_variants
from mamlib.report.describe import signed
from mamlib.selection.signal import metrics_agree
from mamlib.sweeps.grid import layers_phrase


@dataclass(frozen=True)
class Comparison:
    """One merged row against the unmerged model on test: where it stands (table, task, corpus), what was merged,
    whether dev chose it, and its paired interval."""

    table: str
    task: str
    corpus: str
    what: str
    chosen_on_dev: bool
    interval: PairedInterval

    @property
    def harm(self) -> bool:
        return self.interval.excludes_zero and self.interval.low > 0.0


def sweep_comparisons(table: str, task: str, corpus: str, df: pd.DataFrame, *, value: str, chosen: tuple[float, str],
                      layers: Iterable[str], lambdas: Iterable[float] | None = None,
                      compare: Callable[..., PairedInterval] = compare_to_unmerged) -> list[Comparison]:
    """Every test row of the real source in sweep frame ``df`` on ``layers`` (and ``lambdas`` when given) against
    the unmerged row (``compare(df, λ, layers=…)``), once per (λ, layers). ``chosen`` is the (λ, layers) dev chose."""
    test = df[(df["split"] == "test") & (df["source"] == "source") & (df["lambda"] > 0)
              & df["layers"].isin(list(layers))]
    if lambdas is not None:
        test = test[np.isin(test["lambda"].astype(float).round(9), np.round(list(lambdas), 9))]
    keys = dict.fromkeys((round(float(lam), 9), str(block)) for lam, block in zip(test["lambda"], test["layers"]))
    return [Comparison(table, task, corpus, f"λ = {lam:.2f}, {layers_phrase(block)}",
                       abs(chosen[0] - lam) < 1e-9 and chosen[1] == block, compare(df, lam, layers=block))
            for lam, block in keys]


def clear_results(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """The comparisons whose interval excludes zero, harms first (largest Δ first), then gains (largest first);
    an empty frame (with its columns) when there is none."""
    clear = [c for c in comparisons if c.interval.excludes_zero]
    clear.sort(key=lambda c: (not c.harm, -abs(c.interval.difference)))
    rows = [{"comparison": f"{c.table} · {c.task} · {c.corpus}: {c.what}",
             "chosen on dev": "yes" if c.chosen_on_dev else "no (one cell of the grid)",
             "Δ points (95% interval)": _interval(c.interval),
             "reading": "harm: more errors" if c.harm else "fewer errors"} for c in clear]
    return pd.DataFrame(rows, columns=["comparison", "chosen on dev", "Δ points (95% interval)", "reading"])


def _interval(iv: PairedInterval) -> str:
    return f"{signed(iv.difference)} ({signed(iv.low)} to {signed(iv.high)})"


@dataclass
class Evidence:
    """What a reviewer reads first: every clear result, harms first (:func:`clear_results`); what each test set can
    detect (:func:`resolution_table`); the negative and null results (:func:`negative_results`)."""

    clear: pd.DataFrame
    resolution: pd.DataFrame
    negatives: list[str]

    def clear_styled(self, preset: str):
        caption = (f"Every clear result of this build ({preset}): comparisons with the unmerged model on test whose "
                   "95% interval excludes zero, harms first (Δ = merged − unmerged, points)")
        table = self.clear
        if table.empty:  # one row that says so, not a header over nothing
            caption = f"No comparison of this build ({preset}) has a 95% interval that excludes zero"
            table = pd.DataFrame([{c: "–" for c in table.columns}]).assign(
                comparison="none: every interval of this build contains zero")
        return table.style.hide(axis="index").set_caption(caption).set_properties(**{"text-align": "left"})

    def negatives_markdown(self) -> str:
        return "\n".join(f"- {line}" for line in self.negatives) or "- none in this build"


# -- what each test set can detect --------------------------------------------------------------------------------


def split_size(df: pd.DataFrame, split: str) -> tuple[int, int] | None:
    """(items, words) of ``split`` in a sweep frame — words are reference words for ASR rows, items for
    classification; None when the frame has no row of that split."""
    part = df[df["split"] == split]
    if part.empty:
        return None
    errors, sizes = item_errors(part.iloc[0])
    return len(errors), int(np.sum(sizes))


def resolution_table(sweeps: Mapping[str, pd.DataFrame], comparisons: Sequence[Comparison],
                     paper_effects: Mapping[str, float | None], dev_from: Mapping[str, str]) -> pd.DataFrame:
    """Per corpus: test and dev size, what one item or word is worth in points, the median resolution (±points at
    95 %) of its comparisons, the paper's effect for its counterpart dataset and the test items that would detect
    it at this set's per-item variance. ``dev_from`` names, for a corpus without a dev split of its own, the corpus
    whose dev split chooses for it (its dev size is shown under that name)."""
    rows = {}
    for label, df in sweeps.items():
        test = split_size(df, "test")
        chooser = dev_from.get(label)
        dev = split_size(sweeps[chooser] if chooser in sweeps else df, "dev")
        own = [c.interval.detectable for c in comparisons if c.corpus == label and c.interval.detectable]
        detect = float(np.median(own)) if own else float("nan")
        effect = paper_effects.get(label)
        needed = items_needed(detect, test[0], effect) if effect and detect == detect and test and test[0] > 1 else None
        unit = "word" if "wer" in df.columns else "item"
        rows[label] = {
            "test items": f"{test[0]:,}" if test else "–",
            "test words": f"{test[1]:,}" if test and unit == "word" else "–",
            "dev": ((f"{chooser}'s: " if chooser else "")
                    + (f"{dev[0]} items, {dev[1]} words" if unit == "word" else f"{dev[0]} items")) if dev else "none",
            "one error": f"{100.0 / test[1]:.2f} points per {unit}" if test else "–",
            "detectable (median ±points)": f"±{detect:.2f}" if detect == detect else "–",
            "paper's effect (points)": signed(effect) if effect else "no counterpart",
            "test items to detect it": f"{needed:,}" if needed else "–",
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("corpus")


# -- negative and null results ------------------------------------------------------------------------------------


def noise_controls(label: str, df: pd.DataFrame, value: str) -> list[tuple[float, str, float, float]]:
    """The (λ, noise control, its error, the real source's error) on test where a noise control of Table 1 matched
    or beat the real source at the same λ on all layers."""
    test = df[(df["split"] == "test") & (df["layers"] == "all") & (df["lambda"] > 0)]
    test = test.assign(lam=test["lambda"].astype(float), error=test[value].astype(float))
    test = test.sort_values("lam", kind="stable")
    real = test[test["source"] == "source"].drop_duplicates("lam").set_index("lam")["error"]
    noise = test[test["source"] != "source"].assign(real=lambda d: d["lam"].map(real))
    noise = noise[noise["error"] <= noise["real"]]
    labels = {name: v.label for name, v in source_variants().items()}
    return [(lam, labels.get(s, str(s)), e, r) for lam, s, e, r in zip(noise["lam"], noise["source"], noise["error"],
                                                                       noise["real"])]


def identical_metric_picks(picked: Mapping[tuple[str, int], Sequence[int]]) -> bool:
    """True when every metric picks the same layers for every k (Table 3's columns are then identical)."""
    agree, total = metrics_agree(picked)
    return total > 0 and agree == total


def negative_results(comparisons: Sequence[Comparison], noise: Mapping[str, list[tuple[float, str, float, float]]],
                     dev_chose_zero: Sequence[str], degenerate_picks: Sequence[str],
                     learned: Mapping[str, tuple[float, float, float]],
                     finetune_worse: Mapping[str, list[tuple[str, float, float]]]) -> list[str]:
    """Sentences for the front page's box of negative and null results, each from the data passed in:
    significant harms, noise controls matching the real source (per corpus), corpora on which dev chose λ = 0,
    Table 3 selections where every metric agrees, L-MAM's learned λ against its start (task → (start, min, max)),
    and fine-tuned rows worse than the unmerged model (task → (row, Δ, sd))."""
    out = []
    harms = [c for c in comparisons if c.harm]
    if harms:
        listed = "; ".join(f"{c.corpus} {c.what} ({_interval(c.interval)})" for c in harms[:6])
        more = f" and {len(harms) - 6} more" if len(harms) > 6 else ""
        out.append(f"**Significant harms.** {len(harms)} merge(s) of the real source raised the error outside "
                   f"resampling noise: {listed}{more}.")
    for label, rows in noise.items():
        if rows:
            ex = rows[0]
            out.append(f"**Noise controls as good as the source.** On {label}, a noise control matched or beat the "
                       f"real source at {len(rows)} setting(s) of Table 1 — e.g. {ex[1]} at λ = {ex[0]:.2f}: "
                       f"{ex[2]:.2f} against the source's {ex[3]:.2f}.")
    if dev_chose_zero:
        out.append(f"**Dev chose not to merge** on {', '.join(dev_chose_zero)}: the lowest dev error of Table 1 was "
                   "the unmerged model's, so the protocol's merged model is the unmerged one there.")
    if degenerate_picks:
        out.append(f"**Layer selection degenerates** on {', '.join(degenerate_picks)}: every metric picks the same "
                   "layers for every k, so Table 3's columns are identical (Chapter 3 shows the similarities).")
    for label, (start, low, high) in learned.items():
        if high < start:
            out.append(f"**L-MAM moved away from the source** on {label}: every learned λ_i fell below its start "
                       f"{start:.3f} (now {low:.3f} to {high:.3f}).")
    for label, rows in finetune_worse.items():
        for row, delta, sd in rows:
            spread = f", sd {sd:.2f} over seeds" if sd == sd else ""
            out.append(f"**Fine-tuning raised the error** on {label}: {row} is {signed(delta)} points against the "
                       f"unmerged model{spread}.")
    return out
