// tokenizer.c: byte-level BPE (see tokenizer.h): training, encoding, decoding, files.
//
// Pre-tokenization. Merges never cross the boundary between two chunks ("words") of
// the text. Every byte has a class: letter (A-Z, a-z and every byte >= 0x80, so that
// UTF-8 words such as "Grüße" or "三國演義" stay whole), digit (0-9), space (' ', '\t',
// '\r', '\v', '\f'), newline ('\n') or punctuation (every other byte, NUL and control
// bytes included). Scanning from the left, the next chunk is
//   1. "\n" alone: a newline is never merged with anything;
//   2. else ' ' followed by a run of letters, of digits or of punctuation: a leading
//      space belongs to the word that follows, as in GPT-2;
//   3. else a run of letters, of digits or of punctuation;
//   4. else a run of spaces, without its last byte if that byte is ' ' and a letter,
//      digit or punctuation byte follows (that ' ' starts the next chunk, by rule 2).
// A chunk has at most 64 bytes: a longer run is cut, and the cut moves back by up to 3
// bytes so that it does not split a UTF-8 character. (This bounds the work and memory
// per word, so that encoding needs no allocation and is linear in the text length.)
//
// Training (Sennrich et al.'s BPE, made incremental). The distinct chunks are counted
// once with a hash table. Each merge takes the most frequent adjacent pair of ids, on
// equal counts the smallest (left id, right id), so the result depends only on the
// corpus and the size. A max-heap with lazy deletion finds that pair; a posting list
// per pair names the words that contain it, and only those words are rewritten, with
// the pair counts updated by the difference. The total cost is roughly linear in the
// corpus size plus the number of pair occurrences that merges touch.
//
// Encoding replays the merges on each chunk by rank (a hash table maps a pair to the id
// it merges into; a lower id was learned earlier) and keeps the result of frequent
// chunks in a word cache that concurrent encode calls may share.
#include "tokenizer.h"
#include "fileio.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHUNK    64        // bytes in the longest chunk, hence in the longest token
#define MAX_VOCAB    (1 << 24) // ids; keeps every size below in 32 bits
#define FILE_VERSION 1
#define HEADER_BYTES 20 // magic[8], version, vocab size, number of merges (uint32 each)
static const char MAGIC[8] = {'K', 'F', 'T', 'O', 'K', 'E', 'N', 'S'};

// Grows an array to hold at least `need` elements of size sz (capacity doubles).
// Returns the possibly moved array, or NULL (array untouched) when out of memory.
static void *reserve(void *p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * sz);
    if (q) *cap = c;
    return q;
}

// A fast hash of a short byte string (8 bytes at a time through hash64).
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = hash64(n);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        h = hash64(h ^ x);
    }
    uint64_t x = 0;
    memcpy(&x, p, n);
    return hash64(h ^ x);
}

