"""The compute appendix (the NeurIPS checklist's item on compute resources), read from the results store only.

Every configuration a chapter evaluated is one record of the store (:class:`~mamlib.sweeps.store.ResultStore`), and
each record written by :func:`~mamlib.sweeps.store.run_grid` notes what computing it cost: wall seconds, the
hardware, when it finished. This module sorts the records of one preset and device into the part of the book they
serve (:func:`attribute`: Chapter 1's Table 1 and its numerics check, Table 2's blocks, Chapter 3's similarity scores
and Table 3's picks, Table 5's fine-tuning runs) and sums per part: configurations on dev and on test, seconds of
audio processed (each configuration processes its split once: configurations × split seconds), wall time and
hardware. A record written before compute was recorded counts as *not recorded*: no number is invented for it.

Besides the cost, the search behind every reported row (:meth:`ComputeReport.search_budget`: how many candidates dev
chose among), and the paper preset's projected cost as ``benchmarks/paper_cost.py`` recorded it in
``benchmarks/RESULTS.md`` (:func:`paper_projection`) — projected, not measured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from mamlib.common.paths import repo_root
from mamlib.report.chapter import Chapter
from mamlib.report.paper import PAPER_DATASET_FOR
from mamlib.sweeps.store import ResultStore

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


def task_of(config: Mapping[str, Any]) -> str:
    """The task of a configuration: the prefix of its ``experiment`` (``"asr"`` or ``"aec"``)."""
    return str(config.get("experiment", "")).partition("-")[0]


def _is_block(layers: Sequence[int]) -> bool:
    """Whether ``layers`` are consecutive (a block of Table 2's shape)."""
    ordered = sorted(int(i) for i in layers)
    return bool(ordered) and ordered == list(range(ordered[0], ordered[-1] + 1))


def attribute(config: Mapping[str, Any], blocks: Mapping[str, Sequence[Sequence[int]]] | None = None,
              dtypes: Mapping[str, str] | None = None) -> str:
    """The part of the book (one of :data:`PARTS`) that a stored configuration serves, from its shape alone.

    * fine-tuning runs (``*-finetune``) → Table 5; similarity scores (``asr-similarity``) → Chapter 3's scores;
      the target-depth look-ups → :data:`DEPTH`; any other experiment that is not a sweep → :data:`OTHER`;
    * a sweep (``*-interpolation``) in another dtype than the task's own (``dtypes``, by task) → Chapter 1's
      numerics check; all layers (``layers`` None, also every λ = 0 baseline) → Table 1; one of the task's Table 2
      blocks (``blocks``, by task; without them: any run of consecutive layers) → Table 2; any other subset → Table 3
      for ASR (its data-driven picks), :data:`OTHER` for AEC.

    A configuration two parts evaluate (a Table 3 pick that is also a Table 2 block, the λ = 0 baseline that every
    table reads) is stored, computed and counted once, under the first part in this order.
    """
    task, _, kind = str(config.get("experiment", "")).partition("-")
    if kind == "finetune":
        return TABLE5
    if kind == "similarity":
        return SIMILARITY
    if kind == "target-depth":
        return DEPTH
    if kind != "interpolation":
        return OTHER
    own = (dtypes or {}).get(task)
    if own is not None and config.get("dtype") != own:
        return NUMERICS
    layers = config.get("layers")
    if layers is None:
        return TABLE1
    known = (blocks or {}).get(task)
    block = (sorted(layers) in [sorted(b) for b in known]) if known is not None else _is_block(layers)
    if block:
        return TABLE2
    return TABLE3 if task == "asr" else OTHER


def evaluated_split(config: Mapping[str, Any]) -> str | None:
    """The split a configuration evaluated: its ``split``; ``test`` for a fine-tuning run (trained on train,
    evaluated on test); None for a record that evaluates no data (a target-depth look-up)."""
    if config.get("split") in ("dev", "test"):
        return str(config["split"])
    return "test" if str(config.get("experiment", "")).endswith("-finetune") else None


def wall_seconds(record: Mapping[str, Any]) -> float | None:
    """The wall seconds a record noted (``compute.seconds``), or None when it noted none (written before compute was
    recorded)."""
    compute = record.get("compute")
    seconds = compute.get("seconds") if isinstance(compute, Mapping) else None
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


def hardware_of(record: Mapping[str, Any]) -> str:
    """The hardware a record noted, or :data:`NOT_RECORDED`."""
    compute = record.get("compute")
    name = compute.get("hardware") if isinstance(compute, Mapping) else None
    return str(name) if name else NOT_RECORDED


def _wall_cell(seconds: Sequence[float | None]) -> float | str:
    """The wall time a table shows for some records: the sum of those that noted one; :data:`NOT_RECORDED` when none
    did (the ``timed`` column beside says how many did)."""
    known = [s for s in seconds if s is not None]
    return round(sum(known), 2) if known else NOT_RECORDED


def _part_order(key: tuple[str, str]) -> tuple[int, int]:
    """Sort key of a (part, task) row: the book's order of parts, then ASR before AEC."""
    part, task = key
    tasks = list(TASKS.values())
    return (PARTS.index(part) if part in PARTS else len(PARTS), tasks.index(task) if task in tasks else len(tasks))


def compute_table(records: Sequence[Mapping[str, Any]], audio: AudioSeconds,
                  blocks: Mapping[str, Sequence[Sequence[int]]] | None = None,
                  dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per part of the book (:func:`attribute`) and task: configurations on dev and on test, minutes of audio they
    processed (``audio(config)`` each, summed), wall seconds (the records that noted it) and how many were timed;
    a last row ``total``. The target-depth look-ups evaluate no data: they count in neither split."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        config = record["config"]
        part = attribute(config, blocks, dtypes)
        task = task_of(config)
        groups.setdefault((part, TASKS.get(task, task or "–")), []).append(record)

    def row(rs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        splits = [evaluated_split(r["config"]) for r in rs]
        seconds = [audio(r["config"]) for r in rs]
        known = [s for s in seconds if s is not None]
        walls = [wall_seconds(r) for r in rs]
        return {"dev": splits.count("dev"), "test": splits.count("test"),
                "audio (min)": sum(known) / 60 if known else float("nan"), "wall (s)": _wall_cell(walls),
                "timed": f"{sum(w is not None for w in walls)}/{len(rs)}"}

    rows = {key: row(groups[key]) for key in sorted(groups, key=_part_order)}
    rows[("total", "")] = row([r for key in rows for r in groups[key]])
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["part", "task"])
    return table


def hardware_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per hardware a record noted (or :data:`NOT_RECORDED`), the most records first: records, wall seconds."""
    walls: dict[str, list[float | None]] = {}
    for record in records:
        walls.setdefault(hardware_of(record), []).append(wall_seconds(record))
    rows = {name: {"records": len(w), "wall (s)": _wall_cell(w)}
            for name, w in sorted(walls.items(), key=lambda item: -len(item[1]))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("hardware")


def _finetune_row(runs: Sequence[Mapping[str, Any]], audio: AudioSeconds) -> dict[str, Any]:
    """One row of :func:`finetune_table` for some fine-tuning records."""
    steps = [int(r["result"].get("steps", 0)) for r in runs]
    batch = [int(r["config"].get("settings", {}).get("batch_size", 0)) for r in runs]
    trained = [float(s) for s in (r["result"].get("train_seconds") for r in runs) if isinstance(s, (int, float))]
    seconds = [s for s in (audio(r["config"]) for r in runs) if s is not None]
    return {"runs": len(runs), "steps": sum(steps), "examples": sum(s * b for s, b in zip(steps, batch)),
            "training (s)": round(sum(trained), 2) if trained else NOT_RECORDED,
            "test audio (min)": sum(seconds) / 60 if seconds else float("nan")}


def finetune_table(records: Sequence[Mapping[str, Any]], corpus_of: Callable[[Mapping[str, Any]], str | None],
                   audio: AudioSeconds) -> pd.DataFrame:
    """Table 5's runs per corpus and method (ASR corpora first, methods in the table's order): runs (seeds),
    optimizer steps, examples seen (at most steps × the effective batch of the run's settings), training seconds the
    runs measured (``train_seconds``), and the minutes of test audio their evaluations processed. A MAM → FT run
    from λ = 0 is FT's own run, stored once."""
    from mamlib.sweeps.finetune import METHOD_LABELS

    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        config = record["config"]
        if attribute(config) == TABLE5:
            key = (task_of(config), corpus_of(config) or "–", str(config.get("method")))
            groups.setdefault(key, []).append(record)
    methods, tasks = list(METHOD_LABELS), list(TASKS)

    def order(key: tuple[str, str, str]) -> tuple[int, str, int]:
        task, corpus, method = key
        return (tasks.index(task) if task in tasks else len(tasks), corpus,
                methods.index(method) if method in methods else len(methods))

    rows = {(corpus, METHOD_LABELS.get(method, method)): _finetune_row(groups[(task, corpus, method)], audio)
            for task, corpus, method in sorted(groups, key=order)}
    if not rows:
        return pd.DataFrame(columns=["runs", "steps", "examples", "training (s)", "test audio (min)"])
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["corpus", "method"])
    return table


def stored_depths(records: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str] | None = None) -> dict[str, int]:
    """The depth of each task's target as Chapter 1 stored it (``<task>-target-depth`` records, in the task's own
    dtype when ``dtypes`` names it); a task without such a record is absent."""
    out = {}
    for record in records:
        config = record["config"]
        task, _, kind = str(config.get("experiment", "")).partition("-")
        if kind == "target-depth" and (dtypes is None or config.get("dtype") == dtypes.get(task, config.get("dtype"))):
            out[task] = int(record["result"]["num_layers"])
    return out


