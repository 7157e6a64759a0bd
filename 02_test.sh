#!/usr/bin/env bash
# Score the test clips and write the official submission files (+ result.csv when labelled).
#   ./02_test.sh -d                       development data -> results/dev_data/<system>_<scorer>/
#   ./02_test.sh -e                       evaluation data -> results/eval_data/<system>_<scorer>/
#   ./02_test.sh -d --score NAME          another scorer of the system (e.g. mahala, lof)
# Options are parsed by tools/test.py; -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.test "$@"
