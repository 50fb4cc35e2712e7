#!/bin/sh
# Dense against factorized embeddings on Multi30k German -> English (../shared/data),
# at a budget that fits a 2-core laptop: each embedding trains for STEPS steps of 2048
# tokens (the same number of steps, so the comparison does not depend on machine load).
#
#   sh examples/multi30k_compare.sh [STEPS (600)] [OUT (runs/m30k-compare)]
#
# Embedding sizes (V = 8000, d = 256; dense 2,048,000 parameters):
#   kronxs:n=2,r=36  t=90x89, q=16x16: 36 * (90*16 + 89*16) = 103,104  (19.9x smaller)
#   kronxs:n=2,r=18                                         =  51,552  (39.7x smaller)
#   kron:n=2,r=1     q=16x16: 8000 * (16 + 16)             = 256,000  ( 8.0x smaller)
set -e
STEPS=${1:-600}
OUT=${2:-runs/m30k-compare}
D=../shared/data/multi30k_de_en
if [ ! -f "$D/train.de.gz" ]; then
    echo "multi30k_compare: $D not found; this example needs the shared data sets" >&2
    exit 2
fi
[ -x ./train ] || make train
TMP=runs/m30k-text
mkdir -p "$TMP"
for f in train.de train.en val.de val.en; do
    [ -f "$TMP/$f" ] || gzip -dc "$D/$f.gz" > "$TMP/$f"
done
[ -f runs/m30k-data/dataset.txt ] || ./train prepare --src "$TMP/train.de" --tgt "$TMP/train.en" \
    --valid-src "$TMP/val.de" --valid-tgt "$TMP/val.en" --vocab-size 8000 --max-len 64 --out runs/m30k-data
./train compare --data runs/m30k-data --out "$OUT" --steps "$STEPS" \
    --d-model 256 --layers 3 --heads 8 --ffn 1024 --batch-tokens 2048 --lr 1e-3 --eval-every 50 \
    --embed dense --embed kronxs:n=2,r=36 --embed kronxs:n=2,r=18 --embed kron:n=2,r=1
echo "wrote $OUT/summary.md and $OUT/loss.svg"
