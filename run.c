// run.c: see run.h. The training loop (as llm.c's train_gpt2.c main, plus a learning-
// rate schedule, validation, checkpoints, logs, and a clean stop on Ctrl-C), and the
// checkpoint of a run directory, written and read back.
#include "run.h"
#include "prepare.h"
#include "checkpoint.h"
#include "fileio.h"
#include "data.h"
#include "evaluate.h"
#include "dist.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

// ----------------------------------------------------------------------------
// memory

double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (double)ru.ru_maxrss / (1024.0 * 1024.0);   // bytes on macOS
#else
    return (double)ru.ru_maxrss / 1024.0;              // kilobytes on Linux
#endif
}

// ----------------------------------------------------------------------------
// checkpoint: model.safetensors with the config as metadata

// The metadata of a safetensors file being written: key/value pairs, each value
// formatted into the struct by meta_put, or only pointed at by meta_ref (the long
// ones: the embed spec, the kept-checkpoint ring, the recent losses).
#define META_MAX 24
typedef struct {
    char val[META_MAX][160];
    const char *kv[2 * META_MAX];   // key, value, key, value, ...
    int n;
} Meta;

static void meta_put(Meta *mt, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mt->val[mt->n], sizeof mt->val[mt->n], fmt, ap);
    va_end(ap);
    mt->kv[2 * mt->n] = key;
    mt->kv[2 * mt->n + 1] = mt->val[mt->n];
    mt->n++;
}

// A value that outlives the Meta (as long as st_save runs): pointed at, not copied.
static void meta_ref(Meta *mt, const char *key, const char *value) {
    mt->kv[2 * mt->n] = key;
    mt->kv[2 * mt->n + 1] = value;
    mt->n++;
}

// Writes RUNDIR/tokenizer.bin, then RUNDIR/model.safetensors (each atomically): a run
// directory keeps a matching pair, so a new run into an old directory leaves the old
// model usable until its own first checkpoint.
static int save_checkpoint(const Model *m, const char *dir, const Tokenizer *tok,
                           long step, char *err) {
    char path[PATH_CAP];
    path_join(path, dir, "tokenizer.bin");
    if (tokenizer_save(tok, path, err)) return 1;
    StTensor t[MAX_TENSORS + 1];
    int nt = 0;
    for (int i = 0; i < m->ntensors; i++, nt++) {
        const TensorInfo *ti = &m->tensors[i];
        t[i] = (StTensor){ .name = ti->name, .data = m->param_mem + ti->offset,
                           .ndim = ti->ndim };
        memcpy(t[i].shape, ti->shape, sizeof(t[i].shape));
    }
    if (m->emb.slot)   // order=freq: the slot of every token
        t[nt++] = (StTensor){ .name = "embed.slot", .ints = m->emb.slot, .ndim = 1,
                              .shape = {m->cfg.V} };
    const Config *c = &m->cfg;
    Meta mt = {.n = 0};
    meta_put(&mt, "format", "kronformer");
    meta_put(&mt, "arch", "%s", c->arch == ARCH_LM ? "lm" : "seq2seq");
    meta_put(&mt, "V", "%d", c->V);
    meta_put(&mt, "C", "%d", c->C);
    meta_put(&mt, "NH", "%d", c->NH);
    meta_put(&mt, "F", "%d", c->F);
    meta_put(&mt, "Le", "%d", c->Le);
    meta_put(&mt, "Ld", "%d", c->Ld);
    meta_put(&mt, "maxT", "%d", c->maxT);
    meta_put(&mt, "tie", "%d", c->tie);
    char spec[sizeof(c->embed) + 64];
    embed_spec_string(&m->emb, spec, sizeof spec);   // every option written out
    meta_ref(&mt, "embed", spec);
    meta_put(&mt, "dropout", "%.9g", c->dropout);
    meta_put(&mt, "label_smoothing", "%.9g", c->label_smoothing);
    meta_put(&mt, "tokenizer_checksum", "%016llx", (unsigned long long)tokenizer_checksum(tok));
    meta_put(&mt, "step", "%ld", step);
    path_join(path, dir, "model.safetensors");
    return st_save(path, t, nt, mt.kv, mt.n, err);
}

// Integer metadata value in [0, max]; fails on a missing, non-numeric or out-of-range one.
static int meta_int(const StFile *f, const char *key, int max, int *out, const char *path,
                    char *err) {
    const char *s = st_meta(f, key);
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *s < '0' || *s > '9' || *end != '\0' || v > max) {
        errorf(err, "%s: metadata %s is missing or invalid ('%.20s'); the checkpoint is "
                 "corrupt, train it again with `train fit`", path, key, s ? s : "");
        return 1;
    }
    *out = (int)v;
    return 0;
}

// Number metadata value; fails on a missing or non-numeric one.
static int meta_float(const StFile *f, const char *key, float *out, const char *path,
                      char *err) {
    const char *s = st_meta(f, key);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || *s == '\0' || *end != '\0' || !isfinite(v)) {
        errorf(err, "%s: metadata %s is missing or invalid ('%.20s'); the checkpoint is "
                 "corrupt, train it again with `train fit`", path, key, s ? s : "");
        return 1;
    }
    *out = (float)v;
    return 0;
}

int run_load(Model *m, Tokenizer **tok, long *step, const char *dir, char *err) {
    char path[PATH_CAP], tpath[PATH_CAP];
    path_join(path, dir, "model.safetensors");
    path_join(tpath, dir, "tokenizer.bin");
    if (file_exists(dir) && !is_directory(dir)) {
        errorf(err, "%s is a file; give the run directory written by `train fit` (it holds "
                 "model.safetensors and tokenizer.bin)", dir);
        return 1;
    }
    if (!file_exists(path)) {
        errorf(err, "%s has no model.safetensors; train a model into it with "
                 "`train fit --out %s`", dir, dir);
        return 1;
    }
    StFile *f = st_open(path, err);
    if (!f) return 1;
    Config c;
    config_default(&c);
    // embed: the spec with every option written out; an older file's as typed
    const char *arch = st_meta(f, "arch"), *embed = st_meta(f, "embed");
    const char *sum = st_meta(f, "tokenizer_checksum");
    char spec[sizeof(c.embed)];
    if (embed) {
        embed_legacy_spec(spec, sizeof spec, embed);
        embed = spec;
    }
    if (!arch || !embed || !sum || strlen(embed) >= sizeof(c.embed) ||
        (strcmp(arch, "seq2seq") && strcmp(arch, "lm"))) {
        errorf(err, "%s lacks kronformer metadata (arch, embed, tokenizer_checksum); "
                 "train it again with `train fit`", path);
        st_close(f);
        return 1;
    }
    c.arch = strcmp(arch, "lm") == 0 ? ARCH_LM : ARCH_SEQ2SEQ;
    snprintf(c.embed, sizeof(c.embed), "%s", embed);
    const int big = 1000000000;
    char why[KF_ERRLEN];
    if (meta_int(f, "V", big, &c.V, path, err) || meta_int(f, "C", big, &c.C, path, err) ||
        meta_int(f, "NH", big, &c.NH, path, err) || meta_int(f, "F", big, &c.F, path, err) ||
        meta_int(f, "Le", big, &c.Le, path, err) || meta_int(f, "Ld", big, &c.Ld, path, err) ||
        meta_int(f, "maxT", big, &c.maxT, path, err) || meta_int(f, "tie", 1, &c.tie, path, err) ||
        meta_float(f, "dropout", &c.dropout, path, err) ||
        meta_float(f, "label_smoothing", &c.label_smoothing, path, err)) {
        st_close(f);
        return 1;
    }
    if (config_check(&c, why)) {
        errorf(err, "%s: its config is invalid (%s); the checkpoint is corrupt, train it "
                 "again with `train fit`", path, why);
        st_close(f);
        return 1;
    }
    if (model_build(m, &c, err)) {
        st_close(f);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < m->ntensors && !failed; i++) {
        const TensorInfo *t = &m->tensors[i];
        failed = st_read(f, t->name, m->param_mem + t->offset, t->ndim, t->shape, err);
    }
    if (!failed && m->emb.order == EMBED_ORDER_FREQ) {   // the slot table
        int32_t *slot = malloc(sizeof(int32_t) * (size_t)c.V);
        failed = !slot || st_read_ints(f, "embed.slot", slot, 1, &c.V, NULL, err);
        if (!failed && model_use_slots(m, slot)) {
            errorf(err, "%s: embed.slot is not a permutation of the vocabulary; the "
                   "checkpoint is corrupt, train it again with `train fit`", path);
            failed = 1;
        }
        free(slot);
    }
    if (failed) {
        st_close(f);
        model_free(m);
        return 1;
    }
    unsigned long long want = strtoull(sum, NULL, 16);
    const char *saved_at = st_meta(f, "step");
    if (step) *step = saved_at ? strtol(saved_at, NULL, 10) : -1;
    st_close(f);
    if (!(*tok = tokenizer_load(tpath, err))) { model_free(m); return 1; }
    if ((unsigned long long)tokenizer_checksum(*tok) != want ||
        tokenizer_vocab_size(*tok) != c.V) {
        errorf(err, "%s is not the tokenizer the model was trained with "
                 "(checksum or size differs); copy the data's tokenizer.bin into %s", tpath, dir);
        tokenizer_free(*tok);
        model_free(m);
        return 1;
    }
    m->training = 0;
    return 0;
}

