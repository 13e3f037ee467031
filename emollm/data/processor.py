"""The Processor: the only code that knows the tokenizer and the chat template.

It turns a ``Conversation`` into token ids and a token-level loss mask, for training and inference
alike (one path — a test proves a training prompt and an inference prompt give identical ids up to
the answer):

1. Messages are rendered with the tokenizer's own chat template (LLaMA-2 ``[INST]``, ChatML, Llama-3
   ...). Media parts become one placeholder special token each; assistant contents become sentinels.
2. The rendered string is cut at answer boundaries. The boundary of answer *i* is where the
   template's generation prompt for turn *i* ends (so the prefix is exactly what inference sees);
   the answer segment runs through the template's end-of-turn token (``</s>``, ``<|im_end|>``...),
   which the model must learn to emit.
3. Prompt segments and answer segments are tokenized separately (no merges across the boundary);
   answer tokens get loss mask 1, everything else 0. This is the nanochat rule: the mask is built
   while rendering, never by re-tokenizing substrings.
4. Each placeholder token is expanded into exactly ``tokens_per_item`` copies for its modality.

    proc = Processor(tok, {"audio": 1, "face": 4}, system_prompt=None, max_length=1024)
    enc = proc.encode(conv)                      # training: conv ends with an assistant turn
    enc = proc.encode(conv.prompt(), generation=True)
    batch = proc.collate([enc1, enc2], padding_side="left")   # input_ids, attention_mask, labels [B, L]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from emollm.data.conversation import Conversation, Media
from emollm.model.llm import placeholder_token

IGNORE_INDEX = -100
_SENT = "\ue000EMOLLM_ANSWER_{}\ue001"


@dataclass
class Encoded:
    """One encoded conversation. ``labels`` is ``input_ids`` where the loss applies, else -100."""

    input_ids: list[int]
    labels: list[int]
    modality_counts: dict[str, int] = field(default_factory=dict)
    """Number of media items per modality (features the model must receive)."""
    answer_start: int | None = None
    """Index of the first token of the last answer (None for generation prompts)."""
    truncated: bool = False
    sample_id: str | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


class Processor:
    def __init__(
        self,
        tokenizer: Any,
        modality_tokens: dict[str, int],
        system_prompt: str | None = None,
        max_length: int = 1024,
        placeholders: dict[str, str] | None = None,
        wrappers: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """``placeholders``: modality -> placeholder token (default emollm's ``<|emo_<m>|>``; a native model
        uses its own, e.g. ``<|AUDIO|>``); ``wrappers``: modality -> text before and after the run (a
        native model's ``<|audio_bos|>`` ... ``<|audio_eos|>``, as its chat template writes them)."""
        self.tok = tokenizer
        self.modality_tokens = dict(modality_tokens)
        self.system_prompt = system_prompt
        self.max_length = max_length
        self.placeholders = {m: (placeholders or {}).get(m, placeholder_token(m)) for m in modality_tokens}
        self.wrappers = {m: (wrappers or {}).get(m, ("", "")) for m in modality_tokens}
        if len(set(self.placeholders.values())) != len(self.placeholders):
            raise ValueError(f"two modalities share a placeholder token: {self.placeholders}")
        vocab = tokenizer.get_vocab()
        missing = [t for t in self.placeholders.values() if t not in vocab]
        if missing:
            raise ValueError(f"tokenizer lacks placeholder tokens {missing}; call add_placeholder_tokens first")
        self.placeholder_ids = {m: tokenizer.convert_tokens_to_ids(t) for m, t in self.placeholders.items()}
        self._id_to_modality = {v: k for k, v in self.placeholder_ids.items()}
        self._special_strings = sorted(
            {s for s in tokenizer.all_special_tokens if s and s not in set(self.placeholders.values())},
            key=len,
            reverse=True,
        )
        self.stop_ids = self._detect_stop_ids()

    # ------------------------------------------------------------------ rendering

    def _messages(self, conv: Conversation) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if self.system_prompt is not None and not (conv.messages and conv.messages[0].role == "system"):
            out.append({"role": "system", "content": self.system_prompt})
        k = 0
        for msg in conv.messages:
            if msg.role == "assistant":
                out.append({"role": "assistant", "content": _SENT.format(k)})
                k += 1
                continue
            pieces = []
            for p in msg.parts:
                if isinstance(p, Media):
                    if p.modality not in self.modality_tokens:
                        raise ValueError(
                            f"conversation {conv.sample_id!r} has a {p.modality!r} part but the model has modalities "
                            f"{list(self.modality_tokens)}"
                        )
                    before, after = self.wrappers[p.modality]
                    pieces.append(before + self.placeholders[p.modality] + after)
                else:
                    pieces.append(p)
            out.append({"role": msg.role, "content": "".join(pieces)})
        return out

    def _render(self, messages: list[dict[str, str]], generation: bool) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)

    def _terminator(self, text: str) -> str:
        """Text after an answer up to and including the first special token (the end of turn)."""
        best = None
        for s in self._special_strings:
            i = text.find(s)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, s)
        if best is None:
            return ""
        return text[: best[0] + len(best[1])]

    def _detect_stop_ids(self) -> list[int]:
        probe = self._messages(Conversation([_user("x"), _assistant("y")]))
        rendered = self._render(probe, False)
        after = rendered.split(_SENT.format(0), 1)[1]
        term = self._terminator(after)
        ids = set()
        if self.tok.eos_token_id is not None:
            ids.add(int(self.tok.eos_token_id))
        for s in self._special_strings:
            if term.endswith(s):
                ids.add(int(self.tok.convert_tokens_to_ids(s)))
        return sorted(ids)

    def _tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ encoding

    def encode(self, conv: Conversation, generation: bool = False) -> Encoded:
        """Encode a conversation.

        Training (``generation=False``): the conversation ends with an assistant turn; labels cover
        every assistant answer plus its end-of-turn token. Inference (``generation=True``): the
        conversation ends with a user turn and the generation prompt is appended.
        """
        if not conv.messages:
            raise ValueError("empty conversation")
        last = conv.messages[-1].role
        if generation and last != "user":
            raise ValueError(f"generation prompt needs a conversation ending with a user turn, got {last!r}")
        if not generation and last != "assistant":
            raise ValueError(f"training encoding needs a conversation ending with an assistant turn, got {last!r}")
        msgs = self._messages(conv)
        answers = [m.text.strip() for m in conv.messages if m.role == "assistant"]
        full = self._render(msgs, generation)
        # answer boundaries from the generation prompts of each assistant turn
        regions: list[tuple[int, int, int]] = []  # (start, end, answer index) in `full`
        k = 0
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            prefix = self._render(msgs[:i], True)
            sent = _SENT.format(k)
            pos = full.find(sent)
            if not full.startswith(prefix) or pos < len(prefix):
                raise ValueError(
                    "the chat template is not prefix-consistent (the prompt rendered for generation is not a prefix "
                    "of the rendered conversation), so training and inference prompts would differ; use another "
                    "template (model.llm.chat_template)"
                )
            tail = full[pos + len(sent) :]
            term = self._terminator(tail)
            regions.append((len(prefix), pos + len(sent) + len(term), k))
            k += 1
        ids: list[int] = []
        mask: list[int] = []
        cursor = 0
        for start, end, idx in regions:
            ptoks = self._tokenize(full[cursor:start])
            ids += ptoks
            mask += [0] * len(ptoks)
            seg = full[start:end].replace(_SENT.format(idx), answers[idx])
            atoks = self._tokenize(seg)
            if not atoks or (self.stop_ids and atoks[-1] not in self.stop_ids):
                atoks.append(self.stop_ids[0] if self.stop_ids else int(self.tok.eos_token_id))
            ids += atoks
            mask += [1] * len(atoks)
            cursor = end
        rest = self._tokenize(full[cursor:])
        ids += rest
        mask += [0] * len(rest)
        ids, mask, counts = self._expand(ids, mask, conv)
        start = None
        if not generation:  # first token of the last answer run
            start = len(mask) - 1
            while start > 0 and not mask[start]:
                start -= 1
            while start > 0 and mask[start - 1]:
                start -= 1
        enc = Encoded(
            input_ids=ids,
            labels=[t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)],
            modality_counts=counts,
            answer_start=start,
            sample_id=conv.sample_id,
        )
        return self._truncate(enc, generation)

    def _expand(
        self, ids: list[int], mask: list[int], conv: Conversation
    ) -> tuple[list[int], list[int], dict[str, int]]:
        out_ids: list[int] = []
        out_mask: list[int] = []
        counts: dict[str, int] = {}
        for t, m in zip(ids, mask, strict=True):
            mod = self._id_to_modality.get(t)
            if mod is None:
                out_ids.append(t)
                out_mask.append(m)
                continue
            if m:
                raise ValueError(f"sample {conv.sample_id!r}: a {mod!r} placeholder appears inside an answer")
            n = self.modality_tokens[mod]
            out_ids += [t] * n
            out_mask += [0] * n
            counts[mod] = counts.get(mod, 0) + 1
        expected: dict[str, int] = {}
        for mod in conv.modalities:
            expected[mod] = expected.get(mod, 0) + 1
        if counts != expected:
            raise ValueError(
                f"sample {conv.sample_id!r}: rendered placeholders {counts} differ from media parts {expected} "
                "(does the chat template drop message content?)"
            )
        return out_ids, out_mask, counts

    def _truncate(self, enc: Encoded, generation: bool = False) -> Encoded:
        n = len(enc.input_ids)
        if n <= self.max_length:
            return enc
        if generation:
            raise ValueError(
                f"sample {enc.sample_id!r}: the prompt has {n} tokens, more than max_length={self.max_length} "
                "(shorten the conversation or raise model.max_length)"
            )
        first_label = next((i for i, lab in enumerate(enc.labels) if lab != IGNORE_INDEX), None)
        if first_label is None or first_label >= self.max_length:
            raise ValueError(
                f"sample {enc.sample_id!r}: prompt has {first_label if first_label is not None else n} tokens, more than "
                f"max_length={self.max_length} (raise model.max_length or shorten the prompt)"
            )
        enc.input_ids = enc.input_ids[: self.max_length]
        enc.labels = enc.labels[: self.max_length]
        enc.truncated = True
        return enc

    # ------------------------------------------------------------------ batching

    @property
    def pad_id(self) -> int:
        pid = self.tok.pad_token_id
        return int(pid if pid is not None else self.tok.eos_token_id)

    def collate(self, encs: list[Encoded], padding_side: Literal["left", "right"] = "right") -> dict[str, torch.Tensor]:
        """Pad to ``[B, L]``: ``input_ids``, ``attention_mask``, ``labels`` (-100 on padding)."""
        if not encs:
            raise ValueError("cannot collate an empty batch")
        L = max(len(e) for e in encs)
        ids = torch.full((len(encs), L), self.pad_id, dtype=torch.long)
        att = torch.zeros((len(encs), L), dtype=torch.long)
        lab = torch.full((len(encs), L), IGNORE_INDEX, dtype=torch.long)
        for i, e in enumerate(encs):
            n = len(e)
            sl = slice(L - n, L) if padding_side == "left" else slice(0, n)
            ids[i, sl] = torch.tensor(e.input_ids)
            att[i, sl] = 1
            lab[i, sl] = torch.tensor(e.labels)
        return {"input_ids": ids, "attention_mask": att, "labels": lab}

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        ids = [t for t in ids if t not in self._id_to_modality]
        return self.tok.decode(ids, skip_special_tokens=True).strip()


def _user(text: str) -> Any:
    from emollm.data.conversation import Message

    return Message("user", [text])


def _assistant(text: str) -> Any:
    from emollm.data.conversation import Message

    return Message("assistant", [text])
