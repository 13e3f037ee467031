"""Predictor: batched label scoring and generation for manifest samples or ad-hoc clips.

The one inference path behind validation, ``emollm eval``, ``emollm predict``, ``emollm chat`` and
the server: samples -> features (cache) -> prompt contract -> processor -> EmoLLM. Conversations come
from the system's prompt contract (the one its checkpoint was trained with; a preset's default), so
every job asks what training taught.

    pred = Predictor(system, featurizer)
    res = pred.classify(samples, root)                 # list[LabelResult]: probs over the label space
    txt = pred.generate(samples, root, task="reason")  # list[str], greedy by default

Options shared by both: ``modalities`` (a subset, for ablations), ``include_subtitle``,
``prompt_index`` / ``instruction`` / ``label_order`` (prompt variants). Samples are length-sorted
into batches internally and results come back in input order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from emollm.data.contract import PromptContract
from emollm.data.conversation import Conversation
from emollm.data.sample import Sample
from emollm.features.featurizer import Featurizer, SampleFeatures, stack_features
from emollm.inference.scoring import candidate_token_ids

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


@dataclass
class LabelResult:
    sample_id: str
    label: str
    probs: dict[str, float]
    logp: dict[str, float]
    modalities: list[str]


class Predictor:
    def __init__(
        self,
        system: EmoSystem,
        featurizer: Featurizer,
        contract: PromptContract | None = None,
        batch_size: int = 16,
    ) -> None:
        self.system = system
        self.featurizer = featurizer
        self.contract: PromptContract = contract or system.contract
        self.batch_size = batch_size
        self._cands: dict[tuple[str, ...], list[list[int]]] = {}

    @property
    def labels(self) -> Any:
        """The label space answers are scored over (``LabelSpace``)."""
        return self.system.labels

    @property
    def source(self) -> str:
        return str(self.system.source)

    # ------------------------------------------------------------------ building blocks

    def features(
        self, samples: Sequence[Sample], root: str | os.PathLike[str] | None, modalities: Sequence[str] | None
    ) -> list[SampleFeatures]:
        mods = [m for m in self.system.modalities if modalities is None or m in modalities]
        return self.featurizer(samples, root, mods)

    def conversations(
        self,
        samples: Sequence[Sample],
        feats: Sequence[SampleFeatures],
        task: str,
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        instruction: str | None = None,
        label_order: list[str] | None = None,
    ) -> list[Conversation]:
        mods = [[m for m in self.system.modalities if m in f.features] for f in feats]
        return self.contract.questions(samples, mods, task, prompt_index, include_subtitle, instruction, label_order)

    def _batches(self, convs: list[Conversation]) -> tuple[list[list[int]], list[Any]]:
        """Length-sorted batches of indices, and every conversation's encoding (computed once)."""
        encs = [self.system.processor.encode(c, generation=True) for c in convs]
        order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)], encs

    def _inputs(
        self, encs: list[Any], feats: list[SampleFeatures], idx: list[int]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        proc = self.system.processor
        batch = proc.collate([encs[i] for i in idx], padding_side="left")
        dev = self.system.model.device
        batch = {k: v.to(dev) for k, v in batch.items()}
        f = stack_features([feats[i] for i in idx], self.system.modalities)
        return batch, {k: v.to(dev) for k, v in f.items()}

    def candidates(self, conv: Conversation, labels: list[str]) -> list[list[int]]:
        key = tuple(labels)
        if key not in self._cands:
            self._cands[key] = candidate_token_ids(self.system.processor, conv, labels)
        return self._cands[key]

    # ------------------------------------------------------------------ public API

    @torch.no_grad()
    def classify_conversations(
        self, convs: list[Conversation], feats: list[SampleFeatures], labels: list[str] | None = None
    ) -> list[LabelResult]:
        labels = labels or list(self.system.labels.labels)
        model = self.system.model
        was_training = model.training
        model.eval()
        results: list[LabelResult | None] = [None] * len(convs)
        batches, encs = self._batches(convs)
        for idx in batches:
            batch, f = self._inputs(encs, feats, idx)
            cands = self.candidates(convs[idx[0]], labels)
            logp = model.score_labels(batch["input_ids"], batch["attention_mask"], f, cands).float().cpu()
            probs = logp.softmax(-1)
            for row, i in enumerate(idx):
                lp = {lab: float(logp[row, j]) for j, lab in enumerate(labels)}
                pr = {lab: float(probs[row, j]) for j, lab in enumerate(labels)}
                results[i] = LabelResult(
                    convs[i].sample_id or str(i), labels[int(probs[row].argmax())], pr, lp, list(feats[i].features)
                )
        model.train(was_training)
        return results  # type: ignore[return-value]

    def classify(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        modalities: Sequence[str] | None = None,
        include_subtitle: bool | None = None,
        prompt_index: int = 0,
        instruction: str | None = None,
        label_order: list[str] | None = None,
        feats: list[SampleFeatures] | None = None,
    ) -> list[LabelResult]:
        feats = feats if feats is not None else self.features(samples, root, modalities)
        if modalities is not None:
            feats = [_restrict(f, modalities) for f in feats]
        task = self.contract.chat_task("label")
        convs = self.conversations(samples, feats, task, prompt_index, include_subtitle, instruction, label_order)
        return self.classify_conversations(convs, feats)

    @torch.no_grad()
    def generate_conversations(
        self, convs: list[Conversation], feats: list[SampleFeatures], **gen_kwargs: Any
    ) -> list[str]:
        model = self.system.model
        was_training = model.training
        model.eval()
        out: list[str | None] = [None] * len(convs)
        batches, encs = self._batches(convs)
        for idx in batches:
            batch, f = self._inputs(encs, feats, idx)
            new = model.generate(batch["input_ids"], batch["attention_mask"], f, **gen_kwargs)
            for row, i in enumerate(idx):
                out[i] = self.system.processor.decode(new[row])
        model.train(was_training)
        return out  # type: ignore[return-value]

    def generate(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        task: str | None = None,
        modalities: Sequence[str] | None = None,
        include_subtitle: bool | None = None,
        prompt_index: int = 0,
        feats: list[SampleFeatures] | None = None,
        **gen_kwargs: Any,
    ) -> list[str]:
        feats = feats if feats is not None else self.features(samples, root, modalities)
        if modalities is not None:
            feats = [_restrict(f, modalities) for f in feats]
        task = task or self.contract.chat_task("explain")
        convs = self.conversations(samples, feats, task, prompt_index, include_subtitle)
        return self.generate_conversations(convs, feats, **gen_kwargs)


def _restrict(f: SampleFeatures, modalities: Sequence[str]) -> SampleFeatures:
    keep = {m: v for m, v in f.features.items() if m in modalities}
    return SampleFeatures(f.sample_id, keep, dict(f.missing))