// Checkpoint averaging: the mean of the weights of several checkpoints of one run
// (Vaswani et al. 2017 averaged the last 5 or 20). Near the end of training the weights
// wander around a minimum; their mean often lies closer to it than any one of them.
// The sums run in double, in the order given, so the result is exact to float rounding
// and the same on every machine.
int run_average(const char *out_dir, char *const *dirs, int n, char *err) {
    char path[PATH_CAP];
    path_join(path, out_dir, "model.safetensors");
    if (file_exists(path)) {
        errorf(err, "%s already holds a model; give --out a new directory", out_dir);
        return 1;
    }
    Model avg;
    Tokenizer *tok;
    long step;
    if (run_load(&avg, &tok, &step, dirs[0], err)) return 1;
    double *sum = malloc(avg.num_params * sizeof(double));
    if (!sum) {
        errorf(err, "out of memory for %zu parameters", avg.num_params);
        goto fail;
    }
    for (size_t i = 0; i < avg.num_params; i++) sum[i] = avg.param_mem[i];
    for (int k = 1; k < n; k++) {
        Model m;
        Tokenizer *t;
        long s;
        if (run_load(&m, &t, &s, dirs[k], err)) goto fail;
        const Config *a = &avg.cfg, *b = &m.cfg;
        int same = a->arch == b->arch && a->V == b->V && a->C == b->C && a->NH == b->NH &&
                   a->F == b->F && a->Le == b->Le && a->Ld == b->Ld && a->maxT == b->maxT &&
                   a->tie == b->tie && !strcmp(a->embed, b->embed) &&
                   tokenizer_checksum(t) == tokenizer_checksum(tok);
        if (same) for (size_t i = 0; i < avg.num_params; i++) sum[i] += m.param_mem[i];
        if (s > step) step = s;
        model_free(&m);
        tokenizer_free(t);
        if (!same) {
            errorf(err, "%s and %s hold different models (config or tokenizer differ); "
                     "average checkpoints of one run only", dirs[0], dirs[k]);
            goto fail;
        }
    }
    for (size_t i = 0; i < avg.num_params; i++) avg.param_mem[i] = (real)(sum[i] / n);
    free(sum);
    int rc = make_dirs(out_dir, err) || save_checkpoint(&avg, out_dir, tok, step, err);
    model_free(&avg);
    tokenizer_free(tok);
    return rc;
fail:
    free(sum);
    model_free(&avg);
    tokenizer_free(tok);
    return 1;
}

// ----------------------------------------------------------------------------
// run.txt: who made a run, and its options, so that --resume needs no other flag and
// refuses the flags that would change the run

typedef enum { OPT_INT, OPT_LONG, OPT_FLOAT, OPT_DOUBLE, OPT_U64, OPT_EMBED, OPT_DATA } OptType;
typedef struct {
    const char *key;    // in run.txt
    const char *flag;   // named when --resume refuses a change
    OptType type;
    size_t offset;      // in FitOptions
    int fixed;          // 1: it changes the run, so --resume refuses another value
} OptField;

#define OPT(key, flag, type, member, fixed) {key, flag, type, offsetof(FitOptions, member), fixed}
static const OptField OPT_FIELDS[] = {
    OPT("data", "--data", OPT_DATA, data_dir, 1),
    OPT("arch", "--arch", OPT_INT, cfg.arch, 1),
    OPT("arch_set", "--arch", OPT_INT, arch_set, 0),   // only checked against the data
    OPT("d_model", "--d-model", OPT_INT, cfg.C, 1),
    OPT("heads", "--heads", OPT_INT, cfg.NH, 1),
    OPT("ffn", "--ffn", OPT_INT, cfg.F, 1),
    OPT("enc_layers", "--enc-layers", OPT_INT, cfg.Le, 1),
    OPT("dec_layers", "--dec-layers", OPT_INT, cfg.Ld, 1),
    OPT("tie", "--tie", OPT_INT, cfg.tie, 1),
    OPT("embed", "--embed", OPT_EMBED, cfg.embed, 1),
    OPT("dropout", "--dropout", OPT_FLOAT, cfg.dropout, 1),
    OPT("label_smoothing", "--label-smoothing", OPT_FLOAT, cfg.label_smoothing, 1),
    OPT("label_smoothing_set", "--label-smoothing", OPT_INT, label_smoothing_set, 1),
    OPT("max_len", "--max-len", OPT_INT, max_len, 1),
    OPT("steps", "--steps", OPT_LONG, steps, 1),
    OPT("minutes", "--minutes", OPT_DOUBLE, minutes, 1),
    OPT("batch_tokens", "--batch-tokens", OPT_INT, batch_tokens, 1),
    OPT("lm_chunks", "--lm-chunks", OPT_INT, lm_chunks, 1),
    OPT("lr", "--lr", OPT_FLOAT, lr, 1),
    OPT("warmup", "--warmup", OPT_INT, warmup, 1),
    OPT("weight_decay", "--weight-decay", OPT_FLOAT, weight_decay, 1),
    OPT("clip", "--clip", OPT_FLOAT, clip, 1),
    OPT("beta1", "--beta1", OPT_FLOAT, beta1, 1),
    OPT("beta2", "--beta2", OPT_FLOAT, beta2, 1),
    OPT("eps", "--eps", OPT_FLOAT, eps, 1),
    OPT("embed_std", "--embed-std", OPT_FLOAT, embed_std, 1),
    OPT("seed", "--seed", OPT_U64, seed, 1),
    OPT("keep_checkpoints", "--keep-checkpoints", OPT_INT, keep_checkpoints, 1),
    // these change no number of the run
    OPT("eval_every", "--eval-every", OPT_INT, eval_every, 0),
    OPT("eval_batches", "--eval-batches", OPT_INT, eval_batches, 0),
    OPT("threads", "--threads", OPT_INT, threads, 0),
    OPT("overlap", "--no-overlap", OPT_INT, overlap, 0),
    OPT("bleu_sentences", "--bleu-sentences", OPT_INT, bleu_sentences, 0),
    OPT("bleu_beam", "--bleu-beam", OPT_INT, bleu_beam, 0),
};
#undef OPT
#define NOPT ((int)(sizeof OPT_FIELDS / sizeof OPT_FIELDS[0]))

static void opt_print(FILE *f, const FitOptions *o, const OptField *k) {
    const char *p = (const char *)o + k->offset;
    switch (k->type) {
    case OPT_INT: fprintf(f, "%d", *(const int *)p); break;
    case OPT_LONG: fprintf(f, "%ld", *(const long *)p); break;
    case OPT_FLOAT: fprintf(f, "%.9g", *(const float *)p); break;     // 9 digits: exact
    case OPT_DOUBLE: fprintf(f, "%.17g", *(const double *)p); break;  // 17: exact
    case OPT_U64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case OPT_EMBED: fprintf(f, "%s", p); break;
    case OPT_DATA: fprintf(f, "%s", *(const char *const *)p); break;
    }
}

