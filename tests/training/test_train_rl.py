"""GRPO through the trainer (train/tiny_rl.yaml): the reward of a learnable toy task rises, a resumed run
is bit-exact, 2-process DDP (gloo) equals one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emollm.config import ConfigError
from emollm.training.config import load_run_config
from emollm.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]


LABELS = ["neutral", "angry", "happy", "sad", "worried", "surprise"]


def toy_manifest(src: Path, dst: Path) -> Path:
    """SynthMER where every gold label is ``happy`` and the ``coarse`` field holds a label drawn
    uniformly (``toy_sft.yaml`` teaches the [emotion] prompt to answer with it). After that SFT stage the
    policy answers with any of the 6 labels about equally often, so GRPO groups have reward variance and
    emitting the gold label is learnable: the label reward must rise from about 1/6."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("manifest.json", "recipe.yaml"):
        if (src / f).exists():
            (dst / f).write_bytes((src / f).read_bytes())
    rows = []
    for i, line in enumerate((src / "samples.jsonl").read_text().splitlines()):
        r = json.loads(line)
        r["media"] = {k: str((src / v).resolve()) for k, v in r["media"].items()}
        r["label"] = "happy"
        r["coarse"] = LABELS[i % len(LABELS)]
        rows.append(json.dumps(r))
    (dst / "samples.jsonl").write_text("\n".join(rows) + "\n")
    (dst / "toy_sft.yaml").write_text("name: toy_sft\ntasks:\n  emotion: {pool: emotion, target: coarse}\n")
    return dst


def _train_cli(overrides: list[str], cwd: Path, resume: str | None = None) -> None:
    cmd = [sys.executable, "-m", "emollm", "train", str(ROOT / "train/tiny_rl.yaml"), *overrides]
    cmd += ["--resume", resume] if resume else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]


def _rewards(run: Path, key: str = "reward", stage: str = "grpo") -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x[f"{stage}/rl/{key}"] for x in lines if f"{stage}/rl/{key}" in x]


