"""SynthMER's media really carry the cues: the drawn mouth curves up for happy and down for sad and
opens for surprise, and the voice's F0 and loudness follow the expressed emotion. Each clip goes
through the real pipeline (render -> mp4 via PyAV -> decode)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest

from emollm.data.synthmer import SynthMERConfig
from emollm.data.synthmer.face import intensity_curve
from emollm.data.synthmer.generate import render_clip
from emollm.data.synthmer.plan import ClipPlan, make_plan

CFG = SynthMERConfig.tiny(n_speakers=6, unseen_test_speakers=0)


@pytest.fixture(scope="module")
def bases() -> list[ClipPlan]:
    """One planned clip per speaker (6 speakers, 3 women and 3 men)."""
    out: dict[str, ClipPlan] = {}
    for clip in make_plan(CFG):
        out.setdefault(clip.speaker.id, clip)
    assert len(out) == 6
    return list(out.values())


def render(tmp: Path, base: ClipPlan, face: str = "neutral", audio: str = "neutral") -> tuple[np.ndarray, np.ndarray]:
    """The decoded peak frame ``uint8[H, W, 3]`` and decoded audio ``float32[n]`` of ``base`` with new cues."""
    clip = dataclasses.replace(base, cues={"face": face, "audio": audio, "text": "neutral"}, peak_value=1.0)
    path = tmp / f"{clip.name}_{face}_{audio}.mp4"
    render_clip(clip, CFG, path)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        wav = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    return frames[clip.peak_index], wav


def mouth_features(img: np.ndarray, clip: ClipPlan) -> tuple[float, float]:
    """(corner rise, open fraction) of the mouth. Corner rise: minus the curvature (pixels from centre
    to corner) of a parabola fitted to the mean row of lip-red pixels per column (> 0: corners higher
    than the centre, a smile). Open fraction: share of very dark pixels in the mouth box."""
    look, size = clip.speaker.look, img.shape[0]
    unit = look.face_scale * size / 2
    cx, cy = look.center[0] * size, look.center[1] * size
    box = img[int(cy + 0.2 * unit) : int(cy + 0.8 * unit), int(cx - 0.5 * unit) : int(cx + 0.5 * unit)].astype(float)
    skin = np.array(look.skin, float)
    lips = (box[..., 0] - box[..., 1]) - (skin[0] - skin[1]) > 25
    dark = float((box.mean(-1) < 0.45 * skin.mean()).mean())
    cols = np.where(lips.sum(0) >= 1)[0]
    if len(cols) < 5:
        return 0.0, dark
    rows = np.arange(box.shape[0])
    x = (cols - cols.mean()) / (0.5 * (cols.max() - cols.min()))
    y = np.array([rows[lips[:, j]].mean() for j in cols])
    curvature = np.polyfit(x, y, 2)[0]
    return float(-curvature), dark


def f0_semitones(wav: np.ndarray, sr: int = 16000) -> float:
    """Median F0 (semitones re 55 Hz) of the voiced 40 ms frames, by autocorrelation."""
    st = []
    for s in range(0, len(wav) - 640, 160):
        x = wav[s : s + 640].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.01:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[639:]
        lo, hi = sr // 600, sr // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            st.append(12 * np.log2(sr / lag / 55))
    assert st, "no voiced frames found"
    return float(np.median(st))


def rms_db(wav: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(wav.astype(np.float64) ** 2)) + 1e-12))


def test_face_expression_is_visible(bases: list[ClipPlan], tmp_path: Path) -> None:
    feats = {
        e: [mouth_features(render(tmp_path, b, face=e)[0], b) for b in bases]
        for e in ("neutral", "happy", "sad", "surprise")
    }
    for i, b in enumerate(bases):
        who = f"{b.speaker.id} skin {b.speaker.look.skin}"
        rise = {e: feats[e][i][0] for e in feats}
        assert rise["happy"] > max(2.5, rise["neutral"] + 2.5), f"{who}: happy mouth corners not raised {rise}"
        assert rise["sad"] < min(-1.0, rise["neutral"] - 1.5), f"{who}: sad mouth corners not lowered {rise}"
        assert abs(rise["neutral"]) < 1.5, f"{who}: neutral mouth not level {rise}"
        assert feats["surprise"][i][1] > 0.05 > feats["neutral"][i][1] + 0.04, f"{who}: surprise mouth not open"
        assert feats["happy"][i][1] > feats["neutral"][i][1] + 0.01, f"{who}: happy mouth not parted"


def test_voice_prosody_follows_the_emotion(bases: list[ClipPlan], tmp_path: Path) -> None:
    emos = ("neutral", "happy", "surprise", "angry", "sad")
    f0 = {e: [] for e in emos}
    loud = {e: [] for e in emos}
    for b in bases:
        for e in emos:
            wav = render(tmp_path, b, audio=e)[1]
            f0[e].append(f0_semitones(wav))
            loud[e].append(rms_db(wav))
    rel = {e: np.array(f0[e]) - np.array(f0["neutral"]) for e in emos}  # re. the same speaker's neutral
    assert rel["surprise"].mean() > 4 and (rel["surprise"] > 2).all(), rel["surprise"]
    assert rel["happy"].mean() > 2 and (rel["happy"] > 0).all(), rel["happy"]
    assert rel["angry"].mean() > 1, rel["angry"]
    assert rel["sad"].mean() < -1 and (rel["sad"] < 0).all(), rel["sad"]
    db = {e: np.array(loud[e]) - np.array(loud["neutral"]) for e in emos}
    assert (db["angry"] > 3).all() and (db["sad"] < -3).all(), (db["angry"], db["sad"])
    # speaker gender is a nuisance on the base pitch: women's neutral F0 is clearly above men's
    women = [f for f, b in zip(f0["neutral"], bases, strict=True) if b.speaker.gender == "F"]
    men = [f for f, b in zip(f0["neutral"], bases, strict=True) if b.speaker.gender == "M"]
    assert min(women) > max(men) + 5


def test_intensity_curve_peaks_where_annotated() -> None:
    for n, peak in ((8, 2), (16, 8), (20, 13)):
        c = intensity_curve(n, peak, 0.8)
        assert int(np.argmax(c)) == peak and c[peak] == pytest.approx(0.8)
        assert c[0] < 0.3 * 0.8 + 1e-9 and c[-1] < 0.3 * 0.8 + 1e-9
    with pytest.raises(ValueError, match="outside"):
        intensity_curve(8, 8, 1.0)
