"""GRPO-family RL stages (``kind: rl`` in a training recipe), built on emollm's trainer.

    stages:
      - {name: stage1_coarse, mixture: data_recipes/mixtures/stage1_coarse.yaml, epochs: 2}
      - name: grpo
        kind: rl
        mixture: data_recipes/mixtures/rl_emotion_think.yaml
        max_steps: 200
        micro_batch_size: 16              # completions per forward/backward chunk
        lr_lora: 1.0e-5
        rl:
          group_size: 8                   # G completions per prompt
          prompts_per_step: 4             # per process
          beta: 0.04                      # KL (k3) to the reference policy
          loss_type: grpo                 # grpo | dapo | dr_grpo
          rewards: [{name: format, weight: 0.5}, {name: label, weight: 1.0}]

    emollm train train/tiny_rl.yaml        # seconds: SFT stage, then GRPO
    emollm train train/mini_rl.yaml        # SynthMER: SFT stage 1 then GRPO

One optimiser step (per process; DDP / DeepSpeed ZeRO-0..2 reduce gradients as in SFT, through the
engine's explicit interface: ``autocast``, ``grad_sync``, ``backward``, ``update``):

1. **Prompts.** ``prompts_per_step`` training samples from the epoch plan (the same deterministic,
   rank-sliced order as SFT), each asked a task of the stage's mixture whose *gold field* it has
   (the answer is never shown). Features come from the feature cache, once per prompt.
2. **Rollouts** (:func:`rollout`). The prompts are embedded once (projectors run once per prompt) and
   prefilled once; the prefix KV cache is expanded G times (``DynamicCache.batch_repeat_interleave``)
   and the P x G completions are sampled together, token by token (temperature, top-p, placeholder
   tokens suppressed, stop at end-of-turn). Every completion has its own random stream, seeded by
   (run seed, stage, epoch, sample index, g): completions do not depend on the batch layout, the world
   size or a resume.
3. **Rewards** (:mod:`emollm.training.rewards`): weighted components; completions a reward cannot score
   (missing gold field) are reported and left out, never scored 0.
4. **Advantages**: (r - group mean) / (std + 1e-4), std of the group (``scale_rewards: group``), of the
   batch, or none (Dr.GRPO). With ``dynamic_sampling`` groups of zero reward variance leave the loss;
   with ``dynamic_sampling_max_rounds`` K > 0 up to K more rounds roll out the plan's next prompts until
   the step has ``prompts_per_step`` groups with variance (DAPO refill; every rank runs the same rounds).
5. **Loss**: clipped ratio surrogate (``epsilon``, ``epsilon_high``) + ``beta`` x k3 KL to the
   reference policy, aggregated per ``loss_type`` over the *global* batch (counts all-reduced, so
   1 process x 2P prompts and 2 processes x P prompts give the same gradient). The reference policy is
   the same model with its LoRA adapters disabled (``peft`` ``disable_adapter``: no second copy) or
   the trainable weights as the stage began (``reference: stage_start``). With ``num_iterations`` > 1
   the rollout is reused for that many optimiser updates against its frozen ``old`` log-probs.

Why not TRL's ``GRPOTrainer``: it forwards only image-side processor keys (no audio/video features),
requires a ``PreTrainedModel`` whose inputs are token ids plus processor tensors, and generates through
``generate``/vLLM from token ids; emollm's features are projected and scattered into ``inputs_embeds``
at placeholder positions, so rollouts, log-probs and the reference forward would all need overriding.
The loop here reuses the trainer's engines (DDP, DeepSpeed), checkpoints (exact resume), contract and logger, and
keeps TRL's option names (docs/TRAINING.md).

Logged per step (``<stage>/rl/...`` in metrics.jsonl and TensorBoard): ``reward`` and
``reward/<component>`` (+ ``/missing`` counts), ``kl``, ``entropy``, ``completion_length``,
``clip_fraction``, ``zero_variance_groups`` (``_rolled``: among all rolled-out groups), ``rollout_rounds``,
``rollouts``, ``loss``, ``lr_*``, ``rollouts_per_s``,
``train_samples_per_s``; a few completions go to ``rl_samples.jsonl``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from emollm.config import ConfigError
from emollm.data.contract import PromptContract
from emollm.data.sample import Sample
from emollm.features.featurizer import stack_features
from emollm.log import get_logger
from emollm.training.config import RLConfig, StageConfig
from emollm.training.data import EpochPlan, _seed
from emollm.training.rewards import RewardOutput, RewardStack

# The running ``emollm.training.trainer.Trainer`` (not imported: the trainer imports this module).
Trainer = Any

log = get_logger(__name__)


# ---------------------------------------------------------------------------------------------- prompts


@dataclass
class PromptBatch:
    """P prompts, left-padded: ``input_ids``/``attention_mask`` ``[P, Lp]``, features, what was asked."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    features: dict[str, torch.Tensor]
    samples: list[Sample]
    tasks: list[str]
    answer_formats: list[str]
    seeds: list[int]
    """One random-stream seed per prompt (completion g of prompt p uses ``seeds[p] + g``)."""
    encodings: list[Any] = field(default_factory=list, repr=False)
    """Per prompt: the processor's encoding and the featurizer's features, so ``join_prompts`` can
    regroup prompts of several batches without featurizing or drawing their tasks again."""
    item_features: list[Any] = field(default_factory=list, repr=False)


