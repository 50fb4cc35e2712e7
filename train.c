// train.c: the command line of kronformer.
//
//   ./train                      the demo: toy data, a two-minute run, translations
//   ./train prepare ...          text -> tokenizer and token files      (prepare.c)
//   ./train fit ...              train a model                          (run.c)
//   ./train translate / sample   use it                                 (generate.c)
//   ./train eval ...             translate a test set, score it          (evaluate.c)
//   ./train encode / decode      the tokenizer on its own
//   ./train compare ...          several embeddings, one table, one plot (compare.c)
//   ./train bleu --ref FILE      BLEU and chrF2 of translations, as sacreBLEU (metrics.c)
//
// This file holds the help texts, the flag parsing and the demo. Every flag is checked
// before anything is written; bad input ends with one line "train: error: ..." on
// stderr and exit status 2.
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model.h"
#include "matmul.h"
#include "tokenizer.h"
#include "data/toydata.h"
#include "fileio.h"
#include "prepare.h"
#include "run.h"
#include "generate.h"
#include "compare.h"
#include "evaluate.h"
#include "metrics.h"
#include "dist.h"

// ----------------------------------------------------------------------------
// errors and help

static const char *command = "";   // the subcommand, for messages

static void error_exit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "train: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void error_usage(const char *flag) {
    error_exit("unknown flag '%s' for `train%s%s`; see ./train %s%s--help", flag,
               *command ? " " : "", command, command, *command ? " " : "");
}

static const char *HELP_MAIN =
"kronformer: a small encoder-decoder Transformer (or language model) trained on the CPU.\n"
"\n"
"usage: ./train [COMMAND] [FLAGS]      ./train COMMAND --help for its flags\n"
"\n"
"  (no command)  the demo: writes a toy English->German number translation set to\n"
"                data/toy/ (if missing), prepares it into runs/toy-data/, trains a\n"
"                small model for about two minutes into runs/default/, then translates\n"
"                the held-out test set and prints the exact-match rate\n"
"  demo          the same, with --minutes M and --threads N\n"
"  prepare       text files -> tokenizer and token files (a data directory)\n"
"  fit           train a model on a data directory into a run directory\n"
"  translate     translate lines from stdin with a trained seq2seq model\n"
"  eval          translate a test set and score it: BLEU, chrF2, sentences/s\n"
"  sample        continue a prompt with a trained language model (lm)\n"
"  encode        text lines on stdin -> token ids on stdout\n"
"  decode        token ids on stdin -> text lines on stdout\n"
"  bleu          BLEU and chrF2 of translations against references, as sacreBLEU\n"
"  average       the mean of several checkpoints of one run, as a new run directory\n"
"  compare       train one configuration with several embeddings; table and plot\n"
"\n"
"example:\n"
"  ./train prepare --src train.en --tgt train.de --out runs/data\n"
"  ./train fit --data runs/data --out runs/base --minutes 30\n"
"  echo 'a dog runs' | ./train translate --model runs/base\n"
"\n"
"Bad input prints one line 'train: error: ...' and exits with status 2, writing\n"
"nothing. Ctrl-C (or SIGTERM) stops fit and compare cleanly: the current step\n"
"finishes, the checkpoint and summary are saved, the exit status is 130.\n"
"\n"
"The matrix products use the fastest micro-kernel this CPU runs (avx512, avx2-fma or\n"
"portable); the environment variable KF_MM_KERNEL=NAME picks one instead.\n";

static const char *HELP_DEMO =
"usage: ./train [demo [--minutes M] [--threads N]]\n"
"\n"
"The embedded demo, in four steps:\n"
"  1. data/toy/{train,valid,test}.{en,de}: 20000/500/500 English->German number\n"
"     translations (\"three hundred forty-two\" -> \"dreihundertzweiundvierzig\"),\n"
"     generated with seed 1 if data/toy/ lacks them\n"
"  2. runs/toy-data/: a 400-id BPE tokenizer and token files (skipped when already\n"
"     prepared by the same recipe)\n"
"  3. runs/default/: a small model (d_model 64, 4 heads, ffn 256, 2+2 layers, no\n"
"     dropout, batches of 1000 tokens, lr 2e-3) trained for --minutes (default 2), as\n"
"     `train fit` would\n"
"  4. greedy translation of data/toy/test.en: 8 examples beside the references, and\n"
"     the exact-match rate over the whole test set\n"
"\n"
"  --minutes M   training budget (default 2)\n"
"  --threads N   OpenMP threads (default: all cores)\n";

static const char *HELP_PREPARE =
"usage: ./train prepare (--src FILE --tgt FILE | --tsv FILE | --text FILE) --out DIR [FLAGS]\n"
"\n"
"Turns text into a data directory for `train fit`: DIR/tokenizer.bin, token files\n"
"(DIR/train.src train.tgt valid.src valid.tgt, or DIR/train.lm valid.lm) and\n"
"DIR/dataset.txt (key=value: arch, vocab_size, max_len, counts, the recipe). Prints\n"
"lines, tokens, mean and max tokens per line, lines truncated and bytes per token per\n"
"file, and the tokenizer's training time.\n"
"\n"
"input, translation (seq2seq):\n"
"  --src FILE --tgt FILE   two line-aligned files: line i of --tgt translates line i\n"
"  --tsv FILE              source<TAB>target on each line (further columns ignored)\n"
"  --valid-src FILE --valid-tgt FILE\n"
"                          a validation set; else one is held out of the training\n"
"                          lines at random:\n"
"  --valid-fraction F      fraction held out (default 0.05, in (0, 0.5]; at least one)\n"
"input, language model (lm):\n"
"  --text FILE             one text, encoded as one stream of tokens and cut into\n"
"                          chunks of --max-len tokens. Implies --arch lm.\n"
"  --valid-text FILE       the validation text, kept whole; else --valid-fraction of\n"
"                          the chunks of --text is held out at random\n"
"  --arch seq2seq|lm       checked against the input form (default: from it)\n"
"\n"
"output and tokenizer:\n"
"  --out DIR               directory to write (created if needed; required)\n"
"  --vocab-size N          BPE vocabulary, >= 259 (256 bytes and <pad> <bos> <eos>);\n"
"                          default min(8000, 259 + training bytes / 500). The\n"
"                          tokenizer learns from the training sources and targets\n"
"                          (lm: the whole text); it stops early when no pair repeats.\n"
"  --tokenizer FILE        reuse this tokenizer.bin (or the one in a data or run\n"
"                          directory) instead of training one\n"
"  --max-len N             tokens per line (lm: per chunk), default 128; longer lines\n"
"                          are truncated, and counted in the statistics\n"
"  --seed S                seed of the validation split (default 1)\n";

