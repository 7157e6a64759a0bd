#!/usr/bin/env bash
# Score recordings of any name with a trained model; write a CSV of scores and decisions.
#   ./04_score.sh --model models/dev_data/classical/fan recordings/        every *.wav there -> scores.csv
#   ./04_score.sh --model models/dev_data/auxiliary --machine fan --section 00 a.wav b.wav
#   ./04_score.sh --model fan.model.zip --watch incoming/ --plot             score new files as they arrive
#   --out FILE (default scores.csv), --score NAME, --interval SECONDS, any --section.key value
# Options are parsed by tools/score.py; -h lists them all. Exit 0 whatever the decisions, 1 on errors.
set -euo pipefail
source "$(dirname "$0")/tools/python.sh"
exec "${PYTHON}" -m tools.score "$@"
