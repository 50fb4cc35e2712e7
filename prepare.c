// prepare.c: see prepare.h. Reading text, splitting off a validation set, training the
// tokenizer, encoding, writing token files; and reading a prepared directory back.
#include "prepare.h"
#include "fileio.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Text: one side of a corpus, as views into a file held in memory

typedef struct {
    const char **s;   // (n) line starts, not NUL-terminated in general
    size_t *len;      // (n) line lengths in bytes
    size_t n;
} Text;

static int text_alloc(Text *t, size_t n) {
    t->n = n;
    t->s = malloc((n ? n : 1) * sizeof(char *));
    t->len = malloc((n ? n : 1) * sizeof(size_t));
    return t->s && t->len ? 0 : 1;
}

static void text_free(Text *t) {
    free(t->s);
    free(t->len);
    memset(t, 0, sizeof(*t));
}

static void text_from_lines(Text *t, const Lines *l) {
    for (size_t i = 0; i < l->n; i++) { t->s[i] = l->line[i]; t->len[i] = l->len[i]; }
}

// Splits each "source<TAB>target[<TAB>...]" line of l into src and tgt views.
static int text_from_tsv(Text *src, Text *tgt, const Lines *l, const char *path, char *err) {
    for (size_t i = 0; i < l->n; i++) {
        const char *tab = memchr(l->line[i], '\t', l->len[i]);
        if (!tab) {
            errorf(err, "%s line %zu has no tab; --tsv expects "
                     "source<TAB>target on every line", path, i + 1);
            return 1;
        }
        const char *t = tab + 1, *end = l->line[i] + l->len[i];
        const char *tab2 = memchr(t, '\t', (size_t)(end - t));   // extra columns ignored
        src->s[i] = l->line[i];
        src->len[i] = (size_t)(tab - l->line[i]);
        tgt->s[i] = t;
        tgt->len[i] = (size_t)((tab2 ? tab2 : end) - t);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// the validation split

// Marks round(fraction * n) of n items (at least one) as validation, chosen by a
// seeded Fisher-Yates shuffle; the items keep their order within each split.
static int split_mask(unsigned char *is_valid, size_t n, double fraction, uint64_t seed,
                      const char *what, char *err) {
    size_t nv = (size_t)(fraction * (double)n + 0.5);
    if (nv == 0) nv = 1;
    if (nv >= n) {
        errorf(err, "only %zu %s: too few to hold out %g of them for "
                 "validation; give more data or a smaller --valid-fraction", n, what, fraction);
        return 1;
    }
    size_t *perm = malloc(n * sizeof(size_t));
    if (!perm) { errorf(err, "out of memory"); return 1; }
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t rng = seed;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&rng) % (i + 1));
        size_t tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
    }
    memset(is_valid, 0, n);
    for (size_t i = 0; i < nv; i++) is_valid[perm[i]] = 1;
    free(perm);
    return 0;
}

// Splits the views of `all` into train (mask 0) and valid (mask 1).
static int text_split(Text *train, Text *valid, const Text *all, const unsigned char *mask) {
    size_t nv = 0;
    for (size_t i = 0; i < all->n; i++) nv += mask[i];
    if (text_alloc(train, all->n - nv) || text_alloc(valid, nv)) return 1;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < all->n; i++) {
        Text *t = mask[i] ? valid : train;
        size_t k = mask[i] ? b++ : a++;
        t->s[k] = all->s[i];
        t->len[k] = all->len[i];
    }
    return 0;
}

// ----------------------------------------------------------------------------
// token sequences: what a token file holds

typedef struct {
    int32_t *tok;     // (ntok)
    uint64_t *off;    // (n + 1)
    size_t n, ntok, cap;
    // statistics
    size_t bytes, truncated;
    int max;
} Seqs;

static int seqs_init(Seqs *q, size_t n_hint) {
    memset(q, 0, sizeof(*q));
    q->cap = n_hint * 8 + 64;
    q->tok = malloc(q->cap * sizeof(int32_t));
    q->off = malloc((n_hint + 1) * sizeof(uint64_t));
    if (!q->tok || !q->off) return 1;
    q->off[0] = 0;
    return 0;
}

static void seqs_free(Seqs *q) {
    free(q->tok);
    free(q->off);
    memset(q, 0, sizeof(*q));
}

