"""EmoLLM: an LLM (+LoRA) whose placeholder tokens receive projected encoder features.

Notation: B batch, L sequence length, H LLM hidden size; per modality m, n_m media items in the
batch, T_m tokens per item, D_m encoder width.

    model = EmoLLM(llm, projectors, placeholder_ids, stop_ids, pad_id)
    out = model(input_ids, attention_mask, labels, features={"audio": Tensor[n_a, T_a, D_a], ...})
    out.loss                                  # next-token CE on answer tokens only
    new_ids = model.generate(input_ids, attention_mask, features, max_new_tokens=64)
    logp = model.score_labels(prompt_ids, attention_mask, features, candidate_ids)   # [B, C]
    logits, state = model.prefill(prompt_ids, attention_mask, features, repeat=G)   # [B*G, V]
    logits = model.decode(next_tokens, state)                                        # [B*G, V] (RL rollouts)

Features of modality m are listed in batch order (row-major over samples that have m) and fill the
``placeholder_ids[m]`` positions in that order with ``masked_scatter`` — after a check that the
number of placeholder tokens equals ``n_m * T_m``, raising with both numbers otherwise.

Freeze policy: the base LLM is frozen (LoRA adapters, when present, train); projectors train;
encoders live outside (``emollm.features``) and are always frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from emollm.model.projectors import Projector


def _contiguous_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The LM head receives ``hidden[:, -k:]`` slices (``logits_to_keep``, generation's prefill). On a CPU
    a strided ``[B, 1, H]`` slice sends ``linear`` through a batched matmul that copies the whole
    ``[B, H, vocab]`` weight: 2.4 s instead of 6 ms for SmolLM2 at batch 16. A contiguous copy of the
    slice (``B * k * H`` values) avoids it; already contiguous inputs are untouched."""
    return (args[0].contiguous(), *args[1:]) if args and isinstance(args[0], torch.Tensor) else args


@dataclass
class DecodeState:
    """What step-wise decoding carries between tokens: the KV cache, the attention mask ``[n, L]`` so
    far and the last position ``[n, 1]`` (text positions; M-RoPE models add their rope delta)."""

    cache: Any
    attention_mask: torch.Tensor
    position: torch.Tensor