static void print_fit_flags(void) {
    FitOptions d;
    fit_defaults(&d);
    const Config *c = &d.cfg;
    printf(
"data, budget and output:\n"
"  --data DIR              a directory made by `train prepare` (required)\n"
"  --steps N               training steps (default %ld), or\n"
"  --minutes M             a time budget; the schedule follows elapsed / budget\n"
"  --arch seq2seq|lm       must match the data (default: the data's)\n"
"  --max-len N             longest sequence the model takes (default: the data's\n"
"                          max_len; must cover the data's longest line)\n"
"model:\n"
"  --d-model C             width (default %d)\n"
"  --layers N              encoder and decoder layers (default %d; lm: the decoder)\n"
"  --enc-layers N, --dec-layers N   each stack on its own\n"
"  --heads NH              attention heads, must divide d_model (default %d)\n"
"  --ffn F                 feed-forward width (default %d)\n"
"  --embed SPEC            input embedding (default %s):\n"
"                            dense\n"
"                            kron:n=N,r=R[,q=Q1x..xQN]        word2ket\n"
"                            kronxs:n=N,r=R[,q=..][,t=T1x..xTN]  word2ketXS\n"
"                            tt:n=N,r=R[,q=..][,t=..]         tensor train, n=3 by\n"
"                                               default, inner ranks R\n"
"                          and, for kron, kronxs and tt, options (defaults first):\n"
"                            order=id|freq      token -> slot: its id, or its rank\n"
"                                               by frequency in the training data\n"
"                            head=K             slots 0..K-1 get dense rows (K*C)\n"
"                            layout=radix|diag  kronxs, tt: a slot's digits; diag: the\n"
"                                               first t_N slots share no factor row\n"
"                            norm=ln|rms|none   normalize each factorized row, times\n"
"                                               a learned gain (C; ln: bias, C more)\n"
"                            lr=3|X             the embedding learns at X * --lr\n"
"                          the old behaviour: norm=none,lr=1; at V=8000, C=256\n"
"                          (README, Dense against factorized), 20x and 40x:\n"
"                            kronxs:n=2,r=18,head=200,order=freq,layout=diag\n"
"                            kronxs:n=2,r=9,head=100,order=freq,layout=diag\n"
"  --tie / --no-tie        output projection = embedding table (default %s)\n"
"  --embed-std S           std of the embedding's entries at initialization (default\n"
"                          seq2seq: 1/sqrt(d_model), rows of unit variance after the\n"
"                          input's sqrt(d_model); lm: 0.02, so that the first tied\n"
"                          model does not predict its input token)\n"
"  --dropout P             on attention and residual branches (default %g)\n"
"  --label-smoothing E     (default %g for seq2seq, 0 for lm)\n"
"optimization:\n"
"  --batch-tokens N        B * max(S, T) per batch (default %d)\n"
"  --lm-chunks             lm: batches of the data's chunks, each after <bos>; else\n"
"                          (the default) rows of max-len + 1 tokens at random offsets\n"
"                          of the training stream, as nanoGPT, and validation on\n"
"                          consecutive windows (every token a target once)\n"
"  --lr LR                 peak learning rate (default %g): linear warmup, then cosine\n"
"                          decay to LR/10 at the end of the budget\n"
"  --warmup N              warmup steps (default %d; at most 10%% of the budget)\n"
"  --weight-decay W        AdamW, decoupled, not on gains and biases (default %g)\n"
"  --clip G                gradient norm clip, 0 = off (default %g)\n"
"  --beta1 B1, --beta2 B2  AdamW's decay of the gradient's mean and of its square\n"
"                          (defaults %g, %g)\n"
"  --eps E                 AdamW's epsilon in m / (sqrt(v) + E) (default %g)\n"
"  --seed S                initialization, dropout and data order (default %llu)\n"
"  --eval-every N          validate and save every N steps, 0 = only at the end\n"
"                          (default %d); validation: no dropout, no label smoothing,\n"
"                          at most --eval-batches batches (default %d)\n"
"  --keep-checkpoints N    also keep the last N of those checkpoints, each a run\n"
"                          directory RUNDIR/checkpoints/step-NNNNNN/ (default 0),\n"
"                          for `train average`\n"
"  --bleu-sentences N      seq2seq: at the end, translate the first N validation\n"
"                          sentences greedily and by beam search and put their BLEU\n"
"                          and chrF2 in summary.json (default %d; 0: none)\n"
"  --bleu-beam K           the beam of that search (default %d)\n"
"  --threads N             OpenMP threads (default: all cores; under mpirun: per rank)\n"
"  --no-overlap            MPI: sum the gradients over the ranks after backward, not\n"
"                          each stack's as soon as backward has it\n",
        d.steps, c->C, c->Le, c->NH, c->F, c->embed, c->tie ? "tied" : "untied",
        c->dropout, c->label_smoothing, d.batch_tokens, d.lr, d.warmup, d.weight_decay,
        d.clip, d.beta1, d.beta2, d.eps, (unsigned long long)d.seed, d.eval_every, d.eval_batches,
        d.bleu_sentences, d.bleu_beam);
}

static void help_fit(void) {
    printf(
"usage: ./train fit --data DIR --out RUNDIR [--steps N | --minutes M] [FLAGS]\n"
"\n"
"Trains a model and writes RUNDIR/:\n"
"  log.csv            step,epoch,tokens,lr,train_loss,val_loss,grad_norm,tokens_per_s,\n"
"                     seconds,skipped (one row per step; val_loss empty where not evaluated;\n"
"                     tokens: target tokens so far; tokens_per_s: excludes validation)\n"
"  summary.json       config, parameters (total, embedding, compression vs dense V*C),\n"
"                     first and final train loss (mean of the last 20 steps), best\n"
"                     val loss, val perplexity, val BLEU (greedy and beam) and\n"
"                     chrF2, tokens/s, seconds, steps, peak RSS\n"
"  model.safetensors  the weights, saved at every validation and at the end; metadata:\n"
"                     the config and the tokenizer checksum\n"
"  tokenizer.bin      the data's tokenizer, so that translate needs only RUNDIR\n"
"  optimizer.safetensors  the state to resume from (weights, AdamW's moments, data\n"
"                     position, random states), saved with model.safetensors\n"
"  run.txt            the run's options and who made it (fit, demo, compare)\n"
"Every file is written atomically (a temporary file, fsync, rename): a crash or kill\n"
"leaves the previous checkpoint whole.\n"
"A RUNDIR that holds a run is refused, and nothing is written:\n"
"  --resume RUNDIR    continue it from its last checkpoint, bit for bit as if never\n"
"                     stopped (no other flag needed; flags that would change the run\n"
"                     are refused, --threads, --eval-every, --eval-batches,\n"
"                     --bleu-sentences, --bleu-beam may change)\n"
"  --force            start over in it (its checkpoints go at the first save)\n"
"  --stop-at STEP     stop after STEP as Ctrl-C would, saving (for tests; resume later)\n"
"A non-finite loss or gradient norm skips the step (no update; counted in log.csv's\n"
"skipped); 10 in a row stop the run, which keeps its last good checkpoint.\n"
"Progress goes to stderr (one updating line on a terminal); Ctrl-C saves and exits 130.\n"
"Built with `make USE_MPI=1`, `mpirun -np N ./train fit ...` trains data-parallel: each\n"
"rank takes a shard of every batch, rank 0 writes RUNDIR; --threads is per rank (see\n"
"the README, \"Several processes and machines: MPI\").\n"
"\n");
    print_fit_flags();
}

