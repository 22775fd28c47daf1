"""Attention merging itself, independent of any task: the λ schedule checked once (:mod:`~mamlib.merge.schedule`),
Eq. 1–3 as pure functions (:mod:`~mamlib.merge.interpolation`), where each model family keeps its Q/K/V
(:mod:`~mamlib.merge.families`), the reversible in-place merger (:mod:`~mamlib.merge.merger`), the noise baselines
(:mod:`~mamlib.merge.noise`) and the registry of source variants (:mod:`~mamlib.merge.sources`). Depends on nothing else
of mamlib."""