def rl_samples(contract: PromptContract, samples: Sequence[Sample]) -> list[Sample]:
    """The training samples an RL stage can ask: those with the gold field of one of its tasks."""
    return [s for s in samples if contract.available_tasks(s, gold_only=True)]


def build_prompts(
    system: Any,
    contract: PromptContract,
    featurizer: Any,
    samples: Sequence[Sample],
    root: Any,
    indices: Sequence[int],
    epoch: int,
    seed: int,
    stage_index: int,
) -> PromptBatch:
    """Generation prompts for ``samples[indices]`` (task, paraphrase and subtitle drawn per sample)."""
    chosen = [samples[i] for i in indices]
    feats = featurizer(chosen, root, system.modalities)
    encs, kept, tasks, fmts, seeds = [], [], [], [], []
    for i, s, f in zip(indices, chosen, feats, strict=True):
        rng = random.Random(_seed(seed, "rl-sample", stage_index, epoch, i))
        task = contract.sample_task(s, rng, gold_only=True)
        if task is None:  # rl_samples() filtered these out
            raise ValueError(f"sample {s.id!r} has no gold field for any task of {contract.name!r}")
        pidx = rng.randrange(len(contract.task(task).prompts))
        sub = rng.random() < contract.subtitle_prob if contract.subtitle == "random" else None
        mods = [m for m in system.modalities if m in f.features]
        conv = contract.conversation(s, task, mods, prompt_index=pidx, with_answer=False, include_subtitle=sub)
        encs.append(system.processor.encode(conv, generation=True))
        kept.append(f)
        tasks.append(task)
        fmts.append(contract.task(task).answer_format)
        seeds.append(_seed(seed, "rl-rollout", stage_index, epoch, i) % (2**62))
    return _collate(system, encs, kept, chosen, tasks, fmts, seeds)


def join_prompts(system: Any, picks: Sequence[tuple[PromptBatch, int]]) -> PromptBatch:
    """Prompt ``p`` of batch ``b`` for each ``(b, p)`` of ``picks``, in that order, as one batch."""

    def col(name: str) -> list[Any]:
        return [getattr(b, name)[p] for b, p in picks]

    return _collate(
        system,
        col("encodings"),
        col("item_features"),
        col("samples"),
        col("tasks"),
        col("answer_formats"),
        col("seeds"),
    )


def _collate(
    system: Any,
    encs: list[Any],
    feats: list[Any],
    samples: list[Sample],
    tasks: list[str],
    fmts: list[str],
    seeds: list[int],
) -> PromptBatch:
    batch = system.processor.collate(encs, padding_side="left")
    return PromptBatch(
        batch["input_ids"],
        batch["attention_mask"],
        stack_features(feats, system.modalities),
        samples,
        tasks,
        fmts,
        seeds,
        encs,
        feats,
    )


def _item_index(model: Any, input_ids: torch.Tensor, features: dict[str, torch.Tensor], rows: torch.Tensor) -> dict:
    """Features of the prompts ``rows`` (with repeats), in row order: ``{modality: [n, T, D]}``."""
    out = {}
    for m, f in features.items():
        pid = model.placeholder_ids[m]
        per = (input_ids == pid).sum(1) // getattr(model, "llm_tokens", {}).get(m, f.shape[1])  # items per prompt
        start = torch.cumsum(per, 0) - per
        idx = [torch.arange(int(start[r]), int(start[r] + per[r])) for r in rows.tolist()]
        idx = torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long)
        if idx.numel():
            out[m] = f[idx.to(f.device)]
    return out