static void help_compare(void) {
    printf(
"usage: ./train compare --data DIR --embed SPEC [--embed SPEC ...] --out RUNS [FLAGS]\n"
"\n"
"Trains the same model once per --embed, with the same seed, data order and\n"
"hyperparameters, one after the other, each in its own process (its peak memory is\n"
"measured alone; a crash loses only that run). Writes RUNS/<name>/ as `train fit`\n"
"does (name from the spec: kronxs:n=2,r=8 -> kronxs_n2_r8), then RUNS/summary.md (a\n"
"table: params, embedding params, compression, final train loss, best val loss, val\n"
"perplexity, tokens/s, peak RSS) and RUNS/loss.svg (loss against step and seconds).\n"
"Exit status: 0, 1 if a run failed, 2 on bad input, 130 if interrupted.\n"
"\n"
"Every flag of `train fit` except --embed (repeated here) and --out:\n\n");
    print_fit_flags();
}

#define HELP_DECODE_FLAGS \
"  --beam K         beam width: hypotheses kept per sentence (default 5; 1 is greedy)\n" \
"  --lenpen A       length penalty: a hypothesis of n tokens scores\n" \
"                   (sum of log p over its tokens and <eos>) / (n + 1)^A; 1 (default)\n" \
"                   compares mean log p per token, 0 the plain sum, which favours short\n" \
"  --max-len N      most tokens per translation (default: the model's maximum)\n" \
"  --batch N        sentences decoded together (default 32; each takes K rows)\n" \
"  --no-cache       greedy only: re-run the decoder on the whole prefix at each step\n" \
"                   instead of keeping its keys and values (the plain, slow path)\n" \
"  --threads N      OpenMP threads (default: all cores)\n"

static const char *HELP_TRANSLATE =
"usage: ./train translate --model RUNDIR [--beam K] [--lenpen A] [--max-len N] [--batch N]\n"
"                         [--no-cache] [--threads N]\n"
"\n"
"Reads source lines on stdin, writes their translations on stdout: line i answers line\n"
"i, and an empty line translates to an empty line. Lines are grouped by length into\n"
"batches; each batch is encoded once, then decoded one token per step with a cache of\n"
"the decoder's keys and values, by beam search (every live hypothesis is extended by\n"
"its best tokens, the K best live on, those ending in <eos> are kept aside; a sentence\n"
"is done when K have ended or none left can beat the best ended one) or greedily.\n"
"Sources longer than the model's maximum length are truncated (counted, with one\n"
"warning). On a terminal each line is translated as soon as it is typed.\n"
"\n"
"  --model RUNDIR   a directory written by `train fit` (model.safetensors, tokenizer.bin)\n"
HELP_DECODE_FLAGS;


static const char *HELP_EVAL =
"usage: ./train eval --model RUNDIR --src FILE --ref FILE [--hyp-out FILE] [--beam K]\n"
"                    [--lenpen A] [--max-len N] [--batch N] [--no-cache] [--threads N]\n"
"\n"
"Translates every line of --src as `translate` does, then scores the translations\n"
"against --ref (line i against line i) and prints corpus BLEU and chrF2 as sacreBLEU\n"
"prints them (13a tokenization, exponential smoothing; character 6-grams, beta 2),\n"
"then sentences/s and tokens/s of the translation alone.\n"
"\n"
"  --model RUNDIR   a directory written by `train fit`\n"
"  --src FILE       source sentences, one per line\n"
"  --ref FILE       their reference translations, as many lines\n"
"  --hyp-out FILE   also write the translations to FILE (atomically)\n"
HELP_DECODE_FLAGS;

static const char *HELP_SAMPLE =
"usage: ./train sample --model RUNDIR [--prompt TEXT] [--tokens N] [--temperature T]\n"
"                      [--top-k K] [--seed S] [--threads N]\n"
"\n"
"Continues the prompt with a language model (a run trained on `prepare --text` data)\n"
"and prints the prompt and the sample, one token per step with a key/value cache. The\n"
"model sees <bos> and the text so far, up to its maximum length; when that window is\n"
"full it starts again from <bos> and the last half of the window.\n"
"\n"
"  --prompt TEXT       text to continue (default: empty)\n"
"  --tokens N          tokens to sample (default 200)\n"
"  --temperature T     softmax temperature, 0 = greedy (default 0.8)\n"
"  --top-k K           sample among the K most likely tokens, 0 = all (default 40)\n"
"  --seed S            (default 1)\n";

static const char *HELP_ENCODE =
"usage: ./train encode --tokenizer FILE    < text > ids\n"
"       ./train decode --tokenizer FILE    < ids > text\n"
"\n"
"encode: each line of stdin (without its line ending) becomes one line of space-\n"
"separated token ids. decode: the reverse; ids outside the vocabulary are an error\n"
"(exit 2). FILE is a tokenizer.bin from `train prepare` or a run directory.\n";

// A --tokenizer argument: a tokenizer.bin, or a data or run directory holding one.
static const char *tokenizer_path(const char *arg, char out[PATH_CAP]) {
    if (!is_directory(arg)) return arg;
    path_join(out, arg, "tokenizer.bin");
    return out;
}

static int is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help");
}

// ----------------------------------------------------------------------------
// flag values

// The value after flag argv[*i]; a following "--flag" is not a value.
static const char *flag_value(int argc, char **argv, int *i) {
    const char *flag = argv[*i];
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
        error_exit("%s needs a value; see ./train %s --help", flag, command);
    return argv[++*i];
}

static const char *path_value(int argc, char **argv, int *i) {
    const char *flag = argv[*i], *v = flag_value(argc, argv, i);
    if (*v == '\0' || strlen(v) > PATH_ARG_MAX)
        error_exit("%s needs a path of 1 to %d characters", flag, PATH_ARG_MAX);
    return v;
}

// An integer in [-1e9, 1e9], written in decimal and nothing else.
static long long_value(int argc, char **argv, int *i) {
    const char *flag = argv[*i], *v = flag_value(argc, argv, i);
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || isspace((unsigned char)*v) || *end != '\0')
        error_exit("%s expects an integer, got '%s'", flag, v);
    if (x < -1000000000L || x > 1000000000L)
        error_exit("%s %s is out of range; give at most 1000000000", flag, v);
    return x;
}

static int int_value(int argc, char **argv, int *i) { return (int)long_value(argc, argv, i); }

static double num_value(int argc, char **argv, int *i) {
    const char *flag = argv[*i], *v = flag_value(argc, argv, i);
    char *end;
    double x = strtod(v, &end);
    if (*v == '\0' || isspace((unsigned char)*v) || *end != '\0' || !isfinite(x))
        error_exit("%s expects a number, got '%s'", flag, v);
    return x;
}

