"""Sweeps: the resumable results store (:mod:`~mamlib.sweeps.store`), the one grid engine
(:mod:`~mamlib.sweeps.grid`), dev/test selection (:mod:`~mamlib.sweeps.choose`), and the ASR and AEC rigs that plug
a preset's models into it (:mod:`~mamlib.sweeps.asr`, :mod:`~mamlib.sweeps.aec`)."""
