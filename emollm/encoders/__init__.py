"""Frozen encoders behind one contract (see ``base.py``), registered by short name.

Importing this package registers every built-in encoder: hubert, vit_mae, videomae, eva_vit_g,
egemaps, fer2013, precomputed, and the native models' own media inputs (native_audio, native_video,
native_face_video). ``emollm ls encoders`` lists them.
"""

# Built-in encoders register themselves on import; a module that fails to import is an error, not a skip.
from emollm.encoders import egemaps as _egemaps  # noqa: F401
from emollm.encoders import fer2013 as _fer2013  # noqa: F401
from emollm.encoders import hubert as _hubert  # noqa: F401
from emollm.encoders import native as _native  # noqa: F401
from emollm.encoders import precomputed as _precomputed  # noqa: F401
from emollm.encoders import vision as _vision  # noqa: F401
from emollm.encoders.base import ENCODERS, Encoder, EncoderSpec, MediaRequest, build_encoder, register_encoder

__all__ = ["ENCODERS", "Encoder", "EncoderSpec", "MediaRequest", "build_encoder", "register_encoder"]
