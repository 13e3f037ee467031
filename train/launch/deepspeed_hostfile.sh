#!/usr/bin/env bash
# Multi-node DeepSpeed with its own launcher and a hostfile (one line per node: "host slots=N").
#   cat > hostfile <<HOSTS
#   node1 slots=8
#   node2 slots=8
#   HOSTS
#   bash train/launch/deepspeed_hostfile.sh hostfile train/emotion_llama/stage1_coarse.yaml
# The deepspeed launcher sets RANK/WORLD_SIZE/LOCAL_RANK like torchrun; emollm reads them.
set -euo pipefail
HOSTFILE=${1:?usage: deepspeed_hostfile.sh HOSTFILE RECIPE [key=value ...]}; RECIPE=${2:?}; shift 2
exec deepspeed --hostfile "$HOSTFILE" --module emollm train "$RECIPE" \
  distributed.strategy=deepspeed distributed.deepspeed_config=train/deepspeed/zero2.json "$@"
