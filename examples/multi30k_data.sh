# examples/multi30k_data.sh: sourced by the Multi30k examples. Unpacks Multi30k German
# -> English from ../shared/data into runs/m30k-text/ and prepares runs/m30k/ (a BPE
# vocabulary of 8000 learned on both sides of the training set), once.
D=../shared/data/multi30k_de_en
if [ ! -f "$D/train.de.gz" ]; then
    echo "$0: $D not found; the Multi30k examples need the shared data sets" >&2
    exit 2
fi
[ -x ./train ] || make train
TMP=runs/m30k-text
mkdir -p "$TMP"
for f in train.de train.en val.de val.en; do
    [ -f "$TMP/$f" ] || gzip -dc "$D/$f.gz" > "$TMP/$f"
done
[ -f runs/m30k/dataset.txt ] || ./train prepare --src "$TMP/train.de" --tgt "$TMP/train.en" \
    --valid-src "$TMP/val.de" --valid-tgt "$TMP/val.en" --vocab-size 8000 --out runs/m30k