static inline uint64_t pair_key(int a, int b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

// ----------------------------------------------------------------------------
// pre-tokenization

enum { CL_LETTER, CL_DIGIT, CL_PUNCT, CL_SPACE, CL_NEWLINE }; // word classes come first

static inline int byte_class(unsigned char c) {
    if (c >= 0x80 || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return CL_LETTER;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    if (c == '\n') return CL_NEWLINE;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return CL_SPACE;
    return CL_PUNCT;
}

// End of the chunk that starts at s[i] (i < n), by the rules at the top of the file.
static size_t chunk_end(const unsigned char *s, size_t i, size_t n) {
    size_t start = i, limit = n - i > MAX_CHUNK ? i + MAX_CHUNK : n;
    int c = byte_class(s[i]);
    if (c == CL_NEWLINE) return i + 1;
    if (s[i] == ' ' && i + 1 < n && byte_class(s[i + 1]) < CL_SPACE)
        c = byte_class(s[++i]);
    while (i < limit && byte_class(s[i]) == c) i++;
    if (i < n && byte_class(s[i]) == c) { // cut by the length limit
        for (int k = 0; k < 3 && i > start + 1 && (s[i] & 0xC0) == 0x80; k++) i--;
    } else if (c == CL_SPACE && i < n && i - start > 1 && s[i - 1] == ' ' &&
               byte_class(s[i]) < CL_SPACE) {
        i--; // rule 4: this ' ' leads the next word
    }
    return i;
}

// ----------------------------------------------------------------------------
// the tokenizer

// Word cache: chunk bytes -> ids, insert-only open addressing. Entries are written
// to the pool first and then published by a compare-and-swap of their slot, so any
// number of threads can look up and insert concurrently without locks. When the pool
// or the table is full, nothing more is cached (the words seen first, which in
// natural text are the frequent ones, stay).
#define CACHE_SLOTS (1u << 17) // at most half of them are used
#define CACHE_POOL  (1u << 20) // uint32 words: about 40 per entry
typedef struct {
    _Atomic uint32_t *slot; // (CACHE_SLOTS) 0 = empty, else 1 + pool offset of an entry
    uint32_t *pool;         // entry: len | nids << 8, ids[nids], bytes[len] (padded)
    atomic_uint pool_used, entries;
} WordCache;

struct Tokenizer {
    int nmerges;
    int *merges;         // (nmerges, 2) left and right id; merge m makes id TOK_NBASE + m
    uint32_t *piece_off; // (V + 1) id v's bytes: pieces[piece_off[v] .. piece_off[v + 1])
    unsigned char *pieces;
    uint64_t *rank_key; // (rank_mask + 1) hash table (left, right) -> merged id:
    int *rank_id;       //   rank_id is 0 for an empty slot
    size_t rank_mask;
    WordCache *cache; // filled by encode calls
};

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->merges);
    free(t->piece_off);
    free(t->pieces);
    free(t->rank_key);
    free(t->rank_id);
    if (t->cache) {
        free((void *)t->cache->slot);
        free(t->cache->pool);
        free(t->cache);
    }
    free(t);
}

// The id that pair (a, b) merges into, or INT_MAX if it is not a merge.
static inline int merge_id(const Tokenizer *t, int a, int b) {
    uint64_t k = pair_key(a, b);
    for (size_t i = hash64(k) & t->rank_mask;; i = (i + 1) & t->rank_mask) {
        if (!t->rank_id[i]) return INT_MAX;
        if (t->rank_key[i] == k) return t->rank_id[i];
    }
}

// Builds a tokenizer from a merge list (taken over), checking it: each merge joins two
// existing non-special ids, no pair appears twice and no token outgrows a chunk.
// `name` says where the list came from, for the message.
static Tokenizer *build(int *merges, int nmerges, const char *name, char *err) {
    Tokenizer *t = calloc(1, sizeof *t);
    int V = TOK_NBASE + nmerges;
    if (t) {
        t->merges = merges;
        t->nmerges = nmerges;
        size_t cap = 64;
        while (cap < 2 * (size_t)nmerges) cap *= 2;
        t->rank_mask = cap - 1;
        t->rank_key = malloc(cap * sizeof *t->rank_key);
        t->rank_id = calloc(cap, sizeof *t->rank_id);
        t->piece_off = malloc(((size_t)V + 1) * sizeof *t->piece_off);
        t->pieces = malloc((size_t)V * MAX_CHUNK);
        t->cache = calloc(1, sizeof *t->cache);
        if (t->cache) {
            t->cache->slot = calloc(CACHE_SLOTS, sizeof *t->cache->slot);
            t->cache->pool = malloc(CACHE_POOL * sizeof *t->cache->pool);
        }
    }
    if (!t || !t->rank_key || !t->rank_id || !t->piece_off || !t->pieces || !t->cache ||
        !t->cache->slot || !t->cache->pool) {
        errorf(err, "out of memory for a tokenizer of %d ids", V);
        if (!t) free(merges);
        tokenizer_free(t);
        return NULL;
    }
    atomic_init(&t->cache->pool_used, 0);
    atomic_init(&t->cache->entries, 0);
    // specials have no bytes; then the 256 bytes; then each merge's two pieces joined
    uint32_t *off = t->piece_off, o = 0;
    for (int v = 0; v < TOK_NBASE; v++) {
        off[v] = o;
        if (v >= TOK_BYTE0) t->pieces[o++] = (unsigned char)(v - TOK_BYTE0);
    }
    for (int m = 0; m < nmerges; m++) {
        int a = merges[2 * m], b = merges[2 * m + 1], id = TOK_NBASE + m;
        off[id] = o;
        if (a < TOK_BYTE0 || a >= id || b < TOK_BYTE0 || b >= id) {
            errorf(err,
                   "%s: merge %d joins ids %d and %d, but only ids %d..%d exist before "
                   "it; the file is corrupt, re-run ./train prepare",
                   name, m, a, b, TOK_BYTE0, id - 1);
            tokenizer_free(t);
            return NULL;
        }
        uint32_t la = off[a + 1] - off[a], lb = off[b + 1] - off[b];
        if (la + lb > MAX_CHUNK) {
            errorf(err,
                   "%s: merge %d makes a %u-byte token, longer than the %d-byte "
                   "pre-tokens; the file is corrupt, re-run ./train prepare",
                   name, m, la + lb, MAX_CHUNK);
            tokenizer_free(t);
            return NULL;
        }
        memcpy(t->pieces + o, t->pieces + off[a], la);
        memcpy(t->pieces + o + la, t->pieces + off[b], lb);
        o += la + lb;
        uint64_t k = pair_key(a, b);
        size_t i = hash64(k) & t->rank_mask;
        while (t->rank_id[i] && t->rank_key[i] != k) i = (i + 1) & t->rank_mask;
        if (t->rank_id[i]) {
            errorf(err,
                   "%s: merge %d repeats the pair (%d, %d) of merge %d; the file is "
                   "corrupt, re-run ./train prepare",
                   name, m, a, b, t->rank_id[i] - TOK_NBASE);
            tokenizer_free(t);
            return NULL;
        }
        t->rank_key[i] = k;
        t->rank_id[i] = id;
    }
    off[V] = o;
    return t;
}