def _plain(value: Any) -> Any:
    """``value`` as its JSON round trip (tuples → lists), the way it is stored."""
    return json.loads(json.dumps(value))


def same_corpus(stored: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    """Whether a configuration's ``corpus`` is the corpus ``key`` (a fine-tuning run's adds ``n_train``)."""
    stored, key = _plain(stored), _plain(key)
    return stored == key or {k: v for k, v in stored.items() if k != "n_train"} == key


def corpus_label(config: Mapping[str, Any], corpora: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str | None:
    """The label of the corpus a configuration evaluated, among ``corpora`` (task → label → the corpus as it enters
    a results key); None when it is none of them. Similarity scores name their corpus's label outright."""
    own = corpora.get(task_of(config), {})
    if config.get("label") in own:
        return str(config["label"])
    stored = config.get("corpus")
    if not isinstance(stored, Mapping):
        return None
    return next((label for label, key in own.items() if same_corpus(stored, key)), None)


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
        from mamlib.sweeps.choose import table2_blocks

        return {task: table2_blocks(task, depth) for task, depth in self.depths.items()}

    def corpus_of(self, config: Mapping[str, Any]) -> str | None:
        """:func:`corpus_label` among this preset's corpora."""
        return corpus_label(config, self.corpora)

    def by_table(self) -> pd.DataFrame:
        """:func:`compute_table` of this preset's records."""
        return compute_table(self.records, self.audio, self.blocks, self.dtypes)

    def hardware(self) -> pd.DataFrame:
        """:func:`hardware_table` of this preset's records."""
        return hardware_table(self.records)

    def finetuning(self) -> pd.DataFrame:
        """:func:`finetune_table` of this preset's records."""
        return finetune_table(self.records, self.corpus_of, self.audio)

    def not_recorded(self) -> int:
        """How many records noted no compute (written before it was recorded)."""
        return sum(wall_seconds(r) is None for r in self.records)

    def facts(self) -> dict[str, str]:
        """Numbers for the prose: records, those without compute, total wall time, total audio minutes."""
        total = self.by_table().loc[("total", "")]
        wall = total["wall (s)"]
        return {"records": str(len(self.records)), "not_recorded": str(self.not_recorded()),
                "wall": wall if isinstance(wall, str) else f"{wall / 60:.1f} min",
                "audio": f"{total['audio (min)']:.1f}" if pd.notna(total["audio (min)"]) else NOT_RECORDED}

    def search_budget(self) -> pd.DataFrame:
        """Per reported row: what dev chose and among how many candidate configurations (each evaluated on dev).

        Table 1: λ of the real source, all layers, over the λ grid (λ = 0 included); Table 2: one λ for all blocks
        and the block, over blocks × non-zero λ; Table 3: Table 1's λ, then the pick among metrics × k; Table 5's MAM
        row: over Table 1's all-layer grid and Table 2's blocks × non-zero λ; the fine-tuned rows: nothing chosen,
        the preset's settings once per seed. A count that needs a depth this store lacks shows "–"."""
        from mamlib.report.paper import paper_ks
        from mamlib.selection.picks import METRIC_LABELS, scaled_ks

        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for task, corpora in self.corpora.items():
            lams = self.lambdas[task]
            n_blocks = len(self.blocks[task]) if task in self.blocks else None
            nonzero = sum(x > 0 for x in lams)
            for label in corpora:
                chooser = self.select_on.get(label)
                where = f" (on {chooser}'s dev)" if chooser else ""
                rows[("Table 1", label)] = {"chosen on dev": f"λ{where}", "candidates": len(lams)}
                rows[("Table 2", label)] = {"chosen on dev": f"λ and block{where}",
                                            "candidates": _times(n_blocks, nonzero)}
                if task == "asr" and not chooser:
                    ks = (scaled_ks(self.depths["asr"], paper_ks(self.paper_dataset[label]))
                          if "asr" in self.depths else None)
                    rows[("Table 3", label)] = {"chosen on dev": "λ (Table 1's), then metric × k",
                                                "candidates": _times(len(METRIC_LABELS), None if ks is None
                                                                     else len(ks))}
                if label in self.finetuned:
                    rows[("Table 5, MAM", label)] = {"chosen on dev": "λ and layers (all or a block)",
                                                     "candidates": None if n_blocks is None
                                                     else len(lams) + n_blocks * nonzero}
                    rows[("Table 5, fine-tuned", label)] = {
                        "chosen on dev": f"nothing: the preset's settings, {self.finetuned[label][1]} seeds",
                        "candidates": 0}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index = pd.MultiIndex.from_tuples(list(rows), names=["reported row", "corpus"])
        table["candidates"] = table["candidates"].astype("Int64")
        return table.sort_index(level=0, sort_remaining=False)


def _times(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a * b


def chapter_records(ch: Chapter, store: ResultStore | None = None) -> list[dict[str, Any]]:
    """The records of ``ch``'s preset and device that this mamlib keys (records of another version are stale),
    each looked up by its configuration — so a re-render knows the appendix read them
    (:mod:`mamlib.report.execute`)."""
    store = store or ch.store
    out = []
    for record in store.records():
        config = record["config"]
        if config.get("preset") != ch.preset.name or config.get("device") != ch.preset.device:
            continue
        if store.get(config) is not None:
            out.append(record)
    return out


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
    corpora: dict[str, dict[str, dict[str, Any]]] = {
        "asr": {label: spec.as_dict() for label, spec in preset.asr.corpora.items()}}
    dtypes = {"asr": preset.asr.dtype}
    lambdas = {"asr": tuple(preset.asr.lambdas)}
    ft = preset.asr.finetune
    finetuned = {label: ("asr", len(ft.seeds)) for label in ft.corpora} if ft else {}
    if preset.aec is not None:
        corpora["aec"] = {preset.aec.data.label: ch.aec_rig.data_key()}
        dtypes["aec"] = preset.aec.dtype
        lambdas["aec"] = tuple(preset.aec.lambdas)
        if preset.aec.finetune is not None:
            finetuned[preset.aec.data.label] = ("aec", len(preset.aec.finetune.seeds))
    records = [r for r in chapter_records(ch)
               if evaluated_split(r["config"]) is None or corpus_label(r["config"], corpora) is not None]
    return ComputeReport(
        preset.name, preset.device, records, corpora, dtypes, stored_depths(records, dtypes), lambdas,
        audio_seconds(ch, lambda config: corpus_label(config, corpora)),
        paper_dataset={label: PAPER_DATASET_FOR.get(spec.dataset, "LJ Speech")
                       for label, spec in preset.asr.corpora.items()},
        select_on={label: spec.select_on for label, spec in preset.asr.corpora.items() if spec.select_on},
        finetuned=finetuned)


@dataclass(frozen=True)
class Projection:
    """The paper preset's projected cost as recorded: the table, when it was recorded, and where."""

    table: pd.DataFrame
    recorded: str
    source: str

    @property
    def caption(self) -> str:
        when = f" on {self.recorded}" if self.recorded else ""
        return (f"Paper preset, projected, not measured: benchmarks/paper_cost.py, recorded{when} in {self.source} "
                "(GPU hours from an H200's measured sweep rate)")


#: The heading of ``paper_cost.py``'s section in ``benchmarks/RESULTS.md``, and the columns the appendix keeps.
PROJECTION_HEADING = re.compile(r"^##\s+`paper_cost\.py`")
PROJECTION_COLUMNS: dict[str, str] = {
    "configurations": "configs", "audio (h)": "audio (h)", "training audio (h)": "training audio (h)",
    "paper, 1 H200 (h)": "paper, H200 (h)", "paper-bf16, 1 H200 (h)": "paper-bf16, H200 (h)",
}


def _cells(line: str) -> list[str]:
    return [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]


def paper_projection(results: str | Path | None = None) -> Projection | None:
    """The projection ``benchmarks/paper_cost.py`` recorded in ``benchmarks/RESULTS.md`` (``results``; default: the
    checkout's): its table's rows per chapter and task, the configurations, audio and training audio (hours) and
    the hours on one H200 for ``paper`` and ``paper-bf16``. None when there is no such file or section (an installed
    mamlib has no benchmarks)."""
    if results is None:
        root = repo_root()
        if root is None:
            return None
        results = root / "benchmarks" / "RESULTS.md"
    path = Path(results)
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    start = next((i for i, line in enumerate(lines) if PROJECTION_HEADING.match(line)), None)
    if start is None:
        return None
    section = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        section.append(line)
    recorded = next((line.split("·")[0].strip() for line in section if line.strip()), "")
    table = [_cells(line) for line in section if line.lstrip().startswith("|")]
    if len(table) < 3:
        return None
    header, body = table[0], [row for row in table[2:] if len(row) == len(table[0])]
    frame = pd.DataFrame(body, columns=header)
    keep = [c for c in PROJECTION_COLUMNS if c in frame.columns]
    out = frame.set_index(["chapter", "task"])[keep].rename(columns=PROJECTION_COLUMNS)
    source = "benchmarks/RESULTS.md" if path.name == "RESULTS.md" else str(path)
    return Projection(out, recorded if re.match(r"\d{4}-\d{2}-\d{2}", recorded) else "", source)
