"""Tiny random HuBERT / ViT-MAE / VideoMAE / EVA ViT-g encoders and ``precomputed`` features, built
through the registry: shapes, options, determinism, Emotion-LLaMA's 4-patch grouping, frozen weights,
cache identities and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emollm.config import ConfigError, EncoderConfig, ModelConfig, validate
from emollm.encoders import ENCODERS, build_encoder
from emollm.encoders.vision import CLIP_MEAN, CLIP_STD, preprocess
from emollm.model.presets import preset_dict


def tiny(name: str, **options: object) -> torch.nn.Module:
    return build_encoder(EncoderConfig(name=name, tiny=True, options=options))


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    """Two clips of different lengths (0.5 s and 0.2 s at 16 kHz): a vowel-like tone and noise."""
    t = np.arange(8000) / 16000
    tone = (0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(3200).astype(np.float32)
    return [tone, noise]


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Three 40x40 RGB face-crop stand-ins ``uint8[3, 40, 40, 3]``."""
    return np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- HuBERT


def test_hubert_shape_layers_and_pooling(waves: list[np.ndarray]) -> None:
    enc = tiny("hubert")
    assert (enc.input_kind, enc.media.sample_rate, enc.dim, enc.tokens_per_item) == ("audio", 16000, 32, 1)
    last = enc.encode(waves)
    assert tuple(last.shape) == (2, 1, 32) and torch.isfinite(last).all()
    # the mean-pooled last layer equals a direct HubertModel call on the normalised clip, alone
    for i, w in enumerate(waves):
        x = torch.from_numpy((w - w.mean()) / np.sqrt(w.var() + 1e-7))[None]
        with torch.no_grad():
            h = enc.module(x, output_hidden_states=True).hidden_states
        torch.testing.assert_close(last[i, 0], h[-1][0].mean(0), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tiny("hubert", layer=0).encode([w])[0, 0], h[0][0].mean(0), atol=1e-5, rtol=1e-5)
    first = tiny("hubert", layer=0).encode(waves)
    peak = tiny("hubert", pooling="max").encode(waves)
    assert (first - last).abs().max() > 1e-3 and (peak - last).abs().max() > 1e-3
    assert (peak >= last - 1e-6).all()  # a max over time is never below the mean
    seg_enc = tiny("hubert", pooling="segments", tokens=3)
    seg = seg_enc.encode(waves)
    assert tuple(seg.shape) == (2, 3, 32) and seg_enc.tokens_per_item == 3
    assert not torch.allclose(seg[:, 0], seg[:, 2])  # different parts of the clip


def test_hubert_features_do_not_depend_on_batch_mates(waves: list[np.ndarray]) -> None:
    enc = tiny("hubert")
    both = enc.encode(waves)
    for i, w in enumerate(waves):
        torch.testing.assert_close(both[i], enc.encode([w])[0], atol=1e-5, rtol=1e-5)


def test_hubert_short_and_long_input(waves: list[np.ndarray]) -> None:
    enc = tiny("hubert", max_seconds=1.0)
    out = enc.encode([np.zeros(100, np.float32), waves[0]])  # shorter than one 25 ms window: padded
    assert tuple(out.shape) == (2, 1, 32) and torch.isfinite(out).all()
    assert enc.media.max_seconds == 1.0 and "max1.0s" in enc.identity


# ---------------------------------------------------------------------------------------------- ViT-MAE / VideoMAE


