"""The compute appendix (the NeurIPS checklist's item on compute resources), read from the results store only.

Every configuration a chapter evaluated is one record of the store (:class:`~mamlib.sweeps.store.ResultStore`), and
each record written by :func:`~mamlib.sweeps.store.run_grid` notes what computing it cost: wall seconds, the
hardware, when it finished. This module sorts the records of one preset and device into the part of the book they
serve (:func:`attribute`) and sums per part: configurations on dev and on test, seconds of audio processed (each
configuration processes its split once), wall time and hardware. A record written before compute was recorded counts
as *not recorded*: no number is invented for it.

Besides the cost, the search behind every reported row (:meth:`ComputeReport.search_budget`: how many candidates dev
chose among), and the paper preset's projected cost as ``benchmarks/paper_cost.py`` recorded it in
``benchmarks/paper_cost.json`` (:func:`paper_projection`) — projected, not measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from mamlib.common.paths import repo_root
from mamlib.report.chapter import Chapter
from mamlib.report.paper import paper_counterpart, paper_ks
from mamlib.selection.picks import METRIC_LABELS, scaled_ks
from mamlib.sweeps.choose import table2_blocks
from mamlib.sweeps.finetune import METHOD_LABELS

#: The parts of the book a configuration can serve, in the book's order (the first level of every table's index).
TABLE1 = "1 · Table 1"
NUMERICS = "1 · numerics check"
TABLE2 = "2 · Table 2"
SIMILARITY = "3 · similarity scores"
TABLE3 = "3 · Table 3"
TABLE5 = "4 · Table 5 (fine-tuning)"
DEPTH = "target depths"
OTHER = "other"
PARTS: tuple[str, ...] = (TABLE1, NUMERICS, TABLE2, SIMILARITY, TABLE3, TABLE5, DEPTH, OTHER)
#: How the tables name a task (the prefix of a configuration's ``experiment``).
TASKS: dict[str, str] = {"asr": "ASR", "aec": "AEC"}
#: What a cell says for a cost that was not recorded.
NOT_RECORDED = "not recorded"

#: Seconds of audio that evaluating one configuration processed (None: not known), e.g. from :func:`audio_seconds`.
AudioSeconds = Callable[[Mapping[str, Any]], float | None]
Record = Mapping[str, Any]


def task_of(config: Mapping[str, Any]) -> str:
    """The task of a configuration: the prefix of its ``experiment`` (``"asr"`` or ``"aec"``)."""
    return str(config.get("experiment", "")).partition("-")[0]


def attribute(config: Mapping[str, Any], blocks: Mapping[str, Sequence[Sequence[int]]] | None = None,
              dtypes: Mapping[str, str] | None = None) -> str:
    """The part of the book (one of :data:`PARTS`) that a stored configuration serves, from its shape alone: by
    experiment (fine-tuning, similarity scores, target depths); for a sweep, another dtype than its task's own
    (``dtypes``) is the numerics check, all layers (every λ = 0 baseline too) Table 1, one of the task's Table 2
    ``blocks`` (without them: consecutive layers) Table 2, another subset Table 3 for ASR and :data:`OTHER` for AEC.
    A configuration two parts evaluate is stored, computed and counted once, under the first in this order."""
    task, _, kind = str(config.get("experiment", "")).partition("-")
    named = {"finetune": TABLE5, "similarity": SIMILARITY, "target-depth": DEPTH}
    if kind != "interpolation":
        return named.get(kind, OTHER)
    own = (dtypes or {}).get(task)
    if own is not None and config.get("dtype") != own:
        return NUMERICS
    if config.get("layers") is None:
        return TABLE1
    known, ordered = (blocks or {}).get(task), sorted(int(i) for i in config["layers"])
    if (ordered in [sorted(b) for b in known] if known is not None
            else bool(ordered) and ordered == list(range(ordered[0], ordered[-1] + 1))):
        return TABLE2
    return TABLE3 if task == "asr" else OTHER


def evaluated_split(config: Mapping[str, Any]) -> str | None:
    """The split a configuration evaluated: its ``split``; ``test`` for a fine-tuning run (trained on train,
    evaluated on test); None for a record that evaluates no data (a target-depth look-up)."""
    if config.get("split") in ("dev", "test"):
        return str(config["split"])
    return "test" if str(config.get("experiment", "")).endswith("-finetune") else None


def _noted(record: Record, key: str) -> Any:
    """What a record noted of its compute under ``key`` (None: nothing, e.g. written before compute was recorded)."""
    compute = record.get("compute")
    return compute.get(key) if isinstance(compute, Mapping) else None


def wall_seconds(record: Record) -> float | None:
    """The wall seconds a record noted (``compute.seconds``), or None."""
    seconds = _noted(record, "seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


def _total(values: Sequence[float | None], minutes: bool = False) -> float | str:
    """The sum of the known ``values`` (None: not known), as a table shows it: seconds to 2 decimals, or minutes;
    when none is known, :data:`NOT_RECORDED` (seconds) or NaN (minutes)."""
    known = [v for v in values if v is not None]
    if minutes:
        return sum(known) / 60 if known else float("nan")
    return round(sum(known), 2) if known else NOT_RECORDED


def _rank(order: Sequence[str], item: str) -> int:
    """Where ``item`` comes in ``order`` (after all of it when it is not there)."""
    return order.index(item) if item in order else len(order)


def part_order(key: tuple[str, str]) -> tuple[int, int]:
    """Sort key of a (part, task) row: the book's order of parts, then ASR before AEC."""
    return _rank(PARTS, key[0]), _rank(list(TASKS.values()), key[1])


