"""SynthMER's drawn face: a speaker's look plus an expression whose intensity rises and falls over a clip.

An expression is eight geometric parameters (``PARAMS``), all 0 for a neutral face. An emotion's
full-intensity expression is ``EXPRESSIONS[emotion]``; a frame at intensity ``i`` draws ``i * params``.
The parameters map onto FACS action units (``AU_WEIGHTS``) so the annotations name the AUs that are
actually drawn:

- brows: height (AU01+AU02 raise, AU04 lower) and inner-corner angle (AU01 up, AU04 down);
- eyes: openness (AU05 wide, AU07 narrowed, AU41 drooping lids) and lower-lid raise (AU06);
- mouth: corner curvature (AU12 smile, AU15 frown), opening (AU25/AU26), width (AU20 stretch), lip
  press (AU23).

At intensities 0.7-1.0 the set of AUs above ``AU_THRESHOLD`` is a function of the emotion alone:
happy AU06+12+25, sad AU01+15+41, angry AU04+07+23, worried AU01+05+20+25, surprise AU01+02+05+25+26,
neutral none. Sad and worried share the raised inner brows (the face's built-in confusion).

Nuisances come from the speaker's ``Look`` (skin, hair, clothes, background, face size/position, head
tilt, lighting side) plus per-clip tilt jitter and per-frame camera shake, brightness flicker and
sensor noise. The face is drawn as polygons in face coordinates, rotated and placed analytically, on
a 2x canvas that is box-downsampled (anti-aliasing): about 1.3 ms per 128 px frame.

    look = Look.sample(np.random.default_rng(0))
    frames = render_frames(look, "happy", intensity_curve(16, peak=8, peak_value=0.9), size=128, rng=rng)
    frames.shape  # (16, 128, 128, 3) uint8 RGB
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]

PARAMS: tuple[str, ...] = (
    "brow_raise",
    "brow_inner",
    "eye_open",
    "lower_lid",
    "mouth_curve",
    "mouth_open",
    "mouth_width",
    "lip_press",
)
"""Expression parameters, each in about [-1, 1] at full intensity; all 0 is the neutral face."""

EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"brow_raise": 0.1, "eye_open": -0.3, "lower_lid": 0.9, "mouth_curve": 1.0, "mouth_open": 0.4, "mouth_width": 0.4},
    "sad": {"brow_inner": 1.0, "eye_open": -0.5, "mouth_curve": -1.0, "mouth_width": -0.1},
    "angry": {"brow_raise": -0.7, "brow_inner": -1.0, "eye_open": -0.4, "mouth_curve": -0.35, "mouth_width": -0.25, "lip_press": 1.0},
    "worried": {"brow_raise": 0.25, "brow_inner": 1.0, "eye_open": 0.45, "mouth_curve": -0.25, "mouth_open": 0.3, "mouth_width": 0.5},
    "surprise": {"brow_raise": 1.0, "brow_inner": 0.3, "eye_open": 0.8, "mouth_open": 1.0, "mouth_width": -0.35},
}  # fmt: skip

# AU code -> (name used in MERR visual-expression text, {parameter: weight}); intensity = max(0, sum w * p)
AU_WEIGHTS: dict[str, tuple[str, dict[str, float]]] = {
    "AU01": ("Inner brow raiser", {"brow_inner": 0.8, "brow_raise": 0.6}),
    "AU02": ("Outer brow raiser", {"brow_raise": 1.0}),
    "AU04": ("Brow lowerer", {"brow_inner": -0.8, "brow_raise": -0.6}),
    "AU05": ("Upper lid raiser", {"eye_open": 1.2}),
    "AU06": ("Cheek raiser", {"lower_lid": 1.0}),
    "AU07": ("Lid tightener", {"eye_open": -0.5, "lip_press": 0.6, "lower_lid": -0.5}),
    "AU12": ("Lip corner puller", {"mouth_curve": 1.0}),
    "AU15": ("Lip corner depressor", {"mouth_curve": -1.0, "lip_press": -0.3}),
    "AU20": ("Lip stretcher", {"mouth_width": 1.2, "lower_lid": -0.6}),
    "AU23": ("Lip tightener", {"lip_press": 1.0}),
    "AU25": ("Lips part", {"mouth_open": 1.5}),
    "AU26": ("Jaw drop", {"mouth_open": 1.2, "mouth_width": -0.8}),
    "AU41": ("Lid droop", {"eye_open": -1.0, "lip_press": -0.6, "lower_lid": -0.5}),
}
AU_THRESHOLD = 0.3
"""An AU counts as present when its intensity (0..~1.2) reaches this value."""


def expression_vector(emotion: str, intensity: float = 1.0) -> dict[str, float]:
    """The emotion's expression parameters scaled by ``intensity`` (every key of PARAMS present)."""
    if emotion not in EXPRESSIONS:
        raise KeyError(f"no facial expression for {emotion!r}; known: {', '.join(EXPRESSIONS)}")
    base = EXPRESSIONS[emotion]
    return {p: intensity * base.get(p, 0.0) for p in PARAMS}


