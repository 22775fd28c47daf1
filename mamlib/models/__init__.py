"""Models: the kinds a preset names (:mod:`~mamlib.models.kinds`), building them (:mod:`~mamlib.models.build`), one
module per model — :mod:`~mamlib.models.beats` and the packaged :mod:`~mamlib.models.minilm`,
:mod:`~mamlib.models.whisper_tiny`, :mod:`~mamlib.models.vit_s14` — and the packaged models' loaders, exported here.
"""

from mamlib.common.lazy import lazy_exports

_PUBLIC: dict[str, str] = {name: f"mamlib.models.{module}" for module, names in (
    ("convert", ("ConversionError", "load_strict")), ("minilm", ("load_minilm", "minilm_embed")),
    ("whisper_tiny", ("load_whisper_tiny_en", "whisper_state_from_ct2")),
    ("vit_s14", ("load_vit_s14", "onnx_backbone_output"))) for name in names}
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