def test_vit_mae_is_deterministic_and_keeps_every_patch(faces: np.ndarray) -> None:
    enc = tiny("vit_mae", n_frames=3)
    assert (enc.input_kind, enc.media.n_frames, enc.dim, enc.tokens_per_item) == ("faces", 3, 32, 1)
    rng_before = torch.random.get_rng_state()
    a, b = enc.encode([faces]), enc.encode([faces])
    assert torch.equal(a, b), "two calls on the same faces must give identical features"
    assert torch.equal(rng_before, torch.random.get_rng_state()), "encoding must not draw from the global RNG"
    assert enc.module.config.mask_ratio == 0.0
    x = preprocess(faces, enc.size, enc.mean, enc.std)
    n_patch = (enc.size // enc.module.config.patch_size) ** 2
    with torch.no_grad():
        out = enc.module(pixel_values=x)
    assert out.last_hidden_state.shape == (3, 1 + n_patch, 32) and not out.mask.any()  # nothing masked
    # mean of the patch tokens of each frame, then mean over frames ("UTT")
    torch.testing.assert_close(a[0, 0], out.last_hidden_state[:, 1:].mean(1).mean(0), atol=1e-5, rtol=1e-5)
    cls = tiny("vit_mae", n_frames=3, token="cls").encode([faces])
    torch.testing.assert_close(cls[0, 0], out.last_hidden_state[:, 0].mean(0), atol=1e-5, rtol=1e-5)
    per_frame = tiny("vit_mae", n_frames=3, pooling="none").encode([faces])
    assert tuple(per_frame.shape) == (1, 3, 32)
    torch.testing.assert_close(per_frame.mean(1), a[:, 0], atol=1e-5, rtol=1e-5)


def test_vit_mae_per_frame_tokens_resample_to_n_frames(faces: np.ndarray) -> None:
    enc = tiny("vit_mae", n_frames=4, pooling="none")
    out = enc.encode([faces, faces[:1]])  # 3 and 1 decoded frames -> always 4 tokens
    assert tuple(out.shape) == (2, 4, 32)
    assert torch.equal(out[1, 0], out[1, 3]) and not torch.equal(out[0, 0], out[0, 3])


def test_videomae_shape(faces: np.ndarray) -> None:
    enc = tiny("videomae")
    assert (enc.input_kind, enc.media.n_frames, enc.media.selection) == ("faces", 4, "segments")
    out = enc.encode([faces, faces[:1], np.repeat(faces, 3, axis=0)])  # 3, 1 and 9 frames -> 4 sampled
    assert tuple(out.shape) == (3, 1, 32) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(out, enc.encode([faces, faces[:1], np.repeat(faces, 3, axis=0)]))


# ---------------------------------------------------------------------------------------------- EVA ViT-g


def test_preprocess_resizes_and_normalises_with_clip_statistics() -> None:
    gray = np.full((2, 30, 50, 3), 128, np.uint8)
    x = preprocess(gray, 56, CLIP_MEAN, CLIP_STD)
    assert tuple(x.shape) == (2, 3, 56, 56)
    want = (128 / 255 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    torch.testing.assert_close(x[0, :, 10, 20], torch.tensor(want, dtype=torch.float32), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"expected RGB frames \[T, H, W, 3\]"):
        preprocess(np.zeros((2, 30, 50), np.uint8), 56, CLIP_MEAN, CLIP_STD)


def test_eva_vit_g_gives_cls_plus_grouped_patch_tokens() -> None:
    frame_enc = tiny("eva_vit_g", view="patches4")
    cls_enc = tiny("eva_vit_g", view="cls")
    all_enc = tiny("eva_vit_g", view="patches")
    assert frame_enc.module is cls_enc.module is all_enc.module  # one backbone for frame + frame_cls
    cfg = frame_enc.module.config
    n_patch = (cfg.image_size // cfg.patch_size) ** 2  # 56 px / 14 px -> 16 patches
    d = cfg.hidden_size
    assert (frame_enc.tokens_per_item, frame_enc.dim) == (n_patch // 4, 4 * d)
    assert (cls_enc.tokens_per_item, cls_enc.dim) == (1, d)
    assert (all_enc.tokens_per_item, all_enc.dim) == (n_patch, d)
    assert frame_enc.input_kind == "frames" and frame_enc.media.n_frames == 1
    # the tiny preset's frame + frame_cls modalities: 1 + n_patches/4 visual tokens in all
    assert frame_enc.tokens_per_item + cls_enc.tokens_per_item == 1 + n_patch // 4 == 5

    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (1, 60, 80, 3), dtype=np.uint8) for _ in range(2)]
    grouped, cls, patches = frame_enc.encode(frames), cls_enc.encode(frames), all_enc.encode(frames)
    assert tuple(grouped.shape) == (2, n_patch // 4, 4 * d) and tuple(cls.shape) == (2, 1, d)
    for i, f in enumerate(frames):
        with torch.no_grad():  # a direct Blip2VisionModel call: [1, 1 + P, D], CLS first
            h = frame_enc.module(pixel_values=preprocess(f, cfg.image_size, CLIP_MEAN, CLIP_STD)).last_hidden_state[0]
        assert h.shape == (1 + n_patch, d)
        torch.testing.assert_close(cls[i, 0], h[0])
        torch.testing.assert_close(patches[i], h[1:])
        for k in range(n_patch // 4):  # token k = patches 4k..4k+3 (raster order), concatenated
            torch.testing.assert_close(grouped[i, k], torch.cat([h[1 + 4 * k + j] for j in range(4)]))
    assert not torch.allclose(grouped[0], grouped[1])  # the shared-forward memo never serves another frame


def test_eva_vit_g_uses_the_first_frame_by_default() -> None:
    enc = tiny("eva_vit_g", view="cls")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, (2, 1, 56, 56, 3), dtype=np.uint8)
    two = np.concatenate([a, b])
    torch.testing.assert_close(enc.encode([two]), enc.encode([a]))
    assert enc.media.selection == "first" and tiny("eva_vit_g", selection="peak").media.selection == "peak"


# ---------------------------------------------------------------------------------------------- precomputed


def test_precomputed_reads_npy_npz_and_pt(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    a, b, c = (rng.standard_normal((2, 6)).astype(np.float32) for _ in range(3))
    np.save(tmp_path / "clip_a.npy", a)
    np.savez(tmp_path / "clip_b.npz", feats=b)
    torch.save(torch.from_numpy(c), tmp_path / "clip_c.pt")
    np.save(tmp_path / "flat.npy", a[0])

    def mk(pattern: str, tokens: int) -> torch.nn.Module:
        opts = {"dir": str(tmp_path), "pattern": pattern, "dim": 6, "tokens": tokens}
        return build_encoder(EncoderConfig(name="precomputed", options=opts))

    enc = mk("{id}.npy", 2)
    assert (enc.input_kind, enc.dim, enc.tokens_per_item) == ("features", 6, 2)
    np.testing.assert_array_equal(enc.load("clip_a"), a)
    np.testing.assert_array_equal(mk("{id}.npz", 2).load("clip_b"), b)
    np.testing.assert_array_equal(mk("{id}.pt", 2).load("clip_c"), c)
    np.testing.assert_array_equal(mk("{id}.npy", 1).load("flat"), a[:1])  # [dim] -> [1, dim]
    assert torch.equal(enc.encode([a, b]), torch.from_numpy(np.stack([a, b])))
    with pytest.raises(FileNotFoundError, match=r"sample 'nope' not found at .*nope\.npy"):
        enc.load("nope")
    with pytest.raises(ValueError, match=r"clip_a\.npy: features have shape \(2, 6\), expected \(3, 6\)"):
        mk("{id}.npy", 3).load("clip_a")
    (tmp_path / "clip_d.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=r"unsupported feature file type '\.txt'"):
        mk("{id}.txt", 1).load("clip_d")
    assert mk("{id}.npy", 2).identity != mk("{id}.npz", 2).identity


def test_featurizer_reads_precomputed_features_for_a_sample(tmp_path: Path) -> None:
    from emollm.data.sample import Sample
    from emollm.features.featurizer import Featurizer

    feats = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.save(tmp_path / "s1.npy", feats)
    enc = build_encoder(EncoderConfig(name="precomputed", options={"dir": str(tmp_path), "dim": 6, "tokens": 2}))
    out = Featurizer({"audio": enc}, None, mode="live")([Sample(id="s1")], tmp_path)
    assert torch.equal(out[0].features["audio"], torch.from_numpy(feats)) and out[0].missing == {}


# ---------------------------------------------------------------------------------------------- contract


@pytest.mark.parametrize(
    ("name", "options"),
    [("hubert", {}), ("vit_mae", {}), ("videomae", {}), ("eva_vit_g", {}), ("eva_vit_g", {"view": "cls"})],
)
def test_parameters_are_frozen_and_stay_in_eval(name: str, options: dict) -> None:
    enc = tiny(name, **options)
    params = list(enc.parameters())
    assert params and not any(p.requires_grad for p in params)
    enc.train()
    assert not enc.training and not enc.module.training


def test_identity_changes_when_an_option_changes() -> None:
    variants = [
        ("hubert", {}),
        ("hubert", {"layer": 0}),
        ("hubert", {"pooling": "max"}),
        ("hubert", {"max_seconds": 10.0}),
        ("hubert", {"normalize_waveform": False}),
        ("vit_mae", {}),
        ("vit_mae", {"n_frames": 4}),
        ("vit_mae", {"token": "cls"}),
        ("vit_mae", {"selection": "peak"}),
        ("videomae", {}),
        ("videomae", {"selection": "uniform"}),
        ("eva_vit_g", {}),
        ("eva_vit_g", {"view": "cls"}),
        ("eva_vit_g", {"selection": "middle"}),
    ]
    ids = [tiny(n, **o).identity for n, o in variants]
    assert len(set(ids)) == len(ids)
    assert tiny("hubert").identity == tiny("hubert").identity  # stable for the same settings
    assert all("tiny-random-seed0" in i for i in ids)


def test_unknown_encoder_and_option_errors_name_them() -> None:
    with pytest.raises(ValueError, match=r"unknown encoder 'hubrt' \(did you mean 'hubert'\?\); known: .*vit_mae"):
        EncoderConfig(name="hubrt", tiny=True)
    with pytest.raises(KeyError, match="unknown encoder 'nope'"):
        ENCODERS.get("nope")
    with pytest.raises(
        ValueError, match=r"options of encoder 'vit_mae'.*unknown key 'n_frame' \(did you mean 'n_frames'\?\)"
    ):
        EncoderConfig(name="vit_mae", tiny=True, options={"n_frame": 2})
    with pytest.raises(ValueError, match=r"options of encoder 'eva_vit_g'.*view"):
        EncoderConfig(name="eva_vit_g", tiny=True, options={"view": "patches8"})
    with pytest.raises(ValueError, match=r"options of encoder 'precomputed'.*missing required key 'dir'"):
        EncoderConfig(name="precomputed", options={"dim": 4})
    data = preset_dict("tiny-fast")
    data["modalities"]["face"]["encoder"]["options"]["poolin"] = "mean"
    with pytest.raises(ConfigError, match=r"modalities\.face\.encoder: .*unknown key 'poolin'"):
        validate(ModelConfig, data, "model.yaml")


def test_missing_weights_are_named() -> None:
    with pytest.raises(FileNotFoundError, match="hubert: set encoder.path"):
        build_encoder(EncoderConfig(name="hubert"))
    with pytest.raises(FileNotFoundError, match=r"vit_mae: no config\.json in weight folder /nonexistent/mae"):
        build_encoder(EncoderConfig(name="vit_mae", path="/nonexistent/mae"))