// Parses value into the field; 1 if it is not a whole number of its type.
static int opt_parse(FitOptions *o, const OptField *k, const char *v) {
    char *p = (char *)o + k->offset, *end = NULL;
    errno = 0;
    switch (k->type) {
    case OPT_INT: {
        long x = strtol(v, &end, 10);
        if (x < INT_MIN || x > INT_MAX) return 1;
        *(int *)p = (int)x;
        break;
    }
    case OPT_LONG: *(long *)p = strtol(v, &end, 10); break;
    case OPT_FLOAT: *(float *)p = strtof(v, &end); break;
    case OPT_DOUBLE: *(double *)p = strtod(v, &end); break;
    case OPT_U64: *(uint64_t *)p = strtoull(v, &end, 10); break;
    case OPT_EMBED:
        if (strlen(v) >= sizeof(o->cfg.embed)) return 1;
        snprintf(p, sizeof(o->cfg.embed), "%s", v);
        return 0;
    case OPT_DATA:
        if (*v == '\0' || strlen(v) >= sizeof(o->data_buf)) return 1;
        snprintf(o->data_buf, sizeof(o->data_buf), "%s", v);
        o->data_dir = o->data_buf;
        return 0;
    }
    return *v == '\0' || *end != '\0' || errno != 0;
}

static const char *kind_names[] = {"", "fit", "demo", "compare"};
const char *run_kind_name(int kind) { return kind_names[kind]; }

// Written once, before anything else of the run: from then on the directory is a run.
static int write_run_txt(const FitOptions *o, char *err) {
    char path[PATH_CAP];
    path_join(path, o->out_dir, "run.txt");
    FILE *f = replace_begin(path, err);
    if (!f) return 1;
    fprintf(f, "made_by=%s\n", o->made_by ? o->made_by : "fit");
    for (int i = 0; i < NOPT; i++) {
        fprintf(f, "%s=", OPT_FIELDS[i].key);
        opt_print(f, o, &OPT_FIELDS[i]);
        fputc('\n', f);
    }
    return replace_commit(f, path, err);
}

// Reads run.txt into *o (over the defaults) and, if kind is not NULL, who made it.
static int read_run_txt(FitOptions *o, int *kind, const char *dir, char *err) {
    char path[PATH_CAP];
    path_join(path, dir, "run.txt");
    Lines l;
    if (lines_read(&l, path, err)) return 1;
    fit_defaults(o);
    int rc = 0, who = RUN_FIT;
    for (size_t i = 0; i < l.n && !rc; i++) {
        char *eq = strchr(l.line[i], '=');
        if (l.len[i] == 0) continue;
        if (!eq) { rc = 1; break; }
        *eq = '\0';
        const char *key = l.line[i], *value = eq + 1;
        if (!strcmp(key, "made_by")) {
            who = -1;
            for (int k = RUN_FIT; k <= RUN_COMPARE; k++)
                if (!strcmp(value, kind_names[k])) who = k;
            rc = who < 0;
            continue;
        }
        int k = 0;
        while (k < NOPT && strcmp(key, OPT_FIELDS[k].key)) k++;
        rc = k == NOPT || opt_parse(o, &OPT_FIELDS[k], value);
    }
    if (rc) errorf(err, "%s: line '%.60s' is not an option of a run; the file is corrupt or "
                   "from another version: start over with --force", path, l.line[0]);
    lines_free(&l);
    if (kind) *kind = who;
    return rc;
}

int fit_options_load(FitOptions *o, const char *run_dir, char *err) {
    char path[PATH_CAP];
    path_join(path, run_dir, "run.txt");
    if (!file_exists(path)) {
        errorf(err, "%s holds no run to resume (no run.txt); train one with "
               "`train fit --out %s`", run_dir, run_dir);
        return 1;
    }
    if (read_run_txt(o, NULL, run_dir, err)) return 1;
    o->threads = 0;   // this machine's cores, unless --threads is given again
    o->out_dir = run_dir;
    o->resume = 1;
    return 0;
}

int run_dir_kind(const char *dir) {
    char path[PATH_CAP];
    if (!is_directory(dir)) return RUN_NONE;
    path_join(path, dir, "run.txt");
    if (file_exists(path)) {
        FitOptions o;
        char err[KF_ERRLEN];
        int kind;
        // an unreadable run.txt is still a run, and nobody's to replace but by --force
        return read_run_txt(&o, &kind, dir, err) ? RUN_FIT : kind;
    }
    const char *marks[] = {"log.csv", "model.safetensors", "optimizer.safetensors"};
    for (int i = 0; i < 3; i++) {
        path_join(path, dir, marks[i]);
        if (file_exists(path)) return RUN_FIT;
    }
    return RUN_NONE;
}

// --resume: the flags that would change the run must be those of run.txt. Names them all.
static int options_unchanged(const FitOptions *saved, const FitOptions *o, char *err) {
    char names[KF_ERRLEN] = "";
    size_t n = 0;
    for (int i = 0; i < NOPT; i++) {
        const OptField *k = &OPT_FIELDS[i];
        if (!k->fixed) continue;
        const char *a = (const char *)saved + k->offset, *b = (const char *)o + k->offset;
        int same;
        switch (k->type) {
        case OPT_INT: same = *(const int *)a == *(const int *)b; break;
        case OPT_LONG: same = *(const long *)a == *(const long *)b; break;
        case OPT_FLOAT: same = *(const float *)a == *(const float *)b; break;
        case OPT_DOUBLE: same = *(const double *)a == *(const double *)b; break;
        case OPT_U64: same = *(const uint64_t *)a == *(const uint64_t *)b; break;
        case OPT_EMBED: same = !strcmp(a, b); break;
        default: same = !strcmp(*(const char *const *)a, *(const char *const *)b); break;
        }
        if (!same && !strstr(names, k->flag) && n + strlen(k->flag) + 3 < 200)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", k->flag);
    }
    if (n == 0) return 0;
    errorf(err, "--resume %s: %s would change the run (see %s/run.txt); resume without "
           "them, or start a new run with another --out", o->out_dir, names, o->out_dir);
    return 1;
}

// ----------------------------------------------------------------------------
// the state of a run between two steps: what optimizer.safetensors holds besides the
// weights and AdamW's moments, so that a resumed run goes on bit for bit

#define RECENT 20   // final_train_loss is the mean of the last RECENT steps

// The checkpoints that --keep-checkpoints keeps: a ring of their steps, oldest first.
typedef struct {
    long *step;   // (keep) the steps kept, ring[saved % keep] is the oldest
    int keep;     // how many to keep (0: none)
    long saved;   // how many were saved so far
} KeptCheckpoints;

typedef struct {
    long step;            // steps taken (the last one included)
    long updates;         // AdamW steps taken: steps less the skipped ones
    long batches, tokens; // drawn so far
    long skipped;         // steps skipped for a non-finite loss or gradient norm
    long bad_in_a_row;    // of them, in a row up to this step
    long epoch, pos;      // the Batcher's position (batcher_position)
    uint64_t dropout_step;
    double elapsed;       // seconds of the run so far: the schedule of --minutes
    double train_time;    // of them in steps (for tokens/s)
    double warm_end;      // Schedule.warm_end
    double best_val, first_loss;
    double recent[RECENT];
    KeptCheckpoints kept;
} TrainState;


