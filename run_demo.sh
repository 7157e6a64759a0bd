#!/usr/bin/env bash
# Set up .venv (once), write the synthetic demo corpus, train and test every system on it, and
# print the official summary table. Everything goes to data/demo, models/demo and results/demo.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_venv.sh

corpus=data/demo
common=(--data-root "${corpus}" --run.model_dir models/demo --run.result_dir results/demo)

echo "Stage 0: demo corpus: -> ${corpus}"
[[ -d "${corpus}/dev_data" ]] || "${PYTHON}" -m datasets.demo_corpus --out "${corpus}"
echo "Stage 1: classical system: train and test (k-NN, Gaussian) -> results/demo/dev_data"
./01_train.sh -d --system classical "${common[@]}"
for score in knn gaussian; do ./02_test.sh -d --system classical --score "${score}" "${common[@]}"; done
echo "Stage 2: summary: results/demo -> results/demo/summary"
./03_summarize_results.sh --result-dir results/demo
