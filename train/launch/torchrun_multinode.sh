#!/usr/bin/env bash
# Multi-node data parallel with torchrun: run this on every node (same command, NODE_RANK differs).
#   MASTER_ADDR=10.0.0.1 NODE_RANK=0 NNODES=2 bash train/launch/torchrun_multinode.sh train/emotion_llama/stage1_coarse.yaml
#   MASTER_ADDR=10.0.0.1 NODE_RANK=1 NNODES=2 bash train/launch/torchrun_multinode.sh train/emotion_llama/stage1_coarse.yaml
# Add distributed.strategy=deepspeed distributed.deepspeed_config=train/deepspeed/zero2.json for ZeRO.
set -euo pipefail
RECIPE=${1:?usage: torchrun_multinode.sh RECIPE [key=value ...]}; shift
exec torchrun \
  --nnodes "${NNODES:-2}" --node_rank "${NODE_RANK:?set NODE_RANK}" \
  --nproc_per_node "${GPUS_PER_NODE:-8}" \
  --master_addr "${MASTER_ADDR:?set MASTER_ADDR}" --master_port "${MASTER_PORT:-29500}" \
  -m emollm train "$RECIPE" "$@"
