"""``emollm bench rl``: GRPO rollouts and updates, the RL stage's fast path vs naive per-rollout generation.

    emollm bench rl --preset tiny --max-new-tokens 16          # seconds
    emollm bench rl --preset mini --group-size 8 --batch-size 4
    emollm bench rl --preset emotion-llama-shapes --device cuda --group-size 8 --batch-size 8

Fast path (what a ``kind: rl`` stage does, ``emollm.training.rl``): ``batch_size`` prompts embedded once
(projectors once per prompt), prefilled once, the prefix KV cache expanded ``group_size`` times and
the P x G completions sampled together; then the policy update: log-probs of the P x G completions
in chunks of ``micro_batch_size`` (the clipped GRPO surrogate with random advantages), backward and
an AdamW step.

Reference (the naive loop): every rollout is its own ``EmoLLM.generate(do_sample=True)`` call with
batch 1 (features projected and the prompt prefilled G times per prompt), and the update runs one
completion at a time. Same model, prompts and lengths (``ignore_eos``: every completion runs the
full ``max_new_tokens``, so both paths generate the same number of tokens).

Figures: ``fast``/``reference`` count rollouts (samples_per_s = rollouts/s, tokens_per_s = generated
tokens/s); ``train`` holds the update's completions/s for both paths and their ratio.
"""

from __future__ import annotations

from typing import Any

import torch

from emollm.bench.common import BenchReport, PathResult, PeakMemory, Stopwatch
from emollm.bench.configs import RLBenchConfig
from emollm.bench.workload import load_workload
from emollm.data.contract import PromptContract
from emollm.data.instructions import load_mixture
from emollm.training.rl import PromptBatch, build_prompts, completion_logps, rollout


def _grpo_update(
    model: Any, prompts: PromptBatch, comp: torch.Tensor, mask: torch.Tensor, G: int, chunk: int, opt: Any
) -> None:
    n = comp.shape[0]
    adv = torch.randn(n, generator=torch.Generator().manual_seed(0))
    for i in range(0, n, chunk):
        rows = torch.arange(i, min(n, i + chunk))
        logp, _ = completion_logps(model, model, prompts, rows, comp, mask, G, 1.0)
        m = mask[rows].float().to(logp.device)
        ratio = torch.exp(logp - logp.detach())
        a = adv[rows].to(logp.device)[:, None]
        per = -torch.minimum(ratio * a, torch.clamp(ratio, 0.8, 1.2) * a)
        loss = ((per * m).sum(-1) / m.sum(-1).clamp(min=1)).sum() / n
        loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def run(cfg: RLBenchConfig, device: torch.device) -> BenchReport:
    wl = load_workload(cfg.workload, device)
    system = wl.system
    model = system.model
    contract = PromptContract.from_mixture(load_mixture(cfg.mixture), system.labels, system.cfg.system_prompt)
    samples = [s for s in wl.samples if contract.available_tasks(s, gold_only=True)]
    if len(samples) < cfg.batch_size:
        raise ValueError(f"{len(samples)} samples have a gold field for {cfg.mixture}; need --batch-size or more")
    G, T = cfg.group_size, cfg.max_new_tokens
    min_new = T if cfg.ignore_eos else 0
    batches = [
        build_prompts(system, contract, wl.featurizer, samples, wl.root, list(range(b, b + cfg.batch_size)), 0, 0, 1)
        for b in range(0, len(samples) - cfg.batch_size + 1, cfg.batch_size)
    ]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)

    def fast_rollouts(bs: list[PromptBatch]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        model.eval()
        return [rollout(model, b, G, T, cfg.temperature, min_new_tokens=min_new) for b in bs]

    fast_rollouts(batches[:1])  # warm-up
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        outs = fast_rollouts(batches)
    n_roll = sum(o[0].shape[0] for o in outs)
    n_tok = sum(int(o[1].sum()) for o in outs)
    fast = PathResult.timed_by(
        f"{cfg.batch_size} prompts x G={G}, shared prefix KV", sw, n_roll, tokens=n_tok, peak_mem_mib=mem.mib
    )
    model.train()
    with Stopwatch(device) as tsw:
        for b, (comp, mask) in zip(batches, outs, strict=True):
            _grpo_update(model, b, comp, mask, G, cfg.micro_batch_size, opt)
    train_fast = n_roll / max(tsw.seconds, 1e-9)

    # reference: one generate call per rollout, one completion per update chunk
    ref_samples = samples[: cfg.ref_prompts]
    ref_batches = [
        build_prompts(system, contract, wl.featurizer, ref_samples, wl.root, [i], 0, 0, 1)
        for i in range(len(ref_samples))
    ]
    gen = {"do_sample": True, "temperature": cfg.temperature, "top_p": 1.0, "max_new_tokens": T}
    if cfg.ignore_eos:
        gen["min_new_tokens"] = T

    def ref_rollouts() -> list[list[torch.Tensor]]:
        model.eval()
        res = []
        for b in ref_batches:
            ids, att = b.input_ids.to(device), b.attention_mask.to(device)
            f = {k: v.to(device) for k, v in b.features.items()}
            res.append([model.generate(ids, att, f, **gen)[0] for _ in range(G)])
        return res

    torch.manual_seed(0)
    with PeakMemory(device) as rmem, Stopwatch(device) as rsw:
        routs = ref_rollouts()
    r_roll = sum(len(x) for x in routs)
    r_tok = sum(int(t.numel()) for x in routs for t in x)
    ref = PathResult.timed_by("generate per rollout (batch 1)", rsw, r_roll, tokens=r_tok, peak_mem_mib=rmem.mib)
    model.train()
    pads = system.model.pad_id
    with Stopwatch(device) as rtsw:
        for b, comps in zip(ref_batches, routs, strict=True):
            L = max(int(c.numel()) for c in comps)
            comp = torch.full((len(comps), L), pads, dtype=torch.long)
            mask = torch.zeros_like(comp)
            for i, c in enumerate(comps):
                comp[i, : c.numel()] = c.cpu()
                mask[i, : c.numel()] = 1
            _grpo_update(model, b, comp, mask, G, 1, opt)
    train_ref = r_roll / max(rtsw.seconds, 1e-9)
    return BenchReport(
        "rl",
        cfg.workload.preset,
        device,
        cfg.model_dump(mode="json"),
        fast,
        ref,
        ratio_on="samples_per_s",
        extra={
            "data": wl.data,
            "rollouts_per_s": {
                "fast": round(fast.samples / max(fast.seconds, 1e-9), 3),
                "reference": round(r_roll / max(ref.seconds, 1e-9), 3),
            },
            "train": {
                "fast_samples_per_s": round(train_fast, 3),
                "reference_samples_per_s": round(train_ref, 3),
                "ratio": round(train_fast / train_ref, 3) if train_ref else None,
            },
        },
        mem_kind=PeakMemory(device).kind,
    )
