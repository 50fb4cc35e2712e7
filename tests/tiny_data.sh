# tests/tiny_data.sh: sourced by the shell tests. tiny_data DIR writes DIR/train.en and
# DIR/train.de, 400 lines: three digits in English -> the digits in German in reverse
# order, so a model has to reorder; the German side has umlauts (UTF-8).
tiny_data() {
    awk -v src="$1/train.en" -v tgt="$1/train.de" 'BEGIN {
        split("zero one two three four five six seven eight nine", en, " ");
        split("null eins zwei drei vier fünf sechs sieben acht neun", de, " ");
        for (i = 0; i < 400; i++) {
            x = (i * 37 + 11) % 1000;
            a = int(x / 100); b = int(x / 10) % 10; c = x % 10;
            print en[a + 1] " " en[b + 1] " " en[c + 1] > src;
            print de[c + 1] " " de[b + 1] " " de[a + 1] > tgt;
        }
    }'
}