// Writes RUNDIR/optimizer.safetensors: the weights, m and v, and the state as metadata.
static int save_optimizer(const Model *m, const TrainState *s, const char *dir, char *err) {
    int nt = m->ntensors;
    StTensor *t = malloc(3 * (size_t)nt * sizeof *t);
    char (*names)[96] = malloc(2 * (size_t)nt * sizeof *names);
    char *ring = malloc(24 * ((size_t)s->kept.keep + 1));
    char *recent = malloc(26 * RECENT);
    int rc = 1;
    if (!t || !names || !ring || !recent) { errorf(err, "out of memory saving the optimizer"); goto done; }
    for (int i = 0; i < nt; i++) {
        const TensorInfo *ti = &m->tensors[i];
        for (int j = 0; j < 3; j++) {
            StTensor *x = &t[j * nt + i];
            *x = (StTensor){ .ndim = ti->ndim };
            memcpy(x->shape, ti->shape, sizeof(x->shape));
            const real *base = j == 0 ? m->param_mem : j == 1 ? m->adam_m : m->adam_v;
            x->data = base + ti->offset;
            if (j == 0) { x->name = ti->name; continue; }
            snprintf(names[(j - 1) * nt + i], sizeof names[0], "%s.%s",
                     j == 1 ? "adam_m" : "adam_v", ti->name);
            x->name = names[(j - 1) * nt + i];
        }
    }
    size_t k = 0;
    ring[0] = '\0';
    for (int i = 0; i < s->kept.keep; i++)
        k += (size_t)sprintf(ring + k, "%s%ld", i ? "," : "", s->kept.step[i]);
    k = 0;
    for (int i = 0; i < RECENT; i++)
        k += (size_t)sprintf(recent + k, "%s%.17g", i ? "," : "", s->recent[i]);
    Meta mt = {.n = 0};
    meta_put(&mt, "format", "kronformer-optimizer");
    meta_put(&mt, "step", "%ld", s->step);
    meta_put(&mt, "updates", "%ld", s->updates);
    meta_put(&mt, "batches", "%ld", s->batches);
    meta_put(&mt, "tokens", "%ld", s->tokens);
    meta_put(&mt, "skipped", "%ld", s->skipped);
    meta_put(&mt, "bad_in_a_row", "%ld", s->bad_in_a_row);
    meta_put(&mt, "epoch", "%ld", s->epoch);
    meta_put(&mt, "pos", "%ld", s->pos);
    meta_put(&mt, "dropout_step", "%llu", (unsigned long long)s->dropout_step);
    meta_put(&mt, "elapsed", "%.17g", s->elapsed);
    meta_put(&mt, "train_time", "%.17g", s->train_time);
    meta_put(&mt, "warm_end", "%.17g", s->warm_end);
    meta_put(&mt, "best_val", "%.17g", s->best_val);
    meta_put(&mt, "first_loss", "%.17g", s->first_loss);
    meta_put(&mt, "kept_saved", "%ld", s->kept.saved);
    meta_ref(&mt, "kept_ring", ring);
    meta_ref(&mt, "recent", recent);
    char path[PATH_CAP];
    path_join(path, dir, "optimizer.safetensors");
    rc = st_save(path, t, 3 * nt, mt.kv, mt.n, err);
done:
    free(t); free(names); free(ring); free(recent);
    return rc;
}

// Numbers of the state's metadata: a whole long in [0, max], or a double (nan allowed).
static int state_long(const StFile *f, const char *key, long max, long *out) {
    const char *s = st_meta(f, key);
    char *end;
    if (!s || *s < '0' || *s > '9') return 1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno || v > max) return 1;
    *out = v;
    return 0;
}
static int state_double(const char *s, double *out) {
    char *end;
    if (!s || *s == '\0') return 1;
    *out = strtod(s, &end);
    return *end != '\0' && *end != ',';
}

// Reads RUNDIR/optimizer.safetensors into m (weights, m, v; built with the run's config)
// and s (kept.step allocated with kept.keep entries by the caller).
static int load_optimizer(Model *m, TrainState *s, const char *dir, char *err) {
    char path[PATH_CAP];
    path_join(path, dir, "optimizer.safetensors");
    StFile *f = st_open(path, err);
    if (!f) return 1;
    const char *format = st_meta(f, "format");
    long dstep = 0;
    const long big = 4000000000000000000L;
    int bad = !format || strcmp(format, "kronformer-optimizer") ||
              state_long(f, "step", big, &s->step) || state_long(f, "updates", big, &s->updates) ||
              state_long(f, "batches", big, &s->batches) || state_long(f, "tokens", big, &s->tokens) ||
              state_long(f, "skipped", big, &s->skipped) ||
              state_long(f, "bad_in_a_row", big, &s->bad_in_a_row) ||
              state_long(f, "epoch", big, &s->epoch) || state_long(f, "pos", big, &s->pos) ||
              state_long(f, "kept_saved", big, &s->kept.saved) ||
              state_long(f, "dropout_step", big, &dstep) ||
              state_double(st_meta(f, "elapsed"), &s->elapsed) ||
              state_double(st_meta(f, "train_time"), &s->train_time) ||
              state_double(st_meta(f, "warm_end"), &s->warm_end) ||
              state_double(st_meta(f, "best_val"), &s->best_val) ||
              state_double(st_meta(f, "first_loss"), &s->first_loss);
    s->dropout_step = (uint64_t)dstep;
    // the lists: RECENT losses, kept.keep steps
    const char *p = st_meta(f, "recent");
    for (int i = 0; i < RECENT && !bad; i++) {
        bad = state_double(p, &s->recent[i]);
        p = p ? strchr(p, ',') : NULL;
        if (p) p++;
        else bad |= i + 1 < RECENT;
    }
    p = st_meta(f, "kept_ring");
    for (int i = 0; i < s->kept.keep && !bad; i++) {
        char *end;
        s->kept.step[i] = strtol(p, &end, 10);
        bad = end == p || (*end != ',' && *end != '\0') || (*end == '\0' && i + 1 < s->kept.keep);
        p = end + (*end == ',');
    }
    if (bad) {
        errorf(err, "%s: its state (metadata) is missing or invalid; the file is corrupt: "
               "start over with --force", path);
        st_close(f);
        return 1;
    }
    if (!m->adam_m) m->adam_m = calloc(m->num_params, sizeof(real));
    if (!m->adam_v) m->adam_v = calloc(m->num_params, sizeof(real));
    if (!m->adam_m || !m->adam_v) {
        errorf(err, "out of memory for AdamW's state");
        st_close(f);
        return 1;
    }
    for (int i = 0; i < m->ntensors; i++) {
        const TensorInfo *ti = &m->tensors[i];
        char name[96];
        real *into[3] = {m->param_mem, m->adam_m, m->adam_v};
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "%s%s", j == 0 ? "" : j == 1 ? "adam_m." : "adam_v.",
                     ti->name);
            if (st_read(f, name, into[j] + ti->offset, ti->ndim, ti->shape, err)) {
                st_close(f);
                return 1;
            }
        }
    }
    st_close(f);
    return 0;
}

// ----------------------------------------------------------------------------
// setup: the data and the config; everything a run can refuse

static int longest_sequence(const Dataset *d) {
    const TokenFile *f[4] = {&d->train_src, &d->train_tgt, &d->valid_src, &d->valid_tgt};
    int longest = 0;
    for (int i = 0; i < 4; i++) if (f[i]->max_len > longest) longest = f[i]->max_len;
    return longest;
}

// Physical memory of the machine in bytes, 0 if unknown.
static double physical_memory(void) {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0) return (double)pages * (double)size;
#endif
    return 0;
}

// Refuses a run that cannot fit in memory, before its buffers are touched (model_build
// allocates them, but the pages come only when written): the parameters four times
// (weights, gradients, AdamW's two moments), and the activations of the largest batch,
// estimated from model.c's buffers: per token and layer the C- and F-wide ones, the
// attention rows (up to the longest sequence L); and the logits of one chunk of the
// loss (at most 256 rows, whatever the batch).
static int memory_check(const Model *m, const Dataset *d, int batch_tokens, char *err) {
    const Config *c = &m->cfg;
    double L = longest_sequence(d) + 1, seqs = (double)d->train_tgt.n;
    double n = batch_tokens < seqs * L ? batch_tokens : seqs * L;   // tokens per batch
    double per_token = (c->Le + c->Ld + 1) * (16.0 * c->C + 2.0 * c->F) +
                       (c->Le + 2.0 * c->Ld + 1) * c->NH * L;
    double tables = (c->tie && m->emb.kind != EMBED_DENSE ? 2.0 * c->V * c->C : 0) +
                    256.0 * c->V;
    double params = 4.0 * (double)m->num_params * sizeof(real);
    double acts = (n * per_token + tables) * sizeof(real), have = physical_memory();
    if (have > 0 && params + acts > have) {
        errorf(err, "this run needs about %.1f GB (parameters, gradients and AdamW state "
               "%.1f GB, activations %.1f GB), more than the %.1f GB of memory here; choose "
               "a smaller --d-model, --ffn, --layers or --batch-tokens", (params + acts) / 1e9,
               params / 1e9, acts / 1e9, have / 1e9);
        return 1;
    }
    return 0;
}