Tokenizer *tokenizer_new_bytes(void) { return build(NULL, 0, "bytes", NULL); }

int tokenizer_vocab_size(const Tokenizer *t) { return TOK_NBASE + t->nmerges; }

// FNV-1a 64 over the vocab size and the merges, each as 4 little-endian bytes, so the
// value is the same on every machine.
uint64_t tokenizer_checksum(const Tokenizer *t) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = -1; i < 2 * t->nmerges; i++) {
        uint32_t v = (uint32_t)(i < 0 ? tokenizer_vocab_size(t) : t->merges[i]);
        for (int k = 0; k < 4; k++) h = (h ^ ((v >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
    }
    return h;
}

const unsigned char *tokenizer_piece(const Tokenizer *t, int id, int *len) {
    if (id < TOK_BYTE0 || id >= tokenizer_vocab_size(t)) {
        *len = 0;
        return NULL;
    }
    *len = (int)(t->piece_off[id + 1] - t->piece_off[id]);
    return t->pieces + t->piece_off[id];
}

// ----------------------------------------------------------------------------
// encoding

// Encodes one chunk of n (2..MAX_CHUNK) bytes into ids, returning their number. It
// merges the adjacent pair with the lowest merged id, leftmost first, until no pair is
// a merge. That replays training on this word: merge m's pairs are all taken before any
// pair it creates (which contains id TOK_NBASE + m and so has a later rank), and
// leftmost-first is training's left-to-right pass.
static int bpe_chunk(const Tokenizer *t, const unsigned char *s, int n, int *ids) {
    int rank[MAX_CHUNK]; // rank[i]: what ids[i], ids[i + 1] merge into, or INT_MAX
    for (int i = 0; i < n; i++) ids[i] = TOK_BYTE0 + s[i];
    for (int i = 0; i + 1 < n; i++) rank[i] = merge_id(t, ids[i], ids[i + 1]);
    while (n > 1) {
        int best = 0;
        for (int i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == INT_MAX) break;
        ids[best] = rank[best]; // ids[best + 1] is absorbed: shift the rest left by one
        memmove(ids + best + 1, ids + best + 2, (size_t)(n - best - 2) * sizeof *ids);
        if (n - best - 3 > 0)
            memmove(rank + best + 1, rank + best + 2,
                    (size_t)(n - best - 3) * sizeof *rank);
        n--;
        if (best > 0) rank[best - 1] = merge_id(t, ids[best - 1], ids[best]);
        if (best + 1 < n) rank[best] = merge_id(t, ids[best], ids[best + 1]);
    }
    return n;
}

// Looks a chunk up in the cache: returns its ids (and *nids) or NULL.
static const uint32_t *cache_find(const WordCache *c, const unsigned char *s, int n,
                                  uint64_t h, int *nids) {
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        uint32_t v = atomic_load_explicit(&c->slot[i], memory_order_acquire);
        if (!v) return NULL;
        const uint32_t *e = c->pool + v - 1;
        int len = (int)(e[0] & 0xff), k = (int)(e[0] >> 8);
        if (len == n && !memcmp(e + 1 + k, s, (size_t)n)) {
            *nids = k;
            return e + 1;
        }
    }
}

static void cache_insert(WordCache *c, const unsigned char *s, int n, uint64_t h,
                         const int *ids, int k) {
    // reserve an entry and pool space; the counters are read first so that once the
    // cache is full they stop growing (no wrap-around)
    uint32_t size = 1 + (uint32_t)k + ((uint32_t)n + 3) / 4;
    if (atomic_load(&c->entries) >= CACHE_SLOTS / 2 ||
        atomic_load(&c->pool_used) + size > CACHE_POOL ||
        atomic_fetch_add(&c->entries, 1) >= CACHE_SLOTS / 2)
        return;
    uint32_t off = atomic_fetch_add(&c->pool_used, size);
    if (off + size > CACHE_POOL) return;
    uint32_t *e = c->pool + off;
    e[0] = (uint32_t)n | (uint32_t)k << 8;
    for (int j = 0; j < k; j++) e[1 + j] = (uint32_t)ids[j];
    memcpy(e + 1 + k, s, (size_t)n);
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        uint32_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&c->slot[i], &expected, off + 1,
                                                    memory_order_release,
                                                    memory_order_acquire))
            return;
        const uint32_t *o = c->pool + expected - 1;
        if ((o[0] & 0xff) == (uint32_t)n && !memcmp(o + 1 + (o[0] >> 8), s, (size_t)n))
            return; // another thread cached the same word first
    }
}

