"""GRPO on the native backbones (issues 14 and 16): rollouts through each family's own media inputs,
shared-prefix rollouts equal full prefills (M-RoPE families included), the sampled tokens' log-probs
match a plain forward, and the tiny RL recipe trains an SFT then an RL stage on a native preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emollm.data.contract import PromptContract
from emollm.data.instructions import load_mixture
from emollm.data.sample import Manifest
from emollm.features.featurizer import Featurizer
from emollm.training.rl import build_prompts, completion_logps, rl_samples, rollout

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["tiny-qwen2-audio", "tiny-qwen2.5-omni", "tiny-qwen2-vl"])
def setup(request, synthmer_small):
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    system = build_system(model_config(request.param), source=request.param)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # non-zero LoRA, so the policy differs from the reference
        for _, p in system.model.trainable_named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    system.model.eval()
    man = Manifest.load(synthmer_small)
    contract = PromptContract.from_mixture(load_mixture("data_recipes/mixtures/rl_emotion.yaml"), system.labels)
    samples = rl_samples(contract, [s for s in man.samples if s.split == "train"])
    feat = Featurizer(system.encoders, None, mode="live", batch_size=8)
    return system, contract, samples, feat, man.root


def _prompts(setup, idx):
    system, contract, samples, feat, root = setup
    return build_prompts(system, contract, feat, samples, root, idx, epoch=0, seed=0, stage_index=1)


def test_native_shared_prefix_rollouts_equal_full_prefills(setup) -> None:
    system = setup[0]
    p = _prompts(setup, [0, 3])
    assert set(p.features) == set(system.modalities)
    a, am = rollout(system.model, p, 3, 5, shared_prefix=True)
    b, bm = rollout(system.model, p, 3, 5, shared_prefix=False)
    assert a.shape[0] == 6 and torch.equal(a * am, b * bm) and torch.equal(am, bm)
    solo, sm = rollout(system.model, _prompts(setup, [3]), 3, 5)
    T = min(solo.shape[1], a.shape[1])
    assert torch.equal(solo[:, :T] * sm[:, :T], a[3:6, :T] * am[3:6, :T])
    # long forced completions never emit a placeholder or a media marker (an <|audio_bos|> in the
    # completion would send the log-prob forward looking for audio that is not there)
    long, lm = rollout(system.model, p, 3, 12, min_new_tokens=12)
    banned = set(system.model.suppressed_ids)
    assert banned >= set(system.model.placeholder_ids.values()) and len(banned) > len(system.modalities)
    assert not any(int(t) in banned for t in long[lm.bool()])
    lp, _ = completion_logps(system.model, system.model, p, torch.arange(6), long, lm, 3, 1.0)
    assert torch.isfinite(lp[lm.bool()]).all()


def test_native_logps_match_a_plain_forward(setup) -> None:
    system = setup[0]
    p = _prompts(setup, [1, 2])
    comp, mask = rollout(system.model, p, 2, 4)
    rows = torch.arange(comp.shape[0])
    with torch.no_grad():
        lp, ent = completion_logps(system.model, system.model, p, rows, comp, mask, 2, 1.0, with_entropy=True)
        # row 2 = prompt 1's first completion: its first token under a plain forward of prompt 1
        keep = p.attention_mask[1].bool()  # prompt 1 without its left padding
        ids, att = p.input_ids[1:, keep], p.attention_mask[1:, keep]
        feats = {m: f[f.shape[0] // 2 :] for m, f in p.features.items()}  # one item per prompt here
        logits = system.model(input_ids=ids, attention_mask=att, features=feats).logits[0, -1]
    want = torch.log_softmax(logits.float(), -1)[comp[2, 0]]
    assert float(lp[2, 0]) == pytest.approx(float(want), abs=2e-4)
    assert torch.isfinite(lp[mask.bool()]).all() and (ent[mask.bool()] > 0).all()


def test_tiny_rl_recipe_runs_on_a_native_preset(tmp_path, synthmer_small) -> None:
    from emollm.training.config import load_run_config
    from emollm.training.trainer import train

    cfg = load_run_config(
        ROOT / "train/tiny_rl.yaml",
        [
            "preset=tiny-qwen2.5-omni",
            f"data.corpus={synthmer_small}",
            f"output_dir={tmp_path / 'run'}",
            f"data.features.cache_dir={tmp_path / 'features'}",
            "data.val_split=null",
            "stages.0.max_steps=2",
            "stages.1.max_steps=2",
            "stages.1.rl.group_size=4",
            "stages.1.rl.prompts_per_step=2",
            "stages.1.rl.beta=0.04",
        ],
    )
    train(cfg, progress_bar=False)
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    rl = [x for x in lines if "grpo/rl/reward" in x]
    assert len(rl) == 2
    for x in rl:
        assert 0.0 <= x["grpo/rl/reward"] <= 1.1 and x["grpo/rl/kl"] >= 0.0
        assert x["grpo/rl/completion_length"] >= 1
    assert (tmp_path / "run/final/trainable.safetensors").is_file()