static int arch_value(int argc, char **argv, int *i) {
    const char *v = flag_value(argc, argv, i);
    if (!strcmp(v, "seq2seq")) return ARCH_SEQ2SEQ;
    if (!strcmp(v, "lm")) return ARCH_LM;
    error_exit("--arch expects seq2seq or lm, got '%s'", v);
    return 0;
}

// --threads N: 1 to MAX_THREADS (more would only exhaust the stacks of the threads).
#define MAX_THREADS 1024
static int threads_value(int argc, char **argv, int *i) {
    int n = int_value(argc, argv, i);
    if (n < 1 || n > MAX_THREADS) error_exit("--threads %d must be in [1, %d]", n, MAX_THREADS);
    return n;
}

// OpenMP threads: n > 0 sets them; returns the number in use.
static int use_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
    return omp_get_max_threads();
#else
    (void)n;
    return 1;
#endif
}

// ----------------------------------------------------------------------------
// fit

// One flag of `fit` (and `compare`) at argv[*i]: 1 if it was one, else 0.
static int fit_flag(FitOptions *o, int *budget_flags, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    Config *c = &o->cfg;
    if (!strcmp(a, "--data")) o->data_dir = path_value(argc, argv, i);
    else if (!strcmp(a, "--steps")) { o->steps = long_value(argc, argv, i); (*budget_flags)++; }
    else if (!strcmp(a, "--minutes")) {
        o->minutes = num_value(argc, argv, i);
        (*budget_flags)++;
        if (!(o->minutes > 0)) error_exit("--minutes %g must be positive", o->minutes);
    }
    else if (!strcmp(a, "--arch")) { c->arch = arch_value(argc, argv, i); o->arch_set = 1; }
    else if (!strcmp(a, "--max-len")) {
        o->max_len = int_value(argc, argv, i);
        if (o->max_len < 1) error_exit("--max-len %d must be at least 1", o->max_len);
    }
    else if (!strcmp(a, "--d-model")) c->C = int_value(argc, argv, i);
    else if (!strcmp(a, "--layers")) c->Le = c->Ld = int_value(argc, argv, i);
    else if (!strcmp(a, "--enc-layers")) c->Le = int_value(argc, argv, i);
    else if (!strcmp(a, "--dec-layers")) c->Ld = int_value(argc, argv, i);
    else if (!strcmp(a, "--heads")) c->NH = int_value(argc, argv, i);
    else if (!strcmp(a, "--ffn")) c->F = int_value(argc, argv, i);
    else if (!strcmp(a, "--tie")) c->tie = 1;
    else if (!strcmp(a, "--no-tie")) c->tie = 0;
    else if (!strcmp(a, "--dropout")) c->dropout = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--label-smoothing")) {
        c->label_smoothing = (float)num_value(argc, argv, i);
        o->label_smoothing_set = 1;
    }
    else if (!strcmp(a, "--batch-tokens")) o->batch_tokens = int_value(argc, argv, i);
    else if (!strcmp(a, "--lm-chunks")) o->lm_chunks = 1;
    else if (!strcmp(a, "--lr")) o->lr = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--warmup")) o->warmup = int_value(argc, argv, i);
    else if (!strcmp(a, "--weight-decay")) o->weight_decay = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--clip")) o->clip = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--beta1")) o->beta1 = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--beta2")) o->beta2 = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--eps")) o->eps = (float)num_value(argc, argv, i);
    else if (!strcmp(a, "--seed")) o->seed = (uint64_t)long_value(argc, argv, i);
    else if (!strcmp(a, "--embed-std")) {
        o->embed_std = (float)num_value(argc, argv, i);
        if (!(o->embed_std > 0)) error_exit("--embed-std %g must be positive", o->embed_std);
    }
    else if (!strcmp(a, "--eval-every")) o->eval_every = int_value(argc, argv, i);
    else if (!strcmp(a, "--keep-checkpoints")) o->keep_checkpoints = int_value(argc, argv, i);
    else if (!strcmp(a, "--eval-batches")) {
        o->eval_batches = int_value(argc, argv, i);
        if (o->eval_batches < 1) error_exit("--eval-batches %d must be at least 1", o->eval_batches);
    }
    else if (!strcmp(a, "--bleu-sentences")) o->bleu_sentences = int_value(argc, argv, i);
    else if (!strcmp(a, "--bleu-beam")) o->bleu_beam = int_value(argc, argv, i);
    else if (!strcmp(a, "--threads")) o->threads = threads_value(argc, argv, i);
    else if (!strcmp(a, "--no-overlap")) o->overlap = 0;
    else return 0;
    return 1;
}

static void check_budget(int budget_flags) {
    if (budget_flags > 1) error_exit("give --steps or --minutes, not both");
}

static int cmd_fit(int argc, char **argv) {
    dist_init();   // under mpirun, one of several ranks (make USE_MPI=1); else a no-op
    FitOptions o;
    fit_defaults(&o);
    char err[KF_ERRLEN];
    // --resume RUNDIR first: the run's own options (run.txt), which the flags given
    // after it may only change where that changes no number of the run
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) { help_fit(); return 0; }
        if (!strcmp(argv[i], "--resume")) {
            const char *dir = path_value(argc, argv, &i);
            if (fit_options_load(&o, dir, err)) error_exit("%s", err);
        }
    }
    int budget_flags = 0, out_given = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--resume")) i++;
        else if (!strcmp(argv[i], "--out")) { o.out_dir = path_value(argc, argv, &i); out_given = 1; }
        else if (!strcmp(argv[i], "--force")) o.force = 1;
        else if (!strcmp(argv[i], "--stop-at")) o.stop_at = long_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--embed")) {
            const char *v = flag_value(argc, argv, &i);
            if (strlen(v) >= sizeof(o.cfg.embed)) error_exit("--embed spec is too long");
            snprintf(o.cfg.embed, sizeof(o.cfg.embed), "%s", v);
        }
        else if (!fit_flag(&o, &budget_flags, argc, argv, &i)) error_usage(argv[i]);
    }
    check_budget(budget_flags);
    if (o.resume && out_given)
        error_exit("--resume RUNDIR continues the run in RUNDIR; drop --out");
    if (!o.data_dir) error_exit("fit needs --data DIR, a directory made by `train prepare`");
    if (!o.out_dir) error_exit("fit needs --out RUNDIR, where to write the run");
    o.threads = use_threads(o.threads);
    FitResult r;
    if (fit_run(&o, &r, err)) error_exit("%s", err);
    return r.interrupted ? 130 : 0;
}

static int cmd_compare(int argc, char **argv) {
    FitOptions o;
    fit_defaults(&o);
    int budget_flags = 0, nspecs = 0;
    const char **specs = malloc((size_t)argc * sizeof(char *));
    const char *out = NULL;
    if (!specs) error_exit("out of memory");
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) { help_compare(); free(specs); return 0; }
        if (!strcmp(argv[i], "--out")) out = path_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--embed")) specs[nspecs++] = flag_value(argc, argv, &i);
        else if (!fit_flag(&o, &budget_flags, argc, argv, &i)) error_usage(argv[i]);
    }
    check_budget(budget_flags);
    if (!o.data_dir) error_exit("compare needs --data DIR, a directory made by `train prepare`");
    if (!out) error_exit("compare needs --out RUNS, where to write the runs");
    if (strlen(out) > PATH_ARG_MAX - 200) error_exit("--out path is too long");
    o.threads = use_threads(o.threads);
    char err[KF_ERRLEN];
    int rc = compare_run(&o, specs, nspecs, out, err);
    free(specs);
    if (rc == 2) error_exit("%s", err);
    return rc;
}

