"""``emollm train``: multi-stage LoRA + projector training on one CPU, one GPU or many.

    emollm train train/mini.yaml                                   # single process
    torchrun --nproc_per_node 8 -m emollm train train/emotion_llama/stage1_coarse.yaml
    torchrun --nproc_per_node 8 -m emollm train RECIPE distributed.strategy=deepspeed \
        distributed.deepspeed_config=train/deepspeed/zero2.json
    emollm train RECIPE --resume auto                              # continue the latest checkpoint

Per stage: AdamW with separate learning rates for projectors and LoRA (no decay on biases and 1-d
weights), linear warm-up then cosine (or linear/constant) decay to ``min_lr_ratio``, gradient
accumulation, clipping, optional gradient checkpointing, bf16/fp16 autocast, modality and subtitle
dropout. Validation (weighted F1 through ``score_labels`` on the held-out split) every
``eval_every`` steps and at the end; the best checkpoint is kept. Resumable checkpoints hold the
trainable weights, optimiser, scheduler, every rank's RNG and the data position, and are written
atomically; a non-finite loss stops the run and names the last good checkpoint.

Output layout (``runs/<name>/``)::

    run.json                    config, git sha, data/feature hashes, results, timings
    config.yaml                 the resolved recipe
    metrics.jsonl, tensorboard/ training curves
    <stage>/step_000100/        resumable checkpoints (keep_last of them)
    <stage>/best/, <stage>/final/
    final/, best/               the last stage's final and best weights (what eval/chat load)

Effective batch = micro_batch_size x grad_accum x world size.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emollm.config import ConfigError, dump_config
from emollm.data.contract import PromptContract, load_contract
from emollm.data.instructions import load_mixture
from emollm.data.sample import Manifest
from emollm.features.cache import FeatureCache
from emollm.features.featurizer import Featurizer
from emollm.io import atomic_write_json, sha256_file
from emollm.log import get_logger
from emollm.training.config import RunConfig, StageConfig
from emollm.training.data import EpochPlan, collate_training, estimate_length
from emollm.training.engines import (
    AccelerateEngine,
    DeepSpeedEngine,
    Engine,
    FSDPEngine,
    any_rank,
    barrier,
    gather_objects,
    resolve_device,
    resolve_strategy,
    world,
)
from emollm.training.logger import MetricLogger
from emollm.training.state import Progress, TrainingError, _rng_state, _set_rng_state, _set_seed, _unwrap

log = get_logger(__name__)


@dataclass
class TrainResult:
    out_dir: Path
    final: Path
    best: Path | None
    metrics: dict[str, Any]


# ---------------------------------------------------------------------------------------------- preflight


def preflight(cfg: RunConfig) -> Manifest:
    """Every check that can fail before work starts: output folder, data, mixtures, engine config."""
    out = cfg.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"output folder {out} is not writable: {e}") from None
    from emollm.data.manifests import manifest_dir

    try:
        mdir = manifest_dir(cfg.data.corpus)
    except FileNotFoundError:
        if not cfg.data.prepare_if_missing:
            raise
        if world()[0] == 0:
            from emollm.data.prepare import prepare

            log.info("no manifest for %s yet: preparing it", cfg.data.corpus)
            prepare(cfg.data.corpus)
        barrier()
        mdir = manifest_dir(cfg.data.corpus)
    man = Manifest.load(mdir)
    space = man.label_space
    if space and space != cfg.model.label_space:
        log.warning(
            "corpus label space %r differs from the model's %r; labels outside the model's space are skipped",
            space,
            cfg.model.label_space,
        )
    n = len([s for s in man.samples if s.split == cfg.data.train_split])
    if n == 0:
        splits = sorted({s.split for s in man.samples})
        raise ConfigError(f"data.train_split {cfg.data.train_split!r} has no samples in {mdir} (splits: {splits})")
    if cfg.data.val_split and not any(s.split == cfg.data.val_split for s in man.samples):
        splits = sorted({s.split for s in man.samples})
        raise ConfigError(
            f"data.val_split {cfg.data.val_split!r} has no samples in {mdir} (splits: {splits}); set it to null to skip validation"
        )
    for i, st in enumerate(cfg.stages):
        load_mixture(st.mixture)
        if st.kind == "rl" and st.rl is not None:
            from emollm.training.rewards import check_reward_specs

            check_reward_specs(st.rl.rewards, f"stages[{i}].rl.rewards")
    if cfg.distributed.strategy == "deepspeed":
        from emollm.training.engines import load_deepspeed_config

        ds = load_deepspeed_config(cfg, cfg.stages[0])
        zero = int(ds.get("zero_optimization", {}).get("stage", 0))
        if zero >= 3 and any(st.kind == "rl" for st in cfg.stages):
            raise ConfigError(
                f"{cfg.distributed.deepspeed_config}: rl stages run under DeepSpeed ZeRO stages 0-2, not ZeRO-3 "
                "(rollouts and the reference swaps use the bare model's weights, which ZeRO-3 partitions); "
                "use train/deepspeed/zero2.json"
            )
    if cfg.distributed.strategy in ("deepspeed", "fsdp") and len(cfg.stages) > 1:
        raise ConfigError(
            f"strategy {cfg.distributed.strategy!r} shards the model once per process: run one stage per recipe "
            "(train/emotion_llama/stage1_coarse.yaml then stage2_fine.yaml with init_from)"
        )
    if cfg.init_from and not Path(cfg.init_from).exists():
        raise ConfigError(f"init_from {cfg.init_from!r} does not exist")
    return man


# ---------------------------------------------------------------------------------------------- helpers


def _param_groups(model: Any, stage: StageConfig) -> list[dict[str, Any]]:
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "projector" if n.startswith("projectors.") else "lora"
        decay = p.ndim >= 2 and "bias" not in n and "norm" not in n
        groups.setdefault((kind, decay), []).append(p)
    out = []
    for (kind, decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "lr": stage.lr_projector if kind == "projector" else stage.lr_lora,
                "weight_decay": stage.weight_decay if decay else 0.0,
                "name": f"{kind}{'' if decay else '_nodecay'}",
            }
        )
    if not out:
        raise TrainingError("the model has no trainable parameters (no projectors and LoRA disabled?)")
    return out


def lr_lambda(stage: StageConfig, total: int) -> Any:
    warm = stage.warmup_steps if stage.warmup_steps is not None else int(round(stage.warmup_ratio * total))
    floor = stage.min_lr_ratio

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if stage.schedule == "constant":
            return 1.0
        t = min(1.0, (step - warm) / max(1, total - warm))
        if stage.schedule == "linear":
            return floor + (1 - floor) * (1 - t)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def _memory_estimate(system: Any, stage: StageConfig, precision: str, gc: bool) -> dict[str, float]:
    counts = system.model.count_parameters()
    base_bytes = sum(p.numel() * p.element_size() for p in system.model.parameters() if not p.requires_grad)
    train = counts["trainable"] * 16  # fp32 weight + grad + two Adam moments
    llm_cfg = getattr(system.model.llm, "config", None)
    h = getattr(llm_cfg, "hidden_size", 0) or 0
    layers = getattr(llm_cfg, "num_hidden_layers", 0) or 0
    seq = system.cfg.max_length
    per_tok = (2 if precision != "fp32" else 4) * h * (2 if gc else 18) * layers
    act = stage.micro_batch_size * seq * per_tok
    gib = 1024**3
    return {"base_gib": base_bytes / gib, "trainable_gib": train / gib, "activations_gib_upper": act / gib}


def _data_hash(man: Manifest) -> str:
    return sha256_file(man.root / "samples.jsonl")[:16]


# ---------------------------------------------------------------------------------------------- trainer


class Trainer:
    def __init__(self, cfg: RunConfig, resume: str | None = None, progress_bar: bool = True) -> None:
        self.cfg = cfg
        self.resume = resume
        self.rank, self.local_rank, self.world = world()
        self.main = self.rank == 0
        self.progress_bar = progress_bar and self.main
        self.out = cfg.out_dir

    # -------------------------------------------------------------- setup

    def setup(self) -> None:
        cfg = self.cfg
        self.manifest = preflight(cfg)
        self.device = resolve_device(cfg)
        self.strategy = resolve_strategy(cfg)
        if cfg.precision == "auto":
            from emollm.device import choose_precision

            # the resolved value is what run.json records; a GPU without bf16 trains in fp32 (no loss scaling here)
            cfg.precision = choose_precision("auto", self.device, gpu_fallback="fp32")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        _set_seed(cfg.seed)
        from emollm.model.system import build_system

        self.system = build_system(
            cfg.model, device=self.device, gradient_checkpointing=cfg.gradient_checkpointing, source=cfg.name
        )
        labels = set(self.system.labels.labels)
        self.train_samples = [
            s
            for s in self.manifest.samples
            if s.split == cfg.data.train_split and (s.label is None or s.label in labels)
        ]
        self.val_samples = [
            s
            for s in self.manifest.samples
            if cfg.data.val_split and s.split == cfg.data.val_split and s.label in labels
        ]
        fc = cfg.data.features
        cache = FeatureCache(fc.cache_dir) if fc.mode != "live" else None
        if fc.mode != "cache" and self.device.type == "cuda":
            for e in self.system.encoders.values():
                e.to(self.device)
        self.featurizer = Featurizer(self.system.encoders, cache, mode=fc.mode, batch_size=fc.batch_size)
        self.contracts = self._resolve_contracts()
        self.resume_dir = self._find_resume()
        self.progress = Progress()
        if self.resume_dir is not None:
            self.progress = Progress(**json.loads((self.resume_dir / "progress.json").read_text()))
            from emollm.model.checkpoint import load_trainable_state_dict, load_weights

            load_trainable_state_dict(self.system, load_weights(self.resume_dir), str(self.resume_dir))
            log.info("resuming from %s (stage %d, step %d)", self.resume_dir, self.progress.stage, self.progress.step)
        elif cfg.init_from:
            self._init_from(cfg.init_from)
        self._fit_standardizers()
        if self.main and self.resume_dir is None:
            self._clear_previous_run()
        barrier()
        self.logger = MetricLogger(
            self.out,
            cfg.logging.tensorboard,
            cfg.logging.wandb,
            cfg.logging.wandb_project,
            cfg.model_dump(mode="json"),
            enabled=self.main,
            resume_step=self.progress.global_step if self.resume_dir is not None else None,
        )
        if self.main:
            dump_config(cfg, self.out / "config.yaml")
            self._write_run_json(status="running")
            self._print_launch_summary()

    def _clear_previous_run(self) -> None:
        """A fresh run into a used ``output_dir`` starts clean: the old metrics.jsonl is kept as
        ``metrics.previous.jsonl``; old checkpoints (``*/step_*``, every stage's best/final, final/, best/)
        and tensorboard/ are deleted, so nothing of the earlier run is resumed, logged or loaded as this one's."""
        old_metrics = self.out / "metrics.jsonl"
        gone: list[Path] = sorted(
            {*self.out.glob("*/step_*"), *self.out.glob("*/.step_*.partial"), *self.out.glob("*/.step_*.tmp")}
        )
        for st in self.cfg.stages:
            gone += [d for d in (self.out / st.name / "best", self.out / st.name / "final") if d.exists()]
        gone += [d for d in (self.out / "final", self.out / "best", self.out / "tensorboard") if d.exists()]
        if self.cfg.init_from:  # never delete the weights this run starts from
            init = Path(self.cfg.init_from).resolve()
            gone = [d for d in gone if not init.is_relative_to(d.resolve())]
        if not gone and not old_metrics.exists():
            return
        said = []
        if old_metrics.exists():
            old_metrics.replace(self.out / "metrics.previous.jsonl")
            said.append("metrics.jsonl -> metrics.previous.jsonl")
        for d in gone:
            shutil.rmtree(d) if d.is_dir() else d.unlink()
        if gone:
            names = [d.relative_to(self.out).as_posix() for d in gone]
            said.append(f"deleted {', '.join(names[:8])}{f' and {len(names) - 8} more' if len(names) > 8 else ''}")
        log.warning(
            "output_dir %s holds an earlier run and this one is not a resume (--resume auto continues it): %s",
            self.out,
            "; ".join(said),
        )

    def _find_resume(self) -> Path | None:
        """The checkpoint to resume from: ``--resume DIR`` (verified), or with ``auto`` the newest intact
        ``<stage>/step_*`` (a damaged newer one is skipped with a warning naming the bad file)."""
        from emollm.model.checkpoint import CheckpointError, verify_checkpoint

        if not self.resume:
            return None
        if self.resume != "auto":
            p = Path(self.resume)
            if not (p / "progress.json").is_file():
                raise ConfigError(f"--resume {p}: not a resumable checkpoint (no progress.json)")
            verify_checkpoint(p)
            return p
        cands: list[tuple[int, Path]] = []
        skipped: list[str] = []
        for q in self.out.glob("*/step_*/progress.json"):
            try:
                cands.append((int(json.loads(q.read_text())["global_step"]), q.parent))
            except (ValueError, KeyError, TypeError, OSError) as e:
                skipped.append(f"{q}: unreadable ({e})")
                log.warning("--resume auto: skipping %s: %s is unreadable (%s)", q.parent, q.name, e)
        for _, d in sorted(cands, key=lambda c: c[0], reverse=True):
            try:
                verify_checkpoint(d)
            except CheckpointError as e:
                skipped.append(str(e))
                log.warning("--resume auto: skipping damaged checkpoint %s: %s; trying the previous step", d, e)
                continue
            if skipped:
                log.warning("--resume auto: resuming from %s, the newest intact checkpoint", d)
            return d
        if skipped:
            raise ConfigError(
                f"--resume auto: no intact checkpoint under {self.out}: "
                + "; ".join(skipped)
                + " (delete the damaged step folders to start from scratch)"
            )
        return None

    def _resolve_contracts(self) -> list[tuple[PromptContract, PromptContract]]:
        """Per stage: (the stage's own contract, which training samples from; the contract saved with its
        checkpoints: this stage's tasks over every earlier stage's, over the base model's)."""
        base = self.system.contract
        if self.cfg.init_from and Path(self.cfg.init_from).is_dir():
            base = load_contract(self.cfg.init_from, self.system.labels, self.cfg.model.system_prompt)
        out = []
        for st in self.cfg.stages:
            own = PromptContract.from_mixture(
                load_mixture(st.mixture), self.system.labels, self.cfg.model.system_prompt
            )
            base = own.over(base)  # type: ignore[arg-type]
            out.append((own, base))
        return out

    def _init_from(self, path: str) -> None:
        p = Path(path)
        if p.suffix in (".pth", ".pt"):
            from emollm.model.released import load_released_checkpoint

            load_released_checkpoint(self.system, p)
        else:
            from emollm.model.checkpoint import is_checkpoint, load_trainable_state_dict, load_weights

            if not is_checkpoint(p):
                raise ConfigError(f"init_from {p} is not an emollm checkpoint folder or a .pth file")
            load_trainable_state_dict(self.system, load_weights(p), str(p))
        log.info("initialised trainable weights from %s", p)

    def _fit_standardizers(self) -> None:
        projs = {
            m: p
            for m, p in self.system.model.projectors.items()
            if getattr(p, "standardize", False) and not bool(p.fitted)
        }
        if not projs:
            return
        n = min(len(self.train_samples), 512)
        rng = random.Random(self.cfg.seed)
        pick = rng.sample(self.train_samples, n) if n < len(self.train_samples) else list(self.train_samples)
        feats: dict[str, list[torch.Tensor]] = {m: [] for m in projs}
        for b in range(0, len(pick), 64):
            for sf in self.featurizer(pick[b : b + 64], self.manifest.root, list(projs)):
                for m, t in sf.features.items():
                    feats[m].append(t)
        for m, p in projs.items():
            if len(feats[m]) < 2:
                raise TrainingError(
                    f"cannot fit the {m!r} projector's standardiser: only {len(feats[m])} training samples have {m!r}"
                )
            p.fit_standardizer(torch.stack(feats[m]).to(p.mean.device))

    def _print_launch_summary(self) -> None:
        from rich.console import Console
        from rich.table import Table

        c = self.system.model.count_parameters()
        st = self.cfg.stages[0]
        mem = _memory_estimate(self.system, st, self.cfg.precision, self.cfg.gradient_checkpointing)
        t = Table(title=f"emollm train {self.cfg.name}", show_header=False)
        t.add_row("device / strategy / world", f"{self.device} / {self.strategy} / {self.world}")
        t.add_row("train / val samples", f"{len(self.train_samples)} / {len(self.val_samples)}")
        t.add_row(
            "modalities",
            ", ".join(f"{m} ({e.name} {e.tokens_per_item}x{e.dim})" for m, e in self.system.encoders.items()),
        )
        t.add_row(
            "parameters",
            f"{c['total']:,} total, {c['trainable']:,} trainable ({c['projector']:,} projector, {c['lora']:,} LoRA)",
        )
        t.add_row(
            "memory estimate",
            f"frozen weights {mem['base_gib']:.2f} GiB + trainable state {mem['trainable_gib']:.3f} GiB + activations <= "
            f"{mem['activations_gib_upper']:.2f} GiB per process (micro-batch {st.micro_batch_size}, {self.system.cfg.max_length} tokens)",
        )
        t.add_row("stages", ", ".join(s.name for s in self.cfg.stages))
        t.add_row("output", str(self.out))
        Console(stderr=True).print(t)

    # -------------------------------------------------------------- engine

    def _engine(self, stage: StageConfig, total_steps: int) -> Engine:
        groups = _param_groups(self.system.model, stage)
        lam = lr_lambda(stage, total_steps)

        def make_opt(gs: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
            return torch.optim.AdamW(gs or groups, betas=stage.betas, eps=1e-8)

        def make_sched(opt: torch.optim.Optimizer) -> Any:
            return torch.optim.lr_scheduler.LambdaLR(opt, lam)

        if self.strategy in ("single", "ddp"):
            opt = make_opt()
            return AccelerateEngine(self.system, opt, make_sched(opt), stage, self.device, self.cfg)
        if self.strategy == "fsdp":
            return FSDPEngine(
                self.system,
                lambda: make_opt(_param_groups(self.system.model, stage)),
                make_sched,
                stage,
                self.device,
                self.cfg,
            )
        if self.strategy == "deepspeed":
            return DeepSpeedEngine(self.system, groups, make_opt, make_sched, stage, self.device, self.cfg)
        raise ConfigError(f"unknown distributed strategy {self.strategy!r}")

    # -------------------------------------------------------------- loop

    def run(self) -> TrainResult:
        self.setup()
        t0 = time.time()
        results: dict[str, Any] = {}
        last = self.cfg.stages[-1].name
        final = self.out / "final"
        best = self.out / "best"
        try:
            try:
                for si in range(self.progress.stage, len(self.cfg.stages)):
                    stage = self.cfg.stages[si]
                    results[stage.name] = self._run_stage(si, stage)
                    self.progress = Progress(
                        stage=si + 1, global_step=self.progress.global_step, history=self.progress.history
                    )
            finally:
                self.logger.close()
                if getattr(self, "_bar", None) is not None:
                    self._bar.close()  # a failed stage's bar: the error then starts its own line
            if self.main:
                _copy_dir(self.out / last / "final", final)
                if (self.out / last / "best").is_dir():
                    _copy_dir(self.out / last / "best", best)
        except OSError as e:
            if not _output_error(e, self.out):
                self._fail(f"{type(e).__name__}: {e}", results, t0)
                raise
            where = f" ({e.filename})" if e.filename else ""
            reason = f"cannot write the run's files{where}: {e.strerror or e}"
            self._fail(reason, results, t0)
            raise TrainingError(
                f"{reason}. Training stopped at stage {self.progress.stage} step {self.progress.step}; fix the "
                f"output folder {self.out} and run again with --resume auto"
            ) from None
        except KeyboardInterrupt:
            self._fail("interrupted (Ctrl-C); continue with --resume auto", results, t0, status="interrupted")
            raise
        except BaseException as e:
            self._fail(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, results, t0)
            raise
        if self.main:
            self._write_run_json(status="finished", results=results, seconds=time.time() - t0)
        barrier()
        return TrainResult(self.out, final, best if best.is_dir() else None, results)

    def _fail(self, reason: str, results: dict[str, Any], t0: float, status: str = "failed") -> None:
        """Record in run.json that the run stopped, and why (never raises: the original error matters more)."""
        if not self.main:
            return
        try:
            self._write_run_json(status=status, results=results, seconds=time.time() - t0, error=reason)
        except Exception as e:  # noqa: BLE001 - report, then let the original error through
            log.error("could not record the failure in %s: %s", self.out / "run.json", e)

    def _run_stage(self, si: int, stage: StageConfig) -> dict[str, Any]:
        if stage.kind == "rl":
            from emollm.training.rl import run_rl_stage

            return run_rl_stage(self, si, stage)
        cfg = self.cfg
        recipe, self.system.contract = self.contracts[si]
        tokens = sum(e.llm_tokens for e in self.system.encoders.values())
        lengths = [estimate_length(s, tokens) for s in self.train_samples]
        plan = EpochPlan(
            len(self.train_samples),
            stage.micro_batch_size,
            self.world,
            cfg.seed + 7919 * si,
            lengths,
            cfg.data.length_bucketing,
        )
        mb_epoch = plan.micro_batches_per_epoch
        steps_epoch = mb_epoch // stage.grad_accum
        if steps_epoch < 1:
            raise ConfigError(
                f"stage {stage.name!r}: {len(self.train_samples)} training samples give {mb_epoch} global micro-batches of "
                f"{plan.global_micro}, fewer than grad_accum={stage.grad_accum}; lower micro_batch_size or grad_accum"
            )
        total = stage.max_steps or max(1, math.ceil(stage.epochs * steps_epoch))
        engine = self._engine(stage, total)
        resuming = self.resume_dir is not None and self.progress.stage == si and self.progress.step > 0
        if resuming:
            engine.load_optimizer(self.resume_dir)  # type: ignore[arg-type]
            rng_file = self.resume_dir / f"rng_rank{self.rank}.pt"  # type: ignore[operator]
            if rng_file.is_file():
                _set_rng_state(torch.load(rng_file, weights_only=False))
        else:
            self.progress = Progress(stage=si, global_step=self.progress.global_step, history=self.progress.history)
        prog = self.progress
        stage_dir = self.out / stage.name
        bar = None
        if self.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=prog.step, desc=f"{stage.name}", unit="step", dynamic_ncols=True)
        self._bar = bar
        self.system.model.train()
        last_good: Path | None = self.resume_dir if resuming else None
        window: list[float] = []
        t_last, samples_seen, tokens_seen = time.perf_counter(), 0, 0
        batches = self._batch_iter(plan, recipe, stage, prog.epoch, prog.micro, steps_epoch * stage.grad_accum)
        while prog.step < total:
            for a in range(stage.grad_accum):
                epoch, micro, batch = next(batches)
                loss = engine.micro_step(batch, last_micro=a == stage.grad_accum - 1)
                lv = float(loss)
                if any_rank(not math.isfinite(lv), self.device):
                    raise TrainingError(
                        f"stage {stage.name!r} step {prog.step + 1}: the loss is not finite ({lv}); training stopped. "
                        f"Last good checkpoint: {last_good or 'none written yet'}. Lower the learning rate or check the "
                        "features (emollm extract) for NaNs."
                    )
                window.append(lv)
                samples_seen += batch["n_samples"]
                tokens_seen += batch["n_tokens"]
                prog.epoch, prog.micro = epoch, micro + 1
            gnorm = engine.optimizer_step()
            prog.step += 1
            prog.global_step += 1
            if prog.micro >= steps_epoch * stage.grad_accum:
                prog.epoch, prog.micro = prog.epoch + 1, 0
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(window[-stage.grad_accum * 5 :]):.4f}")
            if prog.step % stage.log_every == 0 or prog.step == total:
                dt = max(time.perf_counter() - t_last, 1e-9)
                lrs = {f"train/lr_{g['name']}": g["lr"] for g in engine.optimizer.param_groups if "name" in g}
                m = {
                    "train/loss": float(np.mean(window)),
                    "train/samples_per_s": samples_seen * self.world / dt,
                    "train/tokens_per_s": tokens_seen * self.world / dt,
                    "train/epoch": prog.epoch + prog.micro / max(1, steps_epoch * stage.grad_accum),
                    **lrs,
                }
                if gnorm is not None:
                    m["train/grad_norm"] = gnorm
                self.logger.log({f"{stage.name}/{k}": v for k, v in m.items()}, prog.global_step)
                prog.history.append({"stage": stage.name, "step": prog.step, "loss": m["train/loss"]})
                window, t_last, samples_seen, tokens_seen = [], time.perf_counter(), 0, 0
            if stage.eval_every and prog.step % stage.eval_every == 0 and prog.step < total:
                self._validate_and_keep_best(engine, stage, stage_dir, prog)
            if stage.save_every and prog.step % stage.save_every == 0 and prog.step < total:
                last_good = self._save_resumable(engine, stage, stage_dir, prog)
        if bar is not None:
            bar.close()
        metrics, sync = self._finish_stage(engine, stage, stage_dir, prog)
        return {"steps": prog.step, "val": metrics, "best": prog.best, "ranks_in_sync": sync}

    def _finish_stage(
        self, engine: Engine, stage: StageConfig, stage_dir: Path, prog: Progress
    ) -> tuple[dict[str, Any] | None, bool | None]:
        """The end of any stage (SFT or RL): last validation and best, ``final`` with the contract, engine
        closed; returns the validation metrics and whether the ranks agree."""
        from emollm.model.checkpoint import write_checkpoint

        metrics = self._validate_and_keep_best(engine, stage, stage_dir, prog)
        sync = self._ranks_in_sync(engine)
        state = engine.trainable_state()
        if self.main:
            write_checkpoint(
                stage_dir / "final",
                state,
                self.system.cfg,
                self.cfg,
                {"stage": stage.name, "step": prog.step, "val": metrics},
                self.cfg.name,  # type: ignore[arg-type]
                contract=self.system.contract,
            )
        barrier()
        engine.close()
        self.system.model = _unwrap(self.system.model)
        return metrics, sync

    def _ranks_in_sync(self, engine: Engine) -> bool | None:
        """Whether every rank holds the same trainable weights (DDP/single; None where they are sharded)."""
        if isinstance(engine, FSDPEngine) or (isinstance(engine, DeepSpeedEngine) and engine.zero_stage == 3):
            return None
        with torch.no_grad():
            vec = torch.cat(
                [p.detach().float().reshape(-1).cpu() for p in self.system.model.parameters() if p.requires_grad]
            )
        sums = gather_objects((float(vec.sum()), float(vec.abs().sum())))
        ok = all(
            abs(a - sums[0][0]) <= 1e-6 * (1 + abs(sums[0][0])) and abs(b - sums[0][1]) <= 1e-6 * (1 + sums[0][1])
            for a, b in sums
        )
        if not ok:
            log.warning("trainable weights differ across ranks: %s", sums)
        return ok

    def _batch_iter(
        self, plan: EpochPlan, recipe: PromptContract, stage: StageConfig, epoch: int, micro: int, per_epoch: int
    ) -> Any:
        cfg = self.cfg
        while True:
            batches = plan.rank_batches(epoch, self.rank)[:per_epoch]
            for j in range(micro, len(batches)):
                yield (
                    epoch,
                    j,
                    collate_training(
                        self.system,
                        recipe,
                        self.featurizer,
                        self.train_samples,
                        self.manifest.root,
                        batches[j],
                        epoch,
                        cfg.seed,
                        stage.modality_dropout,
                        stage.subtitle_dropout,
                    ),
                )
            epoch, micro = epoch + 1, 0

    # -------------------------------------------------------------- validation & checkpoints

    def validate(self, engine: Engine, stage: StageConfig) -> dict[str, Any] | None:
        if not self.val_samples:
            return None
        from sklearn.metrics import accuracy_score, f1_score, recall_score

        from emollm.inference.engine import Predictor

        samples = self.val_samples[: stage.eval_samples] if stage.eval_samples else self.val_samples
        per = math.ceil(len(samples) / self.world)
        idx = list(range(self.rank, len(samples), self.world))
        idx += [idx[-1] if idx else 0] * (per - len(idx))  # equal forward counts on every rank (ZeRO-3)
        shard = [samples[i] for i in idx]
        pred = Predictor(self.system, self.featurizer, batch_size=max(1, stage.micro_batch_size))
        with engine.eval_context():
            res = pred.classify(shard, self.manifest.root)
        mine = {i: r.label for i, r in zip(idx, res, strict=True)}
        merged: dict[int, str] = {}
        for part in gather_objects(mine):
            merged.update(part)
        gold = [samples[i].label for i in range(len(samples))]
        hyp = [merged[i] for i in range(len(samples))]
        self.system.model.train()
        return {
            "n": len(samples),
            "weighted_f1": float(f1_score(gold, hyp, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(gold, hyp)),
            "uar": float(recall_score(gold, hyp, average="macro", zero_division=0)),
        }

    def _validate_and_keep_best(
        self, engine: Engine, stage: StageConfig, stage_dir: Path, prog: Progress
    ) -> dict[str, Any] | None:
        metrics = self.validate(engine, stage)
        if metrics is None:
            return None
        self.logger.log({f"{stage.name}/val/{k}": v for k, v in metrics.items() if k != "n"}, prog.global_step)
        if self.progress_bar:
            log.info(
                "%s step %d: val weighted F1 %.4f, accuracy %.4f",
                stage.name,
                prog.step,
                metrics["weighted_f1"],
                metrics["accuracy"],
            )
        if prog.best is None or metrics["weighted_f1"] > prog.best:
            prog.best = metrics["weighted_f1"]
            state = engine.trainable_state()
            if self.main:
                from emollm.model.checkpoint import write_checkpoint

                write_checkpoint(
                    stage_dir / "best",
                    state,
                    self.system.cfg,
                    self.cfg,
                    {"stage": stage.name, "step": prog.step, "val": metrics},
                    self.cfg.name,  # type: ignore[arg-type]
                    contract=self.system.contract,
                )
            barrier()
        return metrics

    def _save_resumable(self, engine: Engine, stage: StageConfig, stage_dir: Path, prog: Progress) -> Path:
        name = f"step_{prog.step:06d}"
        final = stage_dir / name
        tmp = stage_dir / f".{name}.partial"
        barrier()
        if self.main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        barrier()
        state = engine.trainable_state()
        engine.save_optimizer(tmp)
        torch.save(_rng_state(), tmp / f"rng_rank{self.rank}.pt")
        barrier()
        if self.main:
            from emollm.model.checkpoint import write_checkpoint

            files = {p.name: p for p in tmp.iterdir()}
            (tmp / "progress.json").write_text(json.dumps(asdict(prog)))
            files["progress.json"] = tmp / "progress.json"
            write_checkpoint(
                final,
                state,
                self.system.cfg,
                self.cfg,
                {"stage": stage.name, "step": prog.step},
                self.cfg.name,  # type: ignore[arg-type]
                files,
                contract=self.system.contract,
            )
            shutil.rmtree(tmp, ignore_errors=True)
            steps = sorted(stage_dir.glob("step_*"))
            for old in steps[: -stage.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        barrier()
        return final

    def _write_run_json(
        self,
        status: str,
        results: dict[str, Any] | None = None,
        seconds: float | None = None,
        error: str | None = None,
    ) -> None:
        from emollm.model.checkpoint import environment_manifest

        data = {
            "name": self.cfg.name,
            "status": status,
            "config": self.cfg.model_dump(mode="json"),
            **environment_manifest(),
            "world_size": self.world,
            "device": str(self.device),
            "strategy": self.strategy,
            "data": {
                "manifest": str(self.manifest.root),
                "samples_sha256": _data_hash(self.manifest),
                "n_train": len(self.train_samples),
                "n_val": len(self.val_samples),
            },
            "features": {m: e.identity for m, e in self.system.encoders.items()},
            "feature_cache": self.cfg.data.features.cache_dir,
        }
        if results is not None:
            data["results"] = results
        if seconds is not None:
            data["seconds"] = round(seconds, 2)
        if error is not None:
            data["error"] = error
            data["stopped_at"] = {"stage": self.progress.stage, "step": self.progress.step}
        path = self.out / "run.json"
        try:
            atomic_write_json(path, data)
        except OSError:
            if not path.is_file():
                raise
            # the folder no longer takes new files (read-only): overwrite the existing run.json in place
            with open(path, "r+", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
                f.truncate()


_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _output_error(e: OSError, out: Path) -> bool:
    """Whether ``e`` is the output folder refusing a write (read-only, full, permissions), not e.g. a
    missing input file."""
    if e.errno in _WRITE_ERRNOS:
        return True
    if e.filename:
        try:
            return Path(e.filename).resolve().is_relative_to(out.resolve())
        except (OSError, ValueError):
            return False
    return False


def _copy_dir(src: Path, dst: Path) -> None:
    from emollm.model.checkpoint import fsync_tree, replace_dir

    tmp = dst.with_name(f".{dst.name}.copy")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    fsync_tree(tmp)
    replace_dir(tmp, dst)


def train(cfg: RunConfig, resume: str | None = None, progress_bar: bool = True) -> TrainResult:
    return Trainer(cfg, resume, progress_bar).run()
