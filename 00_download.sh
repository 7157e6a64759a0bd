#!/usr/bin/env bash
# Download, verify, unpack and label the DCASE Task 2 data (2020-2026).
#   ./00_download.sh -d --year 2024          development data -> data/dcase2024t2/dev_data/raw/<machine>/{train,test}
#   ./00_download.sh -a -e --year 2024       evaluation machine types: additional training data, test data,
#                                            and the test clips labelled (test_rename/, eval_labels.csv)
#   ./00_download.sh -d --machines fan,valve --jobs 4 --base-url http://mirror.example
# Reruns skip what is complete; interrupted downloads resume. Options are parsed by tools/download.py;
# -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.download "$@"