// Everything a run can refuse, checked before anything is written: the options, the
// data, the config, the model's memory, the training and validation batches. On success
// d, cfg, m and *bt (the training batches) are the caller's to free.
// order=freq: the embedding's slots from how often each token enters it in the training
// set: the tokens of both sides, <eos> once per source and <bos> once per target.
static int set_token_counts(Model *m, const Dataset *d, int lm) {
    double *counts = calloc((size_t)m->cfg.V, sizeof(double));
    if (!counts) return 1;
    const TokenFile *side[2] = {lm ? NULL : &d->train_src, &d->train_tgt};
    for (int k = 0; k < 2; k++) {
        if (!side[k]) continue;
        for (size_t i = 0; i < side[k]->ntok; i++) counts[side[k]->tok[i]]++;
        counts[k == 0 ? TOK_EOS : TOK_BOS] += (double)side[k]->n;
    }
    int rc = model_set_token_counts(m, counts);
    free(counts);
    return rc;
}

// The batches of the training set (shuffle) or of the validation set: lm data in random
// windows of the stream (validation: consecutive windows), or sequences of the data.
static Batcher *data_batches(const FitOptions *o, const Dataset *d, int maxT, int shuffle,
                             char *err) {
    const TokenFile *tgt = shuffle ? &d->train_tgt : &d->valid_tgt;
    if (d->arch == ARCH_LM && !o->lm_chunks)
        return batcher_new_windows(tgt, maxT - 1, o->batch_tokens, o->seed, shuffle, err);
    const TokenFile *src = d->arch == ARCH_LM ? NULL : shuffle ? &d->train_src : &d->valid_src;
    return batcher_new(src, tgt, o->batch_tokens, shuffle ? o->seed : 0, shuffle, err);
}

static int fit_setup(const FitOptions *o, Dataset *d, Config *cfg, Model *m, Batcher **bt,
                     char *err) {
    #define BAD(...) do { errorf(err, __VA_ARGS__); goto fail; } while (0)
    memset(d, 0, sizeof(*d));
    memset(m, 0, sizeof(*m));
    *bt = NULL;
    if (o->minutes <= 0 && o->steps < 1) BAD("--steps %ld must be at least 1", o->steps);
    if (!(o->lr > 0 && o->lr < 10)) BAD("--lr %g must be in (0, 10)", o->lr);
    if (o->warmup < 0) BAD("--warmup %d must be >= 0", o->warmup);
    if (!(o->weight_decay >= 0)) BAD("--weight-decay %g must be >= 0", o->weight_decay);
    if (!(o->clip >= 0)) BAD("--clip %g must be >= 0 (0 turns clipping off)", o->clip);
    if (!(o->beta1 >= 0 && o->beta1 < 1)) BAD("--beta1 %g must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1)) BAD("--beta2 %g must be in [0, 1)", o->beta2);
    if (!(o->eps > 0)) BAD("--eps %g must be > 0", o->eps);
    if (!(o->embed_std >= 0)) BAD("--embed-std %g must be positive", o->embed_std);
    if (o->batch_tokens < 1) BAD("--batch-tokens %d must be at least 1", o->batch_tokens);
    if (o->eval_every < 0) BAD("--eval-every %d must be >= 0", o->eval_every);
    if (o->keep_checkpoints < 0 || o->keep_checkpoints > 1000)
        BAD("--keep-checkpoints %d must be in [0, 1000]", o->keep_checkpoints);
    // the run directory: a new one, or a run to resume, or (--force) one to replace
    if (file_exists(o->out_dir) && !is_directory(o->out_dir))
        BAD("--out %s is a file; give a directory for the run", o->out_dir);
    int kind = run_dir_kind(o->out_dir);
    if (o->resume && o->force) BAD("give --resume or --force, not both");
    if (o->resume && kind == RUN_NONE)
        BAD("%s holds no run to resume; start one with --out %s", o->out_dir, o->out_dir);
    if (o->resume && dist_size() > 1)
        BAD("--resume under mpirun is not supported; resume %s with one process (the "
            "checkpoint is the same) or start over with --force", o->out_dir);
    if (!o->resume && !o->force && kind != RUN_NONE)
        BAD("%s holds an earlier run; give --resume %s to continue it, or --force to "
            "start over (replacing it)", o->out_dir, o->out_dir);
    if (o->resume) {
        FitOptions saved;
        if (fit_options_load(&saved, o->out_dir, err) || options_unchanged(&saved, o, err))
            goto fail;
    }
    if (o->keep_checkpoints > 0 && !o->resume && !o->force) {
        char kept[PATH_CAP];
        path_join(kept, o->out_dir, "checkpoints");
        if (file_exists(kept))
            BAD("%s holds the checkpoints of an earlier run; move it away or give another --out",
                kept);
    }
    if (o->max_len < 0) BAD("--max-len %d must be positive", o->max_len);
    if (o->bleu_sentences < 0) BAD("--bleu-sentences %d must be >= 0 (0: no BLEU)", o->bleu_sentences);
    if (o->bleu_beam < 1 || o->bleu_beam > 1000) BAD("--bleu-beam %d must be in [1, 1000]", o->bleu_beam);
    if (o->stop_at < 0) BAD("--stop-at %ld must be >= 0 (0: never)", o->stop_at);
    if (dataset_open(d, o->data_dir, err)) return 1;
    *cfg = o->cfg;
    if (o->arch_set && cfg->arch != d->arch)
        BAD("--arch %s, but %s holds %s data; prepare the data for that architecture or "
            "drop --arch", cfg->arch == ARCH_LM ? "lm" : "seq2seq", o->data_dir,
            d->arch == ARCH_LM ? "lm" : "seq2seq");
    cfg->arch = d->arch;
    cfg->V = d->vocab_size;
    int max_len = o->max_len ? o->max_len : d->max_len;
    if (max_len < longest_sequence(d))
        BAD("--max-len %d is shorter than the longest sequence in %s (%d tokens); use at "
            "least %d", max_len, o->data_dir, longest_sequence(d), longest_sequence(d));
    cfg->maxT = max_len + 1;   // room for <eos> after the source, <bos> before the target
    if (cfg->arch == ARCH_LM) {
        cfg->Le = 0;
        if (!o->label_smoothing_set) cfg->label_smoothing = 0;
    }
    if (config_check(cfg, err) || model_build(m, cfg, err) ||
        memory_check(m, d, o->batch_tokens, err))
        goto fail;
    const int lm = cfg->arch == ARCH_LM;
    if (m->emb.order == EMBED_ORDER_FREQ && set_token_counts(m, d, lm))
        BAD("out of memory counting the tokens of %s", o->data_dir);
    char why[KF_ERRLEN];
    Batcher *vbt = data_batches(o, d, cfg->maxT, 0, why);
    if (!vbt) BAD("the validation set of %s: %s", o->data_dir, why);
    batcher_free(vbt);
    if (!(*bt = data_batches(o, d, cfg->maxT, 1, why)))
        BAD("the training set of %s: %s", o->data_dir, why);
    return 0;
fail:
    model_free(m);
    dataset_close(d);
    return 1;
    #undef BAD
}

int fit_check(const FitOptions *o, char *err) {
    Dataset d;
    Config cfg;
    Model m;
    Batcher *bt;
    if (fit_setup(o, &d, &cfg, &m, &bt, err)) return 1;
    batcher_free(bt);
    model_free(&m);
    dataset_close(&d);
    return 0;
}

void fit_defaults(FitOptions *o) {
    memset(o, 0, sizeof(*o));
    config_default(&o->cfg);
    o->steps = 1000;
    o->batch_tokens = 4096;
    o->lr = 1e-3f;
    o->warmup = 200;
    o->weight_decay = 0.01f;
    o->clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.98f;
    o->eps = 1e-9f;
    o->seed = 1;
    o->eval_every = 100;
    o->eval_batches = 200;
    o->bleu_sentences = 2000;
    o->bleu_beam = 5;
    o->overlap = 1;
}

// ----------------------------------------------------------------------------
// learning rate and validation

// (see run.h) warm_end remembers where warmup ended.
float schedule_lr(Schedule *s, long step, double p) {
    if (s->warm_end < 0) {
        double w = s->warmup > 0 ? (double)step / s->warmup : 1.0;
        if (p / 0.1 > w) w = p / 0.1;
        if (w < 1.0) return (float)(s->lr * w);
        s->warm_end = p;
    }
    double t = s->warm_end < 1.0 ? (p - s->warm_end) / (1.0 - s->warm_end) : 1.0;
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    return (float)(s->lr * (0.1 + 0.9 * 0.5 * (1.0 + cos(3.14159265358979323846 * t))));
}

// Mean cross-entropy per target token over the first max_batches batches of the
// validation set, in file order (lm windows: consecutive windows, each token a target
// once), without dropout or label smoothing. Each rank takes its shard of every batch
// (dist.h).
static double evaluate(Model *m, const FitOptions *o, const Dataset *d, int max_batches) {
    char err[KF_ERRLEN];   // fit_setup has built these batches once already
    Batcher *bt = data_batches(o, d, m->cfg.maxT, 0, err);
    if (!bt) return NAN;
    double sum[2] = {0, 0};   // loss * targets, targets
    Batch b, shard;
    m->training = 0;
    for (int i = 0; i < max_batches && batcher_next(bt, &b); i++) {
        dist_shard(&b, &shard);
        real loss = model_forward(m, shard.src, shard.tgt_in, shard.tgt_out, shard.B,
                                  shard.S, shard.T);
        sum[0] += (double)loss * m->ntok;
        sum[1] += m->ntok;
    }
    batcher_free(bt);
    dist_sum(sum, 2);
    return sum[1] > 0 ? sum[0] / sum[1] : NAN;
}

// ----------------------------------------------------------------------------
// reporting: progress line, summary.json

// "1h02m", "3m05s", "12s"
static void format_duration(char *out, size_t cap, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, cap, "%lds", t);
}