// ----------------------------------------------------------------------------
// prepare

static int cmd_prepare(int argc, char **argv) {
    PrepareOptions o = {0};
    o.valid_fraction = 0.05;
    o.max_len = 128;
    o.seed = 1;
    int arch = -1, fraction_set = 0, vocab_set = 0;   // 0 is a size given, not the default
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_PREPARE, stdout); return 0; }
        if (!strcmp(a, "--src")) o.src = path_value(argc, argv, &i);
        else if (!strcmp(a, "--tgt")) o.tgt = path_value(argc, argv, &i);
        else if (!strcmp(a, "--tsv")) o.tsv = path_value(argc, argv, &i);
        else if (!strcmp(a, "--text")) o.text = path_value(argc, argv, &i);
        else if (!strcmp(a, "--valid-src")) o.valid_src = path_value(argc, argv, &i);
        else if (!strcmp(a, "--valid-tgt")) o.valid_tgt = path_value(argc, argv, &i);
        else if (!strcmp(a, "--valid-text")) o.valid_text = path_value(argc, argv, &i);
        else if (!strcmp(a, "--valid-fraction")) {
            o.valid_fraction = num_value(argc, argv, &i);
            fraction_set = 1;
        }
        else if (!strcmp(a, "--arch")) arch = arch_value(argc, argv, &i);
        else if (!strcmp(a, "--out")) o.out = path_value(argc, argv, &i);
        else if (!strcmp(a, "--vocab-size")) { o.vocab_size = int_value(argc, argv, &i); vocab_set = 1; }
        else if (!strcmp(a, "--tokenizer")) o.tokenizer = path_value(argc, argv, &i);
        else if (!strcmp(a, "--max-len")) o.max_len = int_value(argc, argv, &i);
        else if (!strcmp(a, "--seed")) o.seed = (uint64_t)long_value(argc, argv, &i);
        else error_usage(a);
    }
    // the input: exactly one form, consistent with --arch
    int forms = (o.src || o.tgt) + (o.tsv != NULL) + (o.text != NULL);
    if (forms != 1)
        error_exit("give one input: --src FILE --tgt FILE, or --tsv FILE, or --text FILE");
    if ((o.src != NULL) != (o.tgt != NULL))
        error_exit("--src and --tgt go together: give both line-aligned files");
    o.arch = o.text ? ARCH_LM : ARCH_SEQ2SEQ;
    if (arch >= 0 && arch != o.arch)
        error_exit("--arch %s does not match the input: --text is for lm, --src/--tgt and "
                   "--tsv for seq2seq", arch == ARCH_LM ? "lm" : "seq2seq");
    if ((o.valid_src != NULL) != (o.valid_tgt != NULL))
        error_exit("--valid-src and --valid-tgt go together: give both");
    if (o.valid_src && o.text)
        error_exit("--valid-src/--valid-tgt are for translation; an lm takes "
                   "--valid-text, or holds out --valid-fraction of its chunks");
    if (o.valid_src && fraction_set)
        error_exit("give --valid-src/--valid-tgt or --valid-fraction, not both");
    if (o.valid_text && !o.text)
        error_exit("--valid-text is for a language model (--text); translation takes "
                   "--valid-src/--valid-tgt");
    if (o.valid_text && fraction_set)
        error_exit("give --valid-text or --valid-fraction, not both");
    if (!(o.valid_fraction > 0 && o.valid_fraction <= 0.5))
        error_exit("--valid-fraction %g must be in (0, 0.5]", o.valid_fraction);
    if (!o.out) error_exit("prepare needs --out DIR, where to write the data");
    if (o.tokenizer && vocab_set)
        error_exit("give --tokenizer or --vocab-size, not both (a reused tokenizer has its size)");
    if (vocab_set && (o.vocab_size < TOK_NBASE || o.vocab_size > 1000000))
        error_exit("--vocab-size %d must be in [%d, 1000000] (the %d bytes and 3 special "
                   "tokens come first)", o.vocab_size, TOK_NBASE, TOK_NBASE - 3);
    if (o.max_len < (o.text ? 2 : 1) || o.max_len > 100000)
        error_exit("--max-len %d must be in [%d, 100000]", o.max_len, o.text ? 2 : 1);
    char file[PATH_CAP], err[KF_ERRLEN];
    if (o.tokenizer) o.tokenizer = tokenizer_path(o.tokenizer, file);
    if (prepare_run(&o, err)) error_exit("%s", err);
    return 0;
}

// ----------------------------------------------------------------------------
// translate, sample

static void load_run(Model *m, Tokenizer **tok, const char *dir) {
    char err[KF_ERRLEN];
    memset(m, 0, sizeof(*m));
    if (run_load(m, tok, NULL, dir, err)) error_exit("%s", err);
}

// One decoding flag of `translate` and `eval` at argv[*i]: 1 if it was one, else 0.
static int decode_flag(DecodeOptions *o, int *threads, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--beam")) o->beam = int_value(argc, argv, i);
    else if (!strcmp(a, "--lenpen")) o->lenpen = num_value(argc, argv, i);
    else if (!strcmp(a, "--max-len")) {
        o->max_len = int_value(argc, argv, i);
        if (o->max_len < 1) error_exit("--max-len %d must be at least 1", o->max_len);
    }
    else if (!strcmp(a, "--batch")) o->batch = int_value(argc, argv, i);
    else if (!strcmp(a, "--no-cache")) o->no_cache = 1;
    else if (!strcmp(a, "--threads")) *threads = threads_value(argc, argv, i);
    else return 0;
    return 1;
}

// Loads the seq2seq model of dir and checks the decoding options against it.
static void load_translator(Model *m, Tokenizer **tok, const char *dir, const DecodeOptions *o) {
    char err[KF_ERRLEN];
    load_run(m, tok, dir);
    if (m->cfg.arch != ARCH_SEQ2SEQ)
        error_exit("%s holds a language model (arch lm); use `train sample`", dir);
    if (decode_check(o, m, err)) error_exit("%s", err);
}

static void warn_truncated(int truncated, const Model *m) {
    if (truncated)
        fprintf(stderr, "%s: %d source lines longer than %d tokens were truncated\n",
                command, truncated, m->cfg.maxT - 1);
}

// Translates n lines and prints the translations; returns the number of truncated ones.
static int translate_print(Model *m, const Tokenizer *tok, char **lines, size_t *lens,
                           int n, const DecodeOptions *o) {
    char **out = malloc((size_t)(n ? n : 1) * sizeof(char *)), err[KF_ERRLEN];
    TranslateStats st;
    if (!out) error_exit("out of memory");
    if (translate_lines(m, tok, lines, lens, n, o, out, &st, err)) error_exit("%s", err);
    for (int i = 0; i < n; i++) { puts(out[i]); free(out[i]); }
    fflush(stdout);
    free(out);
    return st.truncated;
}

