"""Models: the registry of kinds a preset names (:mod:`~mamlib.models.kinds`, :mod:`~mamlib.models.build`) above one
module per model, each declared with :mod:`~mamlib.models.base` — :mod:`~mamlib.models.transformers_kinds`,
:mod:`~mamlib.models.beats` and the packaged minilm, whisper_tiny and vit_s14, whose loaders are exported here."""

from mamlib.common.lazy import lazy_exports

_PUBLIC: dict[str, str] = {name: f"mamlib.models.{module}" for module, names in (
    ("convert", ("ConversionError", "load_strict")), ("minilm", ("load_minilm",)),
    ("whisper_tiny", ("load_whisper_tiny_en", "whisper_state_from_ct2")),
    ("vit_s14", ("load_vit_s14",))) for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
