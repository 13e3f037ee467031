"""Media pipeline: decode video/audio/images, pick frames, crop faces, corrupt (MER-NOISE), serve encoders.

Modules (one concept each):

- ``video``: PyAV metadata (``video_info``) and decoding of the selected frames (``read_frames``).
- ``frames``: frame-selection rules as index arithmetic (``select_indices``, ``segment_indices``).
- ``video_write``: writing clips (``write_video``, ``VideoWriter``) for MER-NOISE, SynthMER and tests.
- ``audio``: ``load_audio`` -> mono float32 at 16 kHz via libswresample; ``NoAudioError``.
- ``image``: ``load_image`` -> RGB uint8.
- ``face``: Haar-cascade face detection and square crops (``crop_faces``) with neighbour/centre fallback.
- ``noise``: MER-NOISE babble + pyramid blur, reproducible by seed (``NoiseSpec``).
- ``bundle``: ``MediaBundle``, the per-sample loader every encoder input goes through.
- ``probe``: readability checks for manifests (``probe``, ``MediaInfo``).

    from emollm.media import MediaBundle
    from emollm.encoders import MediaRequest
    faces = MediaBundle({"video": "clip.mp4"}).get(MediaRequest("faces", n_frames=4))
"""

from emollm.media.audio import NoAudioError, load_audio, resample
from emollm.media.bundle import MediaBundle
from emollm.media.face import FaceCrops, FaceDetector, crop_faces, haar_cascade_path
from emollm.media.frames import select_indices
from emollm.media.image import load_image
from emollm.media.noise import NoiseDraw, NoiseSpec, blur_frames, corrupt_audio, corrupt_video_file, mix_at_snr
from emollm.media.video import Clip, MediaError, VideoInfo, estimate_peak_index, read_frames, video_info
from emollm.media.video_write import VideoWriter, write_video

__all__ = [
    "Clip",
    "FaceCrops",
    "FaceDetector",
    "MediaBundle",
    "MediaError",
    "NoAudioError",
    "NoiseDraw",
    "NoiseSpec",
    "VideoInfo",
    "VideoWriter",
    "blur_frames",
    "corrupt_audio",
    "corrupt_video_file",
    "crop_faces",
    "estimate_peak_index",
    "haar_cascade_path",
    "load_audio",
    "load_image",
    "mix_at_snr",
    "read_frames",
    "resample",
    "select_indices",
    "video_info",
    "write_video",
]