// Appends one sequence (the caller sized off for it).
static int seqs_push(Seqs *q, const int *ids, int len) {
    if (q->ntok + (size_t)len > q->cap) {
        while (q->ntok + (size_t)len > q->cap) q->cap *= 2;
        int32_t *bigger = realloc(q->tok, q->cap * sizeof(int32_t));
        if (!bigger) return 1;
        q->tok = bigger;
    }
    for (int i = 0; i < len; i++) q->tok[q->ntok + i] = ids[i];
    q->ntok += (size_t)len;
    q->off[++q->n] = q->ntok;
    if (len > q->max) q->max = len;
    return 0;
}

// Encodes every line of t, cutting lines longer than max_len tokens.
static int encode_text(Seqs *q, const Tokenizer *tok, const Text *t, int max_len, char *err) {
    size_t longest = 1;
    for (size_t i = 0; i < t->n; i++) if (t->len[i] > longest) longest = t->len[i];
    int *ids = malloc(longest * sizeof(int));   // a token covers at least one byte
    if (!ids || seqs_init(q, t->n)) {
        free(ids);
        errorf(err, "out of memory encoding the text");
        return 1;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t n = tokenizer_encode(tok, t->s[i], t->len[i], ids, longest);
        if (n > (size_t)max_len) { n = (size_t)max_len; q->truncated++; }
        q->bytes += t->len[i];
        if (seqs_push(q, ids, (int)n)) {
            free(ids);
            errorf(err, "out of memory encoding the text");
            return 1;
        }
    }
    free(ids);
    return 0;
}

// lm: encodes the whole text as one stream and cuts it into chunks of max_len tokens
// (the last chunk may be shorter; a lone last token is dropped).
static int encode_stream(Seqs *q, const Tokenizer *tok, const char *text, size_t len,
                         int max_len, char *err) {
    int *ids = malloc((len ? len : 1) * sizeof(int));
    size_t n = ids ? tokenizer_encode(tok, text, len, ids, len) : 0;
    if (!ids || seqs_init(q, n / (size_t)max_len + 1)) {
        free(ids);
        errorf(err, "out of memory encoding the text");
        return 1;
    }
    for (size_t i = 0; i + 1 < n; i += (size_t)max_len) {
        size_t k = n - i < (size_t)max_len ? n - i : (size_t)max_len;
        if (seqs_push(q, ids + i, (int)k)) {
            free(ids);
            errorf(err, "out of memory encoding the text");
            return 1;
        }
    }
    q->bytes = len;
    free(ids);
    return 0;
}

// Copies the sequences of `all` whose mask equals `want`.
static int seqs_select(Seqs *q, const Seqs *all, const unsigned char *mask, int want) {
    if (seqs_init(q, all->n)) return 1;
    for (size_t i = 0; i < all->n; i++) {
        if (mask[i] != want) continue;
        int len = (int)(all->off[i + 1] - all->off[i]);
        if (seqs_push(q, all->tok + all->off[i], len)) return 1;
    }
    // bytes of text behind these tokens, at the rate of the whole text
    q->bytes = (size_t)((double)all->bytes * (double)q->ntok / (double)all->ntok);
    return 0;
}

static void print_stats(const char *name, const Seqs *q) {
    printf("  %-10s %9zu %11zu %7.1f %6d %10zu %12.2f\n", name, q->n, q->ntok,
           q->n ? (double)q->ntok / (double)q->n : 0.0, q->max, q->truncated,
           q->ntok ? (double)q->bytes / (double)q->ntok : 0.0);
}

// ----------------------------------------------------------------------------
// prepare

int prepare_default_vocab(size_t bytes) {
    size_t v = 259 + bytes / 500;
    return v < 8000 ? (int)v : 8000;
}

// One line naming the inputs and options: two directories prepared with the same recipe
// hold the same data (prepare_is_current).
static void recipe_string(char *out, size_t cap, const PrepareOptions *o) {
    snprintf(out, cap, "arch=%s src=%s tgt=%s tsv=%s text=%s valid-src=%s valid-tgt=%s "
             "valid-text=%s valid-fraction=%g vocab-size=%d tokenizer=%s max-len=%d seed=%llu",
             o->arch == ARCH_LM ? "lm" : "seq2seq", o->src ? o->src : "-",
             o->tgt ? o->tgt : "-", o->tsv ? o->tsv : "-", o->text ? o->text : "-",
             o->valid_src ? o->valid_src : "-", o->valid_tgt ? o->valid_tgt : "-",
             o->valid_text ? o->valid_text : "-", o->valid_fraction, o->vocab_size, o->tokenizer ? o->tokenizer : "-",
             o->max_len, (unsigned long long)o->seed);
}

