"""Choosing layers from data (Sec. 4.1, Table 3): pooled per-layer representations
(:mod:`~mamlib.selection.representations`), similarity scores (:mod:`~mamlib.selection.scores`) and the top-k picks
(:mod:`~mamlib.selection.picks`)."""