def compute_table(records: Sequence[Record], audio: AudioSeconds,
                  blocks: Mapping[str, Sequence[Sequence[int]]] | None = None,
                  dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per part of the book (:func:`attribute`) and task: configurations on dev and on test, minutes of audio they
    processed (``audio(config)`` each, summed), wall seconds (the records that noted it) and how many were timed;
    a last row ``total``. The target-depth look-ups evaluate no data: they count in neither split."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        task = task_of(r["config"])
        groups.setdefault((attribute(r["config"], blocks, dtypes), TASKS.get(task, task or "–")), []).append(r)

    def row(rs: Sequence[Record]) -> dict[str, Any]:
        splits, walls = [evaluated_split(r["config"]) for r in rs], [wall_seconds(r) for r in rs]
        return {"dev": splits.count("dev"), "test": splits.count("test"),
                "audio (min)": _total([audio(r["config"]) for r in rs], minutes=True), "wall (s)": _total(walls),
                "timed": f"{sum(w is not None for w in walls)}/{len(rs)}"}

    rows = {key: row(groups[key]) for key in sorted(groups, key=part_order)}
    rows[("total", "")] = row([r for key in rows for r in groups[key]])
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["part", "task"])


def hardware_table(records: Sequence[Record]) -> pd.DataFrame:
    """Per hardware a record noted (or :data:`NOT_RECORDED`), the most records first: records, wall seconds."""
    walls: dict[str, list[float | None]] = {}
    for record in records:
        walls.setdefault(str(_noted(record, "hardware") or NOT_RECORDED), []).append(wall_seconds(record))
    rows = {name: {"records": len(w), "wall (s)": _total(w)}
            for name, w in sorted(walls.items(), key=lambda x: -len(x[1]))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("hardware")


def finetune_table(records: Sequence[Record], corpus_of: Callable[[Mapping[str, Any]], str | None],
                   audio: AudioSeconds) -> pd.DataFrame:
    """Table 5's runs per corpus and method (ASR corpora first, methods in the table's order): runs (seeds),
    optimizer steps, examples seen (at most steps × the effective batch of the run's settings), training seconds the
    runs measured (``train_seconds``), and the minutes of test audio their evaluations processed. A MAM → FT run
    from λ = 0 is FT's own run, stored once."""
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        if attribute(r["config"]) == TABLE5:
            key = (task_of(r["config"]), corpus_of(r["config"]) or "–", str(r["config"].get("method")))
            groups.setdefault(key, []).append(r)
    rows = {}
    for (_, corpus, method), runs in sorted(groups.items(), key=lambda g: (
            _rank(list(TASKS), g[0][0]), g[0][1], _rank(list(METHOD_LABELS), g[0][2]))):
        steps = [int(r["result"].get("steps", 0)) for r in runs]
        batch = [int(r["config"].get("settings", {}).get("batch_size", 0)) for r in runs]
        trained = [r["result"].get("train_seconds") for r in runs]
        rows[(corpus, METHOD_LABELS.get(method, method))] = {
            "runs": len(runs), "steps": sum(steps), "examples": sum(s * b for s, b in zip(steps, batch)),
            "training (s)": _total([float(s) if isinstance(s, (int, float)) else None for s in trained]),
            "test audio (min)": _total([audio(r["config"]) for r in runs], minutes=True)}
    if not rows:
        return pd.DataFrame(columns=["runs", "steps", "examples", "training (s)", "test audio (min)"])
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["corpus", "method"])