def test_tiny_grpo_reward_rises_and_resume_is_bit_exact(tmp_path, synthmer_small) -> None:
    corpus = toy_manifest(synthmer_small, tmp_path / "toy")
    common = [
        f"data.corpus={corpus}",
        f"data.features.cache_dir={tmp_path / 'features'}",
        "data.val_split=null",
        f"stages.0.mixture={corpus / 'toy_sft.yaml'}",
        "stages.1.max_steps=20",
        "stages.1.save_every=14",
    ]
    # the run as a user starts it: `emollm train` in its own process (a fresh interpreter, so nothing an
    # earlier test left in this one, e.g. torch's state after a benchmark, changes the SFT stage it starts from)
    _train_cli([*common, f"output_dir={tmp_path / 'a'}"], tmp_path)
    run = tmp_path / "a"
    r = _rewards(run)
    lab = _rewards(run, "reward/label")
    assert len(r) == len(lab) == 20
    first, last = sum(lab[:5]) / 5, sum(lab[-5:]) / 5
    assert last > first + 0.15, lab
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rl = [x for x in lines if "grpo/rl/reward" in x]
    for key in (
        "kl",
        "entropy",
        "completion_length",
        "clip_fraction",
        "zero_variance_groups",
        "reward/label",
        "reward/format",
        "reward/label/missing",
        "rollouts_per_s",
        "train_samples_per_s",
    ):
        assert f"grpo/rl/{key}" in rl[0], key
    info = json.loads((run / "run.json").read_text())
    assert info["results"]["grpo"]["steps"] == 20 and info["results"]["grpo"]["reward_missing"] == {
        "label": 0,
        "format": 0,
    }
    assert (run / "rl_samples.jsonl").is_file() and (run / "final/prompt_contract.yaml").is_file()
    assert (run / "final/trainable.safetensors").is_file()

    # resume from the step-14 checkpoint in another folder: the final weights are bit-identical
    _train_cli([*common, f"output_dir={tmp_path / 'b'}"], tmp_path, resume=str(run / "grpo/step_000014"))
    a = load_file(str(run / "final/trainable.safetensors"))
    b = load_file(str(tmp_path / "b/final/trainable.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _rewards(tmp_path / "b") == r[14:]


def test_rl_options_stage_start_reference_iterations_dynamic_sampling(tmp_path, synthmer_small) -> None:
    cfg = load_run_config(
        ROOT / "train/tiny_rl.yaml",
        [
            f"data.corpus={synthmer_small}",
            f"output_dir={tmp_path / 'o'}",
            f"data.features.cache_dir={tmp_path / 'features'}",
            "data.val_split=null",
            "stages.0.max_steps=1",
            "stages.1.max_steps=2",
            "stages.1.rl.group_size=4",
            "stages.1.rl.prompts_per_step=2",
            "stages.1.rl.max_new_tokens=4",
            "stages.1.rl.beta=0.1",
            "stages.1.rl.reference=stage_start",
            "stages.1.rl.num_iterations=2",
            "stages.1.rl.loss_type=dr_grpo",
            "stages.1.rl.epsilon_high=0.28",
            "stages.1.rl.dynamic_sampling=true",
            "stages.1.rl.top_p=0.9",
        ],
    )
    train(cfg, progress_bar=False)
    run = tmp_path / "o"
    assert (run / "grpo/reference.safetensors").is_file()
    ref = load_file(str(run / "grpo/reference.safetensors"))
    sft = load_file(str(run / "sft/final/trainable.safetensors"))
    # the reference is the SFT policy: its tensors are stage 1's final ones
    lora = {k.removeprefix("lora."): v for k, v in sft.items() if k.startswith("lora.")}
    n_lora = 0
    for n, v in ref.items():
        if n.startswith("projectors."):
            assert torch.equal(v, sft[n]), n
        else:
            key = n.removeprefix("llm.").replace(".default", "")
            assert torch.equal(v, lora[key]), n
            n_lora += 1
    assert n_lora > 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rl = [x for x in lines if "grpo/rl/kl" in x]
    assert len(rl) == 2 and all(x["grpo/rl/kl"] >= 0 for x in rl)
    assert all(0.0 <= x["grpo/rl/zero_variance_groups"] <= 1.0 for x in rl)


def test_rl_stage_errors_are_clear(tmp_path, synthmer_small) -> None:
    base = [f"data.corpus={synthmer_small}", f"output_dir={tmp_path / 'x'}"]
    with pytest.raises(ConfigError, match="did you mean 'label'"):
        from emollm.training.trainer import preflight

        preflight(load_run_config(ROOT / "train/tiny_rl.yaml", [*base, "stages.1.rl.rewards=[{name: lable}]"]))
    with pytest.raises(ConfigError, match="need `kind: rl`"):
        load_run_config(ROOT / "train/tiny_rl.yaml", [*base, "stages.0.rl={group_size: 4}"])
    with pytest.raises(ConfigError, match="group_size"):
        load_run_config(ROOT / "train/tiny_rl.yaml", [*base, "stages.1.rl.group_size=1"])
    with pytest.raises(ConfigError, match="needs dynamic_sampling: true"):
        load_run_config(ROOT / "train/tiny_rl.yaml", [*base, "stages.1.rl.dynamic_sampling_max_rounds=2"])
    with pytest.raises(ConfigError, match="not fsdp: FSDP2 shards"):
        load_run_config(ROOT / "train/tiny_rl.yaml", [*base, "distributed.strategy=fsdp"])
    zero3 = ["distributed.strategy=deepspeed", f"distributed.deepspeed_config={ROOT / 'train/deepspeed/zero3.json'}"]
    with pytest.raises(ConfigError, match="not ZeRO-3"):
        preflight(load_run_config(ROOT / "train/tiny_rl.yaml", [*base, *zero3]))


@pytest.mark.slow
def test_rl_ddp_two_ranks_match_single_process(tmp_path, synthmer_small) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def args(name: str, prompts: int) -> list[str]:
        return [
            str(ROOT / "train/tiny_rl.yaml"),
            f"data.corpus={synthmer_small}",
            f"output_dir={tmp_path / name}",
            f"data.features.cache_dir={tmp_path / 'features'}",
            "data.val_split=null",
            "stages.0.max_steps=3",
            "stages.0.micro_batch_size=4" if prompts == 4 else "stages.0.micro_batch_size=2",
            "stages.1.max_steps=2",
            f"stages.1.rl.prompts_per_step={prompts}",
            "stages.1.rl.beta=0.04",
            "stages.1.rl.loss_type=dapo",
        ]

    single = subprocess.run(
        [sys.executable, "-m", "emollm", "train", *args("single", 4)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-4000:]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "emollm",
            "train",
            *args("ddp", 2),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ddp.returncode == 0, ddp.stderr[-4000:]
    info = json.loads((tmp_path / "ddp/run.json").read_text())
    assert info["world_size"] == 2 and info["results"]["grpo"]["ranks_in_sync"] is True
    # same completions (rewards), same loss and KL, and the same all-reduced gradient (its norm is
    # scale-sensitive, unlike Adam's update): the global token/row counts make the split irrelevant
    for key in ("reward", "loss", "kl", "grad_norm", "completion_length"):
        one, two = _rewards(tmp_path / "single", key), _rewards(tmp_path / "ddp", key)
        assert len(one) == 2 and one[0] == pytest.approx(two[0], rel=1e-5, abs=1e-7), key
        assert one[1] == pytest.approx(two[1], rel=1e-3, abs=1e-6), key  # after one Adam step (see below)
    a = load_file(str(tmp_path / "single/final/trainable.safetensors"))
    b = load_file(str(tmp_path / "ddp/final/trainable.safetensors"))
    # Adam at lr 1e-2 turns float-noise gradient components into updates of up to ~lr: loose bound
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-3), (k, (a[k] - b[k]).abs().max())


def test_dynamic_sampling_refill_keeps_informative_groups_and_resumes_bit_exact(tmp_path, synthmer_small) -> None:
    """DAPO refill: zero-variance groups are replaced by the next prompts of the plan (more rollouts), the
    trained batch has none left when the rounds suffice, and a resume continues the plan where it was."""
    corpus = toy_manifest(synthmer_small, tmp_path / "toy")
    rounds = 4
    common = [
        f"data.corpus={corpus}",
        f"data.features.cache_dir={tmp_path / 'features'}",
        "data.val_split=null",
        f"stages.0.mixture={corpus / 'toy_sft.yaml'}",
        "stages.1.max_steps=4",
        "stages.1.save_every=2",
        "stages.1.rl.group_size=4",  # P(a group of 4 all wrong) ~ (5/6)^4: zero-variance groups are common
        "stages.1.rl.rewards=[{name: label, weight: 1.0, options: {match: synonyms}}]",
        "stages.1.rl.dynamic_sampling=true",
        f"stages.1.rl.dynamic_sampling_max_rounds={rounds}",
    ]
    _train_cli([*common, f"output_dir={tmp_path / 'a'}"], tmp_path)
    run = tmp_path / "a"
    zero = _rewards(run, "zero_variance_groups")
    rolled = _rewards(run, "zero_variance_groups_rolled")
    n_rounds = _rewards(run, "rollout_rounds")
    rollouts = _rewards(run, "rollouts")
    assert len(zero) == len(n_rounds) == len(rollouts) == 4
    for z, k, n in zip(zero, n_rounds, rollouts, strict=True):
        assert n == k * 4 * 4  # every round rolls out prompts_per_step x group_size completions
        assert z == 0.0 or k == rounds + 1  # nothing left to drop unless the rounds ran out
    assert any(k > 1 for k in n_rounds) and any(r > 0 for r in rolled), (n_rounds, rolled)
    refilled = [z for z, k in zip(zero, n_rounds, strict=True) if 1 < k <= rounds]
    assert refilled and all(z == 0.0 for z in refilled)
    prog = json.loads((run / "grpo/step_000002/progress.json").read_text())
    n_first = int(sum(n_rounds[:2]))  # the plan advanced one batch per round (6 batches an epoch)
    assert (prog["epoch"], prog["micro"]) == divmod(n_first, 6)

    _train_cli([*common, f"output_dir={tmp_path / 'b'}"], tmp_path, resume=str(run / "grpo/step_000002"))
    a = load_file(str(run / "final/trainable.safetensors"))
    b = load_file(str(tmp_path / "b/final/trainable.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _rewards(tmp_path / "b", "rollout_rounds") == n_rounds[2:]
    assert _rewards(tmp_path / "b") == _rewards(run)[2:]


def _torchrun(args: list[str], resume: str | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "emollm"]
    cmd += ["train", *args, *(["--resume", resume] if resume else [])]
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])


RL_ONLY = (
    "stages=[{name: grpo, kind: rl, mixture: data_recipes/mixtures/rl_emotion.yaml, max_steps: 3, save_every: 2, "
    "micro_batch_size: 8, lr_projector: 3.0e-3, lr_lora: 1.0e-2, warmup_steps: 0, schedule: constant, "
    "max_grad_norm: 1.0, log_every: 1, rl: {group_size: 8, prompts_per_step: 2, max_new_tokens: 8, beta: 0.04, "
    "loss_type: dapo, rewards: [{name: label, weight: 1.0, options: {match: synonyms}}, {name: format, weight: 0.1}]}}]"
)


@pytest.mark.slow
def test_rl_deepspeed_zero2_matches_ddp_and_resumes(tmp_path, synthmer_small) -> None:
    """An RL-only recipe (DeepSpeed runs one stage per recipe) from the same SFT checkpoint, 2 processes
    under DDP and under DeepSpeed ZeRO-2 (gloo, CPU): the same completions, loss, KL and gradient norm at
    the first step (two backward chunks per update); the DeepSpeed run resumes bit-exactly."""
    pytest.importorskip("deepspeed")
    corpus = toy_manifest(synthmer_small, tmp_path / "toy")  # after SFT, groups have reward variance
    base = [
        str(ROOT / "train/tiny_rl.yaml"),
        f"data.corpus={corpus}",
        f"data.features.cache_dir={tmp_path / 'features'}",
        "data.val_split=null",
    ]
    sft = (
        f"stages=[{{name: sft, mixture: {corpus / 'toy_sft.yaml'}, max_steps: 30, micro_batch_size: 8, "
        "lr_projector: 1.0e-2, lr_lora: 1.0e-2, warmup_steps: 1, schedule: constant}]"
    )
    _train_cli([*base[1:], f"output_dir={tmp_path / 'sft'}", sft], ROOT)

    def args(name: str, *extra: str) -> list[str]:
        return [*base, f"output_dir={tmp_path / name}", f"init_from={tmp_path / 'sft/final'}", RL_ONLY, *extra]

    ds = ["distributed.strategy=deepspeed", f"distributed.deepspeed_config={ROOT / 'train/deepspeed/zero2.json'}"]
    _torchrun(args("ddp"))
    _torchrun(args("ds", *ds))
    info = json.loads((tmp_path / "ds/run.json").read_text())
    assert info["strategy"] == "deepspeed" and info["world_size"] == 2
    assert info["results"]["grpo"]["steps"] == 3 and info["results"]["grpo"]["ranks_in_sync"] is True
    assert (tmp_path / "ds/grpo/step_000002/deepspeed").is_dir()
    for key in ("reward", "loss", "kl", "grad_norm", "completion_length"):
        one, two = _rewards(tmp_path / "ddp", key), _rewards(tmp_path / "ds", key)
        assert len(one) == len(two) == 3
        assert one[0] == pytest.approx(two[0], rel=1e-4, abs=1e-6), (key, one, two)
    assert 0 < _rewards(tmp_path / "ds")[0] < 1  # non-zero advantages: the policy-gradient term is compared too
    a = load_file(str(tmp_path / "ddp/final/trainable.safetensors"))
    b = load_file(str(tmp_path / "ds/final/trainable.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=5e-3), (k, (a[k] - b[k]).abs().max())

    _torchrun(args("ds_resumed", *ds), resume=str(tmp_path / "ds/grpo/step_000002"))
    c = load_file(str(tmp_path / "ds_resumed/final/trainable.safetensors"))
    for k in b:
        assert torch.equal(b[k], c[k]), k
    assert _rewards(tmp_path / "ds_resumed") == _rewards(tmp_path / "ds")[2:]


def test_qlora_4bit_rl_step_runs_and_the_reference_differs(tmp_path, synthmer_small) -> None:
    """QLoRA + GRPO on CPU (bitsandbytes' 4-bit layers run there): the reference policy is the same
    quantised weights with LoRA disabled, and it differs from the policy (KL > 0, different logits)."""
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    from emollm.model.resolve import load_system

    run = tmp_path / "q"
    _train_cli(
        [
            f"data.corpus={synthmer_small}",
            f"output_dir={run}",
            f"data.features.cache_dir={tmp_path / 'features'}",
            "data.val_split=null",
            "model.llm.quantization=4bit",
            "stages.0.max_steps=2",
            "stages.1.max_steps=1",
            "stages.1.rl.group_size=2",
            "stages.1.rl.prompts_per_step=2",
            "stages.1.rl.max_new_tokens=4",
            "stages.1.rl.beta=0.04",
        ],
        tmp_path,
    )
    kl = _rewards(run, "kl")
    assert len(kl) == 1 and kl[0] > 0, kl
    s = load_system(run / "final")
    llm = s.model.llm
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in llm.modules())
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    with torch.no_grad():
        policy = llm(input_ids=ids).logits
        with llm.disable_adapter():
            reference = llm(input_ids=ids).logits
    assert not torch.allclose(policy, reference)
