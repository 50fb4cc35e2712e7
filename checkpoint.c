// checkpoint.c: safetensors files (layout in checkpoint.h). Saving builds the JSON
// header as a string and writes header and data to a temporary file that is renamed
// over the target. Opening reads the whole file and parses the header with a small
// strict JSON parser that checks every byte it reads against the end of the buffer,
// so a truncated or corrupt file gives a message, never a crash.
#include "checkpoint.h"
#include "fileio.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4, "safetensors F32 needs a 4-byte IEEE float");

#define ST_MAXDIM 8   // most dimensions accepted in a file (kronformer writes up to 4)

// ------------------------------------------------------------------------- saving

// A growing string: the JSON header is built here before anything is written.
typedef struct { char *s; size_t len, cap; int oom; } Str;

static void str_add(Str *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) { b->oom = 1; return; }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void str_cat(Str *b, const char *s) { str_add(b, s, strlen(s)); }

// s as a JSON string literal: quotes, backslashes and control characters escaped; all
// other bytes (UTF-8 included) are copied as they are, which JSON allows.
static void str_json(Str *b, const char *s) {
    str_cat(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; str_add(b, esc, 2); }
        else if (c == '\n') str_cat(b, "\\n");
        else if (c == '\t') str_cat(b, "\\t");
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); str_cat(b, esc); }
        else str_add(b, s, 1);
    }
    str_cat(b, "\"");
}

// Checks the tensors and metadata and builds the header, padded with spaces so that
// the data starts at a multiple of 8 bytes (8-byte length prefix + header).
static int build_header(Str *h, const StTensor *t, int n, const char *const *meta,
                        int nmeta, char *err) {
    str_cat(h, "{");
    if (nmeta > 0) {
        str_json(h, "__metadata__");
        str_cat(h, ":{");
        for (int i = 0; i < nmeta; i++) {
            const char *key = meta[2 * i], *value = meta[2 * i + 1];
            if (!key || !value)
                return errorf(err, "metadata pair %d has a NULL key or value", i);
            for (int j = 0; j < i; j++)
                if (!strcmp(key, meta[2 * j]))
                    return errorf(err, "metadata key \"%s\" is given twice", key);
            if (i) str_cat(h, ",");
            str_json(h, key);
            str_cat(h, ":");
            str_json(h, value);
        }
        str_cat(h, "}");
    }
    uint64_t offset = 0; // bytes of data before tensor i
    for (int i = 0; i < n; i++) {
        const char *name = t[i].name;
        if (!name || !*name || !strcmp(name, "__metadata__"))
            return errorf(err, "tensor %d has no name or the reserved name __metadata__", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(name, t[j].name))
                return errorf(err, "tensor \"%s\" is given twice", name);
        if (t[i].ndim < 0 || t[i].ndim > 4)
            return errorf(err, "tensor \"%s\" has ndim %d; expected 0 to 4", name, t[i].ndim);
        uint64_t numel = 1; // kept below SIZE_MAX / sizeof(real): fits in memory
        for (int d = 0; d < t[i].ndim; d++) {
            uint64_t dim = (uint64_t)t[i].shape[d];
            if (t[i].shape[d] < 0 || (dim && numel > SIZE_MAX / sizeof(real) / dim))
                return errorf(err, "tensor \"%s\" has a negative or too large dimension",
                              name);
            numel *= dim;
        }
        if (numel > 0 && !t[i].data && !t[i].ints)
            return errorf(err, "tensor \"%s\" has no data", name);
        char num[64];
        if (nmeta > 0 || i > 0) str_cat(h, ",");
        str_json(h, name);
        str_cat(h, t[i].ints ? ":{\"dtype\":\"I32\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, d ? ",%d" : "%d", t[i].shape[d]);
            str_cat(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)offset, (unsigned long long)(offset + 4 * numel));
        str_cat(h, num);
        offset += 4 * numel;
    }
    str_cat(h, "}");
    while (h->len % 8) str_cat(h, " ");
    return h->oom ? errorf(err, "out of memory building the checkpoint header") : 0;
}