size_t tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int *out,
                        size_t cap) {
    const unsigned char *s = (const unsigned char *)text;
    WordCache *cache = t->cache;
    size_t n = 0;
    for (size_t i = 0, e; i < len; i = e) {
        e = chunk_end(s, i, len);
        int w = (int)(e - i);
        if (w == 1) { // a single byte: nothing to merge
            if (n < cap) out[n] = TOK_BYTE0 + s[i];
            n++;
            continue;
        }
        uint64_t h = hash_bytes(s + i, (size_t)w);
        int k;
        const uint32_t *hit = cache_find(cache, s + i, w, h, &k);
        if (hit) {
            for (int j = 0; j < k; j++, n++)
                if (n < cap) out[n] = (int)hit[j];
        } else {
            int ids[MAX_CHUNK];
            k = bpe_chunk(t, s + i, w, ids);
            cache_insert(cache, s + i, w, h, ids, k);
            for (int j = 0; j < k; j++, n++)
                if (n < cap) out[n] = ids[j];
        }
    }
    return n;
}

long tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, char *out, size_t cap,
                      char *err) {
    int V = tokenizer_vocab_size(t);
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= V) {
            errorf(err,
                   "token %zu has id %d, outside this tokenizer's range 0..%d; the "
                   "tokens were made with another tokenizer",
                   i, id, V - 1);
            return -1;
        }
        size_t l = t->piece_off[id + 1] - t->piece_off[id];
        if (need < cap)
            memcpy(out + need, t->pieces + t->piece_off[id],
                   l < cap - need ? l : cap - need);
        need += l;
    }
    return (long)need;
}

// ----------------------------------------------------------------------------
// training

typedef struct {
    size_t off;    // first symbol in Bpe.sym (while counting: first byte in the text)
    uint64_t hash; // of the bytes
    int64_t freq;  // occurrences in the corpus
    int len;       // current number of symbols
    int stamp;     // last merge that rewrote this word
} Word;

