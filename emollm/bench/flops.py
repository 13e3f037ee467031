"""FLOP counts for MFU (``ModelDims``), PaLM appendix-B convention with LoRA's frozen base explicit; the
formulas are in ``emollm.bench.common``'s docstring.

    dims = ModelDims.of(system)
    dims.train_flops(lengths, media_tokens)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


@dataclass(frozen=True)
class ModelDims:
    """What the FLOP formulas need from a system (see the module docstring)."""

    n_layers: int
    d_model: int
    n_dense: int
    """LLM matmul weights incl. LM head (tied or not) and LoRA adapters, excluding the input embedding lookup."""
    n_lora: int
    n_proj: dict[str, int] = field(default_factory=dict)
    """Projector weights per modality."""

    @property
    def n_frozen(self) -> int:
        return self.n_dense - self.n_lora

    @classmethod
    def of(cls, system: EmoSystem) -> ModelDims:
        model = system.model
        llm = model.llm
        cfg = getattr(llm, "config", None)
        emb = llm.get_input_embeddings().weight
        n_llm = sum(p.numel() for p in llm.parameters())
        n_lora = sum(p.numel() for n, p in llm.named_parameters() if "lora_" in n)
        n_proj = {m: sum(p.numel() for p in proj.parameters()) for m, proj in model.projectors.items()}
        out_emb = llm.get_output_embeddings()
        tied = out_emb is not None and out_emb.weight is emb  # a tied LM head is still a matmul
        return cls(
            n_layers=int(getattr(cfg, "num_hidden_layers", 0) or 0),
            d_model=int(emb.shape[1]),
            n_dense=n_llm - (0 if tied else emb.numel()),
            n_lora=n_lora,
            n_proj=n_proj,
        )

    def _proj(self, media_tokens: dict[str, int]) -> int:
        return sum(self.n_proj.get(m, 0) * t for m, t in media_tokens.items())

    def forward_flops(self, seq_lens: Sequence[int], media_tokens: dict[str, int] | None = None) -> float:
        """Forward FLOPs for sequences of these real lengths (each attending to itself)."""
        dense = sum(2 * self.n_dense * n + 4 * self.n_layers * self.d_model * n * n for n in seq_lens)
        return float(dense + 2 * self._proj(media_tokens or {}))

    def decode_flops(self, context_lens: Sequence[int]) -> float:
        """Forward FLOPs of single new tokens generated after contexts of these lengths."""
        return float(sum(2 * self.n_dense + 4 * self.n_layers * self.d_model * c for c in context_lens))

    def train_flops(self, seq_lens: Sequence[int], media_tokens: dict[str, int] | None = None) -> float:
        """Forward + backward FLOPs of one training pass over sequences of these real lengths."""
        per_tok = 4 * self.n_frozen + 6 * self.n_lora
        dense = sum(per_tok * n + 12 * self.n_layers * self.d_model * n * n for n in seq_lens)
        return float(dense + 6 * self._proj(media_tokens or {}))