static int cmd_translate(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 0;
    DecodeOptions o;
    decode_defaults(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_TRANSLATE, stdout); return 0; }
        if (!strcmp(a, "--model")) dir = path_value(argc, argv, &i);
        else if (!decode_flag(&o, &threads, argc, argv, &i)) error_usage(a);
    }
    if (!dir) error_exit("translate needs --model RUNDIR, a directory written by `train fit`");
    Model m;
    Tokenizer *tok;
    load_translator(&m, &tok, dir, &o);
    use_threads(threads);

    // On a terminal, translate each line as it is typed; else in chunks of many lines,
    // so that the batches group lines of similar length.
    int chunk = isatty(fileno(stdin)) ? 1 : 4096, n = 0, truncated = 0;
    char **lines = malloc((size_t)chunk * sizeof(char *));
    size_t *lens = malloc((size_t)chunk * sizeof(size_t)), cap = 0;
    char *line = NULL;
    ssize_t len;
    if (!lines || !lens) error_exit("out of memory");
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        if (len > 0 && line[len - 1] == '\r') len--;
        // a copy of len bytes: the line may hold NUL bytes
        if (!(lines[n] = malloc((size_t)len + 1))) error_exit("out of memory");
        memcpy(lines[n], line, (size_t)len);
        lines[n][len] = '\0';
        lens[n++] = (size_t)len;
        if (n == chunk) {
            truncated += translate_print(&m, tok, lines, lens, n, &o);
            while (n > 0) free(lines[--n]);
        }
    }
    truncated += translate_print(&m, tok, lines, lens, n, &o);
    while (n > 0) free(lines[--n]);
    warn_truncated(truncated, &m);
    free(line);
    free(lines);
    free(lens);
    tokenizer_free(tok);
    model_free(&m);
    return 0;
}

// Prints the BLEU and chrF2 lines of r, as sacreBLEU does.
static void print_scores(const EvalResult *r) {
    char line[256];
    bleu_line(line, sizeof line, &r->bleu);
    puts(line);
    chrf_line(line, sizeof line, r->chrf);
    puts(line);
}

static int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *src_path = NULL, *ref_path = NULL, *hyp_out = NULL;
    int threads = 0;
    DecodeOptions o;
    decode_defaults(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_EVAL, stdout); return 0; }
        if (!strcmp(a, "--model")) dir = path_value(argc, argv, &i);
        else if (!strcmp(a, "--src")) src_path = path_value(argc, argv, &i);
        else if (!strcmp(a, "--ref")) ref_path = path_value(argc, argv, &i);
        else if (!strcmp(a, "--hyp-out")) hyp_out = path_value(argc, argv, &i);
        else if (!decode_flag(&o, &threads, argc, argv, &i)) error_usage(a);
    }
    if (!dir) error_exit("eval needs --model RUNDIR, a directory written by `train fit`");
    if (!src_path || !ref_path)
        error_exit("eval needs --src FILE and --ref FILE: source sentences and their references");
    Lines src, ref;
    char err[KF_ERRLEN];
    if (lines_read(&src, src_path, err) || lines_read(&ref, ref_path, err)) error_exit("%s", err);
    if (src.n != ref.n)
        error_exit("%zu source lines in %s but %zu reference lines in %s; give one reference "
                   "for each source line", src.n, src_path, ref.n, ref_path);
    if (src.n > 100000000) error_exit("%s has %zu lines; evaluate at most 100000000", src_path, src.n);
    Model m;
    Tokenizer *tok;
    load_translator(&m, &tok, dir, &o);
    use_threads(threads);
    int n = (int)src.n;
    char **hyps = malloc(src.n * sizeof(char *));
    if (!hyps) error_exit("out of memory");
    TranslateStats st;
    EvalResult r;
    memset(&r, 0, sizeof r);
    double t0 = seconds_now();
    if (translate_lines(&m, tok, src.line, src.len, n, &o, hyps, &st, err)) error_exit("%s", err);
    r.seconds = seconds_since(t0);
    warn_truncated(st.truncated, &m);
    if (score_translations(&r, hyps, (const char *const *)ref.line, n, err)) error_exit("%s", err);
    if (hyp_out) {
        FILE *f = replace_begin(hyp_out, err);
        if (!f) error_exit("%s", err);
        for (int i = 0; i < n; i++) fprintf(f, "%s\n", hyps[i]);
        if (replace_commit(f, hyp_out, err)) error_exit("%s", err);
    }
    print_scores(&r);
    printf("eval: %d sentences in %.2f s: %.1f sentences/s, %.0f tokens/s (%s, %d threads)\n",
           n, r.seconds, n / r.seconds, st.tokens / r.seconds,
           o.beam > 1 ? "beam search" : o.no_cache ? "greedy, no cache" : "greedy",
           use_threads(0));
    for (int i = 0; i < n; i++) free(hyps[i]);
    free(hyps);
    lines_free(&src);
    lines_free(&ref);
    tokenizer_free(tok);
    model_free(&m);
    return 0;
}

static const char *HELP_AVERAGE =
"usage: ./train average --out NEWDIR RUNDIR RUNDIR [RUNDIR...]\n"
"\n"
"Writes NEWDIR/model.safetensors, the mean of the weights of the given checkpoints,\n"
"and NEWDIR/tokenizer.bin, so that NEWDIR works wherever a run directory does\n"
"(translate, eval, sample). The checkpoints must come from one run: the same config\n"
"and tokenizer (`fit --keep-checkpoints N` keeps the last N in RUNDIR/checkpoints/).\n"
"Its metadata step is the latest of theirs. NEWDIR must not hold a model yet.\n"
"\n"
"  --out NEWDIR   the directory to write (created if missing)\n";

static int cmd_average(int argc, char **argv) {
    const char *out = NULL;
    char **dirs = malloc((size_t)argc * sizeof(char *)), err[KF_ERRLEN];
    int n = 0;
    if (!dirs) error_exit("out of memory");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_AVERAGE, stdout); free(dirs); return 0; }
        if (!strcmp(a, "--out")) out = path_value(argc, argv, &i);
        else if (a[0] == '-') error_usage(a);
        else dirs[n++] = argv[i];
    }
    if (!out) error_exit("average needs --out NEWDIR, the directory for the averaged model");
    if (n < 2) error_exit("average needs at least two run directories to average; see --help");
    if (run_average(out, dirs, n, err)) error_exit("%s", err);
    printf("average: %s holds the mean of %d checkpoints\n", out, n);
    free(dirs);
    return 0;
}

