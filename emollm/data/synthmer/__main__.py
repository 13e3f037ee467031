"""Generate a SynthMER corpus from the command line.

python -m emollm.data.synthmer data/synthmer             # the default 600/120/240 clips
python -m emollm.data.synthmer runs/synthmer_tiny --tiny          # 12/6/6 clips for a quick look
python -m emollm.data.synthmer runs/synthmer_ann --no-media --set n_train=5000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emollm.config import ConfigError, apply_overrides, validate
from emollm.data.synthmer.config import SynthMERConfig
from emollm.data.synthmer.generate import generate_synthmer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emollm.data.synthmer", description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="output folder")
    ap.add_argument("--tiny", action="store_true", help="12/6/6 short clips")
    ap.add_argument("--no-media", action="store_true", help="annotations only")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="encoding processes (default: auto)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    data = SynthMERConfig.tiny().model_dump() if args.tiny else {}
    if args.no_media:
        data["write_media"] = False
    if args.seed is not None:
        data["seed"] = args.seed
    try:
        cfg = validate(SynthMERConfig, apply_overrides(data, args.set), "synthmer config")
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    summary = generate_synthmer(args.root, cfg, progress=not args.quiet, workers=args.workers)
    keep = ("root", "counts", "ceilings", "media_stats", "seconds")
    print(json.dumps({k: summary[k] for k in keep}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