// The tokenizer: loaded from o->tokenizer, or trained on `text`.
static Tokenizer *get_tokenizer(const PrepareOptions *o, const char *text, size_t len,
                                char *err) {
    if (o->tokenizer) {
        Tokenizer *t = tokenizer_load(o->tokenizer, err);
        if (t) printf("prepare: tokenizer %s (%d ids), reused\n", o->tokenizer,
                      tokenizer_vocab_size(t));
        return t;
    }
    int vocab = o->vocab_size ? o->vocab_size : prepare_default_vocab(len);
    double t0 = seconds_now();
    Tokenizer *t = tokenizer_train(text, len, vocab, 0, err);
    if (t) printf("prepare: tokenizer: byte-level BPE, %d ids (asked %d), trained on "
                  "%.2f MB in %.2f s\n", tokenizer_vocab_size(t), vocab, (double)len / 1e6,
                  seconds_since(t0));
    return t;
}

// The training text the tokenizer learns from: every source line, then every target
// line, each ended by '\n'.
static char *joined_text(const Text *a, const Text *b, size_t *len) {
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++) n += a->len[i] + 1;
    for (size_t i = 0; i < b->n; i++) n += b->len[i] + 1;
    char *s = malloc(n + 1), *p = s;
    if (!s) return NULL;
    const Text *sides[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sides[k]->n; i++) {
            memcpy(p, sides[k]->s[i], sides[k]->len[i]);
            p += sides[k]->len[i];
            *p++ = '\n';
        }
    *len = n;
    return s;
}

// Writes the directory: tokenizer, token files (names[i] <- seqs[i]), dataset.txt last
// (a directory with a dataset.txt is complete).
static int write_dataset(const PrepareOptions *o, const Tokenizer *tok, const char **names,
                         const Seqs *seqs, int nfiles, char *err) {
    char path[PATH_CAP];
    if (make_dirs(o->out, err)) return 1;
    path_join(path, o->out, "tokenizer.bin");
    if (tokenizer_save(tok, path, err)) return 1;
    uint64_t sum = tokenizer_checksum(tok);
    for (int i = 0; i < nfiles; i++) {
        path_join(path, o->out, names[i]);
        if (tokfile_write(path, sum, seqs[i].tok, seqs[i].off, seqs[i].n, err)) return 1;
    }
    path_join(path, o->out, "dataset.txt");
    FILE *f = replace_begin(path, err);
    if (!f) return 1;
    char recipe[4 * PATH_CAP];
    recipe_string(recipe, sizeof(recipe), o);
    fprintf(f, "# kronformer data set, written by `train prepare`\n");
    fprintf(f, "arch=%s\n", o->arch == ARCH_LM ? "lm" : "seq2seq");
    fprintf(f, "vocab_size=%d\n", tokenizer_vocab_size(tok));
    fprintf(f, "max_len=%d\n", o->max_len);
    fprintf(f, "tokenizer_checksum=%016llx\n", (unsigned long long)sum);
    for (int i = 0; i < nfiles; i++)
        fprintf(f, "%s_sequences=%zu\n%s_tokens=%zu\n%s_truncated=%zu\n", names[i],
                seqs[i].n, names[i], seqs[i].ntok, names[i], seqs[i].truncated);
    fprintf(f, "recipe=%s\n", recipe);
    if (replace_commit(f, path, err)) return 1;
    printf("prepare: wrote %s/{tokenizer.bin", o->out);
    for (int i = 0; i < nfiles; i++) printf(", %s", names[i]);
    printf(", dataset.txt}\n");
    return 0;
}

static void print_header(void) {
    printf("  %-10s %9s %11s %7s %6s %10s %12s\n", "file", "sequences", "tokens", "mean",
           "max", "truncated", "bytes/token");
}

