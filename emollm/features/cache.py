"""FeatureCache: encoder outputs on disk, keyed by media content and encoder identity.

Key = sha256 of (encoder identity, media variant, sha256 of every source file's bytes). The identity
names weights (content hash), revision and every preprocessing option; the variant names frame
selection, face crop and noise settings. Change any of them and the key changes, so a stale entry can
never be served. Entries are single safetensors files written to a temporary name and moved into
place with ``os.replace``: readers never see half a file, and several processes writing the same
entry at once all leave the same complete file.

    cache = FeatureCache("runs/features")
    key = cache.key(encoder.identity, variant, [Path("clip.mp4")])
    feats = cache.get(key)                  # Tensor[tokens, dim] or None
    cache.put(key, feats, identity=encoder.identity)
    cache.stats                             # {"hits": ..., "misses": ..., "writes": ...}
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emollm.io import file_hash


class FeatureCache:
    VERSION = "emollm-features-v1"

    def __init__(self, root: str | os.PathLike[str], read_only: bool = False) -> None:
        self.root = Path(root)
        self.read_only = read_only
        self.stats = {"hits": 0, "misses": 0, "writes": 0, "corrupt": 0}

    def key(self, identity: str, variant: str, sources: Sequence[Path]) -> str:
        h = hashlib.sha256()
        h.update(self.VERSION.encode())
        h.update(b"\0" + identity.encode())
        h.update(b"\0" + variant.encode())
        for s in sources:
            h.update(b"\0" + file_hash(s).encode())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str, identity: str | None = None) -> torch.Tensor | None:
        p = self.path(key)
        if not p.is_file():
            self.stats["misses"] += 1
            return None
        try:
            data = load_file(str(p))
        except (SafetensorError, OSError, ValueError):
            self.stats["corrupt"] += 1
            self.stats["misses"] += 1
            return None
        t = data.get("features")
        if t is None:
            self.stats["corrupt"] += 1
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return t

    def put(self, key: str, feats: torch.Tensor, identity: str = "", variant: str = "") -> None:
        if self.read_only:
            return
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
        try:
            save_file(
                {"features": feats.detach().cpu().float().contiguous()},
                tmp,
                metadata={"identity": identity[:2000], "variant": variant[:500], "format": self.VERSION},
            )
            os.replace(tmp, p)
            self.stats["writes"] += 1
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()
