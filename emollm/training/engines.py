"""Training engines: one small adapter per distributed strategy, each delegating to a real engine.

- ``AccelerateEngine`` (single process, or DDP under torchrun): accelerate's ``Accelerator``
  (device placement, autocast, DDP wrapping, gloo/nccl process group).
- ``FSDPEngine``: PyTorch FSDP2 ``fully_shard`` on every decoder layer and the root (works with
  gloo on CPU too); full state dicts through ``torch.distributed.checkpoint.state_dict``.
- ``DeepSpeedEngine``: ``deepspeed.initialize`` with the recipe's ZeRO JSON (ZeRO-2/3, CPU offload);
  accelerate's DeepSpeed plugin does not run on CPU, so the engine is called directly.

All expose the same handful of methods the trainer needs; none implements collective algorithms.

    eng = make_engine(run_cfg, stage_cfg, system, param_groups, device)
    loss = eng.micro_step(batch, last_micro=True)      # forward + backward (scaled for accumulation)
    gnorm = eng.optimizer_step()                        # clip, step optimiser + scheduler, zero grads

Loops that compute their own loss (the RL stage, ``emollm.training.rl``) use the explicit interface:

    with eng.autocast():                                # mixed precision of the engine (or none)
        ...                                             # rollouts, reference log-probs (no grad)
    for i, chunk in enumerate(chunks):
        with eng.grad_sync(i == len(chunks) - 1):       # reduce gradients only on the last backward
            eng.backward(loss_of(chunk))                # unscaled: the caller normalises the loss
    gnorm = eng.update()                                # clip, step optimiser + scheduler, zero grads
    eng.skip_update()                                   # (or) no update: zero grads, step the scheduler
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from emollm.training.config import RunConfig, StageConfig
from emollm.training.data import answer_loss, answer_positions

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


def world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the launcher's environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_device(cfg: RunConfig) -> torch.device:
    """The run's device: the local rank's GPU under torchrun (``emollm.device.choose_device``)."""
    from emollm.device import choose_device

    _, local, _ = world()
    try:
        return choose_device(cfg.device, index=local, what="device:")
    except ValueError as e:
        raise RuntimeError(str(e)) from None


def resolve_strategy(cfg: RunConfig) -> str:
    s = cfg.distributed.strategy
    if s == "auto":
        return "ddp" if world()[2] > 1 else "single"
    return s


def any_rank(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is true on any rank (a one-element all-reduce)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _forward_loss(model: Any, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    feats = {k: v.to(device, non_blocking=True) for k, v in batch["features"].items()}
    labels = batch["labels"].to(device, non_blocking=True)
    out = model(
        input_ids=batch["input_ids"].to(device, non_blocking=True),
        attention_mask=batch["attention_mask"].to(device, non_blocking=True),
        features=feats,
        logits_to_keep=answer_positions(labels),  # project to the vocabulary only where the loss is
    )
    return answer_loss(out.logits, labels)


class Engine:
    """Common interface (see module docstring)."""

    name = "base"

    def __init__(
        self,
        system: EmoSystem,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        stage: StageConfig,
        device: torch.device,
    ):
        self.system = system
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.stage = stage
        self.device = device
        self.model: Any = system.model

    def micro_step(self, batch: dict[str, Any], last_micro: bool) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def optimizer_step(self) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError

    # explicit interface (module docstring): loops that compute their own loss

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed-precision context for forwards (the engine's own casting needs none)."""
        return nullcontext()

    def grad_sync(self, sync: bool) -> AbstractContextManager[Any]:
        """Context for one forward + backward: ``sync`` False on all but the last before ``update``."""
        return nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of ``loss`` as given (no division by grad_accum)."""
        loss.backward()

    def update(self) -> float | None:
        """Clip, step the optimiser and scheduler, zero the gradients; the gradient norm (if clipped)."""
        return self.optimizer_step()

    def skip_update(self) -> None:
        """A step without an update (nothing to learn from): zero the gradients, step the scheduler."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    @contextmanager
    def eval_context(self) -> Iterator[None]:
        """Make ``system.model`` usable for plain forward calls (validation) on every rank."""
        yield

    def trainable_state(self) -> dict[str, torch.Tensor] | None:
        """Full trainable tensors on rank 0 (None elsewhere); every rank must call it."""
        from emollm.model.checkpoint import trainable_state_dict

        return trainable_state_dict(self.system) if world()[0] == 0 else None

    def save_optimizer(self, folder: Path) -> None:
        if world()[0] == 0:
            torch.save(
                {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                folder / "optimizer.pt",
            )

    def load_optimizer(self, folder: Path) -> None:
        state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def close(self) -> None:
        pass


class AccelerateEngine(Engine):
    name = "accelerate"

    def __init__(
        self,
        system: EmoSystem,
        optimizer: Any,
        scheduler: Any,
        stage: StageConfig,
        device: torch.device,
        run: RunConfig,
    ):
        super().__init__(system, optimizer, scheduler, stage, device)
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        mp = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[run.precision]
        self.acc = Accelerator(
            cpu=device.type == "cpu",
            mixed_precision=mp,
            kwargs_handlers=[
                DistributedDataParallelKwargs(find_unused_parameters=run.distributed.find_unused_parameters)
            ],
        )
        self.model, self.optimizer = self.acc.prepare(system.model, optimizer)
        self.params = [p for p in system.model.parameters() if p.requires_grad]

    def micro_step(self, batch: dict[str, Any], last_micro: bool) -> torch.Tensor:
        ctx = nullcontext() if last_micro or self.acc.num_processes == 1 else self.acc.no_sync(self.model)
        with ctx:
            loss = _forward_loss(self.model, batch, self.device)
            self.acc.backward(loss / self.stage.grad_accum)
        return loss.detach()

    def optimizer_step(self) -> float | None:
        gnorm = None
        if self.stage.max_grad_norm:
            gnorm = float(self.acc.clip_grad_norm_(self.params, self.stage.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return gnorm

    def autocast(self) -> AbstractContextManager[Any]:
        return self.acc.autocast()

    def grad_sync(self, sync: bool) -> AbstractContextManager[Any]:
        return nullcontext() if sync or self.acc.num_processes == 1 else self.acc.no_sync(self.model)

    def backward(self, loss: torch.Tensor) -> None:
        self.acc.backward(loss)


class FSDPEngine(Engine):
    name = "fsdp"

    def __init__(
        self,
        system: EmoSystem,
        optimizer_factory: Callable[[], Any],
        scheduler_factory: Callable[[Any], Any],
        stage: StageConfig,
        device: torch.device,
        run: RunConfig,
    ):
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        model = system.model.to(device)
        mp = None
        if run.precision in ("bf16", "fp16"):
            dt = torch.bfloat16 if run.precision == "bf16" else torch.float16
            mp = MixedPrecisionPolicy(param_dtype=dt, reduce_dtype=torch.float32)
        kw = {"mp_policy": mp} if mp is not None else {}
        layers = _decoder_layers(model.llm)
        for layer in layers:
            fully_shard(layer, **kw)
        fully_shard(model, **kw)
        optimizer = optimizer_factory()
        super().__init__(system, optimizer, scheduler_factory(optimizer), stage, device)
        self.params = [p for p in model.parameters() if p.requires_grad]

    def micro_step(self, batch: dict[str, Any], last_micro: bool) -> torch.Tensor:
        self.model.set_requires_gradient_sync(last_micro)
        loss = _forward_loss(self.model, batch, self.device)
        (loss / self.stage.grad_accum).backward()
        return loss.detach()

    def optimizer_step(self) -> float | None:
        gnorm = None
        if self.stage.max_grad_norm:
            gnorm = float(torch.nn.utils.clip_grad_norm_(self.params, self.stage.max_grad_norm).full_tensor())
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return gnorm

    @contextmanager
    def grad_sync(self, sync: bool) -> Iterator[None]:
        self.model.set_requires_gradient_sync(sync)
        yield

    @contextmanager
    def eval_context(self) -> Iterator[None]:
        self.model.unshard()
        try:
            yield
        finally:
            self.model.reshard()

    def trainable_state(self) -> dict[str, torch.Tensor] | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        full = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if world()[0] != 0:
            return None
        state: dict[str, torch.Tensor] = {}
        for k, v in full.items():
            if k.startswith("projectors."):
                state[k] = v.contiguous()
            elif k in trainable and k.startswith("llm."):
                # peft's saved names drop the adapter name: ...lora_A.default.weight -> ...lora_A.weight
                state["lora." + k.removeprefix("llm.").replace(".default.", ".")] = v.contiguous()
        return state

    def save_optimizer(self, folder: Path) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        osd = get_optimizer_state_dict(
            self.model, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if world()[0] == 0:
            torch.save({"optimizer": osd, "scheduler": self.scheduler.state_dict()}, folder / "optimizer.pt")

    def load_optimizer(self, folder: Path) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=False)
        set_optimizer_state_dict(
            self.model,
            self.optimizer,
            state["optimizer"],
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False),
        )
        self.scheduler.load_state_dict(state["scheduler"])


class DeepSpeedEngine(Engine):
    name = "deepspeed"

    def __init__(
        self,
        system: EmoSystem,
        param_groups: list[dict[str, Any]],
        optimizer_factory: Callable[[], Any],
        scheduler_factory: Callable[[Any], Any],
        stage: StageConfig,
        device: torch.device,
        run: RunConfig,
    ):
        import deepspeed

        if not dist.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
        cfg = load_deepspeed_config(run, stage)
        kwargs: dict[str, Any] = {"model": system.model, "config": cfg, "lr_scheduler": scheduler_factory}
        if "optimizer" in cfg:  # DeepSpeed builds its own (e.g. DeepSpeedCPUAdam for offload)
            kwargs["model_parameters"] = param_groups
        else:
            kwargs["optimizer"] = optimizer_factory()
        engine, optimizer, _, scheduler = deepspeed.initialize(**kwargs)
        super().__init__(system, optimizer, scheduler, stage, device)
        self.model = engine
        self.zero_stage = int(cfg.get("zero_optimization", {}).get("stage", 0))

    def micro_step(self, batch: dict[str, Any], last_micro: bool) -> torch.Tensor:
        loss = _forward_loss(self.model, batch, self.device)
        self.model.backward(loss)
        self.model.step()  # DeepSpeed steps optimiser + scheduler only at accumulation boundaries
        return loss.detach()

    def optimizer_step(self) -> float | None:
        g = self.model.get_global_grad_norm()
        return None if g is None else float(g)

    @contextmanager
    def grad_sync(self, sync: bool) -> Iterator[None]:
        # DeepSpeed's documented manual accumulation: the boundary is set before each forward/backward;
        # ZeRO-2 reduces (partitions) gradients on every backward, ZeRO-0/1 at the boundary only
        self.model.set_gradient_accumulation_boundary(sync)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        self.model.backward(loss, scale_wrt_gas=False)

    def update(self) -> float | None:
        self.model.set_gradient_accumulation_boundary(True)
        self.model.step()  # clip (gradient_clipping), optimiser + scheduler, zero grads
        return self.optimizer_step()

    def skip_update(self) -> None:
        self.model.zero_grad()
        self.scheduler.step()

    def trainable_state(self) -> dict[str, torch.Tensor] | None:
        from emollm.model.checkpoint import trainable_state_dict

        if self.zero_stage == 3:
            import deepspeed

            params = [p for p in self.system.model.parameters() if p.requires_grad]
            with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
                return trainable_state_dict(self.system) if world()[0] == 0 else None
        return trainable_state_dict(self.system) if world()[0] == 0 else None

    @contextmanager
    def eval_context(self) -> Iterator[None]:
        yield  # ZeRO-3 gathers parameters through its module hooks; every rank runs the same forwards

    def save_optimizer(self, folder: Path) -> None:
        self.model.save_checkpoint(str(folder / "deepspeed"), tag="state", exclude_frozen_parameters=True)

    def load_optimizer(self, folder: Path) -> None:
        self.model.load_checkpoint(
            str(folder / "deepspeed"),
            tag="state",
            load_module_strict=False,
            load_optimizer_states=True,
            load_lr_scheduler_states=True,
        )


def load_deepspeed_config(run: RunConfig, stage: StageConfig) -> dict[str, Any]:
    from emollm.paths import resolve_resource

    path = resolve_resource(run.distributed.deepspeed_config or "", "DeepSpeed config")
    try:
        cfg = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    _, _, ws = world()
    cfg["train_micro_batch_size_per_gpu"] = stage.micro_batch_size
    cfg["gradient_accumulation_steps"] = stage.grad_accum
    cfg["train_batch_size"] = stage.micro_batch_size * stage.grad_accum * ws
    cfg["gradient_clipping"] = stage.max_grad_norm or 0.0
    cfg["bf16"] = {"enabled": run.precision == "bf16"}
    cfg["fp16"] = {
        "enabled": run.precision == "fp16",
        **({k: v for k, v in cfg.get("fp16", {}).items() if k != "enabled"}),
    }
    cfg.setdefault("steps_per_print", 10**9)
    cfg.setdefault("wall_clock_breakdown", False)
    if "optimizer" in cfg:
        params = cfg["optimizer"].setdefault("params", {})
        params["lr"] = stage.lr_lora
        params.setdefault("weight_decay", stage.weight_decay)
        params.setdefault("betas", list(stage.betas))
    return cfg


def _decoder_layers(llm: Any) -> list[torch.nn.Module]:
    from torch import nn

    found = [
        (name, mod)
        for name, mod in llm.named_modules()
        if name.endswith(".layers") and isinstance(mod, nn.ModuleList) and len(mod) > 0
    ]
    # a native model's towers have ``layers`` too: shard its language model's
    if found:
        return list(min(found, key=lambda nm: "language_model" not in nm[0])[1])
    raise ValueError("could not find the decoder layers (a ModuleList named 'layers') to shard with FSDP")