// Writes the length prefix, the header and every tensor as little-endian F32 (or I32). Stops at
// the first write error, which the stream's error flag keeps for replace_commit.
static void write_all(FILE *fp, const Str *h, const StTensor *t, int n) {
    unsigned char buf[4096]; // staging for 1024 converted values
    put_le(buf, h->len, 8);
    if (fwrite(buf, 1, 8, fp) != 8 || fwrite(h->s, 1, h->len, fp) != h->len) return;
    for (int i = 0; i < n; i++) {
        size_t numel = 1, k = 0;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        for (size_t j = 0; j < numel; j++) {
            float x = t[i].ints ? 0 : (float)t[i].data[j];
            uint32_t bits = (uint32_t)(t[i].ints ? t[i].ints[j] : 0);
            if (!t[i].ints) memcpy(&bits, &x, 4);
            put_le(buf + 4 * k++, bits, 4);
            if (k == sizeof buf / 4 || j + 1 == numel) {
                if (fwrite(buf, 4, k, fp) != k) return;
                k = 0;
            }
        }
    }
}

int st_save(const char *path, const StTensor *tensors, int n, const char *const *meta,
            int nmeta, char *err) {
    if (n < 0 || nmeta < 0 || (n > 0 && !tensors) || (nmeta > 0 && !meta))
        return errorf(err, "st_save %s: bad arguments (n=%d, nmeta=%d)", path, n, nmeta);
    Str h = {0};
    if (build_header(&h, tensors, n, meta, nmeta, err)) { free(h.s); return 1; }
    // after a crash PATH holds either the old or the new checkpoint, never a partial one
    FILE *fp = replace_begin(path, err);
    int rc = 1;
    if (fp) {
        write_all(fp, &h, tensors, n);   // replace_commit sees a write error through ferror
        rc = replace_commit(fp, path, err);
    }
    free(h.s);
    return rc;
}

// ------------------------------------------------------------------------ opening

typedef struct {
    char *name, *dtype;          // point into the file buffer (decoded in place)
    int ndim, seen;              // seen: bit 1 dtype, 2 shape, 4 data_offsets
    uint64_t shape[ST_MAXDIM];
    uint64_t begin, end;         // byte range in the data section
} Entry;

struct StFile {
    char *buf;                   // (size) the whole file
    size_t size;
    const unsigned char *data;   // (ndata) the data section, after the header
    uint64_t ndata;
    struct { char *key, *value; } *meta; // (nmeta) in the file buffer, decoded
    int nmeta;
    Entry *t;                    // (nt)
    int nt;
};

typedef struct {
    char *p, *end;               // cursor and end of the JSON header
    const char *base;            // start of the file, for positions in messages
    const char *path;
    char *err;
} Parser;

static int perr(Parser *ps, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return errorf(ps->err,
                  "%s: bad safetensors header at byte %ld: %s (file damaged or not"
                  " a safetensors file; save it again)",
                  ps->path, (long)(ps->p - ps->base), what);
}

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}
// Skips whitespace; consumes c and returns 1 if c comes next.
static int accept(Parser *ps, char c) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) { ps->p++; return 1; }
    return 0;
}
static int expect(Parser *ps, char c) {
    return accept(ps, c) ? 0 : perr(ps, "expected '%c'", c);
}

static int hex4(Parser *ps, uint32_t *out) {
    if (ps->end - ps->p < 4) return perr(ps, "truncated \\u escape");
    *out = 0;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0) return perr(ps, "bad hex digit in \\u escape");
        *out = *out << 4 | (uint32_t)v;
    }
    return 0;
}

