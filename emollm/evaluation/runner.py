"""``emollm eval``: run evaluation tasks and suites on a checkpoint or preset, resumably and shardably.

    from emollm.evaluation.runner import EvalOptions, run_eval
    outcome = run_eval(EvalOptions(checkpoint="runs/mini/final", suite="eval/suites/synthmer.yaml"))
    outcome.results["tasks"]["synthmer"]["metrics"]["classification"]["score"]

What happens:

1. **Plan.** Tasks (``--tasks`` or a suite) are loaded, their data resolved (``tasks.resolve_data``: a
   missing root fails here, before any model is loaded) and expanded into *conditions*: the base prompt,
   modality-ablation subsets, prompt-robustness variants (``variants.py``) and noise levels. Each
   condition has a ``prompt_id``: the sha256 of everything that decides the model's input and answer
   (task version, instruction text, candidates, modalities, subtitle, noise, decoding).
2. **Execute.** Samples of the shard (``--shard i/n``: blocks i, i+n, ... of ``--batch-size`` samples) are
   featurized once per chunk and noise setting (``Featurizer``, cache shared with training) and run
   through every pending condition with ``Predictor`` (constrained ``classify_conversations`` or greedy
   ``generate_conversations``). Each finished sample appends one record to
   ``<out>/records/shard-<i>-of-<n>.jsonl`` (``JsonlAppender``: flushed and fsynced per record).
3. **Resume.** Records are keyed by (task, prompt_id, sample id, checkpoint identity); every records
   file of the folder is read first, so a killed run, or a run on more samples, only computes what is
   missing. ``results.json`` counts computed and reused records.
4. **Report.** When every planned record exists (an unsharded run, the last shard, or ``--merge``),
   ``report.write_report`` scores everything and writes results.json, report.md, plots and CSVs.

Checkpoint identity: ``checkpoint:<folder name>@<sha256 of trainable.safetensors + model.yaml>`` or
``preset:<name>@<sha256 of the resolved model config>``. A preset is a zero-shot model; its base
condition reads the subtitle only (``--modalities auto``), since its projectors are untrained.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emollm.data.sample import Sample
from emollm.evaluation.plan import (
    RECORD_FORMAT,
    CheckpointInfo,
    Condition,
    EvalOptions,
    MetricPlan,
    Plan,
    RecordStore,
    TaskPlan,
    build_plan,
    checkpoint_info,
    endpoint_info,
    gold_text,
    plan_task,
    record_key,
    run_info,
    shard_name,
)
from emollm.io import atomic_write_json
from emollm.log import get_logger
from emollm.media.noise import NoiseSpec

# the plan lives in plan.py; its names stay importable from the runner
__all__ = [
    "CheckpointInfo",
    "Condition",
    "EvalOptions",
    "EvalOutcome",
    "MetricPlan",
    "Plan",
    "RECORD_FORMAT",
    "RecordStore",
    "TaskPlan",
    "build_plan",
    "checkpoint_info",
    "default_out",
    "endpoint_info",
    "execute",
    "gold_text",
    "missing_records",
    "plan_task",
    "record_key",
    "run_eval",
    "run_info",
    "shard_name",
]

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

log = get_logger(__name__)


# ----------------------------------------------------------------------------------------------
# execution


def _restrict(f: Any, modalities: tuple[str, ...]) -> Any:
    from emollm.features.featurizer import SampleFeatures

    return SampleFeatures(f.sample_id, {m: v for m, v in f.features.items() if m in modalities}, dict(f.missing))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def execute(
    plan: Plan, opts: EvalOptions, ckpt: CheckpointInfo, store: RecordStore, system: EmoSystem | None = None
) -> dict[str, int]:
    """Compute every missing record of this shard; returns {computed, reused, total} for the shard."""
    from tqdm.auto import tqdm

    from emollm.features.cache import FeatureCache
    from emollm.features.featurizer import Featurizer, SampleFeatures
    from emollm.inference.engine import Predictor

    units = plan.unique_units(opts.shard, opts.batch_size)
    pending = [(tp, c, s) for tp, c, s in units if not store.has(tp.task.name, c.prompt_id, s.id)]
    stats = {"computed": 0, "reused": len(units) - len(pending), "total": len(units)}
    if not pending:
        return stats
    predictor: Any
    if ckpt.endpoint is not None:
        from emollm.inference.remote import RemotePredictor

        predictor = remote = RemotePredictor(ckpt.endpoint, ckpt.contract)

        def prepare(chunk: list[Sample], root: Any, mods: list[str], noise: NoiseSpec | None) -> list[Any]:
            return remote.prepare(chunk, root, mods, noise)
    else:
        if system is None:
            from emollm.model.resolve import load_system

            log.info("loading %s", ckpt.spec)
            system = load_system(ckpt.spec, device=opts.device)
        cache = FeatureCache(opts.features) if opts.feature_mode != "live" else None
        featurizer = Featurizer(system.encoders, cache, opts.feature_mode, batch_size=opts.batch_size)
        predictor = Predictor(system, featurizer, contract=ckpt.contract, batch_size=opts.batch_size)

        def prepare(chunk: list[Sample], root: Any, mods: list[str], noise: NoiseSpec | None) -> list[Any]:
            fz = featurizer.with_noise(noise) if noise is not None else featurizer
            return fz(chunk, root, mods)

    todo = {(tp.task.name, c.prompt_id, s.id) for tp, c, s in pending}
    bar = tqdm(total=len(pending), desc="eval", unit="answer", disable=not opts.progress, dynamic_ncols=True)
    try:
        for tp in plan.tasks:
            samples = tp.shard(*opts.shard, opts.batch_size)
            groups: dict[str, list[Condition]] = {}
            for c in tp.conditions:
                key = c.noise.describe() if c.noise is not None and c.modalities else "clean"
                groups.setdefault(key, []).append(c)
            for conds in groups.values():
                noise = next((c.noise for c in conds if c.noise is not None and c.modalities), None)
                need = [s for s in samples if any((tp.task.name, c.prompt_id, s.id) in todo for c in conds)]
                mods = [m for m in ckpt.modality_kinds if any(m in c.modalities for c in conds)]
                bar.set_postfix_str(f"{tp.task.name} ({len(conds)} condition(s))")
                for chunk in _chunks(need, opts.batch_size):
                    root = tp.data.manifest.root
                    feats = prepare(chunk, root, mods, noise) if mods else [SampleFeatures(s.id) for s in chunk]
                    for c in conds:
                        idx = [j for j, s in enumerate(chunk) if (tp.task.name, c.prompt_id, s.id) in todo]
                        if not idx:
                            continue
                        recs = _run_condition(predictor, tp, c, [chunk[j] for j in idx], [feats[j] for j in idx])
                        for rec in recs:
                            rec["checkpoint"] = ckpt.identity
                            rec["shard"] = f"{opts.shard[0]}/{opts.shard[1]}"
                            store.append(rec)
                            todo.discard((rec["task"], rec["prompt_id"], rec["sample_id"]))
                        stats["computed"] += len(recs)
                        bar.update(len(recs))
    finally:
        bar.close()
        if ckpt.endpoint is not None:
            used = predictor.write_usage(store.folder.parent)
            log.info(
                "endpoint %s: %d request(s) sent, %d answered from the cache, %d prompt + %d completion tokens, cost %.4f",
                ckpt.endpoint.base_url,
                predictor.usage.requests,
                predictor.usage.cached,
                predictor.usage.prompt_tokens,
                predictor.usage.completion_tokens,
                predictor.usage.cost(ckpt.endpoint),
            )
            stats["endpoint"] = used  # type: ignore[assignment]
    return stats


def _run_condition(
    predictor: Any, tp: TaskPlan, c: Condition, samples: list[Sample], feats: list[Any]
) -> list[dict[str, Any]]:
    fs = [_restrict(f, c.modalities) for f in feats]
    task = tp.task.prompt.task
    if c.per_sample:  # each sample asked with its own instruction, scored over its own candidates
        convs = []
        for s, f in zip(samples, fs, strict=True):
            sp = tp.prompts[s.id]
            sub = c.subtitle and not sp.subtitle_inside
            convs += predictor.conversations([s], [f], task, 0, include_subtitle=sub, instruction=sp.instruction)
    else:
        convs = predictor.conversations(
            samples, fs, task, tp.task.prompt.index, include_subtitle=c.subtitle, instruction=c.instruction
        )
    base = {"format": RECORD_FORMAT, "task": tp.task.name, "variant": c.id, "prompt_id": c.prompt_id}
    out = []
    if tp.method == "score_labels":
        res: list[Any] = [None] * len(samples)
        if c.per_sample:
            groups: dict[tuple[str, ...], list[int]] = {}
            for i, s in enumerate(samples):
                groups.setdefault(tp.prompts[s.id].candidates, []).append(i)
            for cands, idx in groups.items():
                rs = predictor.classify_conversations([convs[i] for i in idx], [fs[i] for i in idx], labels=list(cands))
                for i, r in zip(idx, rs, strict=True):
                    res[i] = r
        else:
            res = predictor.classify_conversations(convs, fs, labels=c.candidates)
        for s, f, r in zip(samples, fs, res, strict=True):
            out.append(
                {
                    **base,
                    "sample_id": s.id,
                    "method": "score_labels",
                    "answer": r.label,
                    "probs": r.probs,
                    "logp": r.logp,
                    "modalities": list(f.features),
                    "time": time.time(),
                }
            )
    else:
        texts = predictor.generate_conversations(convs, fs, max_new_tokens=tp.task.answers.max_new_tokens)
        for s, f, t in zip(samples, fs, texts, strict=True):
            out.append(
                {
                    **base,
                    "sample_id": s.id,
                    "method": "generate",
                    "text": t,
                    "modalities": list(f.features),
                    "time": time.time(),
                }
            )
    return out


# ----------------------------------------------------------------------------------------------
# the whole run


@dataclass
class EvalOutcome:
    out_dir: Path
    complete: bool
    """Every planned record exists (the report was written)."""
    stats: dict[str, int]
    """This process: computed, reused and total answers of its shard (results.json counts the whole plan)."""
    results: dict[str, Any] | None
    missing: int = 0


def default_out(ckpt: CheckpointInfo) -> Path:
    return Path("runs") / "eval" / ckpt.name


def missing_records(plan: Plan, store: RecordStore) -> list[tuple[str, str, str]]:
    return [
        (tp.task.name, c.id, s.id) for tp, c, s in plan.unique_units() if not store.has(tp.task.name, c.prompt_id, s.id)
    ]


def run_eval(opts: EvalOptions, system: EmoSystem | None = None) -> EvalOutcome:
    """Plan, execute (unless ``merge``), and write the report when every record exists.

    ``system``: an already loaded ``EmoSystem`` for ``opts.checkpoint`` (tests, notebooks); loaded lazily
    otherwise, and not at all when every record is already there.
    """
    from emollm.evaluation.report import write_report

    ckpt = run_info(opts)
    out = Path(opts.out) if opts.out else default_out(ckpt)
    plan = build_plan(opts, ckpt)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.contract.save(out)  # the run records what the model was asked
    rec_dir = out / "records"
    store = RecordStore(rec_dir, ckpt.identity)
    if store.n_other_checkpoint:
        log.warning("%s: %d record(s) of another checkpoint are ignored", rec_dir, store.n_other_checkpoint)
    if opts.merge:
        n = len(plan.unique_units())
        stats = {"computed": 0, "reused": n, "total": n}
    else:
        name = shard_name(opts.shard)
        store.open(rec_dir / f"{name}.jsonl")
        try:
            stats = execute(plan, opts, ckpt, store, system)
        finally:
            store.close()
        info = {**stats, "checkpoint": ckpt.identity, "batch_size": opts.batch_size, "time": time.time()}
        atomic_write_json(rec_dir / f"{name}.stats.json", info)
    missing = missing_records(plan, store)
    if missing:
        if opts.merge:
            shown = ", ".join("/".join(m) for m in missing[:3])
            raise ValueError(
                f"--merge: {len(missing)} record(s) are missing in {rec_dir} (e.g. {shown}); "
                "run every shard to completion first"
            )
        return EvalOutcome(out, False, stats, None, len(missing))
    total = len(plan.unique_units())
    run = {"computed": stats["computed"], "reused": total - stats["computed"], "total": total}
    results = write_report(plan, store, out, ckpt, opts, run)
    return EvalOutcome(out, True, stats, results)
