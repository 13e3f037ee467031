"""Still images: load a file as RGB ``np.uint8[H, W, 3]`` with PIL.

    img = load_image("face.jpg")     # EXIF orientation applied; grey/RGBA/palette converted to RGB

A missing file raises ``FileNotFoundError``; a file PIL cannot decode raises ``MediaError`` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emollm.media.video import MediaError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether the suffix names a still-image format."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``np.uint8[H, W, 3]`` RGB (first frame of animated formats)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MediaError(f"{p}: cannot read as an image ({type(e).__name__}: {e})") from None