// A progress line on stderr: rewritten in place (\r) on a terminal, else a plain line
// every 5 seconds, so that logs stay readable.
typedef struct {
    int tty;
    double last;   // when it was last printed
} Progress;

static void progress_clear(const Progress *p) {
    if (p->tty) fprintf(stderr, "\r%79s\r", "");
}

static void progress_show(Progress *p, long step, long steps, double loss, double tok_s,
                          double eta, double now) {
    if (now - p->last < (p->tty ? 0.2 : 5.0)) return;
    p->last = now;
    char e[32], of[32] = "";
    format_duration(e, sizeof(e), eta);
    if (steps > 0) snprintf(of, sizeof(of), "/%ld", steps);
    fprintf(stderr, "%sstep %ld%s | loss %.4f | %.0f tok/s | eta %s%s", p->tty ? "\r" : "",
            step, of, loss, tok_s, e, p->tty ? "   " : "\n");
    fflush(stderr);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

// A number, or null for NaN (JSON has no NaN).
static void json_number(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6g", x);
    else fprintf(f, "null");
}

static int write_summary(const FitOptions *o, const Config *c, const FitResult *r,
                         char *err) {
    char path[PATH_CAP];
    path_join(path, o->out_dir, "summary.json");
    FILE *f = replace_begin(path, err);
    if (!f) return 1;
    fprintf(f, "{\n  \"config\": {\"arch\": \"%s\", \"V\": %d, \"C\": %d, \"NH\": %d, "
            "\"F\": %d, \"Le\": %d, \"Ld\": %d, \"maxT\": %d, \"tie\": %d, \"embed\": ",
            c->arch == ARCH_LM ? "lm" : "seq2seq", c->V, c->C, c->NH, c->F, c->Le, c->Ld,
            c->maxT, c->tie);
    json_string(f, c->embed);
    fprintf(f, ", \"dropout\": %g, \"label_smoothing\": %g},\n", c->dropout,
            c->label_smoothing);
    fprintf(f, "  \"training\": {\"data\": ");
    json_string(f, o->data_dir);
    fprintf(f, ", \"steps\": %ld, \"minutes\": %g, \"batch_tokens\": %d, \"lr\": %g, "
            "\"warmup\": %d, \"weight_decay\": %g, \"clip\": %g, \"beta1\": %g, "
            "\"beta2\": %g, \"eps\": %g, \"seed\": %llu, \"eval_batches\": %d, "
            "\"threads\": %d},\n", o->minutes > 0 ? 0 : o->steps, o->minutes,
            o->batch_tokens, o->lr, o->warmup, o->weight_decay, o->clip, o->beta1, o->beta2,
            o->eps, (unsigned long long)o->seed, o->eval_batches, o->threads);
    fprintf(f, "  \"params\": {\"total\": %zu, \"embedding\": %zu, \"dense_embedding\": %zu,"
            " \"embedding_compression\": %.4g},\n", r->params, r->embed_params,
            (size_t)c->V * (size_t)c->C, r->compression);
    fprintf(f, "  \"steps\": %ld,\n  \"first_train_loss\": ", r->steps);
    json_number(f, r->first_train_loss);
    fprintf(f, ",\n  \"final_train_loss\": ");
    json_number(f, r->final_train_loss);
    fprintf(f, ",\n  \"best_val_loss\": ");
    json_number(f, r->best_val_loss);
    fprintf(f, ",\n  \"val_perplexity\": ");
    json_number(f, r->val_ppl);
    fprintf(f, ",\n  \"val_bleu\": {\"sentences\": %d, \"greedy\": ",
            r->val_bleu_sentences);
    json_number(f, r->val_bleu_greedy);
    fprintf(f, ", \"beam\": ");
    json_number(f, r->val_bleu_beam);
    fprintf(f, ", \"beam_size\": %d, \"chrf_beam\": ", o->bleu_beam);
    json_number(f, r->val_chrf_beam);
    fputc('}', f);
    fprintf(f, ",\n  \"tokens_per_s\": %.1f,\n  \"seconds\": %.2f,\n  \"peak_rss_mb\": %.1f,\n"
            "  \"interrupted\": %s\n}\n", r->tokens_per_s, r->seconds, r->peak_rss_mb,
            r->interrupted ? "true" : "false");
    return replace_commit(f, path, err);
}

const char *format_count(char *out, size_t x) {
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%zu", x), k = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
    return out;
}

// Translates the validation set greedily and by beam search and scores both, so that a
// run (and `compare`) reads in the metric of translators. Prints one line.
static int validation_bleu(Model *m, const Dataset *d, const FitOptions *o, FitResult *r,
                           char *err) {
    DecodeOptions dec;
    decode_defaults(&dec);
    EvalResult greedy, beam;
    dec.beam = 1;
    if (evaluate_valid(m, d, o->bleu_sentences, &dec, &greedy, err)) return 1;
    dec.beam = o->bleu_beam;
    if (evaluate_valid(m, d, o->bleu_sentences, &dec, &beam, err)) return 1;
    r->val_bleu_greedy = greedy.bleu.bleu;
    r->val_bleu_beam = beam.bleu.bleu;
    r->val_chrf_beam = beam.chrf;
    r->val_bleu_sentences = beam.sentences;
    printf("fit: val BLEU %.2f greedy, %.2f beam %d (chrF2 %.2f), %d sentences in %.1f + %.1f s\n",
           greedy.bleu.bleu, beam.bleu.bleu, o->bleu_beam, beam.chrf, beam.sentences,
           greedy.seconds, beam.seconds);
    return 0;
}

// ----------------------------------------------------------------------------
// the training loop

static void kept_dir(char *out, const char *run_dir, long step) {
    char name[64];
    snprintf(name, sizeof name, "checkpoints/step-%06ld", step);
    path_join(out, run_dir, name);
}

// Removes the kept checkpoint of a step: its files, then its directory.
static void remove_kept(const char *run_dir, long step) {
    char dir[PATH_CAP], path[PATH_CAP];
    const char *files[] = {"model.safetensors", "tokenizer.bin", "model.safetensors.tmp",
                           "tokenizer.bin.tmp"};
    kept_dir(dir, run_dir, step);
    for (int i = 0; i < 4; i++) {
        path_join(path, dir, files[i]);
        remove(path);
    }
    remove(dir);
}

// --force: the kept checkpoints of the run replaced go (those of step-NNNNNN names).
static void remove_all_kept(const char *run_dir) {
    char dir[PATH_CAP];
    path_join(dir, run_dir, "checkpoints");
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "step-", 5)) continue;
        long step = strtol(e->d_name + 5, &end, 10);
        if (*end == '\0' && step >= 0) remove_kept(run_dir, step);
    }
    closedir(d);
    remove(dir);
}