def au_intensities(params: dict[str, float]) -> dict[str, float]:
    """AU code -> intensity for one frame's expression parameters (rounded, only positive ones)."""
    out = {}
    for code, (_, weights) in AU_WEIGHTS.items():
        v = sum(w * params.get(p, 0.0) for p, w in weights.items())
        if v > 0:
            out[code] = round(v, 2)
    return out


def intensity_curve(n_frames: int, peak: int, peak_value: float, onset: float = 0.15) -> np.ndarray:
    """``float64[n_frames]`` onset-peak-offset curve: ``onset * peak_value`` at the ends, ``peak_value`` at
    frame ``peak`` (smooth raised-cosine rise and fall; the maximum is exactly at ``peak``)."""
    if not 0 <= peak < n_frames:
        raise ValueError(f"peak frame {peak} outside a clip of {n_frames} frames")
    t = np.arange(n_frames, dtype=np.float64)
    rise = np.clip(t / max(peak, 1), 0, 1)
    fall = np.clip((n_frames - 1 - t) / max(n_frames - 1 - peak, 1), 0, 1)
    shape = np.where(t <= peak, rise, fall)
    shape = 0.5 - 0.5 * np.cos(np.pi * shape)  # 0 at the ends, 1 at the peak
    return peak_value * (onset + (1.0 - onset) * shape)


_SKINS: tuple[Color, ...] = (
    (250, 220, 196),
    (241, 206, 180),
    (224, 172, 135),
    (198, 140, 100),
    (172, 118, 84),
    (140, 94, 66),
)
_HAIRS: dict[str, Color] = {
    "black": (24, 22, 26),
    "dark brown": (70, 45, 28),
    "brown": (120, 80, 40),
    "blond": (180, 150, 90),
    "grey": (110, 110, 115),
}
_BGS: dict[str, Color] = {
    "blue": (70, 110, 160),
    "grey-green": (150, 160, 150),
    "beige": (200, 190, 170),
    "green": (90, 120, 90),
    "purple": (130, 100, 130),
    "dark grey": (60, 60, 70),
    "white": (210, 210, 215),
}
_SHIRTS: dict[str, Color] = {
    "navy": (40, 60, 120),
    "red": (150, 40, 40),
    "green": (60, 110, 60),
    "white": (220, 220, 220),
    "black": (50, 50, 50),
    "mustard": (200, 150, 60),
}
_IRISES: tuple[Color, ...] = ((60, 40, 25), (40, 80, 120), (70, 100, 60), (30, 30, 30))  # fmt: skip


@dataclass(frozen=True)
class Look:
    """A speaker's appearance (all label-independent nuisance). Colour names feed the captions."""

    skin: Color
    hair: str
    """Hair colour name (a key of the hair palette)."""
    long_hair: bool
    background: str
    shirt: str
    iris: Color
    face_scale: float
    """Face (head ellipse) height / frame height, 0.6-0.72."""
    center: tuple[float, float]
    """Face centre in frame fractions."""
    tilt: float
    """Resting head roll in degrees."""
    light: float
    """Lighting direction: -1 lit from the left, +1 from the right."""

    @staticmethod
    def sample(rng: np.random.Generator, long_hair: bool | None = None) -> Look:
        def pick(pool: dict[str, Color]) -> str:
            return list(pool)[int(rng.integers(len(pool)))]

        return Look(
            skin=_SKINS[int(rng.integers(len(_SKINS)))],
            hair=pick(_HAIRS),
            long_hair=bool(rng.random() < 0.5) if long_hair is None else long_hair,
            background=pick(_BGS),
            shirt=pick(_SHIRTS),
            iris=_IRISES[int(rng.integers(len(_IRISES)))],
            face_scale=float(rng.uniform(0.6, 0.72)),
            center=(float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.44, 0.52))),
            tilt=float(rng.uniform(-7, 7)),
            light=float(rng.uniform(-1, 1)),
        )


