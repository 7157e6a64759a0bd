#!/usr/bin/env bash
# Train a system on the normal training clips.
#   ./01_train.sh -d                      development data, default system (baseline.yaml: run.system)
#   ./01_train.sh -e                      evaluation machine types (additional training data)
#   ./01_train.sh -d --system NAME        another system; --data-root DIR, --year Y, --machines a,b
#   ./01_train.sh -d --section.key value  override any key of baseline.yaml
# Options are parsed by tools/train.py; -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.train "$@"