// Saves this step's checkpoint: with --keep-checkpoints N first into a run directory of
// its own, RUNDIR/checkpoints/step-NNNNNN/ (removing the one saved N checkpoints before
// it), then RUNDIR/optimizer.safetensors (the state to resume from, with the ring),
// then RUNDIR/model.safetensors. A kill between two of these files leaves an older
// optimizer state, which resume goes on from (or a newer one than the model, which
// resume repairs): every file is whole, and the run resumes either way.
static int save_step(const Model *m, const char *run_dir, const Tokenizer *tok,
                     TrainState *s, char *err) {
    KeptCheckpoints *k = &s->kept;
    if (k->keep > 0) {
        char dir[PATH_CAP];
        kept_dir(dir, run_dir, s->step);
        if (make_dirs(dir, err) || save_checkpoint(m, dir, tok, s->step, err)) return 1;
        long *slot = &k->step[k->saved++ % k->keep];
        if (k->saved > k->keep && *slot != s->step) remove_kept(run_dir, *slot);   // the oldest
        *slot = s->step;
    }
    return save_optimizer(m, s, run_dir, err) || save_checkpoint(m, run_dir, tok, s->step, err);
}

static const char *LOG_HEADER =
    "step,epoch,tokens,lr,train_loss,val_loss,grad_norm,tokens_per_s,seconds,skipped\n";

// log.csv for the run: a new one (the header), or on resume the old one cut after the
// checkpoint's step, so that it goes on as if never interrupted. Opened for appending.
static FILE *open_log(const char *dir, int resume, long step, char *err) {
    char path[PATH_CAP];
    path_join(path, dir, "log.csv");
    Lines l = {0};
    if (resume && file_exists(path) && lines_read(&l, path, err)) return NULL;
    FILE *f = replace_begin(path, err);
    if (!f) { lines_free(&l); return NULL; }
    fputs(LOG_HEADER, f);
    for (size_t i = 1; i < l.n; i++) {
        char *end;
        long at = strtol(l.line[i], &end, 10);
        if (end == l.line[i] || *end != ',' || at > step) break;
        fprintf(f, "%s\n", l.line[i]);
    }
    lines_free(&l);
    if (replace_commit(f, path, err)) return NULL;
    return append_open(path, err);
}

// Flushed to the disk before each checkpoint, so that the log always reaches the step
// of the checkpoint it is resumed from.
static int sync_log(FILE *log, const char *dir, char *err) {
    if (flush_to_disk(log)) {
        errorf(err, "cannot write %s/log.csv (%s); free disk space, check the "
               "permissions and `ulimit -f`, then resume with --resume %s", dir,
               strerror(errno), dir);
        return 1;
    }
    return 0;
}

// Steps whose loss is made NaN, for the tests of non-finite steps only: the environment
// variable KF_TEST_NAN_STEPS="FIRST-LAST" (unset: none).
static void nan_steps(long *first, long *last) {
    const char *s = getenv("KF_TEST_NAN_STEPS");
    *first = 1; *last = 0;
    if (s && sscanf(s, "%ld-%ld", first, last) != 2) { *first = 1; *last = 0; }
}

#define MAX_BAD_IN_A_ROW 10   // non-finite steps in a row that stop the run
// An lm's embedding starts at std 0.02 (GPT-2's), not 1/sqrt(C): with the tied table the
// input row sqrt(C) e_x reaches the output as logit_v = h . e_v with h ~ LN(e_x), so
// rows of unit norm made the first model give its input token a logit of about
// sqrt(C) (loss 9.5 at C = 128); rows of norm 0.02 sqrt(C) start near uniform (ln V).
#define LM_EMBED_STD 0.02

