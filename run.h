// run.h: one training run (`train fit`) and the run directory it leaves behind:
//   run.txt            key=value: made_by (fit, demo or compare: what may replace the
//                      run) and every option of the run, for --resume; written first,
//                      it marks the directory as holding a run
//   log.csv            one row per step: step,epoch,tokens,lr,train_loss,val_loss,
//                      grad_norm,tokens_per_s,seconds,skipped (val_loss empty where not
//                      evaluated; skipped: steps so far skipped for a non-finite loss)
//   summary.json       config, parameter counts, losses, validation BLEU, speed,
//                      peak memory
//   model.safetensors  the weights, with the config and tokenizer checksum as metadata
//   optimizer.safetensors  the state to resume from: the weights again, AdamW's m and v
//                      (adam_m.NAME, adam_v.NAME), and as metadata the step (the same
//                      as model.safetensors'), the data position, the random states,
//                      the best validation loss, the kept-checkpoint ring
//   tokenizer.bin      a copy of the data's tokenizer
// Every file is written atomically (fileio.h, replace_begin), so a kill at any moment
// leaves whole files under their final names.
#ifndef KF_RUN_H
#define KF_RUN_H

#include <stdint.h>
#include "model.h"
#include "tokenizer.h"
#include "fileio.h"

typedef struct {
    const char *data_dir, *out_dir;
    Config cfg;              // the model; arch, V and maxT are taken from the data
    int arch_set;            // cfg.arch was given and must match the data
    int label_smoothing_set; // else 0.1 for seq2seq, 0 for lm
    int max_len;             // longest sequence the model takes; 0: the data's max_len
    long steps;              // budget in steps, unless
    double minutes;          // a budget in minutes is given (> 0)
    int batch_tokens;        // B * max(S, T) per batch
    int lm_chunks;           // lm: batches of the data's chunks (<bos> first), not
                             // random windows of the stream (batcher_new_windows)
    float lr;                // peak learning rate
    int warmup;              // steps (at most 10% of the budget)
    float weight_decay, clip; // clip 0: no clipping
    float beta1, beta2, eps;  // AdamW's moment decays and denominator epsilon
    float embed_std;         // std of the embedding's entries at initialization
                             // (0: 0.02 for lm, 1/sqrt(d_model) for seq2seq)
    uint64_t seed;           // initialization, dropout and data order
    int eval_every;          // steps between validations (0: only at the end)
    int eval_batches;        // validation batches per evaluation at most
    int keep_checkpoints;    // the last N checkpoints stay in RUNDIR/checkpoints/ (0: none)
    int threads;             // for the record (the caller sets OpenMP)
    int overlap;             // MPI: sum gradients while backward runs (dist_overlap)
    int bleu_sentences;      // seq2seq: validation pairs translated and scored at the
                             // end, greedily and by beam search (0: none)
    int bleu_beam;           // the beam of that search
    // not options of the run (not in run.txt): how this invocation treats out_dir
    int resume;              // continue the run in out_dir from its last checkpoint
    int force;               // replace a run that out_dir holds (else refused)
    const char *made_by;     // "fit" (NULL), "demo" or "compare": recorded in run.txt
    long stop_at;            // stop after this step as on SIGINT, saving (0: never)
    char data_buf[PATH_CAP]; // fit_options_load keeps data_dir here
} FitOptions;

typedef struct {
    long steps;
    size_t params, embed_params;
    double compression;          // dense V*C over the embedding's parameters
    double first_train_loss, final_train_loss;  // final: mean of the last 20 steps
    double best_val_loss, val_ppl;              // NAN if never evaluated
    double tokens_per_s, seconds, peak_rss_mb;
    int interrupted;             // stopped early by SIGINT/SIGTERM (and saved)
    double val_bleu_greedy, val_bleu_beam, val_chrf_beam;   // NAN if not scored
    int val_bleu_sentences;                                  // how many were scored
} FitResult;

void fit_defaults(FitOptions *o);

// What a directory holds: RUN_NONE (missing or no run in it), or a run, and then who made
// it (run.txt's made_by; a run without run.txt counts as made by fit).
enum { RUN_NONE = 0, RUN_FIT, RUN_DEMO, RUN_COMPARE };
int run_dir_kind(const char *dir);
const char *run_kind_name(int kind);

// The options a run recorded in RUNDIR/run.txt, read into *o (over fit_defaults), so
// that `fit --resume RUNDIR` needs no other flag; out_dir, resume and force are set.
int fit_options_load(FitOptions *o, const char *run_dir, char *err);

// The learning rate of a step: linear warmup over the first `warmup` steps or the first
// 10% of the budget, whichever ends first, then cosine decay from lr to lr/10 at the end
// of the budget. p is the fraction of the budget used before the step (steps or time).
typedef struct {
    float lr;
    int warmup;
    double warm_end;   // p at the end of warmup, -1 before
} Schedule;
float schedule_lr(Schedule *s, long step, double p);

// Everything fit_run would refuse, checked without training or writing.
int fit_check(const FitOptions *o, char *err);
// Trains, writing the run directory. Returns 0 (also when interrupted, see
// r->interrupted) or non-zero with a message.
int fit_run(const FitOptions *o, FitResult *r, char *err);

// Loads RUNDIR/model.safetensors and RUNDIR/tokenizer.bin (checked against the
// checkpoint's tokenizer checksum) into a built model; *step (if step is not NULL): the
// step the checkpoint was saved at (its metadata), -1 if it has none.
int run_load(Model *m, Tokenizer **tok, long *step, const char *dir, char *err);

// Writes OUT_DIR/model.safetensors (the mean of the weights of n run directories of
// one run: same config and tokenizer) and OUT_DIR/tokenizer.bin. Refuses an OUT_DIR
// that already holds a model.
int run_average(const char *out_dir, char *const *dirs, int n, char *err);
// Peak resident memory of this process so far, in MB.
double peak_rss_mb(void);
// 1234567 -> "1,234,567" in out (32 bytes); returns out.
const char *format_count(char *out, size_t x);

#endif
