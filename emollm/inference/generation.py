"""Decoding options shared by chat, serve, predict, eval and the web page: one typed model, one set of defaults.

Greedy decoding of a small model loops ("They're not happy, they're not happy..."), so the defaults
keep explanations from looping without changing a constrained label answer (label scoring does not
decode at all): a mild repetition penalty and no repeated 4-gram. Every job exposes the same fields
(``--repetition-penalty``, ``--no-repeat-ngram``, ``--temperature``, ``--top-p``, ``--max-new-tokens``,
``--stop``; the server's ``frequency_penalty``-free OpenAI fields map onto them).

    opts = GenerationOptions(max_new_tokens=128, temperature=0.7)    # temperature > 0: sampling
    new_ids = model.generate(ids, mask, feats, **opts.generate_kwargs())
    opts.with_updates(repetition_penalty=1.0)                        # a copy, validated again

``stop`` strings are cut from the decoded text by :func:`cut_at_stop` (and passed to transformers as
``stop_strings`` where a tokenizer is given), so the returned text never contains them.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import Field, model_validator

from emollm.config import Strict

# EmoLLM generates from inputs_embeds, so transformers says the penalty and the n-gram rule apply to
# the answer only, not the prompt; that is what they are for here, so the notice is noise on every answer.
warnings.filterwarnings(
    "ignore", message=r"Passing `(repetition_penalty|no_repeat_ngram_size)` with `inputs_embeds`", category=UserWarning
)

DEFAULT_REPETITION_PENALTY = 1.15
DEFAULT_NO_REPEAT_NGRAM = 4


class GenerationOptions(Strict):
    """How free text is decoded. ``temperature == 0`` (the default) is greedy decoding."""

    max_new_tokens: int = Field(256, ge=1, le=4096)
    """Most new tokens of one answer."""
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    """0: greedy; > 0: sampling at this temperature."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass (sampling only)."""
    top_k: int = Field(0, ge=0)
    """Keep the k most likely tokens (sampling only; 0: off)."""
    repetition_penalty: float = Field(DEFAULT_REPETITION_PENALTY, ge=1.0, le=2.0)
    """> 1 discourages tokens already in the answer (1.0: off). Keeps greedy explanations from looping."""
    no_repeat_ngram: int = Field(DEFAULT_NO_REPEAT_NGRAM, ge=0, le=32)
    """Never repeat an n-gram of this size (0: off)."""
    stop: list[str] = Field(default_factory=list, max_length=4)
    """Strings that end the answer (not included in it)."""
    seed: int | None = None
    """Sampling seed (None: the global RNG)."""

    @model_validator(mode="after")
    def _check_stop(self) -> GenerationOptions:
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        return self

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def with_updates(self, **changes: Any) -> GenerationOptions:
        """A validated copy with the given fields changed (None values are ignored)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return GenerationOptions.model_validate(data)

    def generate_kwargs(self, tokenizer: Any | None = None) -> dict[str, Any]:
        """Keyword arguments for ``transformers`` ``generate`` (and ``EmoLLM.generate``)."""
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kw["temperature"] = self.temperature
            kw["top_p"] = self.top_p
            if self.top_k:
                kw["top_k"] = self.top_k
        if self.repetition_penalty != 1.0:
            kw["repetition_penalty"] = self.repetition_penalty
        if self.no_repeat_ngram:
            kw["no_repeat_ngram_size"] = self.no_repeat_ngram
        if self.stop and tokenizer is not None:
            kw["stop_strings"] = list(self.stop)
            kw["tokenizer"] = tokenizer
        return kw


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
