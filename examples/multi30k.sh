#!/bin/sh
# Multi30k German -> English (../shared/data), end to end: prepare a BPE vocabulary of
# 8000, train the small model (d_model 256, 3 + 3 layers, 8 heads, FFN 1024, tied dense
# embedding), then translate the validation set with beam 5 and print its BLEU.
#
#   sh examples/multi30k.sh [STEPS (1900)] [OUT (runs/m30k-small)] [FIT FLAGS...]
#
# The budget is given in steps, not minutes, so that a loaded machine changes the
# time a run takes but not its result: 1900 steps of 4096 tokens are what `fit
# --minutes 35` reaches on an idle 2-core AMD EPYC (Zen 4) with 2 threads (1.06 s a
# step). Extra flags go to `train fit` (e.g. --lr 2e-3).
set -e
STEPS=${1:-1900}
OUT=${2:-runs/m30k-small}
[ $# -gt 2 ] && shift 2 || set --
. examples/multi30k_data.sh
./train fit --data runs/m30k --out "$OUT" --steps "$STEPS" "$@"
./train eval --model "$OUT" --src "$TMP/val.de" --ref "$TMP/val.en" --beam 5 --hyp-out "$OUT/val.beam5.en"