def stored_depths(records: Sequence[Record], dtypes: Mapping[str, str] | None = None) -> dict[str, int]:
    """The depth of each task's target as Chapter 1 stored it (``<task>-target-depth`` records, in the task's own
    dtype when ``dtypes`` names it); a task without such a record is absent."""
    return {task_of(c): int(r["result"]["num_layers"]) for r in records if attribute(c := r["config"]) == DEPTH
            and (dtypes is None or c.get("dtype") == dtypes.get(task_of(c), c.get("dtype")))}


def corpus_label(config: Mapping[str, Any], corpora: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str | None:
    """The label of the corpus a configuration evaluated, among ``corpora`` (task → label → the corpus as it enters
    a results key; a fine-tuning run's adds ``n_train``); None when it is none of them. Similarity scores name their
    corpus's label outright."""
    own = corpora.get(task_of(config), {})
    if config.get("label") in own:
        return str(config["label"])
    if not isinstance(config.get("corpus"), Mapping):
        return None
    stored = json.loads(json.dumps(config["corpus"]))  # as stored: tuples → lists
    keys = (stored, {k: v for k, v in stored.items() if k != "n_train"})
    return next((label for label, key in own.items() if json.loads(json.dumps(key)) in keys), None)


@dataclass
class ComputeReport:
    """The compute of one preset and device, read from a results store: see the module."""

    preset: str
    device: str
    records: list[dict[str, Any]]
    corpora: dict[str, dict[str, dict[str, Any]]]
    dtypes: dict[str, str]
    depths: dict[str, int]
    lambdas: dict[str, tuple[float, ...]]
    audio: AudioSeconds
    #: Per ASR corpus: the paper's dataset it stands in for (Table 3's k come from it), and the corpus that chooses
    #: its λ when it has no dev split of its own.
    paper_dataset: dict[str, str]
    select_on: dict[str, str]
    finetuned: dict[str, tuple[str, int]]

    @property
    def blocks(self) -> dict[str, list[list[int]]]:
        """Table 2's blocks per task whose target depth is stored."""
        return {task: table2_blocks(task, depth) for task, depth in self.depths.items()}

    def by_table(self) -> pd.DataFrame:
        """:func:`compute_table` of this preset's records."""
        return compute_table(self.records, self.audio, self.blocks, self.dtypes)

    def hardware(self) -> pd.DataFrame:
        """:func:`hardware_table` of this preset's records."""
        return hardware_table(self.records)

    def finetuning(self) -> pd.DataFrame:
        """:func:`finetune_table` of this preset's records."""
        return finetune_table(self.records, lambda config: corpus_label(config, self.corpora), self.audio)

    def facts(self) -> dict[str, str]:
        """Numbers for the prose: records, those without compute, total wall time, total audio minutes."""
        total = self.by_table().loc[("total", "")]
        wall = total["wall (s)"]
        return {"records": str(len(self.records)), "not_recorded": str(sum(wall_seconds(r) is None
                                                                           for r in self.records)),
                "wall": wall if isinstance(wall, str) else f"{wall / 60:.1f} min",
                "audio": f"{total['audio (min)']:.1f}" if pd.notna(total["audio (min)"]) else NOT_RECORDED}

    def search_budget(self) -> pd.DataFrame:
        """Per reported row: what dev chose and among how many candidate configurations (each evaluated on dev).

        Table 1: λ of the real source, all layers, over the λ grid (λ = 0 included); Table 2: one λ for all blocks
        and the block, over blocks × non-zero λ; Table 3: Table 1's λ, then the pick among metrics × k; Table 5's MAM
        row: over Table 1's all-layer grid and Table 2's blocks × non-zero λ; the fine-tuned rows: nothing chosen,
        the preset's settings once per seed. A count that needs a depth this store lacks shows "–"."""
        rows: dict[tuple[str, str], tuple[str, int | None]] = {}  # (row, corpus) → (chosen on dev, candidates)
        for task, corpora in self.corpora.items():
            lams = self.lambdas[task]
            blocks = len(self.blocks[task]) * sum(x > 0 for x in lams) if task in self.blocks else None
            for label in corpora:
                chooser = self.select_on.get(label)
                where = f" (on {chooser}'s dev)" if chooser else ""
                rows[("Table 1", label)] = (f"λ{where}", len(lams))
                rows[("Table 2", label)] = (f"λ and block{where}", blocks)
                if task == "asr" and not chooser:
                    rows[("Table 3", label)] = ("λ (Table 1's), then metric × k", len(METRIC_LABELS) * len(scaled_ks(
                        self.depths["asr"], paper_ks(self.paper_dataset[label]))) if "asr" in self.depths else None)
                if label in self.finetuned:
                    rows[("Table 5, MAM", label)] = ("λ and layers (all or a block)",
                                                     None if blocks is None else len(lams) + blocks)
                    rows[("Table 5, fine-tuned", label)] = (
                        f"nothing: the preset's settings, {self.finetuned[label][1]} seeds", 0)
        table = pd.DataFrame(list(rows.values()), columns=["chosen on dev", "candidates"],
                             index=pd.MultiIndex.from_tuples(list(rows), names=["reported row", "corpus"]))
        table["candidates"] = table["candidates"].astype("Int64")
        return table.sort_index(level=0, sort_remaining=False)


def chapter_records(ch: Chapter) -> list[dict[str, Any]]:
    """The records of ``ch``'s preset and device that this mamlib keys (records of another version are stale)."""
    return [r for r in ch.store.records() if r["config"].get("preset") == ch.preset.name
            and r["config"].get("device") == ch.preset.device]


def audio_seconds(ch: Chapter, corpus_of: Callable[[Mapping[str, Any]], str | None]) -> AudioSeconds:
    """Seconds of audio of the split a configuration evaluated (:func:`evaluated_split`) in ``ch``'s corpora, each
    split loaded from the cache on first use (ASR utterances; AEC clips by fold)."""

    @cache
    def split_seconds(task: str, label: str, split: str) -> float:
        if task == "aec":
            return float(sum(c.seconds for c in getattr(ch.aec_rig.clips, split)))
        return float(sum(u.seconds for u in ch.corpora[label].get(split, [])))

    def seconds(config: Mapping[str, Any]) -> float | None:
        split, label = evaluated_split(config), corpus_of(config)
        return None if split is None or label is None else split_seconds(task_of(config), label, split)

    return seconds


def compute_report(ch: Chapter) -> ComputeReport:
    """The compute of ``ch``'s preset and device: its records in the store (:func:`chapter_records`) whose corpus
    is one of the preset's (or that evaluate no data), and what the search-budget table needs. Reads only."""
    preset = ch.preset
    setups = {"asr": preset.asr} if preset.aec is None else {"asr": preset.asr, "aec": preset.aec}
    corpora: dict[str, dict[str, dict[str, Any]]] = {
        "asr": {label: spec.as_dict() for label, spec in preset.asr.corpora.items()}}
    dtypes = {task: setup.dtype for task, setup in setups.items()}
    ft = preset.asr.finetune
    finetuned = {label: ("asr", len(ft.seeds)) for label in ft.corpora} if ft else {}
    if preset.aec is not None:
        corpora["aec"] = {preset.aec.data.label: ch.aec_rig.data_key()}
        if preset.aec.finetune is not None:
            finetuned[preset.aec.data.label] = ("aec", len(preset.aec.finetune.seeds))
    records = [r for r in chapter_records(ch)
               if evaluated_split(r["config"]) is None or corpus_label(r["config"], corpora) is not None]
    return ComputeReport(
        preset.name, preset.device, records, corpora, dtypes, stored_depths(records, dtypes),
        {task: tuple(setup.lambdas) for task, setup in setups.items()},
        audio_seconds(ch, lambda config: corpus_label(config, corpora)),
        paper_dataset={label: paper_counterpart(spec.dataset) or "LJ Speech"
                       for label, spec in preset.asr.corpora.items()},
        select_on={label: spec.select_on for label, spec in preset.asr.corpora.items() if spec.select_on},
        finetuned=finetuned)


@dataclass(frozen=True)
class Projection:
    """The paper preset's projected cost as recorded: the table, when it was recorded, and how the file was made
    (``source``: the run of ``benchmarks/paper_cost.py`` that wrote it, or, e.g., transcribed from an earlier one)."""

    table: pd.DataFrame
    recorded: str
    source: str = ""

    @property
    def caption(self) -> str:
        when = f" on {self.recorded}" if self.recorded else ""
        return (f"Paper preset, projected, not measured: benchmarks/paper_cost.json, recorded{when} "
                f"({self.source or 'benchmarks/paper_cost.py'}); GPU hours from an H200's measured sweep rate")


#: The presets whose hours on one H200 the projection holds (``gpu_h``), and the GPUs of its parallel total.
PROJECTED: tuple[str, ...] = ("paper", "paper-bf16")
GPUS = 8


def paper_projection(path: str | Path | None = None) -> Projection | None:
    """The projection ``benchmarks/paper_cost.py`` recorded in ``benchmarks/paper_cost.json`` (``path``; default: the
    checkout's): per chapter and task the configurations, audio and training audio (hours) and the hours on one
    H200 for each of :data:`PROJECTED`, with their totals (also on :data:`GPUS` GPUs). None when there is no such
    file (an installed mamlib has no benchmarks)."""
    root = repo_root()
    path = Path(path) if path is not None else None if root is None else root / "benchmarks" / "paper_cost.json"
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = {(r["chapter"], r["task"]): [str(r["configurations"]), f"{r['audio_h']:.1f}",
                                            f"{r['training_audio_h']:.1f}" if r["training_audio_h"] else "—",
                                            *(f"{r['gpu_h'][p]:.2f}" for p in PROJECTED)] for r in data["rows"]}
        total = data["total_gpu_h"]
        rows[("total", "")] = ["", "", "", *(f"{total[p]:.2f} ({GPUS} GPUs: {total[p] / GPUS:.2f})"
                                             for p in PROJECTED)]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a projection written by benchmarks/paper_cost.py ({type(err).__name__}: "
                         f"{err}); run `python benchmarks/paper_cost.py` to write it again") from None
    return Projection(pd.DataFrame(list(rows.values()), index=pd.MultiIndex.from_tuples(list(rows), names=[
        "chapter", "task"]), columns=["configs", "audio (h)", "training audio (h)",
                                      *(f"{p}, H200 (h)" for p in PROJECTED)]), data.get("recorded", ""),
                      data.get("source", ""))