_UNIT_CIRCLES: dict[int, np.ndarray] = {}


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 36) -> np.ndarray:
    """``float64[n, 2]`` points of an axis-aligned ellipse (face coordinates)."""
    circ = _UNIT_CIRCLES.get(n)
    if circ is None:
        a = np.linspace(0, 2 * np.pi, n, endpoint=False)
        circ = _UNIT_CIRCLES[n] = np.stack([np.cos(a), np.sin(a)], 1)
    return circ * (rx, ry) + (cx, cy)


def _shade(c: Color, f: float) -> Color:
    return tuple(int(max(0, min(255, v * f))) for v in c)  # type: ignore[return-value]


class _Canvas:
    """Draws face-coordinate polygons (unit = face half-height, y down) onto a pixel canvas."""

    def __init__(self, img: Image.Image, cx: float, cy: float, unit: float, tilt_deg: float) -> None:
        self.draw = ImageDraw.Draw(img)
        t = math.radians(tilt_deg)
        self.affine = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]]) * unit
        self.offset = np.array([cx, cy])
        self.unit = unit

    def px(self, pts: np.ndarray) -> list[float]:
        return (pts @ self.affine + self.offset).ravel().tolist()

    def poly(self, pts: np.ndarray, fill: Color) -> None:
        self.draw.polygon(self.px(pts), fill=fill)

    def line(self, pts: np.ndarray, fill: Color, width: float) -> None:
        self.draw.line(self.px(pts), fill=fill, width=max(1, round(width * self.unit)), joint="curve")


def _draw_head(cv: _Canvas, look: Look) -> None:
    """The expression-independent parts: hair, neck, ears, head, shading, nose."""
    skin, hair = look.skin, _HAIRS[look.hair]
    if look.long_hair:
        cv.poly(np.concatenate([_ellipse(0, -0.08, 0.9, 1.0)[18:], [[0.92, 0.95], [-0.92, 0.95]]]), hair)
    cv.poly(np.array([[-0.28, 0.7], [0.28, 0.7], [0.3, 1.3], [-0.3, 1.3]]), _shade(skin, 0.85))  # neck
    for s in (-1, 1):
        cv.poly(_ellipse(s * 0.79, 0.02, 0.1, 0.17), _shade(skin, 0.92))  # ears
    cv.poly(_ellipse(0, 0, 0.78, 1.0, 48), skin)
    # soft shading in concentric steps: lit forehead and cheeks, shadowed eye sockets (what face
    # detectors key on; without it Haar cascades miss darker cartoon faces)
    c = 1.0 + 3.0 * max(0.0, 0.65 - sum(skin) / 765)  # more contrast on darker skin
    for k in range(3):
        g = 1.0 - k / 3
        cv.poly(_ellipse(0, -0.45, 0.5 * g + 0.1, 0.22 * g + 0.05, 24), _shade(skin, 1 + c * (0.03 + 0.03 * k)))
        for s in (-1, 1):
            cv.poly(
                _ellipse(s * 0.4, 0.2, 0.2 * g + 0.06, 0.14 * g + 0.04, 20), _shade(skin, 1 + c * (0.03 + 0.025 * k))
            )
            cv.poly(
                _ellipse(s * 0.3, -0.18, 0.14 * g + 0.1, 0.1 * g + 0.08, 24), _shade(skin, 1 - c * (0.12 + 0.09 * k))
            )
    cv.poly(_ellipse(0, -0.02, 0.06, 0.2, 16), _shade(skin, 1 + 0.06 * c))  # nose bridge highlight
    cv.poly(
        np.concatenate([_ellipse(0, -0.1, 0.84, 0.98, 48)[25:47], [[0.55, -0.55], [0.0, -0.62], [-0.55, -0.55]]]), hair
    )
    cv.line(np.array([[0.02, -0.1], [0.05, 0.16], [-0.06, 0.2]]), _shade(skin, 0.7), 0.03)  # nose


