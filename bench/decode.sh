#!/bin/sh
# bench/decode.sh: translating the 1,014 Multi30k validation sentences with one model,
# side by side in one run: greedy without the cache (re-running the decoder on the
# whole prefix), greedy with the key/value cache, and beam 5 with the cache, in turn,
# ROUNDS times (default 3); medians of the wall times and sentences/s.
#
#   sh bench/decode.sh RUNDIR [THREADS (all cores)]
#
# RUNDIR: a seq2seq run trained on runs/m30k (examples/multi30k.sh). Needs ../shared.
# Machines are noisy: run it on an otherwise idle machine.
cd "$(dirname "$0")/.." || exit 1
RUN=${1:?usage: sh bench/decode.sh RUNDIR [THREADS]}
THREADS=${2:-$(nproc)}
ROUNDS=${ROUNDS:-3}
SRC=runs/m30k-text/val.de REF=runs/m30k-text/val.en
if [ ! -f "$SRC" ]; then
    [ -f ../shared/data/multi30k_de_en/val.de.gz ] || { echo "decode: needs ../shared/data" >&2; exit 2; }
    mkdir -p runs/m30k-text
    gzip -dc ../shared/data/multi30k_de_en/val.de.gz >"$SRC"
    gzip -dc ../shared/data/multi30k_de_en/val.en.gz >"$REF"
fi
[ -x ./train ] || make train
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
set -- "uncached:--beam 1 --no-cache" "cached:--beam 1" "beam5:--beam 5"
for r in $(seq "$ROUNDS"); do
    for mode in "$@"; do
        name=${mode%%:*}
        ./train eval --model "$RUN" --src "$SRC" --ref "$REF" --threads "$THREADS" ${mode#*:} >"$tmp/out" || exit 1
        secs=$(sed -n 's/^eval: [0-9]* sentences in \([0-9.]*\) s.*/\1/p' "$tmp/out")
        echo "round $r $name: $secs s, $(head -n 1 "$tmp/out")"
        echo "$secs" >>"$tmp/$name"
    done
done
med() { sort -n "$tmp/$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo
for mode in "$@"; do
    name=${mode%%:*}
    m=$(med "$name")
    awk -v n="$name" -v m="$m" 'BEGIN { printf "%-9s median %7.2f s  %6.1f sentences/s\n", n, m, 1014 / m }'
done
awk -v u="$(med uncached)" -v c="$(med cached)" -v b="$(med beam5)" \
    'BEGIN { printf "cached greedy is %.1fx faster than uncached; beam 5 takes %.2fx the time of uncached greedy\n", u / c, b / u }'
