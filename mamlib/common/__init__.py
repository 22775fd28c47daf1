"""Low-level helpers every other subpackage may use (and which use nothing of mamlib's):

- :mod:`mamlib.common.audio` — reading, writing and resampling 16 kHz mono audio;
- :mod:`mamlib.common.paths` — the cache directory and paths given directly or through an environment variable;
- :mod:`mamlib.common.tensors` — masked pooling and length-sorted batching.
"""