// A JSON string, decoded in place: no escape sequence is shorter than the bytes it
// stands for, so the write position (starting at the opening quote) stays behind the
// read position, and the terminating NUL lands at the closing quote at the latest.
static int parse_string(Parser *ps, char **out) {
    if (expect(ps, '"')) return 1;
    char *w = ps->p - 1;
    *out = w;
    for (;;) {
        if (ps->p >= ps->end) return perr(ps, "unterminated string");
        unsigned char c = (unsigned char)*ps->p++;
        if (c == '"') break;
        if (c < 0x20) return perr(ps, "control character in a string");
        if (c != '\\') { *w++ = (char)c; continue; }
        if (ps->p >= ps->end) return perr(ps, "unterminated string");
        c = (unsigned char)*ps->p++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *hit = strchr(from, c);
        if (hit && c) { *w++ = to[hit - from]; continue; }
        uint32_t cp, lo;
        if (c != 'u') return perr(ps, "bad escape \\%c", c);
        if (hex4(ps, &cp)) return 1;
        if (cp >= 0xD800 && cp < 0xDC00) { // a UTF-16 surrogate pair: \uD8xx\uDCxx
            if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                return perr(ps, "unpaired surrogate in \\u escape");
            ps->p += 2;
            if (hex4(ps, &lo)) return 1;
            if (lo < 0xDC00 || lo >= 0xE000) return perr(ps, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
            return perr(ps, "unpaired surrogate in \\u escape");
        }
        if (cp == 0) return perr(ps, "\\u0000 in a string");
        // UTF-8: a lead byte that tells the length, then `extra` bytes of 6 bits each
        static const unsigned char lead[4] = {0x00, 0xC0, 0xE0, 0xF0};
        int extra = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
        *w++ = (char)(lead[extra] | (cp >> (6 * extra)));
        for (int i = extra - 1; i >= 0; i--) *w++ = (char)(0x80 | ((cp >> (6 * i)) & 0x3F));
    }
    *w = 0;
    return 0;
}

// A non-negative integer (all the header holds: shapes and byte offsets).
static int parse_uint(Parser *ps, uint64_t *out) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return perr(ps, "expected a non-negative integer");
    *out = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        if (*out > (UINT64_MAX - 9) / 10) return perr(ps, "integer too large");
        *out = *out * 10 + (uint64_t)(*ps->p++ - '0');
    }
    return 0;
}

static int parse_uint_array(Parser *ps, uint64_t *out, int max, int *n) {
    *n = 0;
    if (expect(ps, '[')) return 1;
    if (accept(ps, ']')) return 0;
    do {
        if (*n == max) return perr(ps, "array longer than %d", max);
        if (parse_uint(ps, &out[(*n)++])) return 1;
    } while (accept(ps, ','));
    return expect(ps, ']');
}

// An object whose members are handled by member(ps, key, ctx) after the ':'.
typedef int (*Member)(Parser *ps, char *key, void *ctx);
static int parse_object(Parser *ps, Member member, void *ctx) {
    if (expect(ps, '{')) return 1;
    if (accept(ps, '}')) return 0;
    do {
        char *key;
        if (parse_string(ps, &key) || expect(ps, ':') || member(ps, key, ctx)) return 1;
    } while (accept(ps, ','));
    return expect(ps, '}');
}

// Makes room for item n of an array of elem-byte items whose capacity is n rounded up
// to a power of two: returns the (maybe moved) array, or NULL if out of memory.
static void *grow(void *arr, int n, size_t elem) {
    if (n & (n - 1)) return arr; // n is not a power of two: there is room
    return realloc(arr, (n ? 2 * (size_t)n : 1) * elem);
}

static int meta_member(Parser *ps, char *key, void *ctx) {
    StFile *f = ctx;
    char *value;
    if (parse_string(ps, &value)) return 1;
    if (st_meta(f, key)) return perr(ps, "metadata key \"%s\" twice", key);
    void *grown = grow(f->meta, f->nmeta, sizeof *f->meta);
    if (!grown) return perr(ps, "out of memory");
    f->meta = grown;
    f->meta[f->nmeta].key = key;
    f->meta[f->nmeta].value = value;
    f->nmeta++;
    return 0;
}

