"""``emollm bench``: every benchmark runs end to end on tiny sizes and ends with one complete JSON line;
the 7B-shape builder has the published parameter counts; FLOP/MFU bookkeeping. No timing assertions."""

from __future__ import annotations

import json
import mmap
import threading

import pytest
import torch
import typer
from typer.testing import CliRunner

from emollm.bench.commands import register
from emollm.bench.common import PathResult, peak_tflops_for

PATH_KEYS = {"samples_per_s", "tokens_per_s", "seconds", "samples", "tokens", "peak_mem_mib", "tflops", "mfu"}
TOP_KEYS = {"bench", "preset", "device", "ratio", "fast", "reference", "settings", "machine", "peak_mem_kind"}
SMALL_SHAPE = [
    *("--shape", "num_hidden_layers=1"),
    *("--shape", "hidden_size=64"),
    *("--shape", "intermediate_size=128"),
    *("--shape", "num_attention_heads=2"),
    *("--shape", "vocab_size=1024"),
]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def _root() -> None:
        """emollm (test)"""

    register(a)
    return a


def _run(app: typer.Typer, *args: str) -> dict:
    res = CliRunner().invoke(app, ["bench", *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == 0, res.output
    last = res.stdout.strip().splitlines()[-1]
    data = json.loads(last)
    assert TOP_KEYS <= set(data), sorted(TOP_KEYS - set(data))
    for path in ("fast", "reference"):
        assert PATH_KEYS <= set(data[path]), (path, sorted(PATH_KEYS - set(data[path])))
        assert data[path]["samples_per_s"] > 0 and data[path]["peak_mem_mib"] > 0
    assert data["ratio"] > 0
    assert data["device"] == "cpu" and data["fast"]["mfu"] is None  # MFU only on a GPU
    return data


def test_bench_train_tiny(app) -> None:
    d = _run(
        app,
        *("train", "--preset", "tiny-fast", "--device", "cpu", "--samples", "8", "--batch-size", "4"),
        *("--steps", "2", "--warmup-steps", "0", "--ref-samples", "2", "--precision", "fp32"),
    )
    assert d["bench"] == "train" and d["preset"] == "tiny-fast"
    assert d["fast"]["steps"] == 2 and d["fast"]["samples"] == 8  # 2 steps x 4 samples
    assert d["reference"]["steps"] == 2 and d["reference"]["samples"] == 2  # batch 1: one step per sample
    assert d["fast"]["precision"] == "fp32" and d["reference"]["precision"] == "fp32"
    assert d["settings"]["batch_size"] == 4 and d["settings"]["workload"]["samples"] == 8
    assert d["fast"]["tokens"] > d["fast"]["samples"] and d["fast"]["loss_mean"] > 0


def test_bench_eval_tiny_counts_parse_failures(app) -> None:
    d = _run(
        app,
        *("eval", "--preset", "tiny-fast", "--device", "cpu", "--samples", "6", "--batch-size", "4"),
        *("--repeats", "1", "--ref-samples", "3", "--ref-max-new-tokens", "4"),
    )
    assert d["fast"]["samples"] == 6 and d["reference"]["samples"] == 3
    assert d["settings"]["ref_max_new_tokens"] == 4
    # a random model never ends on an exact label word: every reference answer is a parse failure
    assert 0 <= d["ref_parse_failures"] <= 3 and 0.0 <= d["agreement"] <= 1.0
    assert d["reference"]["new_tokens"] <= 3 * 4
    assert d["reference_short_answer"]["answer_tokens"] >= 2


def test_bench_generate_batched_matches_one_at_a_time(app) -> None:
    d = _run(
        app,
        *("generate", "--preset", "tiny-fast", "--device", "cpu", "--samples", "6", "--batch-size", "3"),
        *("--max-new-tokens", "5", "--ref-samples", "3", "--override", "lora.r=2"),
    )
    assert d["ratio_on"] == "tokens_per_s" and d["settings"]["workload"]["overrides"] == ["lora.r=2"]
    assert d["fast"]["tokens"] == 6 * 5 and d["reference"]["tokens"] == 3 * 5  # --ignore-eos: exactly max tokens
    # fp32 greedy decoding: left padding in a batch must not change any answer
    assert d["agreement"] == 1.0


def test_bench_rl_shared_prefix_rollouts_vs_per_rollout_generate(app) -> None:
    d = _run(
        app,
        *("rl", "--preset", "tiny-fast", "--device", "cpu", "--samples", "4", "--batch-size", "2"),
        *("--group-size", "3", "--max-new-tokens", "4", "--ref-prompts", "1", "--micro-batch-size", "4"),
    )
    assert d["bench"] == "rl" and d["settings"]["group_size"] == 3
    assert d["fast"]["samples"] == 4 * 3 and d["fast"]["tokens"] == 4 * 3 * 4  # rollouts, exactly max tokens
    assert d["reference"]["samples"] == 3 and d["reference"]["tokens"] == 3 * 4
    assert d["rollouts_per_s"]["fast"] > 0 and d["train"]["fast_samples_per_s"] > 0 and d["train"]["ratio"] > 0


def test_bench_extract_cold_warm_changed(app, synthmer_small, tmp_path) -> None:
    d = _run(
        app,
        *("extract", "--preset", "tiny-fast", "--device", "cpu", "--corpus", str(synthmer_small)),
        *("--samples", "4", "--cache-dir", str(tmp_path), "--change", "face.n_frames=3"),
    )
    cold, warm, changed = d["reference"]["cache"], d["fast"]["cache"], d["changed"]["cache"]
    n_items = cold["misses"]
    assert n_items > 0 and cold["hits"] == 0 and cold["writes"] == n_items
    assert warm == {"hits": n_items, "misses": 0, "writes": 0, "corrupt": 0}
    assert changed["misses"] > 0 and changed["hits"] + changed["misses"] == n_items  # only face recomputed
    assert d["changed"]["modality"] == "face" and d["changed"]["value"] == 3
    assert list(tmp_path.iterdir()) == []  # the fresh cache is removed afterwards


def test_shapes_preset_runs_at_reduced_size(app) -> None:
    d = _run(
        app,
        *("train", "--preset", "emotion-llama-shapes", "--device", "cpu", "--samples", "4", "--batch-size", "2"),
        *("--steps", "1", "--warmup-steps", "0", "--ref-samples", "1", "--ref-warmup", "0"),
        *SMALL_SHAPE,
    )
    # every sample carries the 260 published media tokens
    assert d["fast"]["tokens"] >= d["fast"]["samples"] * 260
    assert d["settings"]["workload"]["shape"]["num_hidden_layers"] == 1


def test_shapes_preset_eval_and_generate_at_reduced_size(app) -> None:
    # the random 1024-row vocabulary is larger than the tokenizer's: decoding must cope with unknown ids
    d = _run(
        app,
        *("eval", "--preset", "emotion-llama-shapes", "--device", "cpu", "--samples", "4", "--batch-size", "2"),
        *("--repeats", "1", "--ref-samples", "2", "--ref-max-new-tokens", "3"),
        *SMALL_SHAPE,
    )
    assert d["fast"]["candidates"] == 9  # merr9, as the emotion-llama preset
    g = _run(
        app,
        *("generate", "--preset", "emotion-llama-shapes", "--device", "cpu", "--samples", "4", "--batch-size", "2"),
        *("--max-new-tokens", "3", "--ref-samples", "2"),
        *SMALL_SHAPE,
    )
    assert g["fast"]["tokens"] == 4 * 3


def test_shapes_full_size_is_refused_on_cpu(app) -> None:
    res = CliRunner().invoke(app, ["bench", "eval", "--preset", "emotion-llama-shapes", "--device", "cpu"])
    assert isinstance(res.exception, ValueError)
    assert "--allow-slow" in str(res.exception) and "GPU" in str(res.exception)


def test_shapes_builder_has_the_published_parameter_counts() -> None:
    from emollm.bench.common import ModelDims
    from emollm.bench.shapes import MEDIA_LAYOUT, build_shapes_system

    s = build_shapes_system("meta")
    c = s.model.count_parameters()
    assert c["total"] - c["trainable"] == 6_738_415_616  # LLaMA-2-7B
    assert c["lora"] == 33_554_432 and c["projector"] == 41_439_232 and c["trainable"] == 74_993_664  # spec §1.5
    assert sum(t for t, _ in MEDIA_LAYOUT.values()) == 260
    assert {m: (e.tokens_per_item, e.dim) for m, e in s.encoders.items()} == MEDIA_LAYOUT
    assert s.model.llm.get_input_embeddings().weight.shape == (32000, 4096)
    dims = ModelDims.of(s)
    assert (dims.n_layers, dims.d_model) == (32, 4096)
    assert dims.n_dense == 6_738_415_616 - 32000 * 4096 + 33_554_432  # no input-embedding table, LoRA included


def test_flops_and_mfu_bookkeeping() -> None:
    from emollm.bench.common import ModelDims

    d = ModelDims(n_layers=2, d_model=8, n_dense=1000, n_lora=100, n_proj={"audio": 50})
    assert d.forward_flops([10]) == 2 * 1000 * 10 + 4 * 2 * 8 * 10 * 10
    assert d.train_flops([10], {"audio": 1}) == (4 * 900 + 6 * 100) * 10 + 12 * 2 * 8 * 100 + 6 * 50
    assert d.decode_flops([5, 6]) == 2 * (2 * 1000) + 4 * 2 * 8 * (5 + 6)
    r = PathResult("x", seconds=2.0, samples=10, tokens=100, flops=2 * 0.4 * 989.4e12)
    assert r.figures(gpu=True, peak=989.4)["mfu"] == pytest.approx(0.4)
    assert r.figures(gpu=True, peak=None)["mfu"] == "unknown"
    assert r.figures(gpu=False, peak=None)["mfu"] is None
    assert r.figures(gpu=False, peak=None)["samples_per_s"] == 5.0
    assert peak_tflops_for("NVIDIA H100 80GB HBM3") == 989.4 and peak_tflops_for("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops_for("NVIDIA H200") == 989.4 and peak_tflops_for("Tesla T4") is None


def test_peak_memory_on_cpu_is_the_rss_high_water() -> None:
    from emollm.bench.common import PeakMemory

    # What made this flaky in CI: an earlier spike, then any thread of the process exits, and the
    # kernel's per-process maxrss (which no reset clears) keeps the spike. Reproduce that first.
    spike = torch.ones(256 * 2**20 // 4)
    spike += 1
    del spike
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()

    dev = torch.device("cpu")
    with PeakMemory(dev) as small:
        pass
    with PeakMemory(dev) as big:
        # Fresh pages: a tensor may be served from freed heap memory that is still resident after
        # earlier tests, so its RSS would not grow. An anonymous mapping, every page touched, always does.
        buf = mmap.mmap(-1, 64 * 2**20)
        for off in range(0, len(buf), mmap.PAGESIZE):
            buf[off] = 1
        buf.close()
    assert big.mib > 0 and small.mib > 0
    if big.reset_ok:  # the high-water mark was reset between the blocks
        assert big.mib >= small.mib + 32


def test_fast_precision_policy() -> None:
    from emollm.bench.common import cpu_bf16_fast
    from emollm.bench.train import fast_precision

    cpu = torch.device("cpu")
    assert fast_precision("fp32", cpu, 4096) == "fp32" and fast_precision("bf16", cpu, 64) == "bf16"
    assert fast_precision("auto", cpu, 64) == "fp32"  # tiny matrices: casts cost more than bf16 saves
    assert fast_precision("auto", cpu, 4096) == ("bf16" if cpu_bf16_fast() else "fp32")