static int cmd_sample(int argc, char **argv) {
    const char *dir = NULL, *prompt = "";
    int ntokens = 200, top_k = 40, threads = 0;
    double temperature = 0.8;
    uint64_t seed = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_SAMPLE, stdout); return 0; }
        if (!strcmp(a, "--model")) dir = path_value(argc, argv, &i);
        else if (!strcmp(a, "--prompt")) {
            // a prompt may itself start with "--": take the next word as it is
            if (i + 1 >= argc) error_exit("--prompt needs a value");
            prompt = argv[++i];
        }
        else if (!strcmp(a, "--tokens")) ntokens = int_value(argc, argv, &i);
        else if (!strcmp(a, "--temperature")) temperature = num_value(argc, argv, &i);
        else if (!strcmp(a, "--top-k")) top_k = int_value(argc, argv, &i);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)long_value(argc, argv, &i);
        else if (!strcmp(a, "--threads")) threads = threads_value(argc, argv, &i);
        else error_usage(a);
    }
    if (!dir) error_exit("sample needs --model RUNDIR, a directory written by `train fit`");
    if (ntokens < 0 || ntokens > 1000000) error_exit("--tokens %d must be in [0, 1000000]", ntokens);
    if (temperature < 0) error_exit("--temperature %g must be >= 0", temperature);
    if (top_k < 0) error_exit("--top-k %d must be >= 0 (0 keeps every token)", top_k);
    Model m;
    Tokenizer *tok;
    load_run(&m, &tok, dir);
    if (m.cfg.arch != ARCH_LM)
        error_exit("%s holds a translation model (arch seq2seq); use `train translate`", dir);
    use_threads(threads);
    char err[KF_ERRLEN];
    if (sample_lm(&m, tok, prompt, ntokens, (float)temperature, top_k, seed, stdout, err))
        error_exit("%s", err);
    tokenizer_free(tok);
    model_free(&m);
    return 0;
}

// ----------------------------------------------------------------------------
// encode, decode

// The tokenizer of --tokenizer FILE (a tokenizer.bin, or a directory holding one).
static Tokenizer *tokenizer_arg(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) { fputs(HELP_ENCODE, stdout); exit(0); }
        if (!strcmp(argv[i], "--tokenizer")) path = path_value(argc, argv, &i);
        else error_usage(argv[i]);
    }
    if (!path) error_exit("%s needs --tokenizer FILE (a tokenizer.bin from `train prepare`)", command);
    char file[PATH_CAP], err[KF_ERRLEN];
    Tokenizer *t = tokenizer_load(tokenizer_path(path, file), err);
    if (!t) error_exit("%s", err);
    return t;
}

static int cmd_encode(int argc, char **argv) {
    Tokenizer *t = tokenizer_arg(argc, argv);
    char *line = NULL;
    size_t cap = 0, idcap = 0;
    int *ids = NULL;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        if (len > 0 && line[len - 1] == '\r') len--;
        if ((size_t)len + 1 > idcap) {   // a token covers at least one byte
            idcap = (size_t)len + 1;
            if (!(ids = realloc(ids, idcap * sizeof(int)))) error_exit("out of memory");
        }
        size_t n = tokenizer_encode(t, line, (size_t)len, ids, idcap);
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    free(line);
    free(ids);
    tokenizer_free(t);
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    Tokenizer *t = tokenizer_arg(argc, argv);
    char *line = NULL, *text = NULL, err[KF_ERRLEN];
    size_t cap = 0, textcap = 0;
    int *ids = NULL;
    long lineno = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        lineno++;
        // parse the ids: at most one per two bytes of the line
        if (!(ids = realloc(ids, (strlen(line) / 2 + 1) * sizeof(int)))) error_exit("out of memory");
        size_t n = 0;
        for (char *p = line, *end;; p = end) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
            if (*p == '\0') break;
            long id = strtol(p, &end, 10);
            if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r'))
                error_exit("line %ld: '%.20s' is not a token id; decode reads space-separated "
                           "integers", lineno, p);
            if (id < 0 || id >= tokenizer_vocab_size(t))
                error_exit("line %ld: token id %ld is outside the vocabulary [0, %d); was it "
                           "made by another tokenizer?", lineno, id, tokenizer_vocab_size(t));
            ids[n++] = (int)id;
        }
        long need = tokenizer_decode(t, ids, n, text, textcap, err);
        if (need < 0) error_exit("line %ld: %s", lineno, err);
        if ((size_t)need > textcap) {
            textcap = (size_t)need;
            if (!(text = realloc(text, textcap))) error_exit("out of memory");
            tokenizer_decode(t, ids, n, text, textcap, err);
        }
        fwrite(text, 1, (size_t)need, stdout);
        putchar('\n');
    }
    free(line);
    free(ids);
    free(text);
    tokenizer_free(t);
    return 0;
}

// ----------------------------------------------------------------------------
// bleu

static const char *HELP_BLEU =
"usage: ./train bleu --ref FILE [HYP_FILE]      (without HYP_FILE: translations on stdin)\n"
"\n"
"Scores translations against references, line i against line i, as sacreBLEU 2.x\n"
"does with its defaults, and prints its two lines:\n"
"  BLEU = 30.06 76.9/45.5/22.2/14.3 (BP = 0.926 ratio = 0.929 hyp_len = 13 ref_len = 14)\n"
"  chrF2 = 61.44\n"
"BLEU: corpus BLEU on 13a tokens (mteval-v13a's tokenization), n-grams up to 4, 'exp'\n"
"smoothing, brevity penalty; then the 1- to 4-gram precisions, the brevity penalty,\n"
"the length ratio and the token counts of the translations and of the references.\n"
"chrF2: character 6-grams, whitespace removed, recall weighted by beta = 2. An empty\n"
"line is a valid (empty) translation; the two must have the same number of lines.\n"
"\n"
"  --ref FILE   the references, one a line (required)\n"
"  HYP_FILE     the translations, one a line (default: stdin)\n";

static int cmd_bleu(int argc, char **argv) {
    const char *ref_path = NULL, *hyp_path = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_BLEU, stdout); return 0; }
        if (!strcmp(a, "--ref")) ref_path = path_value(argc, argv, &i);
        else if (a[0] == '-') error_usage(a);
        else if (hyp_path)
            error_exit("bleu takes one file of translations, got '%s' and '%s'", hyp_path, a);
        else hyp_path = a;
    }
    if (!ref_path) error_exit("bleu needs --ref FILE, the reference translations");
    // stdin through its path, so that it is read as the files are (lines_read)
    const char *hyp_file = hyp_path ? hyp_path : "/dev/stdin";
    const char *hyp_name = hyp_path ? hyp_path : "stdin";
    Lines ref, hyp;
    char err[KF_ERRLEN];
    if (lines_read(&ref, ref_path, err) || lines_read(&hyp, hyp_file, err)) error_exit("%s", err);
    if (hyp.n != ref.n)
        error_exit("%zu lines of translations in %s but %zu reference lines in %s; give one "
                   "translation for each reference line", hyp.n, hyp_name, ref.n, ref_path);
    EvalResult r;
    if (score_translations(&r, hyp.line, (const char *const *)ref.line, (int)hyp.n, err))
        error_exit("%s", err);
    print_scores(&r);
    lines_free(&ref);
    lines_free(&hyp);
    return 0;
}

