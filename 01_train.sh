#!/usr/bin/env bash
# Train a system on the normal training clips.
#   ./01_train.sh -d                      development data, default system (baseline.yaml: run.system)
#   ./01_train.sh -e                      evaluation machine types (additional training data)
#   ./01_train.sh -d --system NAME        another system; --data-root DIR, --year Y, --machines a,b
#   ./01_train.sh -d --section.key value  override any key of baseline.yaml
#   ./01_train.sh -d --system beats --nproc-per-node 4
#                                         N training processes (one per GPU) through torchrun / PyTorch DDP;
#                                         several nodes: also set TORCHRUN_ARGS="--nnodes 2 --node-rank 0
#                                         --rdzv-endpoint HOST:29500" (default: --standalone, one node)
# Options are parsed by tools/train.py; -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
nproc=1
args=()
while (($#)); do
  case "$1" in
    --nproc-per-node) nproc="${2:?--nproc-per-node needs a number}"; shift 2 ;;
    --nproc-per-node=*) nproc="${1#*=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ "${nproc}" =~ ^[1-9][0-9]*$ ]] || { echo "01_train.sh: --nproc-per-node must be a positive integer, got '${nproc}'" >&2; exit 2; }
if [[ "${nproc}" -gt 1 || -n "${TORCHRUN_ARGS:-}" ]]; then
  read -r -a launcher <<< "${TORCHRUN_ARGS:---standalone}"
  exec "${PYTHON}" -m torch.distributed.run "${launcher[@]}" --nproc-per-node "${nproc}" -m tools.train "${args[@]}"
fi
exec "${PYTHON}" -m tools.train "${args[@]}"
