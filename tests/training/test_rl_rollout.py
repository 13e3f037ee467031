"""GRPO pieces on the tiny model: shared-prefix rollouts equal full prefills, rows do not depend on the
batch layout, log-probs of sampled tokens, group advantages and dynamic sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollm.data.contract import PromptContract
from emollm.data.instructions import load_mixture
from emollm.data.sample import Manifest
from emollm.features.featurizer import Featurizer
from emollm.training.rl import build_prompts, completion_logps, group_advantages, join_prompts, rl_samples, rollout


@pytest.fixture(scope="module")
def setup(synthmer_small):
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    torch.manual_seed(0)
    system = build_system(model_config("tiny-fast"), source="tiny-fast")
    system.model.eval()
    man = Manifest.load(synthmer_small)
    contract = PromptContract.from_mixture(load_mixture("data_recipes/mixtures/rl_emotion.yaml"), system.labels)
    samples = rl_samples(contract, [s for s in man.samples if s.split == "train"])
    feat = Featurizer(system.encoders, None, mode="live", batch_size=8)
    return system, contract, samples, feat, man.root


def _prompts(setup, idx):
    system, contract, samples, feat, root = setup
    return build_prompts(system, contract, feat, samples, root, idx, epoch=0, seed=0, stage_index=1)


def test_shared_prefix_equals_full_prefill_and_rows_ignore_the_batch_layout(setup) -> None:
    system = setup[0]
    p = _prompts(setup, [0, 3, 5])
    a, am = rollout(system.model, p, 4, 6, shared_prefix=True)
    b, bm = rollout(system.model, p, 4, 6, shared_prefix=False)
    assert a.shape[0] == 12 and torch.equal(a, b) and torch.equal(am, bm)
    # prompt 3 alone: its 4 completions are rows 4..7 of the batched rollout (per-completion seeds)
    solo, sm = rollout(system.model, _prompts(setup, [3]), 4, 6)
    T = min(solo.shape[1], a.shape[1])
    assert torch.equal(solo[:, :T] * sm[:, :T], a[4:8, :T] * am[4:8, :T])
    # different completions within a group (sampling, not 4 copies)
    assert len({tuple(r.tolist()) for r in a[:4]}) > 1
    # the mask covers each completion up to and including its stop token
    stops = set(system.model.stop_ids)
    for row, m in zip(a, am, strict=True):
        n = int(m.sum())
        toks = row[:n].tolist()
        assert all(t not in stops for t in toks[:-1])
        assert (row[n:] == system.model.pad_id).all()


def test_join_prompts_regroups_batches_as_building_them_would(setup) -> None:
    """DAPO refill keeps prompts of several rounds: joining them equals one batch built from their indices."""
    system = setup[0]
    a, b = _prompts(setup, [0, 3]), _prompts(setup, [5, 1, 2])
    joined = join_prompts(system, [(a, 1), (b, 0), (b, 2)])
    built = _prompts(setup, [3, 5, 2])
    assert torch.equal(joined.input_ids, built.input_ids)
    assert torch.equal(joined.attention_mask, built.attention_mask)
    assert joined.features.keys() == built.features.keys() and joined.features
    for m in built.features:
        assert torch.equal(joined.features[m], built.features[m]), m
    assert [s.id for s in joined.samples] == [s.id for s in built.samples]
    assert (joined.tasks, joined.answer_formats, joined.seeds) == (built.tasks, built.answer_formats, built.seeds)
    # the rollout of the joined batch is the rollout of the built one (same prompts, same seeds)
    x, xm = rollout(system.model, joined, 2, 4)
    y, ym = rollout(system.model, built, 2, 4)
    assert torch.equal(x, y) and torch.equal(xm, ym)


def test_logps_of_sampled_tokens_match_the_sampling_distribution(setup) -> None:
    system = setup[0]
    p = _prompts(setup, [1, 2])
    comp, mask = rollout(system.model, p, 3, 5, temperature=1.0)
    rows = torch.arange(comp.shape[0])
    with torch.no_grad():
        lp, ent = completion_logps(system.model, system.model, p, rows, comp, mask, 3, 1.0, with_entropy=True)
        # reference: row 0's first token log-prob from a plain prefill of prompt 0
        emb = system.model.embed(p.input_ids[:1], {k: v[:1] for k, v in p.features.items()})
        att = p.attention_mask[:1]
        pos = (att.cumsum(-1) - 1).clamp(min=0)
        logits = system.model.llm(inputs_embeds=emb, attention_mask=att, position_ids=pos).logits[0, -1]
    want = torch.log_softmax(logits.float(), -1)[comp[0, 0]]
    assert lp.shape == comp.shape and torch.isfinite(lp[mask.bool()]).all()
    assert float(lp[0, 0]) == pytest.approx(float(want), abs=1e-4)
    assert (ent[mask.bool()] > 0).all()


def test_group_advantages_nan_rows_and_dynamic_sampling() -> None:
    r = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0, np.nan, 0.0, 0.0])
    adv, valid, zero = group_advantages(r, 4, "group")
    assert zero == 1 and valid.tolist() == [True] * 8 + [True, False, True, True]
    g0 = adv[:4]
    assert g0.sum() == pytest.approx(0.0) and g0[0] == pytest.approx(0.5 / (np.std([1, 0, 1, 0], ddof=1) + 1e-4))
    assert (adv[4:8] == 0).all() and adv[9] == 0.0
    _, valid_ds, _ = group_advantages(r, 4, "group", dynamic_sampling=True)
    assert not valid_ds[4:8].any() and valid_ds[:4].all()  # the zero-variance group leaves the loss
    adv_none, _, _ = group_advantages(r, 4, "none")
    assert adv_none[0] == pytest.approx(0.5)  # Dr.GRPO: no std scaling
    one = np.array([1.0, np.nan, np.nan, np.nan])
    _, v1, _ = group_advantages(one, 4)
    assert not v1.any()  # a group with one scored row has no baseline
