// tests/test_dist.c: the cut of a batch into ranks' shards (dist_shard_of), in the
// single-process build: the shards are whole, contiguous rows that cover the batch in
// rank order, keep its S and T, balance the target tokens to within one row's, and give
// every rank a row when there are enough.
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "../dist.h"

// A batch of B rows of T = 8 target positions, row r holding len[r] tokens.
static Batch make_batch(const int *len, int B, int *tgt) {
    Batch g = {.B = B, .S = 0, .T = 8, .tgt_in = tgt, .tgt_out = tgt, .index = tgt};
    memset(tgt, 0, (size_t)B * 8 * sizeof(int));
    for (int r = 0; r < B; r++)
        for (int t = 0; t < len[r]; t++) { tgt[r * 8 + t] = 5; g.ntok++; }
    return g;
}

static int cuts_ok(const int *len, int B, int size, char *why) {
    int tgt[64 * 8], longest = 0;
    Batch g = make_batch(len, B, tgt);
    for (int r = 0; r < B; r++) if (len[r] > longest) longest = len[r];
    int next = 0;
    for (int k = 0; k < size; k++) {
        Batch s;
        int first = dist_shard_of(&g, k, size, &s);
        if (first != next || s.tgt_out != g.tgt_out + first * 8 || s.T != g.T || s.S != g.S) {
            sprintf(why, "rank %d of %d: first row %d, expected %d", k, size, first, next);
            return 0;
        }
        if (B >= size && s.B < 1) { sprintf(why, "rank %d of %d: no row", k, size); return 0; }
        // balanced: within a row of the even share, unless moved to leave every rank a row
        double share = (double)g.ntok / size;
        if (B >= 2 * size && longest * 2 < g.ntok / size && fabs(s.ntok - share) > longest) {
            sprintf(why, "rank %d of %d: %d tokens, the even share is %.1f", k, size, s.ntok, share);
            return 0;
        }
        next = first + s.B;
    }
    if (next != B) { sprintf(why, "the shards end at row %d of %d", next, B); return 0; }
    return 1;
}

int main(void) {
    char why[256] = "";
    int even[40], mixed[40], one_long[6] = {1, 1, 8, 1, 1, 1};
    for (int r = 0; r < 40; r++) { even[r] = 4; mixed[r] = 1 + (r * 7) % 8; }
    int ok = 1;
    for (int size = 1; size <= 7 && ok; size++)
        ok = cuts_ok(even, 40, size, why) && cuts_ok(mixed, 40, size, why) &&
             cuts_ok(mixed, 3, size, why) && cuts_ok(one_long, 6, size, why);
    CHECK(ok, "shards: contiguous, covering, balanced, a row per rank", "%s", why);

    int tgt[40 * 8];
    Batch g = make_batch(mixed, 40, tgt), s;
    dist_shard(&g, &s);
    CHECK(s.B == 40 && s.ntok == g.ntok, "one rank's shard is the whole batch",
          "%d rows, %d tokens", s.B, s.ntok);

    // 2 ranks of 20 rows of 4 tokens: 80 tokens each
    g = make_batch(even, 40, tgt);
    int first = dist_shard_of(&g, 1, 2, &s);
    CHECK(first == 20 && s.B == 20 && s.ntok == 80, "two ranks halve an even batch",
          "rank 1: first %d, %d rows, %d tokens", first, s.B, s.ntok);
    CHECK_EXIT();
}
