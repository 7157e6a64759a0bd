#!/usr/bin/env bash
# Summarise the results of every system into the official table, Markdown and plots.
#   ./03_summarize_results.sh                  development results (results/dev_data/*)
#   ./03_summarize_results.sh -e               evaluation results (labelled ones get metrics)
#   ./03_summarize_results.sh -e --team NAME --submission-dir submission
#                                              also lay out submission/<NAME>/<system>/ for the evaluator
# Options are parsed by tools/summarize.py; -h lists them all.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.summarize "$@"
