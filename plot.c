// plot.c: the loss plot of plot.h, written as SVG text by hand. Layout: a title, two
// panels side by side (loss against step, loss against seconds) sharing one y range,
// then a legend. Each run has one colour; validation loss is a solid line with
// markers, training loss a thin dashed line of the same colour. NAN means "no value
// at this point": series connect their finite points.
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fileio.h"

// Okabe & Ito's colour-blind-safe palette (yellow replaced by a darker olive, which
// reads better on white). Runs beyond eight reuse the colours in order.
static const char *const palette[8] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                       "#E69F00", "#56B4E9", "#000000", "#999933"};

// Layout in pixels: panel k's plot area is [PX[k], PX[k] + PW] x [PY, PY + PH].
#define WIDTH 960
#define PW 380.0
#define PH 280.0
#define PY 56.0
static const double PX[2] = {70, 560};
#define LEGEND_Y (PY + PH + 64)

// s with the five XML special characters replaced by entities.
static void xml_text(FILE *fp, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&apos;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

// An axis: the value range shown and the spacing of its ticks.
typedef struct { double lo, hi, step; } Axis;

// The axis for data in [lo, hi]: padded by pad * (hi - lo) on each side, with the
// smallest tick step of 1, 2 or 5 times a power of ten that gives at most 7 intervals
// (hence at least about 3, as the next smaller step is at most 2.5 times smaller).
static Axis make_axis(double lo, double hi, double pad) {
    Axis a;
    if (!(lo <= hi)) { lo = 0; hi = 1; }                   // no data at all
    if (hi - lo <= 1e-12 * fabs(lo)) {                     // a single value: center it
        double half = lo != 0 ? 0.1 * fabs(lo) : 1;
        lo -= half;
        hi += half;
    }
    a.lo = lo - pad * (hi - lo);
    a.hi = hi + pad * (hi - lo);
    static const double mult[4] = {1, 2, 5, 10};
    double base = pow(10, floor(log10((a.hi - a.lo) / 7))); // 10 * base gives < 7 intervals
    int i = 0;
    while (i < 3 && (a.hi - a.lo) / (mult[i] * base) > 7) i++;
    a.step = mult[i] * base;
    return a;
}

// Pixel coordinates. Far outside values are clamped so the SVG numbers stay short;
// what lies outside the plot area is clipped anyway.
static double px(const Axis *a, int k, double v) {
    double x = PX[k] + (v - a->lo) / (a->hi - a->lo) * PW;
    return fmax(PX[k] - 50 * PW, fmin(PX[k] + 51 * PW, x));
}
static double py(const Axis *a, double v) {
    double y = PY + PH - (v - a->lo) / (a->hi - a->lo) * PH;
    return fmax(PY - 50 * PH, fmin(PY + 51 * PH, y));
}

// A tick value, with as many decimals as the step needs (0.05 -> 2) and no "-0".
static void tick_label(char *s, size_t cap, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < 1e-6 * step) v = 0;
    snprintf(s, cap, "%.*f", decimals, v);
}

