"""mamlib: the helpers behind the executable book reproducing Multimodal Attention Merging (MAM).

Modules, by what they hold:

- :mod:`mamlib.interpolation` — Eq. 1–3 as pure tensor functions;
- :mod:`mamlib.families` — where each model family keeps its Q/K/V projections;
- :mod:`mamlib.merge` — reading and writing attention weights of models (the merge itself);
- :mod:`mamlib.noise` — Table 1's noise sources;
- :mod:`mamlib.asr`, :mod:`mamlib.metrics` — batched recognition, normalization, WER;
- :mod:`mamlib.config`, :mod:`mamlib.models` — presets and model building;
- :mod:`mamlib.results` — the results store that makes sweeps resumable.
"""

__version__ = "0.1.0"
