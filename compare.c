// compare.c: see compare.h.
#include "compare.h"
#include "fileio.h"
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

void compare_run_name(char *out, size_t cap, const char *spec) {
    size_t k = 0;
    for (const char *p = spec; *p && k + 1 < cap; p++) {
        if (isalnum((unsigned char)*p)) out[k++] = *p;
        else if (*p != '=' && k > 0 && out[k - 1] != '_') out[k++] = '_';
    }
    while (k > 0 && out[k - 1] == '_') k--;
    out[k] = '\0';
    if (k == 0) snprintf(out, cap, "run");
}

// ----------------------------------------------------------------------------
// one run in a child process

typedef struct {
    char name[128];
    const char *spec;
    char dir[PATH_CAP];
    int force;         // replaces an earlier run of compare in dir
    int ok;            // finished and reported its result
    char why[64];      // else why not: "exit 2", "killed by signal 9"
    FitResult r;
} Slot;

static void run_in_child(const FitOptions *base, Slot *s) {
    int fd[2];
    if (pipe(fd) != 0) { snprintf(s->why, sizeof(s->why), "no pipe"); return; }
    fflush(stdout);   // else the child would print the parent's buffered text again
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]); close(fd[1]);
        snprintf(s->why, sizeof(s->why), "fork failed");
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        FitOptions o = *base;
        snprintf(o.cfg.embed, sizeof(o.cfg.embed), "%s", s->spec);
        o.out_dir = s->dir;
        o.made_by = "compare";
        o.force = s->force;
        FitResult r;
        char err[KF_ERRLEN];
        int rc = fit_run(&o, &r, err);
        if (rc) fprintf(stderr, "train: error: %s\n", err);
        else if (write(fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r)) rc = 1;
        fflush(stdout);
        fflush(stderr);
        _exit(rc ? 2 : r.interrupted ? 130 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    int forwarded = 0;
    while (got < sizeof(s->r)) {
        ssize_t k = read(fd[0], (char *)&s->r + got, sizeof(s->r) - got);
        if (k > 0) { got += (size_t)k; continue; }
        if (k < 0 && errno == EINTR) {
            if (stop_requested() && !forwarded) { kill(pid, SIGTERM); forwarded = 1; }
            continue;
        }
        break;   // end of file: the child ended without a result
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    s->ok = got == sizeof(s->r);
    if (WIFSIGNALED(status)) snprintf(s->why, sizeof(s->why), "killed by signal %d", WTERMSIG(status));
    else if (!s->ok) snprintf(s->why, sizeof(s->why), "exit %d", WEXITSTATUS(status));
}

// ----------------------------------------------------------------------------
// report: summary.md and loss.svg

// log.csv read back: step, seconds, train and val loss (NAN where empty).
typedef struct {
    double *step, *seconds, *train, *val;
    int n;
} Curve;

static void curve_free(Curve *c) {
    free(c->step); free(c->seconds); free(c->train); free(c->val);
    memset(c, 0, sizeof(*c));
}

// Field i of a comma-separated line as a number, NAN if empty or absent.
static double csv_field(const char *line, int i) {
    for (; i > 0 && line; i--) if ((line = strchr(line, ','))) line++;
    if (!line || *line == ',' || *line == '\0') return NAN;
    return strtod(line, NULL);
}

static int read_curve(Curve *c, const char *dir) {
    char path[PATH_CAP], err[KF_ERRLEN];
    Lines l;
    memset(c, 0, sizeof(*c));
    path_join(path, dir, "log.csv");
    if (lines_read(&l, path, err)) return 1;
    size_t n = l.n;   // the header row and possible blank lines are skipped
    c->step = malloc(n * sizeof(double));
    c->seconds = malloc(n * sizeof(double));
    c->train = malloc(n * sizeof(double));
    c->val = malloc(n * sizeof(double));
    if (!c->step || !c->seconds || !c->train || !c->val) { lines_free(&l); curve_free(c); return 1; }
    for (size_t i = 1; i < l.n; i++) {
        const char *s = l.line[i];
        if (!isdigit((unsigned char)s[0])) continue;
        c->step[c->n] = csv_field(s, 0);
        c->train[c->n] = csv_field(s, 4);
        c->val[c->n] = csv_field(s, 5);
        c->seconds[c->n] = csv_field(s, 8);
        c->n++;
    }
    lines_free(&l);
    return 0;
}

static int write_report(const FitOptions *base, const Slot *slots, int n, const char *out,
                        char *err) {
    char path[PATH_CAP];
    path_join(path, out, "summary.md");
    FILE *f = replace_begin(path, err);
    if (!f) return 1;
    fprintf(f, "# Embedding comparison\n\nData `%s`; every run has the same seed (%llu), "
            "data order and hyperparameters; budget ", base->data_dir,
            (unsigned long long)base->seed);
    if (base->minutes > 0) fprintf(f, "%g minutes", base->minutes);
    else fprintf(f, "%ld steps", base->steps);
    fprintf(f, ". Final train loss: mean of the last 20 steps. Val BLEU: sacreBLEU's corpus "
            "BLEU of the validation sentences (at most %d), greedy and beam %d (empty for an lm "
            "or --bleu-sentences 0). Loss curves: loss.svg.\n\n", base->bleu_sentences,
            base->bleu_beam);
    fprintf(f, "| run | embedding | params | embedding params | compression | final train "
            "loss | best val loss | val ppl | val BLEU greedy | val BLEU beam | tokens/s | "
            "peak RSS MB |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const Slot *s = &slots[i];
        const FitResult *r = &s->r;
        if (!s->ok) {
            fprintf(f, "| %s | `%s` | failed (%s) | | | | | | | | | |\n", s->name, s->spec, s->why);
            continue;
        }
        char a[32], b[32], g[32] = "", k[32] = "";
        if (isfinite(r->val_bleu_greedy)) snprintf(g, sizeof g, "%.2f", r->val_bleu_greedy);
        if (isfinite(r->val_bleu_beam)) snprintf(k, sizeof k, "%.2f", r->val_bleu_beam);
        fprintf(f, "| %s%s | `%s` | %s | %s | %.1fx | %.4f | %.4f | %.2f | %s | %s | %.0f | %.0f |\n",
                s->name, r->interrupted ? " (interrupted)" : "", s->spec,
                format_count(a, r->params), format_count(b, r->embed_params),
                r->compression, r->final_train_loss, r->best_val_loss, r->val_ppl, g, k,
                r->tokens_per_s, r->peak_rss_mb);
    }
    if (replace_commit(f, path, err)) return 1;

    // the plot: every run that left a log
    Curve *curves = calloc((size_t)n, sizeof(Curve));
    PlotRun *runs = calloc((size_t)n, sizeof(PlotRun));
    int nruns = 0, rc = 0;
    if (!curves || !runs) { free(curves); free(runs); errorf(err, "out of memory"); return 1; }
    for (int i = 0; i < n; i++) {
        Curve *c = &curves[nruns];
        if (read_curve(c, slots[i].dir) || c->n == 0) { curve_free(c); continue; }
        runs[nruns++] = (PlotRun){slots[i].name, c->n, c->step, c->seconds, c->train, c->val};
    }
    path_join(path, out, "loss.svg");
    if (nruns > 0) rc = plot_loss_svg(path, "validation and training loss", runs, nruns, err);
    for (int i = 0; i < nruns; i++) curve_free(&curves[i]);
    free(curves);
    free(runs);
    return rc;
}

// ----------------------------------------------------------------------------
// compare

int compare_run(const FitOptions *base, const char *const *specs, int nspecs, const char *out,
                char *err) {
    if (nspecs < 1) {
        errorf(err, "no --embed given; give one --embed SPEC per run to compare");
        return 2;
    }
    Slot *slots = calloc((size_t)nspecs, sizeof(Slot));
    if (!slots) { errorf(err, "out of memory"); return 2; }
    // check every configuration before the first run writes anything
    int rc = 2;
    for (int i = 0; i < nspecs; i++) {
        Slot *s = &slots[i];
        s->spec = specs[i];
        compare_run_name(s->name, sizeof(s->name), specs[i]);
        path_join(s->dir, out, s->name);
        for (int j = 0; j < i; j++)
            if (strcmp(slots[j].name, s->name) == 0) {
                errorf(err, "--embed %s and --embed %s both make the run name "
                         "%s; give each spec once", slots[j].spec, s->spec, s->name);
                goto done;
            }
        FitOptions o = *base;
        if (strlen(specs[i]) >= sizeof(o.cfg.embed)) {
            errorf(err, "--embed %.40s... is too long; at most %zu characters",
                     specs[i], sizeof(o.cfg.embed) - 1);
            goto done;
        }
        snprintf(o.cfg.embed, sizeof(o.cfg.embed), "%s", specs[i]);
        o.out_dir = s->dir;
        // compare replaces the runs it made itself, and no other
        int kind = run_dir_kind(s->dir);
        if (kind != RUN_NONE && kind != RUN_COMPARE) {
            errorf(err, "%s holds a run that compare did not make (made by %s); move it "
                   "away or give another --out", s->dir, run_kind_name(kind));
            goto done;
        }
        o.force = s->force = kind == RUN_COMPARE;
        if (fit_check(&o, err)) goto done;
    }
    if (make_dirs(out, err)) goto done;

    // The parent only notes a signal: it forwards SIGTERM to the running child (Ctrl-C
    // reaches the child directly), waits for it to save, then stops.
    struct sigaction old[2];
    catch_stop_signals(old);
    int ran = 0, failed = 0, stopped = 0;   // stopped: a run was interrupted
    for (int i = 0; i < nspecs && !stop_requested() && !stopped; i++) {
        printf("compare: run %d of %d: %s (--embed %s)%s\n", i + 1, nspecs, slots[i].name,
               slots[i].spec, slots[i].force ? ", replacing the earlier run of compare" : "");
        fflush(stdout);
        run_in_child(base, &slots[i]);
        ran++;
        if (!slots[i].ok) {
            failed++;
            fprintf(stderr, "compare: run %s failed (%s); continuing\n", slots[i].name,
                    slots[i].why);
        } else if (slots[i].r.interrupted) {
            stopped = 1;
        }
    }
    restore_stop_signals(old);
    if (write_report(base, slots, ran, out, err)) goto done;
    printf("compare: wrote %s/summary.md and %s/loss.svg\n", out, out);
    rc = stop_requested() || stopped ? 130 : failed ? 1 : 0;
done:
    free(slots);
    return rc;
}