def _draw_expression(cv: _Canvas, look: Look, p: dict[str, float]) -> None:
    """Brows, eyes, cheeks and mouth for expression parameters ``p``."""
    skin, hair = look.skin, _HAIRS[look.hair]
    # brows: the inner end moves with brow_inner, the whole brow with brow_raise
    raise_, inner = p["brow_raise"], p["brow_inner"]
    y0 = -0.36 - 0.12 * raise_
    for s in (-1, 1):
        pts = np.array(
            [[s * 0.1, y0 - 0.13 * inner], [s * 0.28, y0 - 0.03 - 0.03 * inner], [s * 0.47, y0 + 0.03 * inner]]
        )
        cv.line(pts, _shade(hair, 0.9), 0.07)
        if raise_ > 0.45:  # forehead wrinkles
            cv.line(np.array([[s * 0.05, -0.62], [s * 0.35, -0.64]]), _shade(skin, 0.8), 0.018)
        if inner < -0.5:  # glabella lines
            cv.line(np.array([[s * 0.04, -0.36], [s * 0.05, -0.24]]), _shade(skin, 0.75), 0.02)

    # eyes: openness scales the eye height; lower_lid covers the bottom of the eye (cheek raise)
    h = 0.08 * max(0.2, 1.0 + 0.8 * p["eye_open"])
    sclera = tuple(int(0.55 * w + 0.45 * c) for w, c in zip((225, 222, 218), skin, strict=True))
    lid_col = _shade(skin, 0.55)
    for s in (-1, 1):
        ex, ey = s * 0.3, -0.16
        cv.poly(_ellipse(ex, ey, 0.13, h, 24), sclera)  # type: ignore[arg-type]
        ir = min(0.075, h * 0.95)
        cv.poly(_ellipse(ex, ey, 0.075, ir, 16), look.iris)
        cv.poly(_ellipse(ex, ey, 0.03, min(0.03, ir), 12), (10, 10, 10))
        upper = [
            [ex - 0.14, ey - h * 0.2],
            [ex - 0.06, ey - h * 1.02],
            [ex + 0.06, ey - h * 1.02],
            [ex + 0.14, ey - h * 0.2],
        ]
        cv.line(np.array(upper), lid_col, 0.025)
        if p["lower_lid"] > 0.05:
            lid = ey + h * (1.0 - 1.2 * p["lower_lid"])
            cv.poly(
                np.array(
                    [
                        [ex - 0.17, lid],
                        [ex, lid - 0.02],
                        [ex + 0.17, lid],
                        [ex + 0.17, ey + 0.14],
                        [ex - 0.17, ey + 0.14],
                    ]
                ),
                skin,
            )
            cv.poly(_ellipse(s * 0.42, 0.16, 0.14, 0.08, 16), _shade(skin, 1.0 + 0.08 * p["lower_lid"]))

    # mouth: corners rise with mouth_curve; mouth_open parts the lips; mouth_width stretches them
    w = 0.24 * (1.0 + 0.45 * p["mouth_width"])
    curve = 0.12 * p["mouth_curve"]
    gap = 0.22 * max(0.0, p["mouth_open"])
    lip = 0.04 * (1.0 - 0.7 * max(0.0, p["lip_press"]))
    xs = np.linspace(-1, 1, 17)
    centre = 0.45 + curve * (0.35 - xs**2)
    bulge = 1 - xs**2
    upper_lip = np.stack([xs * w, centre - gap * 0.35 * bulge], 1)
    lower_lip = np.stack([xs * w, centre + gap * 0.65 * bulge], 1)
    lip_col = (int(skin[0] * 0.75 + 40), int(skin[1] * 0.5), int(skin[2] * 0.5))
    if gap > 0.01:
        cv.poly(np.concatenate([upper_lip, lower_lip[::-1]]), (60, 20, 25))
        if p["mouth_curve"] > 0.3:  # teeth in a smile
            teeth = np.stack([xs * w * 0.8, centre - gap * 0.1 * bulge], 1)
            cv.poly(np.concatenate([upper_lip[2:-2] * [0.8, 1] + [0, 0.005], teeth[::-1][2:-2]]), (240, 240, 235))
    cv.line(upper_lip - [0, lip * 0.4], lip_col, lip)
    cv.line(lower_lip + [0, lip * 0.4], lip_col, lip * 1.2)