static int prepare_seq2seq(const PrepareOptions *o, char *err) {
    Lines in[4] = {0};          // src, tgt (or tsv), valid src, valid tgt
    Text all_s = {0}, all_t = {0}, tr_s = {0}, tr_t = {0}, va_s = {0}, va_t = {0};
    Seqs seqs[4] = {0};
    unsigned char *mask = NULL;
    char *joined = NULL;
    Tokenizer *tok = NULL;
    int rc = 1;

    // read and check every input before anything is written
    if (o->tsv) {
        if (lines_read(&in[0], o->tsv, err)) goto done;
        if (text_alloc(&all_s, in[0].n) || text_alloc(&all_t, in[0].n)) goto oom;
        if (text_from_tsv(&all_s, &all_t, &in[0], o->tsv, err)) goto done;
    } else {
        if (lines_read(&in[0], o->src, err) || lines_read(&in[1], o->tgt, err)) goto done;
        if (in[0].n != in[1].n) {
            errorf(err, "%s has %zu lines but %s has %zu; --src and --tgt "
                     "must be line-aligned translations", o->src, in[0].n, o->tgt, in[1].n);
            goto done;
        }
        if (text_alloc(&all_s, in[0].n) || text_alloc(&all_t, in[1].n)) goto oom;
        text_from_lines(&all_s, &in[0]);
        text_from_lines(&all_t, &in[1]);
    }
    if (o->valid_src) {
        if (lines_read(&in[2], o->valid_src, err) || lines_read(&in[3], o->valid_tgt, err))
            goto done;
        if (in[2].n != in[3].n) {
            errorf(err, "%s has %zu lines but %s has %zu; --valid-src and "
                     "--valid-tgt must be line-aligned", o->valid_src, in[2].n,
                     o->valid_tgt, in[3].n);
            goto done;
        }
        tr_s = all_s; tr_t = all_t;             // the views move, not copied
        memset(&all_s, 0, sizeof(Text)); memset(&all_t, 0, sizeof(Text));
        if (text_alloc(&va_s, in[2].n) || text_alloc(&va_t, in[3].n)) goto oom;
        text_from_lines(&va_s, &in[2]);
        text_from_lines(&va_t, &in[3]);
    } else {
        if (!(mask = malloc(all_s.n))) goto oom;
        if (split_mask(mask, all_s.n, o->valid_fraction, o->seed, "lines", err)) goto done;
        if (text_split(&tr_s, &va_s, &all_s, mask) || text_split(&tr_t, &va_t, &all_t, mask))
            goto oom;
    }
    printf("prepare: %zu training pairs, %zu validation pairs (%s)\n", tr_s.n, va_s.n,
           o->valid_src ? "from --valid-src/--valid-tgt" : "held out at random");

    // tokenizer, from the training pairs only
    size_t len = 0;
    if (!o->tokenizer && !(joined = joined_text(&tr_s, &tr_t, &len))) goto oom;
    if (!(tok = get_tokenizer(o, joined, len, err))) goto done;

    const Text *texts[4] = {&tr_s, &tr_t, &va_s, &va_t};
    const char *names[4] = {"train.src", "train.tgt", "valid.src", "valid.tgt"};
    print_header();
    for (int i = 0; i < 4; i++) {
        if (encode_text(&seqs[i], tok, texts[i], o->max_len, err)) goto done;
        print_stats(names[i], &seqs[i]);
    }
    size_t cut = seqs[0].truncated + seqs[1].truncated + seqs[2].truncated + seqs[3].truncated;
    if (cut) printf("prepare: %zu lines longer than --max-len %d tokens were truncated\n",
                    cut, o->max_len);
    rc = write_dataset(o, tok, names, seqs, 4, err);
    goto done;
oom:
    errorf(err, "out of memory reading the corpus");
done:
    for (int i = 0; i < 4; i++) { lines_free(&in[i]); seqs_free(&seqs[i]); }
    text_free(&all_s); text_free(&all_t); text_free(&tr_s); text_free(&tr_t);
    text_free(&va_s); text_free(&va_t);
    free(mask);
    free(joined);
    if (tok) tokenizer_free(tok);
    return rc;
}

