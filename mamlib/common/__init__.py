"""Low-level helpers every other subpackage may use (and which use nothing of mamlib's): 16 kHz audio I/O, the
cache directory and dataset paths, dataset identity, tensor pooling and batching, lazy package exports."""