static const double *xvalues(const PlotRun *r, int k) {
    return k == 0 ? r->step : r->seconds;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The loss range shown by both panels. A few huge values (typically the first
// training losses) would squash the rest of the curves into a flat line, so values
// more than 10 times the spread of the lowest 90% above the minimum are left above
// the top edge; *clipped gets the largest of them (else NAN).
static Axis loss_axis(const PlotRun *runs, int nruns, double *clipped) {
    size_t m = 0, cap = 0;
    for (int r = 0; r < nruns; r++) cap += 2 * (size_t)runs[r].n;
    double *v = malloc((cap ? cap : 1) * sizeof *v);
    *clipped = NAN;
    if (!v) return make_axis(NAN, NAN, 0); // out of memory: a plain [0, 1] axis
    for (int r = 0; r < nruns; r++)
        for (int i = 0; i < runs[r].n; i++) {
            if (isfinite(runs[r].train[i])) v[m++] = runs[r].train[i];
            if (isfinite(runs[r].val[i])) v[m++] = runs[r].val[i];
        }
    qsort(v, m, sizeof *v, cmp_double);
    double lo = m ? v[0] : NAN, hi = m ? v[m - 1] : NAN;
    if (m >= 10) {
        double limit = lo + 10 * (v[(m - 1) * 9 / 10] - lo);
        if (hi > limit && limit > lo) {
            *clipped = hi;
            while (v[m - 1] > limit) m--;
            hi = v[m - 1];
        }
    }
    free(v);
    Axis a = make_axis(lo, hi, 0.04);
    if (m && lo >= 0 && a.lo < 0) a.lo = 0; // losses are not negative
    return a;
}

// The x axis of panel k: the range of x over points with some finite loss.
static Axis x_axis(const PlotRun *runs, int nruns, int k) {
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < nruns; r++) {
        const double *x = xvalues(&runs[r], k);
        for (int i = 0; i < runs[r].n; i++)
            if (isfinite(x[i]) &&
                (isfinite(runs[r].train[i]) || isfinite(runs[r].val[i]))) {
                lo = fmin(lo, x[i]);
                hi = fmax(hi, x[i]);
            }
    }
    return isfinite(lo) ? make_axis(lo, hi, 0.02) : make_axis(NAN, NAN, 0);
}

// SVG elements. attrs: further attributes, written as they are; text is escaped.
static void line(FILE *fp, double x1, double y1, double x2, double y2, const char *attrs) {
    fprintf(fp, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", x1, y1, x2, y2,
            attrs);
}
static void dot(FILE *fp, double x, double y, double r, const char *colour) {
    fprintf(fp, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, colour);
}
static void text(FILE *fp, double x, double y, const char *attrs, const char *s) {
    fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
    xml_text(fp, s);
    fprintf(fp, "</text>\n");
}

#define VAL_STYLE "stroke-width=\"2\""
#define TRAIN_STYLE "stroke-width=\"1.3\" stroke-dasharray=\"5 4\" stroke-opacity=\"0.8\""

// One series of one run in panel k: a polyline through its finite points (a lone
// point becomes a dot through the round line caps), plus markers for validation.
static void series(FILE *fp, int k, const Axis *ax, const Axis *ay, const double *x,
                   const double *y, int n, const char *colour, int val) {
    int count = 0, last = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) count++, last = i;
    if (!count) return;
    fprintf(fp, "<polyline class=\"%s\" stroke=\"%s\" %s points=\"", val ? "val" : "train",
            colour, val ? VAL_STYLE : TRAIN_STYLE);
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]))
            fprintf(fp, "%.1f,%.1f ", px(ax, k, x[i]), py(ay, y[i]));
    if (count == 1) fprintf(fp, "%.1f,%.1f", px(ax, k, x[last]), py(ay, y[last]));
    fprintf(fp, "\"/>\n");
    if (!val) return;
    int every = 1 + (count - 1) / 40, j = 0; // at most about 40 markers
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]) && j++ % every == 0)
            dot(fp, px(ax, k, x[i]), py(ay, y[i]), 2.8, colour);
}

#define GRID "stroke=\"#e4e4e4\""
#define TICK_FONT "font-size=\"11\" fill=\"#333\""

// Grid lines and tick labels in panel k for axis a: the x axis (vertical grid lines,
// labels below) or the y axis (horizontal lines, labels on the left).
static void ticks(FILE *fp, int k, const Axis *a, int is_x) {
    char label[64];
    for (double t = ceil(a->lo / a->step - 1e-9); t * a->step <= a->hi + 1e-9 * a->step; t++) {
        double v = t * a->step;
        tick_label(label, sizeof label, v, a->step);
        if (is_x) {
            line(fp, px(a, k, v), PY, px(a, k, v), PY + PH, GRID);
            text(fp, px(a, k, v), PY + PH + 16, "text-anchor=\"middle\" " TICK_FONT, label);
        } else {
            line(fp, PX[k], py(a, v), PX[k] + PW, py(a, v), GRID);
            text(fp, PX[k] - 6, py(a, v) + 4, "text-anchor=\"end\" " TICK_FONT, label);
        }
    }
}

// Panel k: grid and ticks, the frame, axis labels, then every run's curves (clipped to
// the plot area).
static void panel(FILE *fp, int k, const Axis *ax, const Axis *ay, double clipped,
                  const PlotRun *runs, int nruns) {
    const double x0 = PX[k], y0 = PY;
    char label[96];
    ticks(fp, k, ax, 1);
    ticks(fp, k, ay, 0);
    fprintf(fp, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\""
            " stroke=\"#888\"/>\n", x0, y0, PW, PH);
    text(fp, x0 + PW / 2, y0 + PH + 38, "text-anchor=\"middle\" font-size=\"13\"",
         k == 0 ? "step" : "seconds");
    snprintf(label, sizeof label, "text-anchor=\"middle\" font-size=\"13\" transform=\"rotate("
             "-90 %.1f %.1f)\"", x0 - 46, y0 + PH / 2); // vertical, about its anchor
    text(fp, x0 - 46, y0 + PH / 2, label, "loss");
    if (isfinite(clipped)) {
        snprintf(label, sizeof label, "clipped: values up to %.4g are above the top", clipped);
        text(fp, x0 + PW, y0 - 5, "text-anchor=\"end\" font-size=\"10\" fill=\"#666\"", label);
    }
    int drawn = 0;
    fprintf(fp, "<g clip-path=\"url(#plot%d)\" fill=\"none\" stroke-linecap=\"round\""
            " stroke-linejoin=\"round\">\n", k);
    for (int r = 0; r < nruns; r++) {
        const double *x = xvalues(&runs[r], k), *train = runs[r].train, *val = runs[r].val;
        series(fp, k, ax, ay, x, train, runs[r].n, palette[r % 8], 0);
        series(fp, k, ax, ay, x, val, runs[r].n, palette[r % 8], 1);
        for (int i = 0; i < runs[r].n; i++)
            drawn |= isfinite(x[i]) && (isfinite(train[i]) || isfinite(val[i]));
    }
    fprintf(fp, "</g>\n");
    if (!drawn)
        text(fp, x0 + PW / 2, y0 + PH / 2, "text-anchor=\"middle\" fill=\"#666\"", "no data");
}