static int tensor_member(Parser *ps, char *key, void *ctx) {
    Entry *e = ctx;
    int bit = !strcmp(key, "dtype") ? 1 : !strcmp(key, "shape") ? 2
            : !strcmp(key, "data_offsets") ? 4 : 0;
    if (!bit) return perr(ps, "unknown field \"%s\" in tensor \"%s\"", key, e->name);
    if (e->seen & bit) return perr(ps, "field \"%s\" twice in tensor \"%s\"", key, e->name);
    e->seen |= bit;
    if (bit == 1) return parse_string(ps, &e->dtype);
    if (bit == 2) return parse_uint_array(ps, e->shape, ST_MAXDIM, &e->ndim);
    uint64_t off[2];
    int n;
    if (parse_uint_array(ps, off, 2, &n)) return 1;
    if (n != 2) return perr(ps, "data_offsets of \"%s\" needs 2 entries", e->name);
    e->begin = off[0];
    e->end = off[1];
    return 0;
}

static Entry *find(const StFile *f, const char *name) {
    for (int i = 0; i < f->nt; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

static int top_member(Parser *ps, char *key, void *ctx) {
    StFile *f = ctx;
    if (!strcmp(key, "__metadata__")) return parse_object(ps, meta_member, f);
    if (find(f, key)) return perr(ps, "tensor \"%s\" twice", key);
    void *grown = grow(f->t, f->nt, sizeof *f->t);
    if (!grown) return perr(ps, "out of memory");
    f->t = grown;
    Entry *e = &f->t[f->nt];
    memset(e, 0, sizeof *e);
    e->name = key;
    if (parse_object(ps, tensor_member, e)) return 1;
    if (e->seen != 7)
        return perr(ps, "tensor \"%s\" lacks dtype, shape or data_offsets", key);
    f->nt++;
    return 0;
}

// Bytes per element of the safetensors dtypes, so that files holding other dtypes
// still open (st_read then names the dtype it cannot convert); 0 if unknown.
static int dtype_size(const char *dtype) {
    static const char *names[] = {"F64", "I64", "U64", "F32", "I32", "U32", "F16", "BF16",
                                  "I16", "U16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    static const int sizes[] = {8, 8, 8, 4, 4, 4, 2, 2, 2, 2, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(dtype, names[i])) return sizes[i];
    return 0;
}

// Parses the header and checks that every tensor's byte range lies in the data
// section and has the size its dtype and shape call for.
static int parse_header(StFile *f, const char *path, char *err) {
    const unsigned char *u = (const unsigned char *)f->buf;
    if (f->size < 8)
        return errorf(err, "%s: %zu bytes, too short for a safetensors file", path, f->size);
    uint64_t n = get_le(u, 8);
    if (n > f->size - 8)
        return errorf(err,
                      "%s: header length %llu exceeds the file size %zu (file truncated or"
                      " not safetensors)",
                      path, (unsigned long long)n, f->size);
    Parser ps = {f->buf + 8, f->buf + 8 + n, f->buf, path, err};
    if (parse_object(&ps, top_member, f)) return 1;
    skip_ws(&ps);
    if (ps.p != ps.end) return perr(&ps, "text after the header object");
    f->data = u + 8 + n;
    f->ndata = f->size - 8 - n;
    for (int i = 0; i < f->nt; i++) {
        const Entry *e = &f->t[i];
        int esize = dtype_size(e->dtype);
        if (!esize)
            return errorf(err, "%s: tensor \"%s\" has unknown dtype \"%s\"", path, e->name,
                          e->dtype);
        uint64_t numel = 1; // saturates rather than wraps, so it never matches by accident
        for (int d = 0; d < e->ndim; d++) {
            uint64_t dim = e->shape[d];
            numel = dim && numel > UINT64_MAX / dim ? UINT64_MAX : numel * dim;
        }
        if (e->begin > e->end || e->end > f->ndata)
            return errorf(err,
                          "%s: tensor \"%s\" has data_offsets [%llu, %llu] outside the %llu"
                          " data bytes (file truncated?)",
                          path, e->name, (unsigned long long)e->begin,
                          (unsigned long long)e->end, (unsigned long long)f->ndata);
        uint64_t span = e->end - e->begin;
        if (span % (uint64_t)esize || span / (uint64_t)esize != numel)
            return errorf(err, "%s: tensor \"%s\" spans %llu bytes, which does not match its"
                          " dtype %s and shape", path, e->name, (unsigned long long)span,
                          e->dtype);
    }
    return 0;
}

StFile *st_open(const char *path, char *err) {
    StFile *f = calloc(1, sizeof *f);
    if (!f) { errorf(err, "out of memory"); return NULL; }
    if (read_file(path, &f->buf, &f->size, err) || parse_header(f, path, err)) {
        st_close(f);
        return NULL;
    }
    return f;
}

void st_close(StFile *f) {
    if (!f) return;
    free(f->buf);
    free(f->meta);
    free(f->t);
    free(f);
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

// "[2, 3]": at most ST_MAXDIM numbers of at most 19 digits (parse_uint's limit).
static void format_shape(char s[192], int ndim, const long long *shape) {
    int len = sprintf(s, "[");
    for (int d = 0; d < ndim; d++) len += sprintf(s + len, d ? ", %lld" : "%lld", shape[d]);
    sprintf(s + len, "]");
}

// The entry `name`, checked to have dtype and shape; NULL with a message otherwise.
static const Entry *find_checked(const StFile *f, const char *name, const char *dtype,
                                 int ndim, const int *shape, char *err) {
    const Entry *e = find(f, name);
    if (!e) {
        errorf(err, "checkpoint has no tensor \"%s\" (saved by a different model"
               " configuration?)", name);
        return NULL;
    }
    if (strcmp(e->dtype, dtype)) {
        errorf(err, "tensor \"%s\" is %s; kronformer reads it as %s only (convert it, e.g."
               " with numpy's astype)", name, e->dtype, dtype);
        return NULL;
    }
    long long have[ST_MAXDIM], want[ST_MAXDIM];
    int nwant = ndim < 0 ? 0 : ndim > ST_MAXDIM ? ST_MAXDIM : ndim, same = ndim == e->ndim;
    for (int d = 0; d < e->ndim; d++) have[d] = (long long)e->shape[d];
    for (int d = 0; d < nwant; d++) want[d] = shape[d];
    for (int d = 0; same && d < ndim; d++) same = have[d] == want[d];
    if (!same) {
        char have_s[192], want_s[192];
        format_shape(have_s, e->ndim, have);
        format_shape(want_s, nwant, want);
        errorf(err, "tensor \"%s\" has shape %s in the checkpoint but the model expects"
               " %s (saved with a different configuration?)", name, have_s, want_s);
        return NULL;
    }
    return e;
}

int st_read_ints(const StFile *f, const char *name, int32_t *out, int ndim,
                 const int *shape, int *present, char *err) {
    if (present && !(*present = find(f, name) != NULL)) return 0;
    const Entry *e = find_checked(f, name, "I32", ndim, shape, err);
    if (!e) return 1;
    size_t numel = (size_t)((e->end - e->begin) / 4);
    for (size_t i = 0; i < numel; i++) out[i] = (int32_t)get_le(f->data + e->begin + 4 * i, 4);
    return 0;
}

int st_read(const StFile *f, const char *name, real *out, int ndim, const int *shape,
            char *err) {
    const Entry *e = find_checked(f, name, "F32", ndim, shape, err);
    if (!e) return 1;
    const unsigned char *p = f->data + e->begin;
    size_t numel = (size_t)((e->end - e->begin) / 4);
    for (size_t i = 0; i < numel; i++, p += 4) {
        uint32_t bits = (uint32_t)get_le(p, 4);
        float x;
        memcpy(&x, &bits, 4);
        out[i] = (real)x;
    }
    return 0;
}
