"""Compare checkpoints on a manifest split: label-scoring weighted F1, generated-answer weighted F1 and
length, explanation-label consistency and explanation length (the SFT-alone vs SFT-then-RL study).

    python scripts/rl_compare.py runs/cmp/sft_only/final runs/cmp/sft_rl/final \\
        --corpus runs/data/cmp_synthmer --split val --out runs/cmp/compare.json

Per checkpoint, on every sample of the split (greedy decoding):

- ``weighted_f1_scored``: ``Predictor.classify`` (constrained label scoring, the trainer's validation);
- ``weighted_f1_generated`` / ``answer_tokens``: the label task's free answer, read with ``read_label``
  (unreadable answers count as wrong), and its length in tokens;
- ``consistency`` / ``explanation_tokens``: the ``explain`` task's text; the label it mentions first
  equals the scored label (no label mentioned counts as inconsistent).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from emollm.answers import read_label
from emollm.data.sample import Manifest
from emollm.features.cache import FeatureCache
from emollm.features.featurizer import Featurizer
from emollm.inference.engine import Predictor
from emollm.io import atomic_write_json
from emollm.model.resolve import load_system


def evaluate(ckpt: str, man: Manifest, split: str, cache_dir: str, n: int | None) -> dict:
    system = load_system(ckpt)
    samples = [s for s in man.samples if s.split == split and s.label in system.labels.labels][:n]
    feat = Featurizer(system.encoders, FeatureCache(cache_dir), mode="auto", batch_size=16)
    pred = Predictor(system, feat, batch_size=16)
    feats = pred.features(samples, man.root, None)
    gold = [s.label for s in samples]
    scored = [r.label for r in pred.classify(samples, man.root, feats=feats)]
    label_task = system.contract.chat_task("label")
    answers = pred.generate(samples, man.root, task=label_task, feats=feats, max_new_tokens=12)
    read = [read_label(a, system.labels).label or "<unparsed>" for a in answers]
    explain = pred.generate(samples, man.root, feats=feats, max_new_tokens=64)
    mentioned = [system.labels.find_in_text(e) for e in explain]
    tok = system.processor._tokenize
    return {
        "checkpoint": ckpt,
        "n": len(samples),
        "weighted_f1_scored": float(f1_score(gold, scored, average="weighted", zero_division=0)),
        "weighted_f1_generated": float(f1_score(gold, read, average="weighted", zero_division=0)),
        "unparsed_answers": sum(r == "<unparsed>" for r in read),
        "answer_tokens": float(np.mean([len(tok(a)) for a in answers])),
        "consistency": float(np.mean([m == s for m, s in zip(mentioned, scored, strict=True)])),
        "explanation_tokens": float(np.mean([len(tok(e)) for e in explain])),
        "examples": [{"answer": a, "explanation": e[:160]} for a, e in list(zip(answers, explain, strict=True))[:3]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--cache-dir", default="runs/features")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    man = Manifest.load(a.corpus)
    res = [evaluate(c, man, a.split, a.cache_dir, a.n) for c in a.checkpoints]
    for r in res:
        print(json.dumps({k: v for k, v in r.items() if k != "examples"}))
    if a.out:
        atomic_write_json(a.out, res)


if __name__ == "__main__":
    main()
