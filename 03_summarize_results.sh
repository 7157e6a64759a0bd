#!/usr/bin/env bash
# Summarise the results of every system into the official table, Markdown and plots.
#   ./03_summarize_results.sh                  development results (results/dev_data/*)
#   ./03_summarize_results.sh -e               evaluation results (labelled ones get metrics)
#   ./03_summarize_results.sh -e --submission-dir submission --label Smith_ACME_task2_1=autoencoder_mahala \
#       [--label Smith_ACME_task2_2=classical_gaussian ...] [--meta my_meta.yaml]
#                                              also lay out and check the challenge package submission/task2/<label>/
#   ./03_summarize_results.sh --check submission --data-root data --year 2025
#                                              check an existing package against the evaluation set
# Options are parsed by tools/summarize.py; -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.summarize "$@"