typedef struct {
    int left, right;
    int64_t count; // occurrences in the corpus, weighted by word frequency
    int head;      // first node of the posting list of words containing it (-1 = none)
    int stamp;     // last merge that raised the count (-1: the initial counting)
} Pair;

typedef struct {
    int word, next;
} Node; // a posting list node

typedef struct {
    int64_t count;
    int left, right, pair;
} HeapItem;

typedef struct {
    Word *words;     // (nwords) the distinct chunks
    int *sym;        // every word's symbols, back to back
    Pair *pairs;     // (npairs) every pair seen so far
    uint32_t *pslot; // (pmask + 1) hash table (left, right) -> 1 + pair index
    Node *nodes;     // (nnodes) the posting lists
    HeapItem *heap;  // (nheap) max-heap of pairs, with stale items
    int *touched;    // (ntouched) pairs whose count rose during this merge
    size_t nwords, wcap, npairs, pcap, pmask, nnodes, ncap, nheap, hcap, ntouched, tcap;
    int merge; // number of the merge being made (-1 while counting)
    int oom;   // set when an allocation failed
} Bpe;

static void bpe_free(Bpe *b) {
    free(b->words);
    free(b->sym);
    free(b->pairs);
    free(b->pslot);
    free(b->nodes);
    free(b->heap);
    free(b->touched);
}

// Collects the distinct chunks of the text with their frequencies. Single bytes are
// skipped: they hold no pair. Words are numbered in order of first appearance.
static int count_words(Bpe *b, const unsigned char *s, size_t len) {
    size_t mask = (1 << 16) - 1;
    uint32_t *slot = calloc(mask + 1, sizeof *slot); // 1 + word index
    if (!slot) return -1;
    for (size_t i = 0, e; i < len; i = e) {
        e = chunk_end(s, i, len);
        if (e - i < 2) continue;
        uint64_t h = hash_bytes(s + i, e - i);
        size_t j = h & mask;
        for (; slot[j]; j = (j + 1) & mask) {
            Word *w = &b->words[slot[j] - 1];
            if (w->hash == h && (size_t)w->len == e - i &&
                !memcmp(s + w->off, s + i, e - i))
                break;
        }
        if (slot[j]) {
            b->words[slot[j] - 1].freq++;
            continue;
        }
        Word *nw = reserve(b->words, &b->wcap, b->nwords + 1, sizeof *b->words);
        if (!nw || b->nwords >= INT_MAX) goto fail;
        b->words = nw;
        b->words[b->nwords] =
            (Word){.off = i, .hash = h, .freq = 1, .len = (int)(e - i), .stamp = -1};
        slot[j] = (uint32_t)++b->nwords;
        if (2 * b->nwords > mask) { // keep the load under one half: double the table
            size_t m2 = 2 * mask + 1;
            uint32_t *s2 = calloc(m2 + 1, sizeof *s2);
            if (!s2) goto fail;
            for (size_t w = 0; w < b->nwords; w++) {
                size_t k = b->words[w].hash & m2;
                while (s2[k]) k = (k + 1) & m2;
                s2[k] = (uint32_t)(w + 1);
            }
            free(slot);
            slot = s2;
            mask = m2;
        }
    }
    free(slot);
    return 0;
fail:
    free(slot);
    return -1;
}

// Index of pair (a, c), created with count 0 if `create`; -1 if absent or out of memory.
static int pair_index(Bpe *b, int a, int c, int create) {
    uint64_t k = pair_key(a, c);
    size_t i = hash64(k) & b->pmask;
    for (; b->pslot[i]; i = (i + 1) & b->pmask) {
        Pair *p = &b->pairs[b->pslot[i] - 1];
        if (p->left == a && p->right == c) return (int)b->pslot[i] - 1;
    }
    if (!create) return -1;
    Pair *np = reserve(b->pairs, &b->pcap, b->npairs + 1, sizeof *b->pairs);
    if (!np || b->npairs >= INT_MAX / 2) {
        b->oom = 1;
        return -1;
    }
    b->pairs = np;
    b->pairs[b->npairs] =
        (Pair){.left = a, .right = c, .count = 0, .head = -1, .stamp = INT_MIN};
    b->pslot[i] = (uint32_t)++b->npairs;
    if (2 * b->npairs > b->pmask) {
        size_t m2 = 2 * b->pmask + 1;
        uint32_t *s2 = calloc(m2 + 1, sizeof *s2);
        if (!s2) {
            b->oom = 1;
            return -1;
        }
        for (size_t p = 0; p < b->npairs; p++) {
            size_t j = hash64(pair_key(b->pairs[p].left, b->pairs[p].right)) & m2;
            while (s2[j]) j = (j + 1) & m2;
            s2[j] = (uint32_t)(p + 1);
        }
        free(b->pslot);
        b->pslot = s2;
        b->pmask = m2;
    }
    return (int)b->npairs - 1;
}