class EmoLLM(nn.Module):
    def __init__(
        self,
        llm: nn.Module,
        projectors: dict[str, Projector],
        placeholder_ids: dict[str, int],
        stop_ids: list[int],
        pad_id: int,
    ) -> None:
        super().__init__()
        if set(projectors) != set(placeholder_ids):
            raise ValueError(f"projectors {sorted(projectors)} and placeholders {sorted(placeholder_ids)} differ")
        self.llm = llm
        self.projectors = nn.ModuleDict(projectors)
        self.placeholder_ids = dict(placeholder_ids)
        self.stop_ids = list(stop_ids)
        self.pad_id = int(pad_id)
        head = llm.get_output_embeddings()
        if head is not None:
            head.register_forward_pre_hook(_contiguous_input)

    @property
    def suppressed_ids(self) -> list[int]:
        """Tokens never generated: the placeholders."""
        return sorted(self.placeholder_ids.values())

    # ------------------------------------------------------------------ parameters

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    @property
    def hidden_size(self) -> int:
        return int(self.llm.get_input_embeddings().weight.shape[1])

    def trainable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters split into ``projector`` and ``lora`` groups (separate learning rates)."""
        groups: dict[str, list[nn.Parameter]] = {"projector": [], "lora": []}
        for n, p in self.trainable_named_parameters():
            groups["projector" if n.startswith("projectors.") else "lora"].append(p)
        return groups

    def count_parameters(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.parameters())
        g = self.parameter_groups()
        return {
            "total": total,
            "trainable": sum(p.numel() for ps in g.values() for p in ps),
            "projector": sum(p.numel() for p in g["projector"]),
            "lora": sum(p.numel() for p in g["lora"]),
        }

    # ------------------------------------------------------------------ embedding

    def embed(self, input_ids: torch.Tensor, features: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Token embeddings ``[B, L, H]`` with every placeholder run replaced by projected features."""
        features = features or {}
        unknown = sorted(set(features) - set(self.placeholder_ids))
        if unknown:
            raise ValueError(
                f"features given for unknown modalities {unknown}; model has {sorted(self.placeholder_ids)}"
            )
        emb = self.llm.get_input_embeddings()(input_ids)
        for m, pid in self.placeholder_ids.items():
            mask = input_ids == pid
            n_slots = int(mask.sum())
            f = features.get(m)
            n_feat = 0 if f is None else int(f.shape[0] * f.shape[1])
            if n_slots != n_feat:
                shape = "none" if f is None else f"{tuple(f.shape[:2])} = {n_feat}"
                raise ValueError(
                    f"modality {m!r}: the batch has {n_slots} placeholder tokens but {n_feat} feature tokens "
                    f"(features [items, tokens] {shape})"
                )
            if n_slots == 0:
                continue
            proj = self.projectors[m](f)  # [n_m, T_m, H]
            emb = emb.masked_scatter(mask.unsqueeze(-1), proj.reshape(-1, proj.shape[-1]).to(emb.dtype))
        return emb

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        features: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> Any:
        emb = self.embed(input_ids, features)
        return self.llm(inputs_embeds=emb, attention_mask=attention_mask, labels=labels, **kwargs)

    # ------------------------------------------------------------------ step-wise decoding (RL rollouts)

    def prefill(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, torch.Tensor] | None,
        repeat: int = 1,
        share_prefix: bool = True,
    ) -> tuple[torch.Tensor, DecodeState]:
        """Run left-padded prompts ``[B, L]`` once; returns next-token logits ``[B*repeat, V]`` (row
        ``b*repeat + g``) and the state ``decode`` continues from. ``share_prefix``: the prompt KV is
        computed once and expanded ``repeat`` times; else every copy is prefilled (reference path)."""
        emb = self.embed(input_ids, features)  # projectors once per prompt
        pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        if share_prefix or repeat == 1:
            out = self.llm(
                inputs_embeds=emb, attention_mask=attention_mask, position_ids=pos, use_cache=True, logits_to_keep=1
            )
            cache = out.past_key_values
            if repeat > 1:
                cache.batch_repeat_interleave(repeat)
            logits = out.logits[:, -1].repeat_interleave(repeat, 0)
        else:
            out = self.llm(
                inputs_embeds=emb.repeat_interleave(repeat, 0),
                attention_mask=attention_mask.repeat_interleave(repeat, 0),
                position_ids=pos.repeat_interleave(repeat, 0),
                use_cache=True,
                logits_to_keep=1,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1]
        state = DecodeState(
            cache, attention_mask.repeat_interleave(repeat, 0), pos[:, -1:].repeat_interleave(repeat, 0)
        )
        return logits, state

    def decode(self, tokens: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """Feed one token per row ``[n]``; returns the next logits ``[n, V]`` (``state`` advances)."""
        state.attention_mask = torch.cat([state.attention_mask, torch.ones_like(state.attention_mask[:, :1])], dim=1)
        state.position = state.position + 1
        out = self.llm(
            inputs_embeds=self.llm.get_input_embeddings()(tokens[:, None]),
            attention_mask=state.attention_mask,
            position_ids=state.position,
            past_key_values=state.cache,
            use_cache=True,
        )
        state.cache = out.past_key_values
        return out.logits[:, -1]

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, torch.Tensor] | None = None,
        **gen_kwargs: Any,
    ) -> torch.Tensor:
        """Generate from left-padded prompts; returns only the new tokens ``[B, new]``."""
        emb = self.embed(input_ids, features)
        kw: dict[str, Any] = {"do_sample": False, "max_new_tokens": 64}
        kw.update(gen_kwargs)
        if not kw.get("do_sample"):
            kw.pop("temperature", None)
            kw.pop("top_p", None)
        kw.setdefault("eos_token_id", self.stop_ids)
        kw.setdefault("pad_token_id", self.pad_id)
        kw.setdefault("suppress_tokens", list(self.placeholder_ids.values()))
        return self.llm.generate(inputs_embeds=emb, attention_mask=attention_mask, **kw)

    @torch.no_grad()
    def score_labels(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, torch.Tensor] | None,
        candidate_ids: list[list[int]],
        share_prefix: bool = True,
        reduce: Literal["sum", "mean"] = "sum",
    ) -> torch.Tensor:
        """Log-likelihood ``[B, C]`` of each candidate answer (token ids incl. end-of-turn) after each
        left-padded prompt. With ``share_prefix`` the prompt runs once and its KV cache is shared by all
        candidates; otherwise every (prompt, candidate) pair runs in full (reference path)."""
        if not candidate_ids or any(len(c) == 0 for c in candidate_ids):
            raise ValueError("every candidate needs at least one token")
        if share_prefix:
            lp, n = self._score_shared(input_ids, attention_mask, features, candidate_ids)
        else:
            lp, n = self._score_full(input_ids, attention_mask, features, candidate_ids)
        return lp / n if reduce == "mean" else lp

    def _cands(self, candidate_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lc = max(len(c) for c in candidate_ids)
        cand = torch.full((len(candidate_ids), lc), self.pad_id, dtype=torch.long, device=self.device)
        cmask = torch.zeros_like(cand)
        for i, c in enumerate(candidate_ids):
            cand[i, : len(c)] = torch.tensor(c, device=self.device)
            cmask[i, : len(c)] = 1
        return cand, cmask

    def _score_shared(
        self,
        ids: torch.Tensor,
        att: torch.Tensor,
        features: dict[str, torch.Tensor] | None,
        candidate_ids: list[list[int]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompt runs once; each candidate continues from its KV cache, which is cropped back to the
        prompt afterwards (one cache in memory, not one copy per candidate)."""
        B, C = ids.shape[0], len(candidate_ids)
        cand, cmask = self._cands(candidate_ids)
        pos = (att.cumsum(-1) - 1).clamp(min=0)
        emb = self.embed(ids, features)
        out = self.llm(inputs_embeds=emb, attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1)
        first = F.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]
        total = first[:, cand[:, 0]].clone()  # [B, C]
        if cand.shape[1] > 1:
            cache = out.past_key_values
            embed_tokens = self.llm.get_input_embeddings()
            for c in range(C):
                n = int(cmask[c].sum())
                if n < 2:
                    continue
                cont = cand[c, : n - 1].unsqueeze(0).expand(B, -1)  # [B, n-1]
                cont_att = torch.cat([att, torch.ones_like(cont)], dim=1)
                cont_pos = pos[:, -1:] + torch.arange(1, n, device=ids.device)
                out2 = self.llm(
                    inputs_embeds=embed_tokens(cont),
                    attention_mask=cont_att,
                    position_ids=cont_pos,
                    past_key_values=cache,
                    use_cache=True,
                )
                lp = F.log_softmax(out2.logits.float(), dim=-1)  # [B, n-1, V]
                tgt = cand[c, 1:n].unsqueeze(0).expand(B, -1)
                total[:, c] += lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).sum(-1)
                cache.crop(-(n - 1))  # drop this candidate's tokens, keep the prompt
        return total, cmask.sum(-1).float().unsqueeze(0).expand(B, C)

    def _score_full(
        self,
        ids: torch.Tensor,
        att: torch.Tensor,
        features: dict[str, torch.Tensor] | None,
        candidate_ids: list[list[int]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, C = ids.shape[0], len(candidate_ids)
        cand, cmask = self._cands(candidate_ids)
        emb = self.embed(ids, features)  # [B, Lp, H]
        full_emb = torch.cat(
            [emb.repeat_interleave(C, 0), self.llm.get_input_embeddings()(cand).repeat(B, 1, 1)], dim=1
        )
        full_att = torch.cat([att.repeat_interleave(C, 0), cmask.repeat(B, 1)], dim=1)
        pos = (full_att.cumsum(-1) - 1).clamp(min=0)
        logits = self.llm(inputs_embeds=full_emb, attention_mask=full_att, position_ids=pos).logits.float()
        lp = F.log_softmax(logits[:, ids.shape[1] - 1 : -1], dim=-1)  # predicts the candidate tokens
        tgt = cand.repeat(B, 1)
        tok = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1) * cmask.repeat(B, 1)
        return tok.sum(-1).view(B, C), cmask.sum(-1).float().unsqueeze(0).expand(B, C)
