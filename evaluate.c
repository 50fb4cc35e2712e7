// evaluate.c: see evaluate.h.
#include "evaluate.h"
#include "fileio.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>

int score_translations(EvalResult *r, char *const *hyps, const char *const *refs, int n,
                       char *err) {
    const char *const *h = (const char *const *)hyps;
    r->sentences = n;
    return bleu_corpus(&r->bleu, h, refs, (size_t)n, err) ||
           chrf_corpus(&r->chrf, h, refs, (size_t)n, err);
}

int evaluate_valid(Model *m, const Dataset *d, int max_sentences, const DecodeOptions *o,
                   EvalResult *r, char *err) {
    const TokenFile *src = &d->valid_src, *tgt = &d->valid_tgt;
    int n = src->n < (size_t)max_sentences ? (int)src->n : max_sentences, rc = 1;
    const int **ids = malloc((size_t)(n ? n : 1) * sizeof(int *));
    int *len = malloc((size_t)(n ? n : 1) * sizeof(int));
    char **refs = calloc((size_t)(n ? n : 1), sizeof(char *));
    char **hyps = calloc((size_t)(n ? n : 1), sizeof(char *));
    memset(r, 0, sizeof(*r));
    if (!ids || !len || !refs || !hyps) { errorf(err, "out of memory for %d validation pairs", n); goto done; }
    for (int i = 0; i < n; i++) {
        ids[i] = src->tok + src->off[i];
        len[i] = (int)(src->off[i + 1] - src->off[i]);
        refs[i] = tokens_to_text(d->tok, tgt->tok + tgt->off[i],
                                 (size_t)(tgt->off[i + 1] - tgt->off[i]), err);
        if (!refs[i]) goto done;
    }
    TranslateStats st;
    double t0 = seconds_now();
    if (translate_ids(m, d->tok, ids, len, n, o, hyps, &st, err)) goto done;
    r->seconds = seconds_since(t0);
    r->tokens = st.tokens;
    r->truncated = st.truncated;
    rc = score_translations(r, hyps, (const char *const *)refs, n, err);
done:
    for (int i = 0; refs && i < n; i++) free(refs[i]);
    for (int i = 0; hyps && i < n; i++) free(hyps[i]);
    free(refs);
    free(hyps);
    free(ids);
    free(len);
    return rc;
}
