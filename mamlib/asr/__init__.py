"""Speech recognition (Sec. 4, ASR): recognizers (:mod:`~mamlib.asr.recognizers`, :mod:`~mamlib.asr.whisper`),
normalization and WER (:mod:`~mamlib.asr.metrics`), evaluation data (:mod:`~mamlib.asr.corpora`,
:mod:`~mamlib.asr.synth`), and the prefix cache that reuses a CTC model's unmerged bottom
(:mod:`~mamlib.asr.prefix_cache`)."""