// lm: the text as one stream cut into chunks; the validation chunks are those of
// --valid-text (which stays whole, in order), else --valid-fraction of the text's.
static int prepare_lm(const PrepareOptions *o, char *err) {
    char *text = NULL, *vtext = NULL;
    size_t len = 0, vlen = 0;
    Seqs all = {0}, seqs[2] = {0};
    unsigned char *mask = NULL;
    Tokenizer *tok = NULL;
    int rc = 1;
    if (read_file(o->text, &text, &len, err)) return 1;
    if (o->valid_text && read_file(o->valid_text, &vtext, &vlen, err)) goto done;
    if (len == 0 || (o->valid_text && vlen == 0)) {
        errorf(err, "%s is empty; give a text file to %s", len == 0 ? o->text :
               o->valid_text, len == 0 ? "learn from" : "validate on");
        goto done;
    }
    // the tokenizer learns from the training text (without --valid-text: the whole
    // text; the split is of chunks of tokens)
    if (!(tok = get_tokenizer(o, text, len, err))) goto done;
    if (o->valid_text) {
        if (encode_stream(&seqs[0], tok, text, len, o->max_len, err) ||
            encode_stream(&seqs[1], tok, vtext, vlen, o->max_len, err))
            goto done;
        for (int i = 0; i < 2; i++)
            if (seqs[i].n == 0) {
                errorf(err, "%s makes no chunk (a single token); give more text",
                       i == 0 ? o->text : o->valid_text);
                goto done;
            }
    } else {
        if (encode_stream(&all, tok, text, len, o->max_len, err)) goto done;
        if (all.n < 2) {
            errorf(err, "%s makes only %zu chunk(s) of %d tokens; give more text "
                     "or a smaller --max-len", o->text, all.n, o->max_len);
            goto done;
        }
        if (!(mask = malloc(all.n))) goto oom;
        if (split_mask(mask, all.n, o->valid_fraction, o->seed, "chunks", err)) goto done;
        if (seqs_select(&seqs[0], &all, mask, 0) || seqs_select(&seqs[1], &all, mask, 1))
            goto oom;
    }
    const char *names[2] = {"train.lm", "valid.lm"};
    printf("prepare: %zu bytes, %zu tokens, cut into chunks of %d tokens; validation: %s\n",
           len + vlen, seqs[0].ntok + seqs[1].ntok, o->max_len,
           o->valid_text ? o->valid_text : "chunks held out at random");
    print_header();
    for (int i = 0; i < 2; i++) print_stats(names[i], &seqs[i]);
    rc = write_dataset(o, tok, names, seqs, 2, err);
    goto done;
oom:
    errorf(err, "out of memory encoding %s", o->text);
done:
    free(text);
    free(vtext);
    free(mask);
    seqs_free(&all); seqs_free(&seqs[0]); seqs_free(&seqs[1]);
    if (tok) tokenizer_free(tok);
    return rc;
}

int prepare_run(const PrepareOptions *o, char *err) {
    return o->arch == ARCH_LM ? prepare_lm(o, err) : prepare_seq2seq(o, err);
}

// ----------------------------------------------------------------------------
// reading a prepared directory

// Value of "key=value" among the lines of dataset.txt, or NULL.
static const char *kv_get(const Lines *l, const char *key) {
    size_t k = strlen(key);
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->line[i], key, k) == 0 && l->line[i][k] == '=') return l->line[i] + k + 1;
    return NULL;
}

// The integer value of key, in [lo, hi]: 1 and *out, or 0 if missing or invalid.
static int kv_int(const Lines *l, const char *key, int lo, int hi, int *out) {
    const char *v = kv_get(l, key);
    char *end;
    if (!v || *v < '0' || *v > '9') return 0;
    long x = strtol(v, &end, 10);   // an overflow gives LONG_MAX, above hi
    if (*end != '\0' || x < lo || x > hi) return 0;
    *out = (int)x;
    return 1;
}

int prepare_is_current(const PrepareOptions *o) {
    char path[PATH_CAP], err[KF_ERRLEN], recipe[4 * PATH_CAP];
    Lines l;
    path_join(path, o->out, "dataset.txt");
    if (!file_exists(path) || lines_read(&l, path, err)) return 0;
    recipe_string(recipe, sizeof(recipe), o);
    const char *r = kv_get(&l, "recipe");
    int same = r && strcmp(r, recipe) == 0;
    lines_free(&l);
    Dataset d;
    if (!same || dataset_open(&d, o->out, err)) return 0;
    dataset_close(&d);
    return 1;
}