// Legend columns: two, unless a run name is too long to fit in half the width.
static int legend_columns(const PlotRun *runs, int nruns) {
    for (int r = 0; r < nruns; r++)
        if (runs[r].name && strlen(runs[r].name) > 40) return 1;
    return 2;
}

// The legend: the two line styles, then one entry per run with its best validation
// loss.
static void legend(FILE *fp, const PlotRun *runs, int nruns) {
    const double x = PX[0], y = LEGEND_Y;
    const int cols = legend_columns(runs, nruns);
    fprintf(fp, "<g font-size=\"12\" fill=\"#333\" stroke-linecap=\"round\">\n");
    line(fp, x, y, x + 28, y, "stroke=\"#555\" " VAL_STYLE);
    dot(fp, x + 14, y, 2.8, "#555");
    text(fp, x + 36, y + 4, "", "validation loss (solid, markers)");
    line(fp, x + 260, y, x + 288, y, "stroke=\"#555\" " TRAIN_STYLE);
    text(fp, x + 296, y + 4, "", "training loss (dashed)");
    for (int r = 0; r < nruns; r++) {
        const PlotRun *run = &runs[r];
        const char *colour = palette[r % 8];
        double xr = PX[r % cols], yr = y + 24 + 20 * (r / cols);
        char attrs[64], best_text[96];
        int best = -1;
        for (int i = 0; i < run->n; i++)
            if (isfinite(run->val[i]) && (best < 0 || run->val[i] < run->val[best])) best = i;
        snprintf(attrs, sizeof attrs, "stroke=\"%s\" stroke-width=\"3\"", colour);
        line(fp, xr, yr, xr + 28, yr, attrs);
        dot(fp, xr + 14, yr, 3.2, colour);
        fprintf(fp, "<text x=\"%.1f\" y=\"%.1f\">", xr + 36, yr + 4);
        xml_text(fp, run->name ? run->name : "(unnamed)");
        if (best < 0) snprintf(best_text, sizeof best_text, "(no validation loss)");
        else if (!isfinite(run->step[best]))
            snprintf(best_text, sizeof best_text, "best val %.4g", run->val[best]);
        else
            snprintf(best_text, sizeof best_text, "best val %.4g at step %.0f",
                     run->val[best], run->step[best]);
        // dx rather than spaces, which XML collapses
        fprintf(fp, "<tspan dx=\"10\" fill=\"#777\">%s</tspan></text>\n", best_text);
    }
    fprintf(fp, "</g>\n");
}

static void write_svg(FILE *fp, const char *title, const PlotRun *runs, int nruns) {
    double clipped;
    Axis ay = loss_axis(runs, nruns, &clipped);
    int cols = legend_columns(runs, nruns);
    int height = (int)LEGEND_Y + 24 + 20 * ((nruns + cols - 1) / cols) + 4;
    fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/"
            "2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Helvetica,"
            " Arial, sans-serif\">\n", WIDTH, height, WIDTH, height);
    fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<defs>", WIDTH, height);
    for (int k = 0; k < 2; k++)
        fprintf(fp, "<clipPath id=\"plot%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\""
                " height=\"%.1f\"/></clipPath>", k, PX[k], PY, PW, PH);
    fprintf(fp, "</defs>\n");
    text(fp, WIDTH / 2, 30, "text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\"",
         title ? title : "loss");
    for (int k = 0; k < 2; k++) {
        Axis ax = x_axis(runs, nruns, k);
        panel(fp, k, &ax, &ay, clipped, runs, nruns);
    }
    legend(fp, runs, nruns);
    fprintf(fp, "</svg>\n");
}

int plot_loss_svg(const char *path, const char *title, const PlotRun *runs, int nruns,
                  char *err) {
    if (nruns < 0 || (nruns > 0 && !runs)) {
        errorf(err, "plot %s: bad run count %d", path, nruns);
        return 1;
    }
    for (int r = 0; r < nruns; r++)
        if (runs[r].n < 0 || (runs[r].n > 0 && (!runs[r].step || !runs[r].seconds ||
                                                !runs[r].train || !runs[r].val))) {
            errorf(err, "plot %s: run %d has a negative count or a NULL array", path, r);
            return 1;
        }
    FILE *fp = replace_begin(path, err); // PATH.tmp, renamed over PATH by replace_commit
    if (!fp) return 1;
    write_svg(fp, title, runs, nruns);
    return replace_commit(fp, path, err);
}