// Adds delta to the count of pair (a, c), which occurs in word w. A rising count puts
// w on the pair's posting list and the pair on the touched list.
static void pair_add(Bpe *b, int a, int c, int64_t delta, int w) {
    int p = pair_index(b, a, c, delta > 0);
    if (p < 0) return;
    Pair *q = &b->pairs[p];
    q->count += delta;
    if (delta <= 0) return;
    if (q->head < 0 || b->nodes[q->head].word != w) {
        Node *nn = reserve(b->nodes, &b->ncap, b->nnodes + 1, sizeof *b->nodes);
        if (!nn || b->nnodes >= INT_MAX) {
            b->oom = 1;
            return;
        }
        b->nodes = nn;
        b->nodes[b->nnodes] = (Node){.word = w, .next = q->head};
        q->head = (int)b->nnodes++;
    }
    if (q->stamp != b->merge) {
        int *nt = reserve(b->touched, &b->tcap, b->ntouched + 1, sizeof *b->touched);
        if (!nt) {
            b->oom = 1;
            return;
        }
        b->touched = nt;
        q->stamp = b->merge;
        b->touched[b->ntouched++] = p;
    }
}

// Heap order: higher count first, then smaller (left, right).
static inline int heap_before(const HeapItem *x, const HeapItem *y) {
    if (x->count != y->count) return x->count > y->count;
    return x->left != y->left ? x->left < y->left : x->right < y->right;
}

static void heap_push(Bpe *b, int p) {
    HeapItem *h = reserve(b->heap, &b->hcap, b->nheap + 1, sizeof *b->heap);
    if (!h) {
        b->oom = 1;
        return;
    }
    b->heap = h;
    HeapItem it = {b->pairs[p].count, b->pairs[p].left, b->pairs[p].right, p};
    size_t i = b->nheap++;
    for (; i > 0 && heap_before(&it, &h[(i - 1) / 2]); i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = it;
}

static HeapItem heap_pop(Bpe *b) {
    HeapItem *h = b->heap, top = h[0], last = h[--b->nheap];
    size_t i = 0, n = b->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&h[c + 1], &h[c])) c++;
        if (!heap_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

// The pair to merge next: the heap holds, for every pair seen with count >= 2, an item
// whose count is at least the current one (items are pushed when counts rise and
// re-pushed when found stale), so the first item that is up to date is the maximum.
static int best_pair(Bpe *b) {
    while (b->nheap) {
        HeapItem it = heap_pop(b);
        int64_t now = b->pairs[it.pair].count;
        if (now == it.count) return it.pair;
        if (now >= 2 && now < it.count) heap_push(b, it.pair);
    }
    return -1;
}

// Rewrites word w with merge (a, c) -> m, left to right, updating the pair counts by
// the difference: each merged occurrence turns (prev, a) into (prev, m) and (c, next)
// into (m, next). prev is the already rewritten left neighbour, which makes overlapping
// runs such as "a a a" with a == c come out right.
static void merge_word(Bpe *b, int w, int a, int c, int m) {
    Word *wd = &b->words[w];
    int *s = b->sym + wd->off, n = wd->len, k = 0;
    int64_t f = wd->freq;
    for (int i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == c) {
            if (k > 0) {
                pair_add(b, s[k - 1], a, -f, w);
                pair_add(b, s[k - 1], m, f, w);
            }
            if (i + 2 < n) {
                pair_add(b, c, s[i + 2], -f, w);
                pair_add(b, m, s[i + 2], f, w);
            }
            s[k++] = m;
            i += 2;
        } else {
            s[k++] = s[i++];
        }
    }
    wd->len = k;
}