// Reads one token file of dir and checks it against the tokenizer.
static int load_tokens(TokenFile *f, const char *dir, const char *name, const Dataset *d,
                       char *err) {
    char path[PATH_CAP];
    path_join(path, dir, name);
    if (tokfile_read(f, path, err)) return 1;
    uint64_t sum = tokenizer_checksum(d->tok);
    if (f->checksum != sum) {
        errorf(err, "%s was made with another tokenizer (checksum %016llx, "
                 "tokenizer.bin has %016llx); run `train prepare` again into %s", path,
                 (unsigned long long)f->checksum, (unsigned long long)sum, dir);
        return 1;
    }
    for (size_t i = 0; i < f->ntok; i++)
        if (f->tok[i] < 0 || f->tok[i] >= d->vocab_size) {
            errorf(err, "%s holds token id %d outside the vocabulary of %d; "
                     "run `train prepare` again into %s", path, (int)f->tok[i],
                     d->vocab_size, dir);
            return 1;
        }
    if (f->max_len > d->max_len) {
        errorf(err, "%s has a sequence of %d tokens, longer than max_len %d "
                 "of dataset.txt; run `train prepare` again into %s", path, f->max_len,
                 d->max_len, dir);
        return 1;
    }
    return 0;
}

int dataset_open(Dataset *d, const char *dir, char *err) {
    memset(d, 0, sizeof(*d));
    char path[PATH_CAP];
    Lines l;
    path_join(path, dir, "dataset.txt");
    if (!file_exists(path)) {
        errorf(err, "%s has no dataset.txt; make it with `train prepare --out "
                 "%s ...`", dir, dir);
        return 1;
    }
    if (lines_read(&l, path, err)) return 1;
    const char *arch = kv_get(&l, "arch");
    int ok = arch && (!strcmp(arch, "seq2seq") || !strcmp(arch, "lm")) &&
             kv_int(&l, "vocab_size", TOK_NBASE, 1000000, &d->vocab_size) &&
             kv_int(&l, "max_len", 1, 100000, &d->max_len);
    if (ok) d->arch = strcmp(arch, "lm") == 0 ? ARCH_LM : ARCH_SEQ2SEQ;
    lines_free(&l);
    if (!ok) {
        errorf(err, "%s is corrupt (needs arch=seq2seq|lm, vocab_size=%d..1000000, "
                 "max_len=1..100000); run `train prepare` again into %s", path, TOK_NBASE, dir);
        return 1;
    }
    path_join(path, dir, "tokenizer.bin");
    if (!(d->tok = tokenizer_load(path, err))) return 1;
    if (tokenizer_vocab_size(d->tok) != d->vocab_size) {
        errorf(err, "%s has %d ids but dataset.txt says %d; run `train "
                 "prepare` again into %s", path, tokenizer_vocab_size(d->tok),
                 d->vocab_size, dir);
        goto fail;
    }
    if (d->arch == ARCH_LM) {
        if (load_tokens(&d->train_tgt, dir, "train.lm", d, err) ||
            load_tokens(&d->valid_tgt, dir, "valid.lm", d, err)) goto fail;
    } else {
        if (load_tokens(&d->train_src, dir, "train.src", d, err) ||
            load_tokens(&d->train_tgt, dir, "train.tgt", d, err) ||
            load_tokens(&d->valid_src, dir, "valid.src", d, err) ||
            load_tokens(&d->valid_tgt, dir, "valid.tgt", d, err)) goto fail;
        if (d->train_src.n != d->train_tgt.n || d->valid_src.n != d->valid_tgt.n) {
            errorf(err, "the source and target token files of %s have "
                     "different counts; run `train prepare` again into %s", dir, dir);
            goto fail;
        }
    }
    if (d->train_tgt.n == 0 || d->valid_tgt.n == 0) {
        errorf(err, "%s has an empty training or validation set; run `train "
                 "prepare` again with more data", dir);
        goto fail;
    }
    return 0;
fail:
    dataset_close(d);
    return 1;
}

void dataset_close(Dataset *d) {
    if (d->tok) tokenizer_free(d->tok);
    tokfile_free(&d->train_src);
    tokfile_free(&d->train_tgt);
    tokfile_free(&d->valid_src);
    tokfile_free(&d->valid_tgt);
    memset(d, 0, sizeof(*d));
}
