"""mamlib: the helpers behind the executable book reproducing Multimodal Attention Merging (MAM).

Modules, by what they hold:

- :mod:`mamlib.interpolation` — Eq. 1–3 as pure tensor functions;
- :mod:`mamlib.families` — where each model family keeps its Q/K/V projections;
- :mod:`mamlib.merge` — reading and writing attention weights of models (the merge itself);
- :mod:`mamlib.noise` — Table 1's noise sources;
- :mod:`mamlib.asr`, :mod:`mamlib.metrics` — batched recognition, normalization, WER;
- :mod:`mamlib.config`, :mod:`mamlib.models` — presets and model building;
- :mod:`mamlib.results` — the results store that makes sweeps resumable;
- :mod:`mamlib.zero_shot`, :mod:`mamlib.zero_shot_aec`, :mod:`mamlib.layer_selection` — the experiments of
  Tables 1–3; :mod:`mamlib.similarity`, :mod:`mamlib.prefix_cache` — the layer-selection measures and sweep reuse;
- :mod:`mamlib.pretrained`, :mod:`mamlib.ct2`, :mod:`mamlib.packaged` — the mini preset's real weights;
- :mod:`mamlib.beats`, :mod:`mamlib.esc50`, :mod:`mamlib.aec` — BEATs, ESC-50 and the classification protocol;
- :mod:`mamlib.corpora`, :mod:`mamlib.synth`, :mod:`mamlib.sound_clips` — evaluation data.
"""

#: Part of every results-store key: bump it whenever a change alters computed results (e.g. the WER normalization).
__version__ = "0.2.0"