int fit_run(const FitOptions *o, FitResult *r, char *err) {
    Dataset d;
    Config cfg;
    Model m;
    Batcher *bt;
    memset(r, 0, sizeof(*r));
    r->best_val_loss = r->val_ppl = NAN;
    r->val_bleu_greedy = r->val_bleu_beam = r->val_chrf_beam = NAN;
    TrainState s = { .best_val = NAN, .warm_end = -1.0, .kept.keep = o->keep_checkpoints };
    FILE *log = NULL;
    int rc = 1, rank0 = dist_rank() == 0;
    // a rank that fails stops them all (dist.h)
    if (dist_any_failed(fit_setup(o, &d, &cfg, &m, &bt, err), err)) goto done;

    // every input is checked: from here on the run directory is written (run.txt, log.csv
    // now, the checkpoint at each validation), by rank 0 alone; the other ranks write
    // their log to /dev/null
    s.kept.step = calloc((size_t)o->keep_checkpoints + 1, sizeof(long));
    if (!s.kept.step) errorf(err, "out of memory");
    int failed = !s.kept.step;
    // lm: embedding entries of std LM_EMBED_STD (see there), unless --embed-std
    if (o->embed_std > 0 || cfg.arch == ARCH_LM)
        m.emb.init_std = o->embed_std > 0 ? o->embed_std : LM_EMBED_STD;
    model_init(&m, o->seed);
    m.dropout_seed = o->seed;
    char path[PATH_CAP];
    path_join(path, o->out_dir, "optimizer.safetensors");
    if (!failed && o->resume && file_exists(path)) {
        // the checkpoint to go on from; model.safetensors is rewritten if a save was
        // killed between optimizer.safetensors and it
        long saved_at = -1;
        Model pub;
        Tokenizer *ptok = NULL;
        failed = load_optimizer(&m, &s, o->out_dir, err);
        if (!failed && batcher_seek(bt, s.epoch, s.pos)) {
            errorf(err, "%s: its data position (epoch %ld, batch %ld) is outside the data of "
                   "%s; resume with the run's data, or start over with --force", path,
                   s.epoch, s.pos, o->data_dir);
            failed = 1;
        }
        if (!failed && (o->minutes > 0 ? s.elapsed >= o->minutes * 60.0 : s.step >= o->steps)) {
            errorf(err, "%s is complete (step %ld, its whole budget); nothing to resume: "
                   "start a longer run with another --out", o->out_dir, s.step);
            failed = 1;
        }
        if (!failed && run_load(&pub, &ptok, &saved_at, o->out_dir, err) == 0) {
            model_free(&pub);
            tokenizer_free(ptok);
        }
        if (!failed && saved_at != s.step) {
            printf("fit: %s/model.safetensors is of step %ld, the optimizer state of step %ld "
                   "(a save was interrupted): saving the weights of step %ld\n", o->out_dir,
                   saved_at, s.step, s.step);
            failed = save_checkpoint(&m, o->out_dir, d.tok, s.step, err);
        }
        m.dropout_step = s.dropout_step;
        if (!failed) printf("fit: resuming %s/ from step %ld\n", o->out_dir, s.step);
    } else if (!failed && rank0) {
        if (o->force) {   // the run replaced must not be resumed into this one
            remove(path);
            remove_all_kept(o->out_dir);
        }
        failed = make_dirs(o->out_dir, err) || write_run_txt(o, err);
    }
    if (!failed && !(log = rank0 ? open_log(o->out_dir, o->resume, s.step, err)
                                 : fopen("/dev/null", "w"))) {
        if (!rank0) errorf(err, "cannot open /dev/null");
        failed = 1;
    }
    if (dist_any_failed(failed, err)) goto done;
    if (o->overlap) dist_overlap(&m);

    size_t dense = (size_t)cfg.V * (size_t)cfg.C;
    char n1[32], n2[32], n3[32], spec[256];
    embed_spec_string(&m.emb, spec, sizeof(spec));
    r->params = m.num_params;
    r->embed_params = m.num_embed_params;
    r->compression = (double)dense / (double)m.num_embed_params;
    printf("fit: data %s: %s, vocabulary %d, %zu training and %zu validation sequences\n",
           o->data_dir, cfg.arch == ARCH_LM ? "lm" : "seq2seq", cfg.V, d.train_tgt.n,
           d.valid_tgt.n);
    printf("fit: model d_model %d, heads %d, ffn %d, layers %d+%d, max length %d, %s "
           "embedding %s, dropout %g, label smoothing %g\n", cfg.C, cfg.NH, cfg.F, cfg.Le,
           cfg.Ld, cfg.maxT - 1, cfg.tie ? "tied" : "untied", spec, cfg.dropout,
           cfg.label_smoothing);
    printf("fit: parameters %s total, embedding %s (dense V*C %s: compression %.1fx)\n",
           format_count(n1, m.num_params), format_count(n2, m.num_embed_params),
           format_count(n3, dense), r->compression);
    if (o->minutes > 0)
        printf("fit: budget %g minutes, ", o->minutes);
    else
        printf("fit: budget %ld steps, ", o->steps);
    printf("%d tokens per batch, %d batches per epoch, lr %g, warmup %d, writing %s/\n",
           o->batch_tokens, batcher_num_batches(bt), o->lr, o->warmup, o->out_dir);
    fflush(stdout);

    // SIGINT/SIGTERM only ask to stop: the loop finishes its step, saves and stops
    struct sigaction old_handlers[2];
    catch_stop_signals(old_handlers);
    Schedule sched = {o->lr, o->warmup, s.warm_end};
    Progress prog = {rank0 && isatty(fileno(stderr)), 0.0};
    double budget = o->minutes * 60.0;
    double t0 = seconds_now() - s.elapsed, val = NAN;
    int evaluated = 0;   // validated after the last step
    // the fraction of the budget used by the steps so far
    double p = budget > 0 ? s.elapsed / budget : (double)s.step / (double)o->steps;
    int stop = 0;        // a rank was asked to stop (agreed by all ranks after each step)
    long nan_first, nan_last;
    nan_steps(&nan_first, &nan_last);
    for (;;) {
        if (p >= 1.0 || stop) break;
        s.step++;

        // one step: forward, backward (each rank on its shard of the batch), the sum of
        // the ranks' gradients, clip, AdamW
        double ts = seconds_now();
        Batch b, shard;
        if (!batcher_next(bt, &b)) batcher_next(bt, &b);   // a new epoch starts
        m.row0 = dist_shard(&b, &shard);
        m.loss_tokens = b.ntok;
        float lr = schedule_lr(&sched, s.step, p);
        model_zero_grad(&m);
        m.training = 1;
        double loss_sum = model_forward(&m, shard.src, shard.tgt_in, shard.tgt_out, shard.B,
                                        shard.S, shard.T) * (double)m.ntok;
        model_backward(&m);
        dist_sum_grads(&m);
        dist_sum(&loss_sum, 1);
        double loss = loss_sum / b.ntok;   // the mean over the whole batch
        if (s.step >= nan_first && s.step <= nan_last) loss = NAN;
        double norm = model_grad_norm(&m);
        // A non-finite loss or gradient norm (an overflow, a bad batch) would put NaN
        // into every weight through AdamW: the step is skipped, and counted; a run of
        // them stops training, keeping the last good checkpoint.
        if (isfinite(loss) && isfinite(norm)) {
            if (o->clip > 0) model_clip_grads(&m, norm, o->clip);
            model_adamw(&m, lr, o->beta1, o->beta2, o->eps, o->weight_decay,
                        (int)++s.updates);
            s.bad_in_a_row = 0;
        } else {
            s.skipped++;
            s.bad_in_a_row++;
        }
        s.train_time += seconds_since(ts);
        s.batches++;
        s.tokens += b.ntok;
        if (s.bad_in_a_row >= MAX_BAD_IN_A_ROW) {
            progress_clear(&prog);
            errorf(err, "%ld steps in a row up to step %ld had a non-finite loss or gradient "
                   "norm; stopped, the last good checkpoint stays in %s/; lower --lr (now "
                   "%g) or keep --clip on, then start over with --force", s.bad_in_a_row,
                   s.step, o->out_dir, o->lr);
            goto stop;
        }
        if (s.step == 1) s.first_loss = loss;
        s.recent[(s.step - 1) % RECENT] = loss;
        double tok_s = (double)s.tokens / s.train_time;

        // validate and save every eval_every steps, and after the last step
        double elapsed = seconds_since(t0);
        p = budget > 0 ? elapsed / budget : (double)s.step / (double)o->steps;
        stop = dist_agree_stop(&p, stop_requested() || (o->stop_at > 0 && s.step >= o->stop_at));
        int last = p >= 1.0 || stop;
        evaluated = (o->eval_every > 0 && s.step % o->eval_every == 0) || (last && !stop);
        val = NAN;
        if (evaluated) {
            val = evaluate(&m, o, &d, o->eval_batches);
            if (isfinite(val) && !(val >= s.best_val)) s.best_val = val;
            progress_clear(&prog);
            printf("step %6ld | train %.4f | val %.4f (ppl %.2f) | lr %.2e | %.0f tok/s | "
                   "%.0f s\n", s.step, loss, val, exp(val), lr, tok_s, seconds_since(t0));
            fflush(stdout);
        }
        fprintf(log, "%ld,%.4f,%ld,%.6g,%.8f,", s.step, (double)s.batches /
                batcher_num_batches(bt), s.tokens, lr, loss);
        if (evaluated) fprintf(log, "%.8f", val);
        fprintf(log, ",%.6f,%.1f,%.3f,%ld\n", norm, tok_s, seconds_since(t0), s.skipped);
        fflush(log);
        // the checkpoint: after validation, and at the last step (below)
        if (evaluated || last) {
            batcher_position(bt, &s.epoch, &s.pos);
            s.dropout_step = m.dropout_step;
            s.elapsed = elapsed;
            s.warm_end = sched.warm_end;
        }
        // (not amid non-finite steps: the last good checkpoint stays until they end)
        if (evaluated && rank0 && s.bad_in_a_row == 0 &&
            (sync_log(log, o->out_dir, err) || save_step(&m, o->out_dir, d.tok, &s, err))) {
            dist_fail_alone(err);
            goto stop;
        }
        double eta = budget > 0 ? budget - elapsed
                                : elapsed / (double)s.step * (double)(o->steps - s.step);
        if (rank0) progress_show(&prog, s.step, budget > 0 ? 0 : o->steps, loss, tok_s, eta, elapsed);
    }
    progress_clear(&prog);
    long step = s.step;
    if (step == 0) {
        errorf(err, "no step was taken (interrupted or a budget too small); "
                 "give more --steps or --minutes");
        goto stop;
    }
    if (!evaluated && rank0 &&
        (sync_log(log, o->out_dir, err) || save_step(&m, o->out_dir, d.tok, &s, err)))
        goto stop;
    if (rank0 && cfg.arch == ARCH_SEQ2SEQ && o->bleu_sentences > 0 && !stop &&
        validation_bleu(&m, &d, o, r, err))
        goto stop;

    // summary
    int k = step < RECENT ? (int)step : RECENT;
    double sum = 0;
    for (int i = 0; i < k; i++) sum += s.recent[i];
    r->steps = step;
    r->first_train_loss = s.first_loss;
    r->best_val_loss = s.best_val;
    r->final_train_loss = sum / k;
    r->val_ppl = exp(r->best_val_loss);
    r->seconds = seconds_since(t0);
    r->tokens_per_s = (double)s.tokens / s.train_time;
    r->peak_rss_mb = peak_rss_mb();
    r->interrupted = stop;
    if (rank0 && write_summary(o, &cfg, r, err)) goto stop;
    printf("fit: %ld steps in %.1f s, %.0f tokens/s, train loss %.4f -> %.4f, best val "
           "loss %.4f (ppl %.2f), peak memory %.0f MB%s%s\n", step, r->seconds,
           r->tokens_per_s, r->first_train_loss, r->final_train_loss, r->best_val_loss,
           r->val_ppl, r->peak_rss_mb, r->interrupted ? ", interrupted" : "",
           s.skipped ? ", some steps skipped (see log.csv)" : "");
    if (dist_size() > 1)
        printf("fit: %d ranks; the gradient all-reduce of %.1f MB (%s) took %.1f ms per step "
               "(%.0f%% of the training time)\n", dist_size(),
               1e-6 * (double)m.num_params * sizeof(real), o->overlap ? "overlapped" : "after backward",
               1e3 * dist_reduce_seconds() / (double)step, 100 * dist_reduce_seconds() / s.train_time);
    printf("fit: saved %s/model.safetensors%s\n", o->out_dir,
           stop ? "; continue with `train fit --resume` and that directory" : "");
    rc = 0;
    if (append_close(log)) {
        errorf(err, "cannot write %s/log.csv (%s); check the disk", o->out_dir, strerror(errno));
        rc = 1;
    }
    log = NULL;
stop:
    restore_stop_signals(old_handlers);
done:
    if (log) fclose(log);
    free(s.kept.step);
    batcher_free(bt);
    model_free(&m);
    dataset_close(&d);
    return rc;
}
