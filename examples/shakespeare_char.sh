#!/bin/sh
# nanoGPT's CPU recipe for a character-level Tiny Shakespeare (its README: 4 layers, 4
# heads, width 128, context 64, batch 12, 2000 iterations, dropout 0, lr 1e-3 with 100
# steps of warmup and a cosine decay to lr / 10, weight decay 0.1, beta2 0.99), on the same
# split: the first 90% of the bytes of ../shared/data/tinyshakespeare/input.txt train, the
# last 10% validate (nanoGPT's data/shakespeare_char/prepare.py). Byte-level (vocabulary
# 259: the 256 bytes and 3 specials; the text is ASCII, so bytes are characters). Prints
# the validation loss on every token of the last 10% once (README, "A language model").
#
#   sh examples/shakespeare_char.sh [OUT (runs/shakespeare-char-lm)] [FIT FLAGS...]
#
# One change to the recipe: lr 3e-3 (cosine to 3e-4) instead of 1e-3, tuned on this
# validation split (val loss at 2000 steps: 1e-3 1.940, 2e-3 1.851, 3e-3 1.831, 5e-3
# 1.831; README). Extra flags go to `train fit` (e.g. --threads 1, --lr 1e-3 for
# nanoGPT's own lr, --lm-chunks).
set -e
OUT=${1:-runs/shakespeare-char-lm}
[ $# -gt 0 ] && shift
TEXT=../shared/data/tinyshakespeare/input.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=$(wc -c <"$TEXT")
cut=$((n * 9 / 10))   # int(n * 0.9), as nanoGPT
head -c "$cut" "$TEXT" >"$TMP/train.txt"
tail -c "$((n - cut))" "$TEXT" >"$TMP/valid.txt"
./train prepare --text "$TMP/train.txt" --valid-text "$TMP/valid.txt" --vocab-size 259 \
    --max-len 64 --out runs/shakespeare-char
./train fit --data runs/shakespeare-char --out "$OUT" --steps 2000 --layers 4 \
    --heads 4 --d-model 128 --ffn 512 --dropout 0 --batch-tokens 768 --lr 3e-3 \
    --warmup 100 --weight-decay 0.1 --beta2 0.99 --eval-every 500 "$@"
