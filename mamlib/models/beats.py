"""BEATs, the audio target model of the paper's Audio Event Classification experiments (Sec. 4, Tables 1, 2, 5).

BEATs (Chen et al., 2022, the paper's ref. [14]) is a 12-layer, 768-wide deep-norm Transformer over 16×16 patches
(flattened time-major) of a 128-bin Kaldi log-mel spectrogram. Its self-attention adds a T5-style bucketed relative
position bias (one table, shared by every layer) scaled per query by a gate computed from that query, so merging
W_Q (Eq. 1–3) also moves the gate. This re-implementation keeps the original checkpoint format ``{"cfg", "model"[,
"label_dict"]}`` and parameter names (attention family ``"beats"``: ``encoder.layers.N.self_attn.{q,k,v}_proj``),
and is checked against ESPnet's (vendored by ``openbeats``) in ``tests/test_beats.py``. Model kinds: ``tiny-beats``
and ``beats-checkpoint``.

Deliberate deviations from Microsoft's code: padding masks are carried from samples to frames and patches
correctly (a frame or patch is padding as soon as any sample under it is, as in ESPnet; the original marks the
wrong patches when a batch holds clips of different lengths); ``extract_features`` always returns frame features
and the fine-tuned head is :meth:`BEATs.predict` (logits); attention is ``softmax(q·kᵀ/√d + gated bias)`` without
the original's max subtraction and α = 32 rescaling (the same function up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from torch import Tensor, nn

from mamlib.common.audio import SAMPLE_RATE
from mamlib.common.paths import resolve_path
from mamlib.common.tensors import masked_mean
from mamlib.merge.families import AttentionFamily, register_family
from mamlib.models.base import TINY_OPTIONS, LoadedModel, ModelKind, Spec, tiny_options
from mamlib.models.convert import ConversionError, load_strict

#: Statistics of the fbank features BEATs was trained with (the original ``extract_features`` defaults).
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
NUM_MEL_BINS = 128
#: Kaldi frame geometry at 16 kHz: 25 ms windows every 10 ms, no padding at the edges (``snip_edges``).
FRAME_LENGTH = 400
FRAME_SHIFT = 160

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu, "gelu": F.gelu, "gelu_accurate": partial(F.gelu, approximate="tanh"),
    "gelu_fast": partial(F.gelu, approximate="tanh"), "tanh": torch.tanh, "linear": lambda x: x,
}
#: Sizes that must be at least 1.
_POSITIVE = ("input_patch_size", "embed_dim", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
             "encoder_attention_heads", "conv_pos", "conv_pos_groups", "predictor_class")


@dataclass(frozen=True)
class BEATsConfig:
    """The architecture of a BEATs model under the checkpoint's ``cfg`` keys, with the original defaults (but
    ``input_patch_size`` 16, as every released checkpoint sets); unknown keys are kept in ``extra``."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in fields(self)[:-1]:  # all but ``extra``, as their default's type: a bool from 0/1, an int from 2.0
            value, kind = getattr(self, f.name), type(f.default)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = {bool: isinstance(value, int) and value in (0, 1), float: number, str: isinstance(value, str),
                  int: number and (isinstance(value, int) or value.is_integer())}[kind]
            if not ok:
                raise ValueError(f"BEATs config: {f.name} must be {kind.__name__}, got {value!r}")
            object.__setattr__(self, f.name, kind(value))
        if (small := next((n for n in _POSITIVE if getattr(self, n) < 1), None)) is not None:
            raise ValueError(f"BEATs config: {small} must be positive, got {getattr(self, small)}")
        dim = self.encoder_embed_dim
        problems = [f"encoder_embed_dim {dim} is not divisible by {n} {getattr(self, n)}"
                    for n in ("encoder_attention_heads", "conv_pos_groups") if dim % getattr(self, n)]
        problems += [problem for failed, problem in (
            (NUM_MEL_BINS % self.input_patch_size,
             f"input_patch_size {self.input_patch_size} does not divide {NUM_MEL_BINS} mel bins"),
            (self.activation_fn not in _ACTIVATIONS,
             f"activation_fn {self.activation_fn!r} not in {sorted(_ACTIVATIONS)}"),
            (self.deep_norm and self.layer_norm_first, "deep_norm and layer_norm_first cannot both be set"),
            (self.relative_position_embedding and self.num_buckets < 4,
             f"num_buckets must be at least 4, got {self.num_buckets}"),
        ) if failed]
        if problems:
            raise ValueError(f"BEATs config: {problems[0]}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> BEATsConfig:
        """Build from a checkpoint's ``cfg`` dict (missing keys take the defaults; unknown ones go to ``extra``)."""
        if not isinstance(cfg, Mapping):
            raise ValueError(f"BEATs config must be a dict, got {type(cfg).__name__}")
        own = {f.name for f in fields(cls)[:-1]}  # all but ``extra``
        if bad := [k for k in cfg if not isinstance(k, str)]:
            raise ValueError(f"BEATs config keys must be strings, got {bad[:5]}")
        return cls(**{k: v for k, v in cfg.items() if k in own}, extra={k: v for k, v in cfg.items() if k not in own})

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint ``cfg`` dict (known keys plus ``extra``)."""
        out = asdict(self)
        return {**out.pop("extra"), **out}


#: The released BEATs (iter3, iter3+) architecture: 12 layers × 768, 12 heads (their checkpoints' ``cfg``).
BEATS_ITER3_CONFIG = BEATsConfig(
    layer_wise_gradient_decay_ratio=0.6, deep_norm=True, dropout=0.0, attention_dropout=0.0, encoder_layerdrop=0.05,
    relative_position_embedding=True, max_distance=800, gru_rel_pos=True, predictor_dropout=0.0,
)


def tiny_beats_config(
    layers: int = 2, dim: int = 64, heads: int = 4, *, finetuned: bool = False, num_classes: int = 10
) -> BEATsConfig:
    """A few-layer BEATs with every architectural feature of the real one (deep norm, gated relative position
    bias, positional convolution), without its training-time layer drop and gradient decay."""
    return replace(
        BEATS_ITER3_CONFIG, layer_wise_gradient_decay_ratio=1.0, encoder_layerdrop=0.0, embed_dim=dim // 2,
        encoder_layers=layers, encoder_embed_dim=dim, encoder_ffn_embed_dim=2 * dim, encoder_attention_heads=heads,
        finetuned_model=finetuned, predictor_class=num_classes, extra={},
    )


# ----------------------------------------------------------------------------------------------- front end


def fbank_features(waveform: Tensor) -> Tensor:
    """Normalized 128-bin Kaldi fbank of a ``(batch, samples)`` 16 kHz waveform batch: ``(batch, frames, 128)``."""
    if waveform.dim() != 2:
        raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
    if waveform.shape[1] < FRAME_LENGTH:
        raise ValueError(f"waveform of {waveform.shape[1]} samples is shorter than one 25 ms frame ({FRAME_LENGTH})")
    banks = [kaldi.fbank(wave.float().unsqueeze(0) * 2**15, num_mel_bins=NUM_MEL_BINS, sample_frequency=SAMPLE_RATE,
                         frame_length=25, frame_shift=10) for wave in waveform]
    return (torch.stack(banks) - FBANK_MEAN) / (2 * FBANK_STD)


def patch_padding_mask(padding_mask: Tensor, num_frames: int, patch_size: int) -> Tensor:
    """Carry a ``(batch, samples)`` padding mask (True = padding) to BEATs' flattened patches: a frame is padding
    when any sample of its 400-sample window is, a patch (of every mel band) when any of its frames is."""
    as_float = padding_mask.float().unsqueeze(1)
    frames = F.max_pool1d(as_float, kernel_size=FRAME_LENGTH, stride=FRAME_SHIFT)[:, :, :num_frames]
    steps = F.max_pool1d(frames, kernel_size=patch_size, stride=patch_size).squeeze(1) > 0
    return steps.repeat_interleave(NUM_MEL_BINS // patch_size, dim=1)


# ------------------------------------------------------------------------------------------ building blocks


class WeightNormConv1d(nn.Module):
    """A grouped Conv1d with kernel ``weight_g · weight_v / ‖weight_v‖`` (norm per kernel tap) and "same" padding,
    its extra output step dropped for an even kernel (the original ``SamePad``); parameters named as
    ``torch.nn.utils.weight_norm`` names them in the original checkpoints."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.groups = groups
        std = math.sqrt(4.0 / (kernel_size * channels))
        weight_v = torch.randn(channels, channels // groups, kernel_size) * std
        self.weight_g = nn.Parameter(weight_v.norm(dim=(0, 1), keepdim=True))
        self.weight_v = nn.Parameter(weight_v)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        out = F.conv1d(x, weight, self.bias, padding=self.kernel_size // 2, groups=self.groups)
        return out[:, :, :-1] if self.kernel_size % 2 == 0 else out


def relative_position_bucket(relative_position: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5's bidirectional bucketing of ``key − query`` offsets: half the buckets per direction; within a direction,
    exact buckets for offsets below a quarter of ``num_buckets`` and log-spaced ones up to ``max_distance``."""
    half = num_buckets // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    max_exact = half // 2
    scaled = torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
    far = (max_exact + (scaled * (half - max_exact)).long()).clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, far)


class BEATsAttention(nn.Module):
    """Multi-head self-attention with BEATs' gated relative position bias: ``scores = q·kᵀ/√d + g(q)·B``, ``B`` the
    shared bucketed bias of the (query, key) offset, ``g(q) = a·(b·grep_a − 1) + 2`` with ``(a, b) =
    σ(grep_linear(q))`` summed in groups of four, per head from the projected (unscaled) query."""

    def __init__(self, cfg: BEATsConfig, *, owns_position_table: bool) -> None:
        super().__init__()
        dim, heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.cfg = cfg
        self.num_heads = heads
        self.head_dim = dim // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = nn.Dropout(cfg.attention_dropout)
        own_table = cfg.relative_position_embedding and owns_position_table
        self.relative_attention_bias = nn.Embedding(cfg.num_buckets, heads) if own_table else None
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def position_bias(self, length: int) -> Tensor:
        """The ``(heads, length, length)`` relative position bias (from the shared table)."""
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.cfg.num_buckets, self.cfg.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def gate(self, q: Tensor) -> Tensor:
        """Per-query gate ``(batch, heads, time, 1)`` on the relative position bias, from the projected query."""
        batch, heads, time, _ = q.shape
        ab = torch.sigmoid(self.grep_linear(q).view(batch, heads, time, 2, 4).sum(-1))
        gate_a, gate_b = ab.chunk(2, dim=-1)
        return gate_a * (gate_b * self.grep_a - 1.0) + 2.0

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, position_bias: Tensor | None = None) -> Tensor:
        """``x``: ``(batch, time, dim)``; ``padding_mask``: ``(batch, time)``, True at padding keys."""
        batch, time, _ = x.shape
        q, k, v = (p(x).view(batch, time, self.num_heads, self.head_dim).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        scores = (q * self.head_dim**-0.5) @ k.transpose(-1, -2)
        if position_bias is not None:
            scores = scores + (self.gate(q) * position_bias if self.cfg.gru_rel_pos else position_bias)
        if padding_mask is not None:
            scores = scores.masked_fill(padding_mask[:, None, None, :], float("-inf"))
        attn = self.dropout(torch.softmax(scores, dim=-1))
        return self.out_proj((attn @ v).transpose(1, 2).reshape(batch, time, -1))


class BEATsLayer(nn.Module):
    """One Transformer layer: post-LN with deep-norm residual scaling ``x·α + f(x)``, α = (2L)^¼ (or pre-LN)."""

    def __init__(self, cfg: BEATsConfig, *, owns_position_table: bool) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = BEATsAttention(cfg, owns_position_table=owns_position_table)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _ACTIVATIONS[cfg.activation_fn]
        self.dropout = nn.Dropout(cfg.dropout)
        self.activation_dropout = nn.Dropout(cfg.activation_dropout)
        self.layer_norm_first = cfg.layer_norm_first
        self.alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0

    def feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.activation_dropout(self.activation(self.fc1(x)))))

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, position_bias: Tensor | None = None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), padding_mask, position_bias))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.alpha + self.dropout(self.self_attn(x, padding_mask, position_bias)))
        return self.final_layer_norm(x * self.alpha + self.feed_forward(x))


class BEATsEncoder(nn.Module):
    """Convolutional relative position embedding, then the stack of :class:`BEATsLayer`; in training mode, layer
    drop and layer-wise gradient decay (the identity forward, the gradient scaled by the ratio)."""

    def __init__(self, cfg: BEATsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), nn.GELU())
        self.layers = nn.ModuleList(BEATsLayer(cfg, owns_position_table=i == 0) for i in range(cfg.encoder_layers))
        table = self.layers[0].self_attn.relative_attention_bias
        for layer in self.layers[1:]:  # one table (or None), under every layer as in the original checkpoints
            layer.self_attn.relative_attention_bias = table
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.cfg = cfg

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """``x``: ``(batch, patches, dim)`` → ``(batch, patches, dim)``."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.layers[0].self_attn.position_bias(x.shape[1]) if self.cfg.relative_position_embedding else None
        decay, layerdrop = self.cfg.layer_wise_gradient_decay_ratio, self.cfg.encoder_layerdrop
        for layer in self.layers:
            if self.training and decay != 1.0:
                x = x * decay + x.detach() * (1.0 - decay)
            if self.training and layerdrop > 0 and torch.rand(()).item() < layerdrop:
                continue
            x = layer(x, padding_mask, bias)
        if self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        return x


class BEATs(nn.Module):
    """The BEATs audio encoder (plus the ``predictor`` head of fine-tuned checkpoints).

    ``model(waveform, padding_mask)`` returns frame (patch) features ``(batch, patches, encoder_embed_dim)``;
    ``waveform`` is ``(batch, samples)`` mono at 16 kHz in [−1, 1] and ``padding_mask`` ``(batch, samples)`` is
    True at padding. A 5-second ESC-50 clip gives 498 frames → 31 time steps × 8 mel bands = 248 patches.
    """

    def __init__(self, cfg: BEATsConfig, label_dict: Mapping[Any, Any] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.label_dict = None if label_dict is None else dict(label_dict)
        p = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=p, stride=p, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        dims = cfg.embed_dim, cfg.encoder_embed_dim
        self.post_extract_proj = nn.Linear(*dims) if dims[0] != dims[1] else None
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = BEATsEncoder(cfg)
        self.predictor: nn.Linear | None = None
        if cfg.finetuned_model:
            self.predictor_dropout = nn.Dropout(cfg.predictor_dropout)
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)

    def extract_features(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Frame features ``(batch, patches, dim)`` and their padding mask ``(batch, patches)`` (None without one)."""
        if padding_mask is not None and padding_mask.shape != waveform.shape:
            shapes = f"{tuple(padding_mask.shape)} vs waveform {tuple(waveform.shape)}"
            raise ValueError(f"padding mask does not match the waveform: {shapes}")
        fbank = fbank_features(waveform).to(self.patch_embedding.weight.dtype)
        p = self.cfg.input_patch_size
        if fbank.shape[1] < p:
            raise ValueError(f"waveform gives {fbank.shape[1]} fbank frames, fewer than one {p}-frame patch")
        features = self.patch_embedding(fbank.unsqueeze(1)).flatten(2).transpose(1, 2)  # time-major patches
        mask = None
        if padding_mask is not None:
            mask = patch_padding_mask(padding_mask.to(fbank.device, torch.bool), fbank.shape[1], p)
            if mask.all(dim=1).any():
                raise ValueError("a clip in the batch is all padding: no patch holds any of its samples")
        features = self.layer_norm(features)
        if self.post_extract_proj is not None:
            features = self.post_extract_proj(features)
        return self.encoder(self.dropout_input(features), mask), mask

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Frame features ``(batch, patches, dim)``."""
        return self.extract_features(waveform, padding_mask)[0]

    def predict(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Clip logits ``(batch, predictor_class)`` of a fine-tuned model: the predictor averaged over non-padding
        frames (apply a sigmoid for AudioSet's multi-label probabilities)."""
        if self.predictor is None:
            raise ValueError("this BEATs model has no predictor head (its cfg has finetuned_model=False)")
        frames, mask = self.extract_features(waveform, padding_mask)
        logits = self.predictor(self.predictor_dropout(frames))
        return masked_mean(logits, None if mask is None else ~mask)


# ------------------------------------------------------------------------------------------------ checkpoints

RELEASES = "https://github.com/microsoft/unilm/tree/master/beats"


def beats_from_checkpoint_dict(checkpoint: Any, *, where: str = "checkpoint") -> BEATs:
    """A :class:`BEATs` in eval mode from an in-memory checkpoint ``{"cfg", "model"[, "label_dict"]}``, loaded
    strictly (:func:`~mamlib.models.convert.load_strict`); ValueError naming what is wrong."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{where} is not a BEATs checkpoint: it holds a {type(checkpoint).__name__}, not a dict")
    if missing := [k for k in ("cfg", "model") if k not in checkpoint]:
        raise ValueError(
            f"{where} is not a BEATs checkpoint: it lacks {missing} (has keys {sorted(map(str, checkpoint))[:8]}); "
            "expected a dict with 'cfg' (the architecture), 'model' (the state dict) and optionally 'label_dict'"
        )
    try:
        cfg = BEATsConfig.from_dict(checkpoint["cfg"])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: bad BEATs 'cfg': {err}") from err
    state, label_dict = checkpoint["model"], checkpoint.get("label_dict")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{where}: 'model' must be a state dict of tensors, got {type(state).__name__}")
    if label_dict is not None and not isinstance(label_dict, Mapping):
        raise ValueError(f"{where}: 'label_dict' must be a dict, got {type(label_dict).__name__}")
    model = BEATs(cfg, label_dict)
    try:
        load_strict(model, state)
    except ConversionError as err:
        shape = f"{cfg.encoder_layers} layers × {cfg.encoder_embed_dim}, finetuned_model={cfg.finetuned_model}"
        raise ValueError(f"{where}: {err} (its cfg: {shape})") from err
    return model.eval()


def load_beats_checkpoint(path: str | Path) -> BEATs:
    """Load a BEATs checkpoint file in the original format (``torch.load(..., weights_only=True)``), in eval mode;
    FileNotFoundError for a missing file, ValueError saying what is wrong for anything else unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BEATs checkpoint not found: {path} (the released ones, e.g. "
                                f"BEATs_iter3_plus_AS2M.pt, are linked from {RELEASES})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for foreign, truncated or corrupt files
        raise ValueError(
            f"{path} is not a readable torch checkpoint (truncated, corrupt, or not written by torch.save): "
            f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        ) from err
    return beats_from_checkpoint_dict(checkpoint, where=str(path))


# The Whisper-encoder pattern also fits these names, but both pick out the very same modules, which
# ``detect_family`` accepts; the optional ``beats.`` prefix covers a BEATs wrapped as a submodule of that name.
register_family(AttentionFamily(
    name="beats", pattern=r"(?:beats\.)?encoder\.layers\.(?P<layer>\d+)\.self_attn\.(?P<proj>q_proj|k_proj|v_proj)",
    projections={"q": "q_proj", "k": "k_proj", "v": "v_proj"}, classes=("BEATs",),
    description="BEATs audio encoders (mamlib.models.beats.BEATs, original checkpoint names)",
), replace=True)


def _build_tiny(spec: Spec) -> LoadedModel:
    seed, hidden, layers, heads = tiny_options(spec)
    torch.manual_seed(seed)
    return LoadedModel(BEATs(tiny_beats_config(layers=layers, dim=hidden, heads=heads)), "beats")


def _build_checkpoint(spec: Spec) -> LoadedModel:
    """The checkpoint file ``options.path``, else the one the variable ``options.path_env`` names."""
    env = spec.options.get("path_env")
    path = resolve_path(spec.options.get("path"), env)
    if not path:
        raise FileNotFoundError(
            f"model kind {spec.kind!r} needs a checkpoint file: set options.path in the preset"
            + (f" or the environment variable {env}" if env else "")
            + f". BEATs checkpoints (e.g. BEATs_iter3_plus_AS2M.pt) come from {RELEASES}"
        )
    return LoadedModel(load_beats_checkpoint(path), "beats")


KINDS = (
    ModelKind("tiny-beats", TINY_OPTIONS, _build_tiny),
    ModelKind("beats-checkpoint", frozenset({"path", "path_env"}), _build_checkpoint),
)
