"""NativeLM: a native multimodal model (+LoRA on its language model) behind EmoLLM's interface.

Notation as ``emollm.model.emollm``: B batch, L sequence length; per modality m, n_m media items in
the batch with features ``[n_m, T_m, D_m]`` from ``emollm.encoders.native`` (mel frames or patches).

    model = NativeLM(hf_model, family, kinds, encoders, placeholder_ids, stop_ids, pad_id, projectors)
    out = model(input_ids, attention_mask, features={"audio": Tensor[n, frames, 128]}, logits_to_keep=k)
    new_ids = model.generate(input_ids, attention_mask, features, max_new_tokens=64)
    logp = model.score_labels(prompt_ids, attention_mask, features, candidate_ids)   # [B, C]

Where EmoLLM scatters projected features into ``inputs_embeds``, NativeLM hands the model its own
inputs (``input_features``, ``pixel_values_videos`` + ``video_grid_thw``...) with the model's own
placeholder tokens in ``input_ids``: the model's towers, projector, placeholder check and
(for Qwen2-VL / Qwen2.5-Omni) multimodal rotary positions do the rest, exactly as upstream.
Training, validation, eval, predict, chat, the server and bench call the same four methods on
either class, so every job runs on either kind of backbone.

Freeze policy: towers frozen; LoRA on the language model only; the model's own projector/merger
trains when ``llm.train_projector`` is set (``projectors`` then holds it, keyed by modality, and the
checkpoint saves it as ``projectors.<modality>.*``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from emollm.model.emollm import DecodeState, _contiguous_input
from emollm.model.native.families import NativeFamily


class NativeLM(nn.Module):
    def __init__(
        self,
        llm: nn.Module,
        family: NativeFamily,
        kinds: dict[str, str],
        encoders: dict[str, Any],
        placeholder_ids: dict[str, int],
        stop_ids: list[int],
        pad_id: int,
        projectors: dict[str, nn.Module] | None = None,
        special_ids: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        # registered before ``llm`` so that shared projector parameters are named ``projectors.*``
        self.projectors = nn.ModuleDict(projectors or {})
        self.llm = llm
        self.family = family
        self.kinds = dict(kinds)
        self.encoders = encoders
        self.placeholder_ids = dict(placeholder_ids)
        self.stop_ids = list(stop_ids)
        self.pad_id = int(pad_id)
        tok_ids = dict(special_ids or {})
        self.suppressed_ids = sorted(set(self.placeholder_ids.values()) | set(tok_ids.values()))
        """Tokens never generated: the placeholders and the family's media markers (an ``<|audio_bos|>``
        in an answer would make the model look for audio that is not there)."""
        cfg = self._config()
        self._image_id = getattr(cfg, "image_token_id", None) or getattr(cfg, "image_token_index", None)
        self._video_id = getattr(cfg, "video_token_id", None) or getattr(cfg, "video_token_index", None)
        head = llm.get_output_embeddings()
        if head is not None:
            head.register_forward_pre_hook(_contiguous_input)

    # ------------------------------------------------------------------ parameters

    def _config(self) -> Any:
        return getattr(self.llm, "config", None)

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    @property
    def hidden_size(self) -> int:
        return int(self.llm.get_input_embeddings().weight.shape[1])

    def trainable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters split into ``projector`` (the model's own, on request) and ``lora``."""
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

    # ------------------------------------------------------------------ inputs

    def media_inputs(self, input_ids: torch.Tensor, features: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        """The model's own forward arguments for ``features``, after the placeholder-count check."""
        features = features or {}
        unknown = sorted(set(features) - set(self.placeholder_ids))
        if unknown:
            raise ValueError(
                f"features given for unknown modalities {unknown}; model has {sorted(self.placeholder_ids)}"
            )
        for m, pid in self.placeholder_ids.items():
            n_slots = int((input_ids == pid).sum())
            f = features.get(m)
            n_items = 0 if f is None else int(f.shape[0])
            expect = n_items * int(self.encoders[m].llm_tokens)
            if n_slots != expect:
                raise ValueError(
                    f"modality {m!r}: the batch has {n_slots} placeholder tokens but {n_items} media items x "
                    f"{self.encoders[m].llm_tokens} tokens = {expect}"
                )
        kw = self.family.model_inputs({m: f for m, f in features.items()}, self.kinds, self.encoders)
        dtype = self.llm.get_input_embeddings().weight.dtype
        for k in ("input_features", "pixel_values_videos"):
            if k in kw and kw[k].is_floating_point():
                kw[k] = kw[k].to(self.device, dtype)
        if self.family.token_types:
            tt = torch.zeros_like(input_ids, dtype=torch.int)
            if self._image_id is not None:
                tt[input_ids == self._image_id] = 1
            if self._video_id is not None:
                tt[input_ids == self._video_id] = 2
            kw["mm_token_type_ids"] = tt
        return kw

    def _rope_deltas(self) -> torch.Tensor:
        """The M-RoPE offset of each prompt of the last prefill (the model keeps it as ``rope_deltas``)."""
        for mod in self.llm.modules():
            d = getattr(mod, "rope_deltas", None)
            if isinstance(d, torch.Tensor):
                return d
        raise RuntimeError(f"{self.family.name}: the prefill left no rope_deltas (transformers changed?)")

    def _positions(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """Left-padding-aware positions for 1-D RoPE families; M-RoPE families compute their own."""
        if self.family.mrope:
            return None
        return (attention_mask.cumsum(-1) - 1).clamp(min=0)

    @property
    def llm_tokens(self) -> dict[str, int]:
        """Placeholder tokens per media item, by modality."""
        return {m: int(self.encoders[m].llm_tokens) for m in self.placeholder_ids}

    def repeat_items(self, input_ids: torch.Tensor, features: dict[str, torch.Tensor], repeat: int) -> dict:
        """Features of every prompt row repeated ``repeat`` times, in row order (for ``ids.repeat_interleave``)."""
        out = {}
        for m, f in features.items():
            per = (input_ids == self.placeholder_ids[m]).sum(1) // self.llm_tokens[m]  # items per row
            start = torch.cumsum(per, 0) - per
            idx = [torch.arange(int(start[r]), int(start[r] + per[r])) for r in range(len(per)) for _ in range(repeat)]
            if idx:
                out[m] = f[torch.cat(idx).to(f.device)]
        return out

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        features: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> Any:
        kw = self.media_inputs(input_ids, features)
        if self.family.mrope:  # the model places M-RoPE from the placeholders and the attention mask
            kwargs.pop("position_ids", None)
        out = self.llm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kw, **kwargs)
        keep = kwargs.get("logits_to_keep")
        if isinstance(keep, int) and keep > 0 and out.logits.shape[1] == input_ids.shape[1] > keep:
            # Qwen2-Audio's forward ignores ``logits_to_keep`` (full logits; answer_loss takes either)
            out.logits = out.logits[:, -keep:]
        return out

    # ------------------------------------------------------------------ step-wise decoding (RL rollouts)

    def prefill(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, torch.Tensor] | None,
        repeat: int = 1,
        share_prefix: bool = True,
    ) -> tuple[torch.Tensor, DecodeState]:
        """As ``EmoLLM.prefill``: logits ``[B*repeat, V]`` and the decoding state."""
        features = features or {}
        att = attention_mask
        if not share_prefix and repeat > 1:  # reference path: every copy prefilled
            features = self.repeat_items(input_ids, features, repeat)
            input_ids = input_ids.repeat_interleave(repeat, 0)
            att = att.repeat_interleave(repeat, 0)
            repeat_after = 1
        else:
            repeat_after = repeat
        pos = self._positions(att)
        extra = {} if pos is None else {"position_ids": pos}
        media = self.media_inputs(input_ids, features)
        out = self.llm(input_ids=input_ids, attention_mask=att, use_cache=True, logits_to_keep=1, **media, **extra)
        cache = getattr(out, "cache", None) or out.past_key_values
        if repeat_after > 1:
            cache.batch_repeat_interleave(repeat_after)
        logits = out.logits[:, -1].repeat_interleave(repeat_after, 0)
        att_n = att.repeat_interleave(repeat_after, 0)
        if pos is None:  # M-RoPE: the last text position is (real-token index + the prompt's rope delta)
            delta = self._rope_deltas().to(att.device).reshape(-1, 1)  # [rows prefilled, 1]
            last = (att_n.cumsum(-1) - 1)[:, -1:] + delta.repeat_interleave(repeat_after, 0)
        else:
            last = pos[:, -1:].repeat_interleave(repeat_after, 0)
        return logits, DecodeState(cache, att_n, last)

    def decode(self, tokens: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """As ``EmoLLM.decode``: one token per row ``[n]`` -> next logits ``[n, V]``."""
        state.attention_mask = torch.cat([state.attention_mask, torch.ones_like(state.attention_mask[:, :1])], dim=1)
        state.position = state.position + 1
        pos = state.position if not self.family.mrope else state.position.unsqueeze(0).expand(3, -1, -1)
        out = self.llm(
            input_ids=tokens[:, None],
            attention_mask=state.attention_mask,
            position_ids=pos,
            cache=state.cache,
            use_cache=True,
        )
        state.cache = getattr(out, "cache", None) or out.past_key_values
        return out.logits[:, -1]

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        features: dict[str, torch.Tensor] | None = None,
        **gen_kwargs: Any,
    ) -> torch.Tensor:
        """Generate from left-padded prompts; returns only the new tokens ``[B, new]``."""
        kw: dict[str, Any] = {"do_sample": False, "max_new_tokens": 64}
        kw.update(gen_kwargs)
        if not kw.get("do_sample"):
            kw.pop("temperature", None)
            kw.pop("top_p", None)
        kw.setdefault("eos_token_id", self.stop_ids)
        kw.setdefault("pad_token_id", self.pad_id)
        kw.setdefault("suppress_tokens", self.suppressed_ids)
        media = self.media_inputs(input_ids, features)
        out = self.llm.generate(input_ids=input_ids, attention_mask=attention_mask, **media, **kw)
        return out[:, input_ids.shape[1] :]

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
        """Log-likelihood ``[B, C]`` of each candidate after each left-padded prompt. With
        ``share_prefix`` the prompt (media included) runs once and every candidate continues from its KV
        cache (cropped back after each); otherwise every (prompt, candidate) pair runs in full."""
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
        B, C = ids.shape[0], len(candidate_ids)
        cand, cmask = self._cands(candidate_ids)
        pos = self._positions(att)
        media = self.media_inputs(ids, features)
        extra = {} if pos is None else {"position_ids": pos}
        out = self.llm(input_ids=ids, attention_mask=att, use_cache=True, logits_to_keep=1, **media, **extra)
        first = F.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]
        total = first[:, cand[:, 0]].clone()
        cache = getattr(out, "cache", None) or out.past_key_values
        plen = ids.shape[1]
        for c in range(C):
            n = int(cmask[c].sum())
            if n < 2:
                continue
            cont = cand[c, : n - 1].unsqueeze(0).expand(B, -1)  # [B, n-1]
            cont_att = torch.cat([att, torch.ones_like(cont)], dim=1)
            step: dict[str, Any] = {"cache_position": torch.arange(plen, plen + n - 1, device=ids.device)}
            if pos is not None:
                step["position_ids"] = pos[:, -1:] + torch.arange(1, n, device=ids.device)
            else:  # M-RoPE: text after the prompt continues at (real-token index + the prompt's rope delta)
                delta = self._rope_deltas().to(ids.device)  # [B, 1], set by the prefill
                p1 = (cont_att.cumsum(-1) - 1)[:, -(n - 1) :] + delta
                step["position_ids"] = p1.unsqueeze(0).expand(3, -1, -1)
            out2 = self.llm(input_ids=cont, attention_mask=cont_att, cache=cache, use_cache=True, **step)
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
        """Reference path: each (prompt, candidate) pair in full, one pair per forward (media repeated)."""
        B, C = ids.shape[0], len(candidate_ids)
        cand, cmask = self._cands(candidate_ids)
        total = torch.zeros(B, C)
        for c in range(C):
            n = int(cmask[c].sum())
            full = torch.cat([ids, cand[c, :n].unsqueeze(0).expand(B, -1)], dim=1)
            full_att = torch.cat([att, torch.ones(B, n, dtype=att.dtype, device=att.device)], dim=1)
            pos = self._positions(full_att)
            extra = {} if pos is None else {"position_ids": pos}
            logits = self.llm(
                input_ids=full, attention_mask=full_att, **self.media_inputs(full, features), **extra
            ).logits.float()
            lp = F.log_softmax(logits[:, ids.shape[1] - 1 : -1], dim=-1)  # [B, n, V]
            tgt = cand[c, :n].unsqueeze(0).expand(B, -1)
            total[:, c] = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).sum(-1).cpu()
        return total.to(ids.device), cmask.sum(-1).float().unsqueeze(0).expand(B, C)
