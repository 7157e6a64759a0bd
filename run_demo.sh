#!/usr/bin/env bash
# Set up .venv (once), write the synthetic demo corpus, train and test every system on it, and
# print the official summary table. Everything goes to data/demo, models/demo and results/demo.
# About 10 minutes on a 2-core CPU (plus a few minutes for the first set-up).
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_venv.sh

corpus=data/demo
common=(--data-root "${corpus}" --run.model_dir models/demo --run.result_dir results/demo)
# BEATs without the (hand-downloaded) pre-trained checkpoint: the tiny architecture from random
# weights, sized for 2 s clips on a CPU. With the real checkpoint, see the README.
beats_tiny=(--beats.checkpoint none --beats.preset tiny --beats.clip_seconds 2.0 --beats.tuning finetune
            --beats.encoder_lr 1.0e-3 --beats.smote_per_class 0 --beats.epochs 6 --beats.threads 1)

echo "Stage 0: demo corpus: -> ${corpus}"
[[ -d "${corpus}/dev_data" ]] || "${PYTHON}" -m datasets.demo_corpus --out "${corpus}"
echo "Stage 1: classical system (k-NN, Gaussian): ${corpus} -> results/demo/dev_data"
./01_train.sh -d --system classical "${common[@]}"
for score in knn gaussian; do ./02_test.sh -d --system classical --score "${score}" "${common[@]}"; done
echo "Stage 2: autoencoder baseline (MSE, Selective Mahalanobis): ${corpus} -> results/demo/dev_data"
./01_train.sh -d --system autoencoder "${common[@]}"
for score in mse mahala; do ./02_test.sh -d --system autoencoder --score "${score}" "${common[@]}"; done
echo "Stage 3: BEATs, tiny, from scratch: ${corpus} -> results/demo/dev_data"
./01_train.sh -d --system beats "${beats_tiny[@]}" "${common[@]}"
./02_test.sh -d --system beats "${beats_tiny[@]}" "${common[@]}"
echo "Stage 4: summary: results/demo -> results/demo/summary"
./03_summarize_results.sh --result-dir results/demo
