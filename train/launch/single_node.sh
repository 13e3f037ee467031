#!/usr/bin/env bash
# One node, N GPUs (or N CPU processes with gloo): DDP by default.
#   bash train/launch/single_node.sh 8 train/emotion_llama/stage1_coarse.yaml
#   bash train/launch/single_node.sh 8 train/emotion_llama/stage1_coarse.yaml distributed.strategy=fsdp
#   bash train/launch/single_node.sh 8 train/emotion_llama/stage1_coarse.yaml \
#        distributed.strategy=deepspeed distributed.deepspeed_config=train/deepspeed/zero3_offload.json
set -euo pipefail
N=${1:?usage: single_node.sh NPROC RECIPE [key=value ...]}; RECIPE=${2:?}; shift 2
exec torchrun --standalone --nproc_per_node "$N" -m emollm train "$RECIPE" "$@"
