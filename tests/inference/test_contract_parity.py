"""The prompt contract travels with the checkpoint: a model trained with a non-default mixture is asked
with that mixture's prompts by ``emollm prompt``, eval, the Predictor, chat, predict and serve, and for
every task the training prompt without its answer equals, token for token, what each of them builds.

The tiny recipe is trained with ``stage1_coarse`` in both stages, whose ``reason`` task uses the
``describe`` pool (the default contract asks ``reason`` with the ``reason`` pool).
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from emollm.data.contract import CONTRACT_FILE, PromptContract, default_contract
from emollm.data.instructions import load_pool
from emollm.data.sample import Manifest

ROOT = Path(__file__).resolve().parents[2]
N_NEW = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, synthmer_small: Path) -> Path:
    from emollm.training.config import load_run_config
    from emollm.training.trainer import train

    tmp = tmp_path_factory.mktemp("contract_run")
    cfg = load_run_config(
        ROOT / "train/tiny.yaml",
        [
            f"data.corpus={synthmer_small}",
            f"output_dir={tmp / 'run'}",
            f"data.features.cache_dir={tmp / 'features'}",
            "stages.0.max_steps=2",
            "stages.1.max_steps=1",
            "stages.1.mixture=data_recipes/mixtures/stage1_coarse.yaml",
        ],
    )
    train(cfg, progress_bar=False)
    return tmp / "run"


@pytest.fixture(scope="module")
def pred(trained: Path) -> Any:
    from emollm.inference.chat import open_predictor

    return open_predictor(trained / "final", trained.parent / "features", device="cpu")


@pytest.fixture(scope="module")
def sample(synthmer_small: Path) -> tuple[Manifest, Any]:
    man = Manifest.load(synthmer_small)
    return man, next(s for s in man.split("test") if s.fine and s.coarse and s.subtitle)


def _train_prompt_ids(pred: Any, sample: Any, task: str) -> list[int]:
    """The training conversation of ``task`` for ``sample``, cut before its answer."""
    mods = list(pred.system.modalities)
    enc = pred.system.processor.encode(pred.contract.conversation(sample, task, mods, with_answer=True))
    assert enc.answer_start is not None
    return enc.input_ids[: enc.answer_start]


def test_every_checkpoint_carries_the_resolved_contract(trained: Path) -> None:
    describe = list(load_pool("describe"))
    for folder in ("final", "best", "stage1_coarse/final", "stage2_fine/final"):
        c = PromptContract.load(trained / folder)
        assert c.source == "training"
        assert c.tasks["reason"].prompts == describe and c.tasks["reason"].trained
        assert c.tasks["emotion"].prompts == list(load_pool("emotion")) and c.tasks["emotion"].trained
        # tasks it never trained keep the defaults, marked untrained
        assert c.tasks["openset"].prompts == list(load_pool("openset")) and not c.tasks["openset"].trained
    assert PromptContract.load(trained / "final").name == "stage1_coarse+stage1_coarse"


def test_prompt_command_shows_the_describe_pool(trained: Path, sample) -> None:
    from emollm.data.prompt_view import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["prompt", "--checkpoint", str(trained / "final"), "--task", "reason"])
    assert r.exit_code == 0, r.output
    assert "[reason] " + load_pool("describe")[0] in r.output
    assert load_pool("reason")[0] not in r.output
    assert "<audio × 1>" in r.output and "(trained)" in r.output
    # a preset: the default contract
    r = CliRunner().invoke(app, ["prompt", "--checkpoint", "tiny-fast", "--task", "reason"])
    assert r.exit_code == 0 and "[reason] " + load_pool("reason")[0] in r.output
    # a real manifest sample: its subtitle is in the prompt
    man, s = sample
    r = CliRunner().invoke(
        app,
        ["prompt", "-c", str(trained / "final"), "-t", "explain", "-m", str(man.root), "-s", s.id, "--no-cache"],
    )
    assert r.exit_code == 0, r.output
    assert s.subtitle.split()[0] in r.output and load_pool("describe")[0] in r.output


def test_predictor_chat_and_eval_build_the_training_prompt(pred: Any, sample, tmp_path: Path) -> None:
    from emollm.evaluation.runner import EvalOptions, build_plan, checkpoint_info
    from emollm.inference.chat import ChatSession

    man, s = sample
    feats = pred.features([s], man.root, None)
    assert set(feats[0].features) == set(pred.system.modalities)
    for task in pred.contract.tasks:
        if not pred.contract.target(s, task):
            continue
        want = _train_prompt_ids(pred, s, task)
        got = pred.system.processor.encode(pred.conversations([s], feats, task)[0], generation=True)
        assert got.input_ids == want, task
    # chat: explain -> the contract's reason task (describe pool); label -> emotion
    for kind, task in (("explain", "reason"), ("label", "emotion")):
        chat = ChatSession(pred)
        chat.attach_sample(s, man.root)
        turn = chat.prepare_turn(task=kind)
        conv = chat.conversation([turn])
        assert pred.system.processor.encode(conv, generation=True).input_ids == _train_prompt_ids(pred, s, task)
    # eval's base condition (a task YAML asking `reason`)
    task_yaml = tmp_path / "synthmer_reason.yaml"
    task_yaml.write_text(
        "name: synthmer_reason\nversion: '1'\nkind: explanation\n"
        "data: {recipe: synthmer, root: synthmer, split: test}\n"
        "prompt: {task: reason, index: 0}\nanswers: {method: generate, max_new_tokens: 8}\n"
        "explanation: {gold_field: fine}\n"
    )
    opts = EvalOptions.model_validate(
        {
            "checkpoint": str(Path(pred.system.source)),
            "tasks": [str(task_yaml)],
            "roots": {"synthmer": str(man.root)},
            "modalities": "all",
            "progress": False,
        }
    )
    ckpt = checkpoint_info(opts.checkpoint)
    plan = build_plan(opts, ckpt)
    (tp,) = plan.tasks
    base = next(c for c in tp.conditions if c.id == "base")
    assert base.instruction == "[reason] " + load_pool("describe")[0]
    conv = pred.conversations([s], feats, "reason", 0, include_subtitle=base.subtitle, instruction=base.instruction)[0]
    assert pred.system.processor.encode(conv, generation=True).input_ids == _train_prompt_ids(pred, s, "reason")


def test_eval_predict_and_serve_ask_with_the_describe_pool(pred: Any, sample, trained: Path, tmp_path: Path) -> None:
    from emollm.evaluation.runner import EvalOptions, run_eval
    from emollm.inference.predict import PredictOptions, load_records, run_predict
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    man, s = sample
    task_yaml = tmp_path / "synthmer_reason.yaml"
    task_yaml.write_text(
        "name: synthmer_reason\nversion: '1'\nkind: explanation\n"
        "data: {recipe: synthmer, root: synthmer, split: test}\n"
        "prompt: {task: reason, index: 0}\nanswers: {method: generate, max_new_tokens: 8}\n"
        "explanation: {gold_field: fine}\n"
    )
    opts = EvalOptions.model_validate(
        {
            "checkpoint": str(trained / "final"),
            "tasks": [str(task_yaml)],
            "roots": {"synthmer": str(man.root)},
            "out": str(tmp_path / "eval"),
            "features": str(trained.parent / "features"),
            "modalities": "all",
            "limit": 2,
            "progress": False,
        }
    )
    out = run_eval(opts, system=pred.system)
    assert out.complete
    res = json.loads((tmp_path / "eval" / "results.json").read_text())["tasks"]["synthmer_reason"]
    assert res["conditions"]["base"]["instruction"] == "[reason] " + load_pool("describe")[0]
    # the eval run records the contract it asked with
    assert PromptContract.load(tmp_path / "eval").tasks["reason"].prompts == list(load_pool("describe"))

    # predict's explanation is the Predictor's generation with the contract's reason task
    want = pred.generate([s], man.root, max_new_tokens=N_NEW)[0]
    direct = pred.generate_conversations(
        pred.conversations([s], pred.features([s], man.root, None), "reason"),
        pred.features([s], man.root, None),
        max_new_tokens=N_NEW,
    )[0]
    assert want == direct
    run_predict(
        pred,
        [s],
        man.root,
        tmp_path / "pred",
        PredictOptions(explain=True, max_new_tokens=N_NEW, batch_size=1),
        progress=False,
    )
    assert load_records(tmp_path / "pred")[s.id]["explanation"] == want

    # serve: the same prompt (token count) and the same greedy answer
    n_prompt = len(_train_prompt_ids(pred, s, "reason"))
    app = create_app(pred, ServeSettings(model_id="contract-test", max_new_tokens=N_NEW))
    data = base64.b64encode(man.media_path(s, "video").read_bytes()).decode()
    body = {
        "model": "contract-test",
        "messages": [
            {"role": "user", "content": [{"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}]}
        ],
        "max_tokens": N_NEW,
        "emollm": {"task": "explain", "subtitle": s.subtitle},
    }
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=120) as c:
        r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == n_prompt
    assert r.json()["choices"][0]["message"]["content"] == want


def test_old_checkpoint_without_contract_loads_the_default(trained: Path, tmp_path: Path, caplog) -> None:
    import shutil

    from emollm.model.resolve import load_system

    old = tmp_path / "old"
    shutil.copytree(trained / "final", old)
    (old / CONTRACT_FILE).unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["files"]  # a checkpoint from before contracts also predates the manifest's file hashes
    (old / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        system = load_system(old)
        load_system(old)
    assert system.contract == default_contract(system.labels, system.cfg.system_prompt)
    said = [r for r in caplog.records if CONTRACT_FILE in r.getMessage()]
    assert len(said) == 1  # said once


def test_contract_file_errors(tmp_path: Path) -> None:
    (tmp_path / CONTRACT_FILE).write_text("labels: [a, b]\ntasks: {}\n")
    with pytest.raises(ValueError, match=CONTRACT_FILE):
        PromptContract.load(tmp_path)
    from emollm.labels import label_space

    c = default_contract(label_space("mer6"))
    bad = c.model_dump()
    bad["tasks"]["emotion"]["prompts"] = ["Which emotion?"]
    with pytest.raises(ValueError, match="none of its prompts lists"):
        PromptContract.model_validate(bad)
    with pytest.raises(KeyError, match="not in prompt contract"):
        c.task("nope")
    # only tasks whose answer the sample has are drawn
    from emollm.data.sample import Sample

    s = Sample(id="x", label="happy", coarse="a smile")
    drawn = {c.sample_task(s, random.Random(i)) for i in range(40)}
    assert drawn == {"emotion", "describe"}
    assert c.sample_task(Sample(id="y"), random.Random(0)) is None