# ---------------------------------------------------------------------------------------------- rollouts


def _sample_tokens(logits: torch.Tensor, gens: list[torch.Generator], temperature: float, top_p: float) -> torch.Tensor:
    """One token per row by the Gumbel-max trick with each row's own generator (exact categorical sampling)."""
    x = logits.float() / temperature
    if top_p < 1.0:
        probs = torch.softmax(x, -1)
        sp, si = probs.sort(-1, descending=True)
        drop = sp.cumsum(-1) - sp > top_p  # keep the smallest set whose mass reaches top_p
        x = x.masked_fill(torch.zeros_like(drop).scatter(-1, si, drop), float("-inf"))
    u = torch.stack([torch.rand(x.shape[-1], generator=g, device=g.device) for g in gens]).to(x.device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
    return (x + gumbel).argmax(-1)


@torch.no_grad()
def rollout(
    model: Any,
    prompts: PromptBatch,
    group_size: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    shared_prefix: bool = True,
    autocast: Any = None,
    min_new_tokens: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``group_size`` completions per prompt: token ids ``[P*G, T]`` (pad after the stop token)
    and their mask ``[P*G, T]`` (1 up to and including the stop token). Row ``p*G + g`` is completion g
    of prompt p. ``shared_prefix``: one prefill per prompt, KV expanded G times; else P*G prefills.
    ``min_new_tokens``: stop tokens are banned before this many tokens (throughput benchmarks)."""
    dev = model.device
    G = group_size
    ids = prompts.input_ids.to(dev)
    att = prompts.attention_mask.to(dev)
    feats = {k: v.to(dev) for k, v in prompts.features.items()}
    stops = torch.tensor(model.stop_ids, device=dev)
    banned = list(model.suppressed_ids)
    gens = []
    for s in prompts.seeds:
        for g in range(G):
            gens.append(torch.Generator(device="cpu").manual_seed(int(s) + g))
    ctx = autocast if autocast is not None else nullcontext()
    with ctx:
        # features once per prompt; the prompt KV once per group (``share_prefix``), expanded G times
        logits, state = model.prefill(ids, att, feats, repeat=G, share_prefix=shared_prefix)
        n = logits.shape[0]
        done = torch.zeros(n, dtype=torch.bool, device=dev)
        toks, masks = [], []
        for t in range(max_new_tokens):
            logits = logits.float()
            if banned:
                logits[:, banned] = float("-inf")
            if t < min_new_tokens:
                logits[:, stops] = float("-inf")
            tok = _sample_tokens(logits, gens, temperature, top_p)
            tok = torch.where(done, torch.full_like(tok, model.pad_id), tok)
            toks.append(tok)
            masks.append(~done)
            done = done | torch.isin(tok, stops)
            if bool(done.all()) or t == max_new_tokens - 1:
                break
            logits = model.decode(tok, state)
    return torch.stack(toks, 1), torch.stack(masks, 1).long()


# ---------------------------------------------------------------------------------------------- log-probs


def completion_logps(
    forward: Any,
    model: Any,
    prompts: PromptBatch,
    rows: torch.Tensor,
    comp_ids: torch.Tensor,
    comp_mask: torch.Tensor,
    group_size: int,
    temperature: float,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs ``[n, T]`` of completions ``rows`` (global row indices) under ``forward``
    (the DDP-wrapped model for the policy, the bare one for reference/old), and their entropies."""
    dev = model.device
    prow = rows // group_size
    pid = prompts.input_ids[prow].to(dev)
    patt = prompts.attention_mask[prow].to(dev)
    feats = {k: v.to(dev) for k, v in _item_index(model, prompts.input_ids, prompts.features, prow.cpu()).items()}
    cid = comp_ids[rows].to(dev)
    cm = comp_mask[rows].to(dev)
    T = cid.shape[1]
    ids = torch.cat([pid, cid], 1)
    att = torch.cat([patt, cm], 1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    out = forward(input_ids=ids, attention_mask=att, features=feats, position_ids=pos, logits_to_keep=T + 1)
    logits = out.logits[:, :-1].float() / temperature  # position j predicts completion token j
    lsm = F.log_softmax(logits, -1)
    logp = lsm.gather(-1, cid.unsqueeze(-1)).squeeze(-1)
    ent = None
    if with_entropy:
        ent = -(lsm.exp() * lsm).sum(-1).detach()
    return logp, ent


# ---------------------------------------------------------------------------------------------- advantages


def informative_groups(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """Per group ``[N / G]``: at least two scored rows whose rewards differ (a non-zero advantage)."""
    _, cnt, _, std = _group_stats(rewards, group_size)
    return (cnt >= 2) & (std >= 1e-6)


def _group_stats(rewards: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over the scored (finite) rows of each group: which rows are scored ``[N / G, G]``, their count,
    mean and sample std ``[N / G]``."""
    r = rewards.reshape(-1, group_size)
    ok = np.isfinite(r)
    cnt = ok.sum(1)
    mean = np.where(ok, r, 0.0).sum(1) / np.maximum(cnt, 1)
    var = (np.where(ok, (r - mean[:, None]) ** 2, 0.0)).sum(1) / np.maximum(cnt - 1, 1)
    return ok, cnt, mean, np.sqrt(var)


def group_advantages(
    rewards: np.ndarray, group_size: int, scale: str = "group", dynamic_sampling: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Advantages ``[N]``, which rows are in the loss ``[N]`` and the number of zero-variance groups.

    Rows with a NaN reward (no component could score them) are out of the loss and of the group
    statistics; a group with fewer than two scored rows has no advantage."""
    r = rewards.reshape(-1, group_size)
    ok, cnt, mean, std = _group_stats(rewards, group_size)
    zero = (cnt >= 2) & (std < 1e-6)
    adv = np.where(ok, r - mean[:, None], 0.0)
    if scale == "group":
        adv = adv / (std[:, None] + 1e-4)
    elif scale == "batch":
        fin = rewards[np.isfinite(rewards)]
        adv = adv / ((float(np.std(fin, ddof=1)) if fin.size > 1 else 0.0) + 1e-4)
    valid = ok & (cnt[:, None] >= 2)
    if dynamic_sampling:
        valid &= ~zero[:, None]
    adv = np.where(valid, adv, 0.0)
    return adv.reshape(-1), valid.reshape(-1), int(zero.sum())


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------------------------- reference


@contextmanager
def reference_policy(model: Any, rl: RLConfig, snapshot: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Make ``model`` (the bare EmoLLM) the reference policy for the duration of the block."""
    if rl.reference == "stage_start":
        assert snapshot is not None
        params = dict(model.named_parameters())
        saved = {n: params[n].detach().clone() for n in snapshot}
        with torch.no_grad():
            for n, v in snapshot.items():
                params[n].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, v in saved.items():
                    params[n].copy_(v)
        return
    llm = model.llm
    if not hasattr(llm, "disable_adapter"):
        raise ConfigError(
            "rl.reference: lora_disabled needs LoRA adapters (model.lora); use reference: stage_start or beta: 0"
        )
    with llm.disable_adapter():
        yield


# ---------------------------------------------------------------------------------------------- the stage


@dataclass
class _Round:
    """One rollout round of a step: P prompts of the plan, their P x G completions and rewards."""

    prompts: PromptBatch
    comp: torch.Tensor
    cmask: torch.Tensor
    texts: list[str]
    scored: RewardOutput


def _refilled(
    system: Any, rounds: list[_Round], n_prompts: int, G: int, pad_id: int
) -> tuple[PromptBatch, torch.Tensor, torch.Tensor, list[str], RewardOutput]:
    """The step's batch from several rounds: the first ``n_prompts`` groups with reward variance, in plan
    order; if the rounds ran out first, the rest are the first zero-variance ones (they leave the loss)."""
    groups = [(ri, p) for ri, r in enumerate(rounds) for p in range(len(r.prompts.samples))]
    info = {
        (ri, p): bool(f) for ri, r in enumerate(rounds) for p, f in enumerate(informative_groups(r.scored.total, G))
    }
    keep = [g for g in groups if info[g]][:n_prompts]
    keep += [g for g in groups if not info[g]][: n_prompts - len(keep)]
    keep.sort()
    prompts = join_prompts(system, [(rounds[ri].prompts, p) for ri, p in keep])
    T = max(r.comp.shape[1] for r in rounds)
    comp = torch.full((len(keep) * G, T), pad_id, dtype=rounds[0].comp.dtype)
    cmask = torch.zeros((len(keep) * G, T), dtype=rounds[0].cmask.dtype)
    rows: list[tuple[int, int]] = [(ri, p * G + g) for ri, p in keep for g in range(G)]
    texts = []
    for j, (ri, row) in enumerate(rows):
        r = rounds[ri]
        comp[j, : r.comp.shape[1]] = r.comp[row]
        cmask[j, : r.cmask.shape[1]] = r.cmask[row]
        texts.append(r.texts[row])

    def pick(get: Any) -> np.ndarray:
        return np.array([get(rounds[ri])[row] for ri, row in rows], dtype=np.float64)

    comps = {k: pick(lambda r, k=k: r.scored.components[k]) for k in rounds[0].scored.components}
    return prompts, comp, cmask, texts, RewardOutput(comps, pick(lambda r: r.scored.total))


def _fmt_missing(stack: RewardStack, samples: Sequence[Sample]) -> str:
    cov = stack.coverage(samples)
    return ", ".join(f"{k}: {v}" for k, v in cov.items() if v)


def run_rl_stage(tr: Trainer, si: int, stage: StageConfig) -> dict[str, Any]:
    """One ``kind: rl`` stage inside ``Trainer.run`` (same engines, checkpoints, logger and resume)."""
    from emollm.io import JsonlAppender
    from emollm.training.engines import FSDPEngine
    from emollm.training.state import Progress, TrainingError, _set_rng_state, _unwrap

    cfg = tr.cfg
    rl = stage.rl
    assert rl is not None
    own, tr.system.contract = tr.contracts[si]
    samples = rl_samples(own, tr.train_samples)
    stack = RewardStack.build(rl.rewards, tr.system.labels, f"stages[{si}].rl.rewards")
    if not samples:
        raise ConfigError(
            f"stage {stage.name!r}: no training sample has the gold field of any task of {stage.mixture} "
            f"(tasks: {', '.join(own.tasks)})"
        )
    miss = _fmt_missing(stack, samples)
    if miss and tr.main:
        log.warning(
            "stage %s: of %d RL prompts, these lack the gold field a reward needs (reported as "
            "reward/<name>/missing, not scored 0): %s",
            stage.name,
            len(samples),
            miss,
        )
    plan = EpochPlan(len(samples), rl.prompts_per_step, tr.world, cfg.seed + 7919 * si, None, False)
    steps_epoch = plan.micro_batches_per_epoch
    if steps_epoch < 1:
        raise ConfigError(
            f"stage {stage.name!r}: {len(samples)} RL prompts are fewer than prompts_per_step x world "
            f"({plan.global_micro}); lower rl.prompts_per_step"
        )
    total = stage.max_steps or max(1, math.ceil(stage.epochs * steps_epoch))
    engine = tr._engine(stage, total * rl.num_iterations)
    if isinstance(engine, FSDPEngine):  # RunConfig refuses it first
        raise ConfigError("rl stages run single-process, DDP or DeepSpeed ZeRO-0/1/2, not FSDP")
    if getattr(engine, "zero_stage", 0) >= 3:
        raise ConfigError(
            f"stage {stage.name!r}: rl stages run under DeepSpeed ZeRO stages 0-2, not ZeRO-3 (its partitioned "
            "parameters are gathered per module forward; the rollouts' prefill/decode and the reference "
            "swaps use the bare model's weights directly); use train/deepspeed/zero2.json"
        )
    resuming = tr.resume_dir is not None and tr.progress.stage == si and tr.progress.step > 0
    stage_dir = tr.out / stage.name
    ref_file = stage_dir / "reference.safetensors"
    snapshot = None
    if rl.beta > 0 and rl.reference == "stage_start":
        from safetensors.torch import load_file, save_file

        src = (tr.resume_dir.parent / "reference.safetensors") if resuming else None  # type: ignore[union-attr]
        if src is not None and src.is_file():
            snapshot = load_file(str(src))
        else:
            if resuming:
                raise TrainingError(f"cannot resume stage {stage.name!r}: {src} (the reference policy) is missing")
            snapshot = {
                n: p.detach().cpu().clone() for n, p in _unwrap(tr.system.model).named_parameters() if p.requires_grad
            }
            if tr.main:
                stage_dir.mkdir(parents=True, exist_ok=True)
                tmp = ref_file.with_name(".reference.partial")
                save_file(snapshot, str(tmp))
                tmp.replace(ref_file)
        snapshot = {n: v.to(tr.device) for n, v in snapshot.items()}
    if resuming:
        engine.load_optimizer(tr.resume_dir)  # type: ignore[arg-type]
        rng_file = tr.resume_dir / f"rng_rank{tr.rank}.pt"  # type: ignore[operator]
        if rng_file.is_file():
            _set_rng_state(torch.load(rng_file, weights_only=False))
    else:
        tr.progress = Progress(stage=si, global_step=tr.progress.global_step, history=tr.progress.history)
    prog = tr.progress
    bar = None
    if tr.progress_bar:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=prog.step, desc=f"{stage.name} (rl)", unit="step", dynamic_ncols=True)
    model = _unwrap(engine.model)
    model.train()
    G = rl.group_size
    eps_hi = rl.epsilon_high if rl.epsilon_high is not None else rl.epsilon
    samples_log = JsonlAppender(tr.out / "rl_samples.jsonl") if tr.main and rl.log_completions else None
    window: list[dict[str, float]] = []
    t_last = time.perf_counter()
    last_good: Path | None = tr.resume_dir if resuming else None
    try:
        while prog.step < total:
            t0 = time.perf_counter()
            model.eval()  # no dropout while sampling
            rounds: list[_Round] = []
            epoch, micro = prog.epoch, prog.micro
            while True:  # one rollout round; more only to refill zero-variance groups (DAPO dynamic sampling)
                idx = list(plan.rank_batches(epoch, tr.rank)[micro])
                pb = build_prompts(tr.system, own, tr.featurizer, samples, tr.manifest.root, idx, epoch, cfg.seed, si)
                comp, cmask = rollout(
                    model, pb, G, rl.max_new_tokens, rl.temperature, rl.top_p, rl.shared_prefix, engine.autocast()
                )
                texts = [tr.system.processor.decode(comp[r][cmask[r].bool()].tolist()) for r in range(comp.shape[0])]
                rs = [s for s in pb.samples for _ in range(G)]
                sc = stack.score(texts, rs, [f for f in pb.answer_formats for _ in range(G)])
                rounds.append(_Round(pb, comp, cmask, texts, sc))
                epoch, micro = (epoch, micro + 1) if micro + 1 < steps_epoch else (epoch + 1, 0)
                if len(rounds) > rl.dynamic_sampling_max_rounds:
                    break
                have = sum(int(informative_groups(r.scored.total, G).sum()) for r in rounds)
                # every rank rolls out the same number of rounds (the collectives of the update must match)
                if _all_sum([float(max(0, rl.prompts_per_step - have))], tr.device)[0] == 0:
                    break
            n_rolled = sum(r.comp.shape[0] for r in rounds)
            zero_sampled = sum(int((~informative_groups(r.scored.total, G)).sum()) for r in rounds)
            if len(rounds) == 1:
                r0 = rounds[0]
                prompts, comp, cmask, texts, scored = r0.prompts, r0.comp, r0.cmask, r0.texts, r0.scored
            else:
                prompts, comp, cmask, texts, scored = _refilled(tr.system, rounds, rl.prompts_per_step, G, model.pad_id)
            t_roll = time.perf_counter() - t0
            rows_samples = [s for s in prompts.samples for _ in range(G)]
            adv, valid, n_zero = group_advantages(scored.total, G, rl.scale_rewards, rl.dynamic_sampling)
            n_rows = comp.shape[0]
            tok_valid = cmask.float() * torch.from_numpy(valid).float()[:, None]
            g_rows, g_tok = _all_sum([float(valid.sum()), float(tok_valid.sum())], tr.device)
            world = tr.world
            denom = {"grpo": g_rows, "dapo": g_tok, "dr_grpo": float(n_rows * world * rl.max_new_tokens)}[rl.loss_type]
            all_rows = torch.arange(n_rows)
            chunks = [all_rows[i : i + stage.micro_batch_size] for i in range(0, n_rows, stage.micro_batch_size)]
            adv_t = torch.from_numpy(adv).float()
            ref_lp: list[torch.Tensor | None] = [None] * len(chunks)
            old_lp: list[torch.Tensor | None] = [None] * len(chunks)
            t1 = time.perf_counter()
            with torch.no_grad(), engine.autocast():
                for c, rows in enumerate(chunks):
                    if rl.beta > 0:
                        with reference_policy(model, rl, snapshot):
                            ref_lp[c] = completion_logps(model, model, prompts, rows, comp, cmask, G, rl.temperature)[0]
                    if rl.num_iterations > 1:
                        old_lp[c] = completion_logps(model, model, prompts, rows, comp, cmask, G, rl.temperature)[0]
            model.train()
            stats = {"loss": 0.0, "kl": 0.0, "ent": 0.0, "clip": 0.0, "tok": 0.0}
            gnorm = None
            skipped = denom <= 0
            for it in range(rl.num_iterations):
                if skipped:
                    break
                for c, rows in enumerate(chunks):
                    last = c == len(chunks) - 1
                    with engine.grad_sync(last):
                        logp, ent = completion_logps(
                            engine.model, model, prompts, rows, comp, cmask, G, rl.temperature, with_entropy=it == 0
                        )
                        m = tok_valid[rows].to(logp.device)
                        a = adv_t[rows].to(logp.device)[:, None]
                        old = old_lp[c] if old_lp[c] is not None else logp.detach()
                        ratio = torch.exp(logp - old)
                        clipped = torch.clamp(ratio, 1 - rl.epsilon, 1 + eps_hi)
                        per_tok = -torch.minimum(ratio * a, clipped * a)
                        kl = None
                        if rl.beta > 0:
                            d = ref_lp[c] - logp  # type: ignore[operator]
                            kl = torch.exp(d) - d - 1
                            per_tok = per_tok + rl.beta * kl
                        if rl.loss_type == "grpo":
                            loss = ((per_tok * m).sum(-1) / m.sum(-1).clamp(min=1)).sum()
                        else:
                            loss = (per_tok * m).sum()
                        loss = loss * world / denom
                        engine.backward(loss)
                    if it == 0:
                        cm = cmask[rows].float().to(logp.device)
                        stats["loss"] += float(loss.detach()) / world
                        stats["tok"] += float(cm.sum())
                        if kl is not None:
                            stats["kl"] += float((kl.detach() * cm).sum())
                        if ent is not None:
                            stats["ent"] += float((ent * cm).sum())
                        clip_hit = ((ratio < 1 - rl.epsilon) & (a < 0)) | ((ratio > 1 + eps_hi) & (a > 0))
                        stats["clip"] += float((clip_hit.float() * m).sum())
                gnorm = engine.update()
            if skipped:
                for _ in range(rl.num_iterations):
                    engine.skip_update()
            t_train = time.perf_counter() - t1
            prog.step += 1
            prog.global_step += 1
            prog.epoch, prog.micro = epoch, micro  # past every round's prompts: a resume continues from here
            lengths = cmask.sum(1).float()
            rec = {
                "reward": float(np.nansum(scored.total)),
                "reward_n": float(np.isfinite(scored.total).sum()),
                "kl": stats["kl"],
                "entropy": stats["ent"],
                "tokens": float(cmask.sum()),
                "clip": stats["clip"],
                "valid_tokens": float(tok_valid.sum()),
                "length": float(lengths.sum()),
                "rows": float(n_rows),
                "rows_rolled": float(n_rolled),
                "rounds": float(len(rounds)),
                "groups_rolled": float(n_rolled // G),
                "zero_var_rolled": float(zero_sampled),
                "rows_trained": 0.0 if skipped else float(n_rows * rl.num_iterations),
                "groups": float(len(prompts.samples)),
                "zero_var": float(n_zero),
                "loss": stats["loss"],
                "t_roll": t_roll,
                "t_train": t_train,
                "skipped": float(skipped),
            }
            for k, v in scored.components.items():
                rec[f"c/{k}"] = float(np.nansum(v))
                rec[f"n/{k}"] = float(np.isfinite(v).sum())
                rec[f"m/{k}"] = float((~np.isfinite(v)).sum())
            window.append(rec)
            if samples_log is not None and prog.step % stage.log_every == 0:
                for r in range(min(rl.log_completions, n_rows)):
                    samples_log.write(
                        {
                            "stage": stage.name,
                            "step": prog.step,
                            "sample_id": rows_samples[r].id,
                            "task": prompts.tasks[r // G],
                            "completion": texts[r],
                            "reward": None if not np.isfinite(scored.total[r]) else float(scored.total[r]),
                        }
                    )
            mean_reward = rec["reward"] / max(rec["reward_n"], 1)
            if not math.isfinite(stats["loss"]):
                raise TrainingError(
                    f"stage {stage.name!r} step {prog.step}: the RL loss is not finite; last good checkpoint: "
                    f"{last_good or 'none written yet'}. Lower the learning rate."
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{mean_reward:.3f}")
            if prog.step % stage.log_every == 0 or prog.step == total:
                _log_window(tr, stage, engine, window, gnorm, time.perf_counter() - t_last, prog, world)
                window, t_last = [], time.perf_counter()
            if stage.eval_every and prog.step % stage.eval_every == 0 and prog.step < total:
                tr._validate_and_keep_best(engine, stage, stage_dir, prog)
            if stage.save_every and prog.step % stage.save_every == 0 and prog.step < total:
                last_good = tr._save_resumable(engine, stage, stage_dir, prog)
    finally:
        if samples_log is not None:
            samples_log.close()
        stack.close()
    if bar is not None:
        bar.close()
    metrics, sync = tr._finish_stage(engine, stage, stage_dir, prog)
    rewards = [h["reward"] for h in prog.history if h.get("stage") == stage.name and "reward" in h]
    return {
        "steps": prog.step,
        "val": metrics,
        "best": prog.best,
        "ranks_in_sync": sync,
        "reward_first": rewards[0] if rewards else None,
        "reward_last": rewards[-1] if rewards else None,
        "reward_missing": dict(stack.missing_total),
    }


def _log_window(
    tr: Trainer,
    stage: StageConfig,
    engine: Any,
    window: list[dict[str, float]],
    gnorm: float | None,
    dt: float,
    prog: Any,
    world: int,
) -> None:
    keys = sorted({k for r in window for k in r})
    local = [sum(r.get(k, 0.0) for r in window) for k in keys]
    tot = dict(zip(keys, _all_sum(local, tr.device), strict=True))
    t_roll = tot["t_roll"] / world
    t_train = tot["t_train"] / world
    m: dict[str, float] = {
        "rl/reward": tot["reward"] / max(tot["reward_n"], 1),
        "rl/kl": tot["kl"] / max(tot["tokens"], 1),
        "rl/entropy": tot["entropy"] / max(tot["tokens"], 1),
        "rl/completion_length": tot["length"] / max(tot["rows"], 1),
        "rl/clip_fraction": tot["clip"] / max(tot["valid_tokens"], 1),
        "rl/zero_variance_groups": tot["zero_var"] / max(tot["groups"], 1),
        "rl/loss": tot["loss"] / len(window),
        "rl/skipped_steps": tot["skipped"] / world,
        "rl/rollouts_per_s": tot["rows_rolled"] / max(t_roll, 1e-9),
        "rl/rollouts": tot["rows_rolled"],
        "rl/rollout_rounds": tot["rounds"] / (len(window) * world),
        "rl/zero_variance_groups_rolled": tot["zero_var_rolled"] / max(tot["groups_rolled"], 1),
        "rl/train_samples_per_s": tot["rows_trained"] / max(t_train, 1e-9),
        "rl/steps_per_s": len(window) / max(dt, 1e-9),
    }
    for k in keys:
        if k.startswith("c/"):
            name = k[2:]
            m[f"rl/reward/{name}"] = tot[k] / max(tot[f"n/{name}"], 1)
            m[f"rl/reward/{name}/missing"] = tot[f"m/{name}"]
    for g in engine.optimizer.param_groups:
        if "name" in g:
            m[f"rl/lr_{g['name']}"] = g["lr"]
    if gnorm is not None:
        m["rl/grad_norm"] = gnorm
    tr.logger.log({f"{stage.name}/{k}": v for k, v in m.items()}, prog.global_step)
    prog.history.append(
        {"stage": stage.name, "step": prog.step, "reward": m["rl/reward"], "kl": m["rl/kl"], "loss": m["rl/loss"]}
    )
