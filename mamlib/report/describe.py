"""What a build evaluates on (Sec. 4's experimental setup, as reproduced): the corpora and the audio clips described
from the data themselves, and the transcripts that make a sequence-to-sequence recognizer's WER pass 100 %.

Nothing here builds a model: the corpora and clips are read (or synthesized) through the chapter, the transcripts
come from stored sweep rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from mamlib.asr.recognizers import Utterance
from mamlib.merge.sources import source_variants
from mamlib.presets.schema import find_dataset
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_counterpart

#: A transcript is shown as looping when it has more than this many times its reference's words.
LOOP_RATIO = 2.0


def signed(value: float, digits: int = 2) -> str:
    """A number for prose in the book's sign convention: "+1.25", "−0.40" (a true minus sign), "0.00"; "–" for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:+.{digits}f}"
    if float(text) == 0.0:
        return f"{0.0:.{digits}f}"
    return text.replace("-", "−")


def _words(text: str) -> int:
    return len(str(text).split())


def corpus_row(dataset: str, splits: Mapping[str, Sequence[Utterance]], select_on: str | None = None
               ) -> dict[str, Any]:
    """One corpus described from its utterances: how the speech was made, speakers, dev and test items, test
    words and minutes, and the paper's dataset it stands in for."""
    every = [u for utts in splits.values() for u in utts]
    test = list(splits.get("test", []))
    dev = splits.get("dev")
    return {
        "dataset": dataset,
        "speech": find_dataset(dataset).made or "–",
        "speakers": len({u.speaker for u in every}),
        "dev items": str(len(dev)) if dev is not None else f"none (λ from {select_on}'s dev)" if select_on else "none",
        "test items": len(test),
        "test words": sum(_words(u.text) for u in test),
        "test minutes": round(sum(u.seconds for u in test) / 60, 2),
        "paper counterpart": paper_counterpart(dataset) or "none",
    }