// ----------------------------------------------------------------------------
// the demo

#define TOY_DIR "data/toy"
#define TOY_DATA "runs/toy-data"
#define TOY_RUN "runs/default"

// The demo's data recipe and model, chosen for the best exact match on the toy test set
// within two minutes on two cores: a small model taking many steps beats a larger one
// taking few (d_model 128 with lr 1e-3: 300 steps, 0% exact; this one: about 1400 steps,
// 99-100%; with lr 3e-3 the loss sometimes stalls for hundreds of steps).
static void demo_options(PrepareOptions *p, FitOptions *f, double minutes) {
    memset(p, 0, sizeof(*p));
    p->arch = ARCH_SEQ2SEQ;
    p->src = TOY_DIR "/train.en";
    p->tgt = TOY_DIR "/train.de";
    p->valid_src = TOY_DIR "/valid.en";
    p->valid_tgt = TOY_DIR "/valid.de";
    p->out = TOY_DATA;
    p->vocab_size = 400;
    p->max_len = 64;
    p->seed = 1;
    fit_defaults(f);
    f->data_dir = TOY_DATA;
    f->out_dir = TOY_RUN;
    f->minutes = minutes;
    f->cfg.C = 64;
    f->cfg.NH = 4;
    f->cfg.F = 256;
    f->cfg.Le = f->cfg.Ld = 2;
    f->cfg.dropout = 0.0f;     // the data is clean and plentiful for the budget
    f->batch_tokens = 1000;
    f->lr = 2e-3f;
    f->warmup = 200;
    f->eval_every = 500;
}

static int cmd_demo(int argc, char **argv, int first) {
    double minutes = 2;
    int threads = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(HELP_DEMO, stdout); return 0; }
        if (!strcmp(a, "--minutes")) minutes = num_value(argc, argv, &i);
        else if (!strcmp(a, "--threads")) threads = threads_value(argc, argv, &i);
        else error_usage(a);
    }
    if (!(minutes > 0)) error_exit("--minutes %g must be positive", minutes);
    PrepareOptions p;
    FitOptions f;
    demo_options(&p, &f, minutes);
    f.threads = use_threads(threads);
    char err[KF_ERRLEN];

    printf("== 1. data: %s/\n", TOY_DIR);
    if (!file_exists(TOY_DIR "/train.en") || !file_exists(TOY_DIR "/train.de") ||
        !file_exists(TOY_DIR "/valid.en") || !file_exists(TOY_DIR "/valid.de") ||
        !file_exists(TOY_DIR "/test.en") || !file_exists(TOY_DIR "/test.de")) {
        if (toy_generate(TOY_DIR, 1, 20000, 500, 500, err)) error_exit("%s", err);
        printf("wrote 20000 training, 500 validation and 500 test pairs\n");
    } else {
        printf("present\n");
    }
    printf("\n== 2. tokens: %s/\n", TOY_DATA);
    if (prepare_is_current(&p)) printf("already prepared by the same recipe\n");
    else if (prepare_run(&p, err)) error_exit("%s", err);

    printf("\n== 3. training: %s/ (%g minutes, %d threads)\n", TOY_RUN, minutes, f.threads);
    // the demo replaces its own earlier run, and only that
    int kind = run_dir_kind(TOY_RUN);
    if (kind == RUN_DEMO) {
        printf("replacing the earlier demo run in %s/\n", TOY_RUN);
        f.force = 1;
    } else if (kind != RUN_NONE) {
        error_exit("%s/ holds a run the demo did not make (made by %s); move it away to run "
                   "the demo", TOY_RUN, run_kind_name(kind));
    }
    f.made_by = "demo";
    fflush(stdout);
    FitResult r;
    if (fit_run(&f, &r, err)) error_exit("%s", err);
    if (r.interrupted) return 130;

    printf("\n== 4. translating %s/test.en\n", TOY_DIR);
    Lines en, de;
    if (lines_read(&en, TOY_DIR "/test.en", err) || lines_read(&de, TOY_DIR "/test.de", err))
        error_exit("%s", err);
    if (en.n != de.n) error_exit("%s/test.en and test.de differ in length; delete %s/", TOY_DIR, TOY_DIR);
    Model m;
    Tokenizer *tok;
    load_run(&m, &tok, TOY_RUN);
    char **out = malloc(en.n * sizeof(char *));
    DecodeOptions o;
    TranslateStats st;
    decode_defaults(&o);
    o.batch = 64;
    if (!out) error_exit("out of memory");
    double t0 = seconds_now();
    if (translate_lines(&m, tok, en.line, en.len, (int)en.n, &o, out, &st, err))
        error_exit("%s", err);
    double secs = seconds_since(t0);
    int exact = 0;
    for (size_t i = 0; i < en.n; i++) exact += strcmp(out[i], de.line[i]) == 0;
    for (size_t i = 0; i < en.n && i < 8; i++)
        printf("%s %s\n    -> %s\n   ref %s\n", strcmp(out[i], de.line[i]) ? "  " : "ok",
               en.line[i], out[i], de.line[i]);
    printf("\nexact match: %d of %zu test sentences (%.1f%%), translated in %.1f s\n", exact,
           en.n, 100.0 * exact / (double)en.n, secs);
    printf("try: echo 'four hundred twelve thousand nine' | ./train translate --model %s\n", TOY_RUN);
    for (size_t i = 0; i < en.n; i++) free(out[i]);
    free(out);
    lines_free(&en);
    lines_free(&de);
    tokenizer_free(tok);
    model_free(&m);
    return 0;
}

// ----------------------------------------------------------------------------

int main(int argc, char **argv) {
    // A file size limit (ulimit -f) must fail the write (EFBIG), which says so and keeps
    // the previous checkpoint, not kill the process with SIGXFSZ.
    signal(SIGXFSZ, SIG_IGN);
    char err[KF_ERRLEN];
    if (mm_kernel_from_env(err)) error_exit("%s", err);
    if (argc < 2) return cmd_demo(argc, argv, 1);
    command = argv[1];
    if (is_help(command)) { fputs(HELP_MAIN, stdout); return 0; }
    if (!strcmp(command, "demo")) return cmd_demo(argc, argv, 2);
    if (!strcmp(command, "prepare")) return cmd_prepare(argc, argv);
    if (!strcmp(command, "fit")) return cmd_fit(argc, argv);
    if (!strcmp(command, "translate")) return cmd_translate(argc, argv);
    if (!strcmp(command, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(command, "sample")) return cmd_sample(argc, argv);
    if (!strcmp(command, "encode")) return cmd_encode(argc, argv);
    if (!strcmp(command, "decode")) return cmd_decode(argc, argv);
    if (!strcmp(command, "bleu")) return cmd_bleu(argc, argv);
    if (!strcmp(command, "compare")) return cmd_compare(argc, argv);
    if (!strcmp(command, "average")) return cmd_average(argc, argv);
    if (command[0] == '-') { command = ""; error_usage(argv[1]); }
    error_exit("unknown command '%s'; see ./train --help", command);
    return 2;
}
