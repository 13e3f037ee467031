"""Every job on every tiny native family (issue 14): both stages train and resume bit-exact, eval writes a
headline score, chat answers about a SynthMER video, the server answers a request with a video part,
the train/infer prompts agree token for token, missing modalities work, and shared-prefix label scoring
equals the full reference path.

The families are real transformers classes at tiny size (``Qwen2AudioForConditionalGeneration``,
``Qwen2_5OmniThinkerForConditionalGeneration``, ``Qwen2VLForConditionalGeneration``) fed emollm's own
media inputs; nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import load_file

from emollm.data.sample import Manifest

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ["tiny-qwen2-audio", "tiny-qwen2.5-omni", "tiny-qwen2-vl"]


def _cfg(out: Path, corpus: Path, features: Path, preset: str, *extra: str) -> Any:
    from emollm.training.config import load_run_config

    return load_run_config(
        ROOT / "train/tiny.yaml",
        [
            f"preset={preset}",
            f"data.corpus={corpus}",
            f"output_dir={out}",
            f"data.features.cache_dir={features}",
            "stages.0.max_steps=4",
            "stages.0.save_every=1",
            "stages.0.keep_last=10",
            "stages.0.log_every=1",
            "stages.1.max_steps=2",
            *extra,
        ],
    )


@pytest.fixture(scope="module", params=FAMILIES)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, synthmer_small: Path) -> Any:
    """(preset, run folder, feature cache): the tiny two-stage recipe trained on one native family."""
    from emollm.training.trainer import train

    tmp = tmp_path_factory.mktemp(request.param)
    train(_cfg(tmp / "run", synthmer_small, tmp / "features", request.param), progress_bar=False)
    return request.param, tmp / "run", tmp / "features"


@pytest.fixture(scope="module")
def pred(run: Any) -> Any:
    from emollm.inference.chat import open_predictor

    _, folder, features = run
    return open_predictor(folder / "final", features, device="cpu", batch_size=4)


def test_both_stages_train_and_resume_bit_exact(run: Any, synthmer_small: Path, tmp_path: Path) -> None:
    from emollm.training.trainer import train

    preset, folder, features = run
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "finished"
    assert info["results"]["stage1_coarse"]["steps"] == 4 and info["results"]["stage2_fine"]["steps"] == 2
    a = load_file(str(folder / "stage1_coarse/final/trainable.safetensors"))
    b = load_file(str(folder / "final/trainable.safetensors"))
    assert a and a.keys() == b.keys() and all(k.startswith("lora.") for k in a)
    assert any(not torch.equal(a[k], b[k]) for k in a), "stage 2 did not train"
    assert not any("audio_tower" in k or "visual" in k for k in a), "LoRA reached a frozen tower"
    # resume from step 2 of stage 1 into a fresh folder: the same final weights, bit for bit
    again = tmp_path / "resumed"
    train(
        _cfg(again, synthmer_small, features, preset),
        resume=str(folder / "stage1_coarse/step_000002"),
        progress_bar=False,
    )
    lines = [json.loads(x) for x in (again / "metrics.jsonl").read_text().splitlines()]
    steps = sorted({x["step"] for x in lines if "stage1_coarse/train/loss" in x})
    assert steps == [3, 4], f"the resumed run logged stage-1 steps {steps}"
    got = load_file(str(again / "final/trainable.safetensors"))
    assert got.keys() == b.keys()
    for k in b:
        assert torch.equal(got[k], b[k]), k


def test_eval_writes_a_headline_score(run: Any, pred: Any, synthmer_small: Path, tmp_path: Path) -> None:
    from emollm.evaluation.runner import EvalOptions, run_eval

    _, folder, features = run
    opts = EvalOptions.model_validate(
        {
            "checkpoint": str(folder / "final"),
            "tasks": ["synthmer"],
            "roots": {"synthmer": str(synthmer_small)},
            "out": str(tmp_path / "eval"),
            "features": str(features),
            "device": "cpu",
            "limit": 6,
            "progress": False,
        }
    )
    run_eval(opts, system=pred.system)
    res = json.loads((tmp_path / "eval/results.json").read_text())
    head = res["tasks"]["synthmer"]["headline"]
    assert 0.0 <= head["value"] <= 1.0 and res["tasks"]["synthmer"]["answers"]["n"] == 6
    assert (tmp_path / "eval/report.md").is_file()


def test_train_and_inference_prompts_agree(pred: Any, synthmer_small: Path) -> None:
    man = Manifest.load(synthmer_small)
    s = next(x for x in man.split("test") if x.fine and x.coarse)
    feats = pred.features([s], man.root, None)
    assert set(feats[0].features) == set(pred.system.modalities)
    checked = 0
    for task in pred.contract.tasks:
        if not pred.contract.target(s, task):
            continue
        enc = pred.system.processor.encode(
            pred.contract.conversation(s, task, list(pred.system.modalities), with_answer=True)
        )
        want = enc.input_ids[: enc.answer_start]
        got = pred.system.processor.encode(pred.conversations([s], feats, task)[0], generation=True)
        assert got.input_ids == want, task
        checked += 1
    assert checked >= 2
    # the model's own placeholder and the text its chat template puts around it
    text = pred.system.processor.tok.decode(want)
    for m in pred.system.modalities:
        before, after = pred.system.processor.wrappers[m]
        tok = pred.system.processor.placeholders[m]
        assert before + tok * pred.system.encoders[m].llm_tokens + after in text


def test_shared_prefix_scoring_equals_the_full_path(pred: Any, synthmer_small: Path) -> None:
    man = Manifest.load(synthmer_small)
    samples = man.split("test")[:3]
    feats = pred.features(samples, man.root, None)
    convs = pred.conversations(samples, feats, "emotion")
    batches, encs = pred._batches(convs)
    batch, f = pred._inputs(encs, feats, batches[0])
    cands = pred.candidates(convs[0], list(pred.system.labels.labels))
    m = pred.system.model
    shared = m.score_labels(batch["input_ids"], batch["attention_mask"], f, cands)
    full = m.score_labels(batch["input_ids"], batch["attention_mask"], f, cands, share_prefix=False)
    assert shared.shape == (len(batches[0]), len(cands))
    torch.testing.assert_close(shared, full, atol=2e-4, rtol=1e-4)


def test_missing_modalities(pred: Any, synthmer_small: Path, tmp_path: Path) -> None:
    """Each modality alone (the ablation conditions), and a clip with no sound track."""
    import av
    import numpy as np

    from emollm.media.video_write import write_video

    man = Manifest.load(synthmer_small)
    s = man.split("test")[0]
    for mod in pred.system.modalities:
        r = pred.classify([s], man.root, modalities=[mod])[0]
        assert r.modalities == [mod] and abs(sum(r.probs.values()) - 1) < 1e-4
    # a silent clip: audio is absent, never zero-filled
    silent = tmp_path / "silent.mp4"
    with av.open(str(man.media_path(s, "video"))) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)][:16]
    write_video(silent, np.stack(frames), fps=8)
    from emollm.inference.chat import ChatSession

    chat = ChatSession(pred, max_new_tokens=4)
    chat.attach("video", silent)
    r = chat.ask(task="label")
    assert "audio" not in r.modalities
    assert ("audio" in r.missing) == ("audio" in pred.system.modalities)
    # an audio-only family answers from the text alone; the others from the frames
    assert r.modalities == [m for m in pred.system.modalities if m != "audio"]


def test_chat_answers_about_a_video(pred: Any, synthmer_small: Path) -> None:
    from emollm.inference.chat import ChatSession

    man = Manifest.load(synthmer_small)
    s = man.split("test")[0]
    chat = ChatSession(pred, max_new_tokens=6)
    chat.attach("video", man.media_path(s, "video"))
    first = chat.ask(task="label", probs=True)
    assert first.label in pred.system.labels.labels
    assert sorted(first.modalities) == sorted(pred.system.modalities)
    second = chat.ask("Why?")
    assert isinstance(second.text, str) and second.completion_tokens >= 1
    assert second.prompt_tokens > first.prompt_tokens  # the clip and the first answer are in context
    roles = [m.role for m in chat.conversation().messages]
    assert roles[-4:] == ["user", "assistant", "user", "assistant"]


def test_server_answers_a_video_part(pred: Any, synthmer_small: Path) -> None:
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    man = Manifest.load(synthmer_small)
    clip = man.media_path(man.split("test")[1], "video")
    data = base64.b64encode(Path(clip).read_bytes()).decode()
    app = create_app(pred, ServeSettings(model_id="native", max_new_tokens=6))
    body = {
        "model": "native",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}},
                    {"type": "text", "text": "How does the person feel?"},
                ],
            }
        ],
        "max_tokens": 6,
    }
    with BackgroundServer(app) as url:
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["choices"][0]["message"]["role"] == "assistant"
        assert isinstance(out["choices"][0]["message"]["content"], str)
        assert out["usage"]["prompt_tokens"] > sum(e.llm_tokens for e in pred.system.encoders.values())
        assert httpx.get(url + "/health").json()["status"] == "ok"


def test_trainable_projector_is_saved_and_reloaded(synthmer_small: Path, tmp_path: Path) -> None:
    """``llm.train_projector``: the model's own projector trains and travels in the checkpoint."""
    from emollm.model.resolve import load_system
    from emollm.training.trainer import train

    cfg = _cfg(
        tmp_path / "run",
        synthmer_small,
        tmp_path / "features",
        "tiny-qwen2-audio",
        "model.llm.train_projector=true",
        "stages.0.max_steps=2",
        "stages.1.max_steps=1",
        "data.val_split=null",
    )
    train(cfg, progress_bar=False)
    w = load_file(str(tmp_path / "run/final/trainable.safetensors"))
    proj = {k: v for k, v in w.items() if k.startswith("projectors.audio.")}
    assert set(proj) == {"projectors.audio.linear.weight", "projectors.audio.linear.bias"}
    s = load_system(tmp_path / "run/final")
    assert s.model.count_parameters()["projector"] == sum(v.numel() for v in proj.values())
    own = s.model.llm.get_submodule("base_model.model.model.multi_modal_projector")
    assert torch.equal(own.linear.weight.detach(), proj["projectors.audio.linear.weight"])
    # a fresh model's projector differs: the checkpoint's was trained and loaded
    fresh = load_system("tiny-qwen2-audio")
    fresh_w = fresh.model.llm.get_submodule("base_model.model.model.multi_modal_projector").linear.weight
    assert not torch.equal(fresh_w.detach(), proj["projectors.audio.linear.weight"])
    shutil.rmtree(tmp_path / "run")