def describe_corpora(ch: Chapter) -> pd.DataFrame:
    """Every ASR corpus of the chapter's preset (Sec. 4: LJ Speech and VCTK in the paper), one row each, generated
    from its utterances (:func:`corpus_row`); loads the corpora, builds no model."""
    specs = ch.preset.asr.corpora
    rows = {label: corpus_row(spec.dataset, ch.corpora[label], spec.select_on) for label, spec in specs.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("corpus")


def _recording(clip: Any) -> str:
    return getattr(clip, "source", "") or clip.id


def clip_rows(splits: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Clips per split (and all together): clips, classes present, recordings they were cut from, seconds of audio,
    and the largest class with its share of the split."""
    rows = {}
    for name, clips in [*splits.items(), ("all", [c for cs in splits.values() for c in cs])]:
        counts = Counter(c.category or str(c.label) for c in clips)
        top, n_top = counts.most_common(1)[0] if counts else ("–", 0)
        rows[name] = {"clips": len(clips), "classes": len(counts), "recordings": len({_recording(c) for c in clips}),
                      "audio (s)": round(sum(c.seconds for c in clips), 1),
                      "largest class": f"{top} ({100 * n_top / len(clips):.1f} %)" if clips else "–"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("split")


def chance_levels(splits: Mapping[str, Sequence[Any]]) -> dict[str, float]:
    """Sec. 4.1's "chance-level error" for these clips: with C classes a uniform guess is right 1/C of the time
    (error 1 − 1/C), and always answering the test split's largest class is right its share of the time."""
    n_classes = len({c.label for cs in splits.values() for c in cs})
    test = list(splits.get("test", []))
    top = Counter(c.label for c in test).most_common(1)[0][1] if test else 0
    return {"classes": n_classes, "chance": 100.0 / n_classes if n_classes else math.nan,
            "majority": 100.0 * top / len(test) if test else math.nan}


def _aec_splits(ch: Chapter) -> dict[str, list]:
    return {split: getattr(ch.aec_rig.clips, split) for split in ("train", "dev", "test")}


def describe_aec(ch: Chapter) -> pd.DataFrame:
    """The audio-event clips of the chapter's preset (Sec. 4: ESC-50 in the paper) per split
    (:func:`clip_rows`); loads the clips, builds no model."""
    return clip_rows(_aec_splits(ch))


def aec_facts(ch: Chapter) -> dict[str, str]:
    """What Chapter 1's prose says about the clips: dataset and how it was made, recordings, classes, clips per
    split, clip length, and the chance levels as errors (:func:`chance_levels`)."""
    splits, dataset = _aec_splits(ch), ch.preset.aec.data.dataset
    levels = chance_levels(splits)
    lengths = sorted({round(c.seconds, 2) for cs in splits.values() for c in cs})
    return {
        "aec_dataset": dataset, "aec_kind": find_dataset(dataset).made or "–",
        "aec_recordings": str(len({_recording(c) for cs in splits.values() for c in cs})),
        "aec_classes": str(levels["classes"]), **{f"aec_{name}": str(len(clips)) for name, clips in splits.items()},
        "aec_clip_seconds": f"{lengths[0]:g}" if len(lengths) == 1 else f"{lengths[0]:g}–{lengths[-1]:g}",
        "aec_chance": f"{levels['chance']:.1f}", "aec_chance_error": f"{100.0 - levels['chance']:.1f}",
        "aec_majority": f"{levels['majority']:.1f}", "aec_majority_error": f"{100.0 - levels['majority']:.1f}",
    }


# -- transcripts longer than their references ------------------------------------------------------------------


def _table1_rows(sweeps: Mapping[str, pd.DataFrame]) -> Iterator[tuple[str, pd.Series]]:
    """Table 1's test rows (all layers merged) of every corpus with stored transcripts, with the corpus."""
    for label, df in sweeps.items():
        if "hypotheses" in df.columns:
            yield from ((label, row) for _, row in df[(df["split"] == "test") & (df["layers"] == "all")].iterrows())


def _transcripts(sweeps: Mapping[str, pd.DataFrame]) -> Iterator[tuple[str, pd.Series, str, str, str, int, int]]:
    """Every transcript of :func:`_table1_rows`: corpus, row, item id, reference, hypothesis, their word counts."""
    for label, row in _table1_rows(sweeps):
        for uid, ref, hyp in zip(row["ids"], row["references"], row["hypotheses"]):
            yield label, row, uid, ref, hyp, _words(ref), _words(hyp)


def _loops(n_ref: int, n_hyp: int, ratio: float) -> bool:
    """Whether a transcript of ``n_hyp`` words is a loop: more than ``ratio`` times its reference's words."""
    return n_hyp > ratio * max(n_ref, 1)


def looping_transcripts(sweeps: Mapping[str, pd.DataFrame], ratio: float = LOOP_RATIO, limit: int = 6,
                        width: int = 160) -> pd.DataFrame:
    """Test transcripts of Table 1's configurations (every λ and source variant, all layers merged) with more than
    ``ratio`` times their reference's words — a sequence-to-sequence decoder that loops, or a random network that
    spills letters: each extra word is an insertion, and insertions are what lets a WER pass 100 %. The longest one
    per corpus and source variant, at most ``limit`` rows; hypotheses cut to ``width`` characters. Empty when no
    transcript is that long."""
    labels = {**{name: v.label for name, v in source_variants().items()}, "none": "unmerged"}
    columns = ["corpus", "source", "λ", "item", "words (ref → hyp)", "reference", "hypothesis"]
    found = [{"corpus": corpus, "source": labels.get(row["source"], row["source"]),
              "λ": float(row["lambda"]), "item": uid, "words (ref → hyp)": f"{n_ref} → {n_hyp}", "reference": ref,
              "hypothesis": str(hyp) if len(str(hyp)) <= width else str(hyp)[: width - 1].rstrip() + "…",
              "_ratio": n_hyp / max(n_ref, 1)}
             for corpus, row, uid, ref, hyp, n_ref, n_hyp in _transcripts(sweeps) if _loops(n_ref, n_hyp, ratio)]
    frame = pd.DataFrame(found, columns=[*columns, "_ratio"]).sort_values("_ratio", ascending=False, kind="stable")
    frame = frame.drop_duplicates(["corpus", "source"]).head(limit)
    return frame[columns].set_index(["corpus", "source", "λ"])


def loop_findings(sweeps: Mapping[str, pd.DataFrame], ratio: float = LOOP_RATIO) -> dict[str, str]:
    """How many of Table 1's test transcripts are over ``ratio`` times their reference's length, how many
    configurations pass 100 % WER, and one sentence saying so (glue key ``loops``)."""
    every = list(_transcripts(sweeps))
    long = [row["source"] for _, row, _, _, _, n_ref, n_hyp in every if _loops(n_ref, n_hyp, ratio)]
    n_hyps, n_long, n_long_unmerged = len(every), len(long), long.count("none")
    longer = "twice" if ratio == 2 else f"{ratio:g} times"
    errors = [float(row["wer"]) for _, row in _table1_rows(sweeps)]
    over = sum(e > 100.0 for e in errors)
    worst = max(errors) if errors else math.nan
    if not n_hyps:
        sentence = "This build stored no transcripts to inspect."
    elif not n_long:
        sentence = (f"None of the {n_hyps:,} test transcripts of this build's Table 1 configurations is more than "
                    f"{longer} as long as its reference; the highest WER of any configuration is {worst:.1f} %.")
    else:
        sentence = (f"In this build, {n_long:,} of the {n_hyps:,} test transcripts of Table 1's configurations "
                    f"({100 * n_long / n_hyps:.1f} %; {n_long_unmerged} from the unmerged model) are more than "
                    f"{longer} as long as their reference, and {over} of the {len(errors)} configurations "
                    f"pass 100 % WER (the highest: {worst:.1f} %).")
    return {"loops": sentence, "loops_n": str(n_long), "loops_over_100": str(over)}
