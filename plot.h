// plot.h: a loss plot as a self-contained SVG file (plain text, no library), readable
// by a person: two panels (loss against step, loss against seconds), one colour per
// run, validation as solid lines with markers, training as thin lines, a legend,
// labelled axes with tick values.
#ifndef KF_PLOT_H
#define KF_PLOT_H

typedef struct {
    const char *name;        // legend label
    int n;                   // points
    const double *step;      // (n)
    const double *seconds;   // (n)
    const double *train;     // (n) training loss, NAN where absent
    const double *val;       // (n) validation loss, NAN where absent
} PlotRun;

int plot_loss_svg(const char *path, const char *title, const PlotRun *runs, int nruns,
                  char *err);

#endif