// Pushes the pairs touched since the last call that can still be merged.
static void push_touched(Bpe *b) {
    for (size_t i = 0; i < b->ntouched; i++)
        if (b->pairs[b->touched[i]].count >= 2) heap_push(b, b->touched[i]);
    b->ntouched = 0;
}

Tokenizer *tokenizer_train(const char *text, size_t len, int vocab_size, int verbose,
                           char *err) {
    if (vocab_size < TOK_NBASE || vocab_size > MAX_VOCAB) {
        errorf(err,
               "vocabulary size %d is out of range: it must be at least %d (3 special "
               "tokens and 256 bytes) and at most %d",
               vocab_size, TOK_NBASE, MAX_VOCAB);
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)text;
    Bpe b = {.merge = -1};
    int *merges = NULL, nmerges = 0;
    if (count_words(&b, s, len)) goto oom;
    // symbols: each word's bytes as byte ids
    size_t nsym = 0;
    for (size_t w = 0; w < b.nwords; w++) nsym += (size_t)b.words[w].len;
    b.sym = malloc((nsym ? nsym : 1) * sizeof *b.sym);
    b.pmask = (1 << 16) - 1;
    b.pslot = calloc(b.pmask + 1, sizeof *b.pslot);
    merges = malloc(2 * (size_t)(vocab_size - TOK_NBASE + 1) * sizeof *merges);
    if (!b.sym || !b.pslot || !merges) goto oom;
    nsym = 0;
    for (size_t w = 0; w < b.nwords; w++) {
        Word *wd = &b.words[w];
        for (int i = 0; i < wd->len; i++)
            b.sym[nsym + (size_t)i] = TOK_BYTE0 + s[wd->off + (size_t)i];
        wd->off = nsym;
        nsym += (size_t)wd->len;
        for (int i = 0; i + 1 < wd->len; i++)
            pair_add(&b, b.sym[wd->off + (size_t)i], b.sym[wd->off + (size_t)i + 1],
                     wd->freq, (int)w);
    }
    push_touched(&b);
    if (b.oom) goto oom;
    if (verbose)
        printf("tokenizer: %zu bytes, %zu distinct words, %zu distinct pairs\n", len,
               b.nwords, b.npairs);

    while (TOK_NBASE + nmerges < vocab_size) {
        int p = best_pair(&b);
        if (p < 0) break; // no pair occurs twice
        int a = b.pairs[p].left, c = b.pairs[p].right, m = TOK_NBASE + nmerges;
        int64_t count = b.pairs[p].count;
        b.merge = nmerges;
        for (int nd = b.pairs[p].head; nd >= 0; nd = b.nodes[nd].next) {
            int w = b.nodes[nd].word; // words appear once per merge that raised the pair
            if (b.words[w].stamp == nmerges) continue; // already rewritten by this merge
            b.words[w].stamp = nmerges;
            merge_word(&b, w, a, c, m);
        }
        b.pairs[p].count = 0; // every occurrence was merged or (overlaps) removed above
        push_touched(&b);
        if (b.oom) goto oom;
        merges[2 * nmerges] = a;
        merges[2 * nmerges + 1] = c;
        nmerges++;
        if (verbose && nmerges % 1000 == 0)
            printf("tokenizer: merge %d: %d + %d -> %d (%lld occurrences)\n", nmerges, a,
                   c, m, (long long)count);
    }
    if (verbose)
        printf("tokenizer: learned %d merges, vocabulary %d%s\n", nmerges,
               TOK_NBASE + nmerges,
               TOK_NBASE + nmerges < vocab_size ? " (stopped early: no pair occurs twice)"
                                                : "");
    bpe_free(&b);
    return build(merges, nmerges, "training", err);
oom:
    bpe_free(&b);
    free(merges);
    errorf(err, "out of memory while learning the tokenizer from %zu bytes of text",
           len);
    return NULL;
}