def render_frames(
    look: Look,
    emotion: str,
    intensities: np.ndarray,
    size: int,
    rng: np.random.Generator,
    noise: float = 2.0,
) -> np.ndarray:
    """``uint8[T, size, size, 3]`` RGB frames of ``look`` showing ``emotion`` at per-frame ``intensities``.

    ``rng`` draws the clip's head-tilt jitter, camera shake, flicker and pixel noise (label-independent).
    """
    if size % 2:
        raise ValueError(f"frame size must be even (yuv420 video), got {size}")
    n = len(intensities)
    margin = max(2, size // 32) * 2  # camera shake of up to margin/2 output pixels
    s2 = 2 * size + 2 * margin
    bg = _BGS[look.background]
    static = Image.new("RGB", (s2, s2), bg)
    d = ImageDraw.Draw(static)
    for i in range(0, s2, 4):  # vertical background gradient
        d.line([(0, i), (s2, i)], fill=_shade(bg, 1.1 - 0.25 * i / s2), width=4)
    unit = look.face_scale * size
    cx, cy = margin + look.center[0] * 2 * size, margin + look.center[1] * 2 * size
    d.ellipse([cx - 1.7 * unit, cy + 1.05 * unit, cx + 1.7 * unit, cy + 3.2 * unit], fill=_SHIRTS[look.shirt])
    cv = _Canvas(static, cx, cy, unit, look.tilt + float(rng.uniform(-3, 3)))
    _draw_head(cv, look)
    yy, xx = np.mgrid[0:s2, 0:s2].astype(np.float32) / s2
    light = (1.0 + 0.24 * look.light * (xx - 0.5) - 0.05 * (yy - 0.5))[:, :, None]  # side lighting
    static = Image.fromarray(np.clip(np.asarray(static, np.float32) * light, 0, 255).astype(np.uint8))

    shake = np.clip(np.round(rng.normal(0, 0.6, (n, 2)).cumsum(0)), -margin // 2, margin // 2).astype(int) * 2
    flicker = np.round(rng.normal(0, 4.0, n)).astype(np.int16)  # global brightness offset per frame
    out = np.empty((n, size, size, 3), np.int16)
    for t in range(n):
        img = static.copy()
        cv.draw = ImageDraw.Draw(img)
        _draw_expression(cv, look, expression_vector(emotion, float(intensities[t])))
        x0, y0 = margin + shake[t, 0], margin + shake[t, 1]
        out[t] = np.asarray(img.crop((x0, y0, x0 + 2 * size, y0 + 2 * size)).reduce(2))
    # luma sensor noise: random frames of a fixed noise bank, randomly flipped (fresh Gaussian noise
    # would cost more than drawing the face)
    bank = _noise_bank(size, noise)
    picks = rng.integers(0, len(bank), n)
    flips = rng.integers(0, 2, (2, n)).astype(bool)
    grain = bank[picks]
    grain[flips[0]] = grain[flips[0], ::-1]
    grain[flips[1]] = grain[flips[1], :, ::-1]
    out += grain
    out += flicker[:, None, None, None]
    return np.clip(out, 0, 255).astype(np.uint8)
    return out


_NOISE_BANKS: dict[tuple[int, float], np.ndarray] = {}


def _noise_bank(size: int, noise: float) -> np.ndarray:
    """``int16[32, size, size, 1]`` rounded N(0, noise^2) luma noise from a fixed seed."""
    key = (size, float(noise))
    bank = _NOISE_BANKS.get(key)
    if bank is None:
        g = np.random.default_rng(12345).standard_normal((32, size, size, 1), dtype=np.float32)
        bank = _NOISE_BANKS[key] = np.round(g * noise).astype(np.int16)
    return bank