// ----------------------------------------------------------------------------
// files: magic "KFTOKENS", uint32 version, vocab size, number of merges, then the
// merges as (left, right) int32 pairs; all little-endian

int tokenizer_save(const Tokenizer *t, const char *path, char *err) {
    size_t size = HEADER_BYTES + 8 * (size_t)t->nmerges;
    unsigned char *buf = malloc(size);
    if (!buf) {
        errorf(err, "out of memory while saving the tokenizer to %s", path);
        return -1;
    }
    memcpy(buf, MAGIC, 8);
    put_le(buf + 8, FILE_VERSION, 4);
    put_le(buf + 12, (uint32_t)tokenizer_vocab_size(t), 4);
    put_le(buf + 16, (uint32_t)t->nmerges, 4);
    for (int i = 0; i < 2 * t->nmerges; i++)
        put_le(buf + HEADER_BYTES + 4 * i, (uint32_t)t->merges[i], 4);
    FILE *f = replace_begin(path, err);
    if (f) fwrite(buf, 1, size, f);   // replace_commit sees a write error through ferror
    int rc = f ? replace_commit(f, path, err) : 1;
    free(buf);
    return rc ? -1 : 0;
}

Tokenizer *tokenizer_load(const char *path, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        errorf(err,
               "cannot open the tokenizer file %s: %s; run ./train prepare to make it",
               path, strerror(errno));
        return NULL;
    }
    unsigned char h[HEADER_BYTES];
    size_t got = fread(h, 1, HEADER_BYTES, f);
    int *merges = NULL;
    if (memcmp(h, MAGIC, got < 8 ? got : 8)) {
        errorf(err,
               "%s is not a kronformer tokenizer file (bad magic); re-run ./train "
               "prepare",
               path);
        goto fail;
    }
    if (got < HEADER_BYTES) {
        errorf(err,
               "%s is truncated (%zu bytes, shorter than the %d-byte header); re-run "
               "./train prepare",
               path, got, HEADER_BYTES);
        goto fail;
    }
    uint32_t version = (uint32_t)get_le(h + 8, 4), vocab = (uint32_t)get_le(h + 12, 4),
             n = (uint32_t)get_le(h + 16, 4);
    if (version != FILE_VERSION) {
        errorf(err,
               "%s is a version %u tokenizer file, but this build reads only version "
               "%d; re-run ./train prepare to rebuild it",
               path, version, FILE_VERSION);
        goto fail;
    }
    if (n > MAX_VOCAB - TOK_NBASE || vocab != TOK_NBASE + n) {
        errorf(err,
               "%s is corrupt: vocabulary size %u with %u merges (it must be 259 + "
               "merges, at most %d); re-run ./train prepare",
               path, vocab, n, MAX_VOCAB);
        goto fail;
    }
    // check the size before allocating what the header claims
    if (fseek(f, 0, SEEK_END)) goto io;
    long size = ftell(f);
    if (size < 0 || fseek(f, HEADER_BYTES, SEEK_SET)) goto io;
    uint64_t want = HEADER_BYTES + 8 * (uint64_t)n;
    if ((uint64_t)size != want) {
        errorf(err,
               "%s is %s: %ld bytes, but %u merges need %llu; re-run ./train prepare",
               path, (uint64_t)size < want ? "truncated" : "corrupt (trailing bytes)",
               size, n, (unsigned long long)want);
        goto fail;
    }
    unsigned char *raw = malloc(8 * (size_t)n + 1);
    merges = malloc((2 * (size_t)n + 1) * sizeof *merges);
    if (!raw || !merges) {
        free(raw);
        errorf(err, "out of memory while reading %u merges from %s", n, path);
        goto fail;
    }
    got = fread(raw, 1, 8 * (size_t)n, f);
    for (size_t i = 0; i < 2 * (size_t)n && 4 * i + 4 <= got; i++)
        merges[i] = (int)get_le(raw + 4 * i, 4);
    free(raw);
    if (got != 8 * (size_t)n) goto io;
    fclose(f);
    return build(merges, (int)n, path, err);
io:
    errorf(err, "cannot read the tokenizer file %s: %s", path, strerror(errno));
fail:
    free(merges);
    fclose(f);
    return NULL;
}
