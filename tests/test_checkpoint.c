// test_checkpoint.c: safetensors round trips, the exact bytes of a tiny file, errors on
// truncated and corrupt files, atomic saving; and the loss plot's SVG, checked with a
// small well-formedness checker.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../checkpoint.h"
#include "../plot.h"
#include "check.h"

static char dir[] = "/tmp/kf_test_checkpoint_XXXXXX";
static char err[KF_ERRLEN];

static const char *tmp_path(const char *name) {
    static char path[4][256];
    static int next = 0;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

// The whole file (NUL-terminated), its length in *len; NULL if it cannot be read.
static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, fp);
    buf[*len] = 0;
    fclose(fp);
    return buf;
}

static void spit(const char *path, const void *buf, size_t len) {
    FILE *fp = fopen(path, "wb");
    fwrite(buf, 1, len, fp);
    fclose(fp);
}

// A file made of the 8-byte length prefix, the header text and len data bytes.
static void spit_st(const char *path, const char *header, const void *data, size_t len) {
    size_t n = strlen(header);
    unsigned char *buf = malloc(8 + n + len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    if (len) memcpy(buf + 8 + n, data, len);
    spit(path, buf, 8 + n + len);
    free(buf);
}

// st_open must fail with a message; returns 1 if it did.
static int rejects(const char *path) {
    err[0] = 0;
    StFile *f = st_open(path, err);
    st_close(f);
    return !f && err[0];
}

// ------------------------------------------------------------------- safetensors

static void test_round_trip(void) {
    // shapes of every rank kronformer writes, a scalar and an empty tensor
    const int shapes[5][5] = {
        {3, 2, 3, 4}, {2, 1, 7}, {4, 2, 1, 3, 2}, {0}, {2, 0, 3}}; // ndim, dims
    const char *names[5] = {"encoder.qkv.weight", "embed.A", "d_fc.w", "scale", "empty"};
    real *data[5];
    StTensor t[5];
    uint64_t rng = 42;
    for (int i = 0; i < 5; i++) {
        int numel = 1;
        t[i] = (StTensor){.name = names[i], .ndim = shapes[i][0]};
        for (int d = 0; d < shapes[i][0]; d++) numel *= (t[i].shape[d] = shapes[i][d + 1]);
        data[i] = malloc((size_t)(numel ? numel : 1) * sizeof(real));
        for (int j = 0; j < numel; j++) data[i][j] = (real)rng_normal(&rng);
        t[i].data = data[i];
    }
    const char *tricky = "say \"hi\" \\ C:\\path\\ tab\there\nline\x01 caf\xc3\xa9";
    const char *meta[] = {
        "config", "{\"C\": 64, \"embed\": \"kron:4\"}", "note", tricky, "", "empty key"};
    const char *path = tmp_path("round.safetensors");
    int rc = st_save(path, t, 5, meta, 3, err);
    CHECK(rc == 0, "st_save_ok", "%s", err);
    StFile *f = st_open(path, err);
    CHECK(f != NULL, "st_open_ok", "%s", err);
    if (!f) return;
    CHECK(st_meta(f, "config") && !strcmp(st_meta(f, "config"), meta[1]), "meta_json_value",
          "got %s", st_meta(f, "config"));
    CHECK(st_meta(f, "note") && !strcmp(st_meta(f, "note"), tricky), "meta_escaped_value",
          "got %s", st_meta(f, "note"));
    CHECK(st_meta(f, "") && !strcmp(st_meta(f, ""), "empty key"), "meta_empty_key",
          "missing");
    CHECK(st_meta(f, "missing") == NULL, "meta_missing_is_null", "not NULL");
    int exact = 1;
    for (int i = 0; i < 5; i++) {
        int numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        real *out = malloc((size_t)(numel ? numel : 1) * sizeof(real));
        if (st_read(f, names[i], out, t[i].ndim, t[i].shape, err)) {
            exact = 0;
            printf("%s\n", err);
        }
        for (int j = 0; j < numel; j++) exact &= out[j] == (real)(float)data[i][j];
        free(out);
    }
    CHECK(exact, "round_trip_values_exact",
          "a value or shape differs after save/open/read");

    // errors of st_read: wrong shape, wrong rank, missing name
    real out[24];
    int wrong[3] = {2, 4, 3};
    CHECK(st_read(f, "encoder.qkv.weight", out, 3, wrong, err) && strstr(err, "[2, 3, 4]")
          && strstr(err, "[2, 4, 3]"), "read_wrong_shape", "err: %s", err);
    CHECK(st_read(f, "encoder.qkv.weight", out, 2, wrong, err) && strstr(err, "shape"),
          "read_wrong_rank", "err: %s", err);
    CHECK(st_read(f, "nope", out, 1, wrong, err) && strstr(err, "nope"),
          "read_missing_name", "err: %s", err);
    st_close(f);

    // layout: length prefix, 8-byte alignment, space padding, data where the header says
    size_t len;
    unsigned char *buf = (unsigned char *)slurp(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    size_t total = 24 + 7 + 12 + 1 + 0;
    int padded = n % 8 == 0 && buf[8 + n - 1] != 0;
    for (uint64_t i = n; i > 0 && buf[8 + i - 1] != '}'; i--)
        padded &= buf[8 + i - 1] == ' ';
    CHECK(8 + n + 4 * total == len, "layout_sizes", "prefix %llu, file %zu bytes",
          (unsigned long long)n, len);
    CHECK(padded && (8 + n) % 8 == 0, "layout_aligned_space_padding", "header length %llu",
          (unsigned long long)n);
    // "embed.A" is the second tensor: its 7 values follow the 24 of the first
    float first;
    memcpy(&first, buf + 8 + n + 4 * 24, 4); // the host is little-endian in this check
    CHECK(
        strstr(
            (char *)buf + 8,
            "\"embed.A\":{\"dtype\":\"F32\",\"shape\":[1,7],\"data_offsets\":[96,124]}") &&
            first == (float)data[1][0],
        "layout_offsets", "header or data misplaced");
    free(buf);
    for (int i = 0; i < 5; i++) free(data[i]);
}

// The exact bytes of tiny files, written out by hand.
static void test_exact_bytes(void) {
    const real a[2] = {1, 2};
    StTensor t = {.name = "a", .data = a, .ndim = 1, .shape = {2}};
    const char *path = tmp_path("tiny.safetensors");
    const char expect[] =
        "\x38\0\0\0\0\0\0\0" // 56: the 54-byte JSON below and 2 spaces
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  "
        "\x00\x00\x80\x3f\x00\x00\x00\x40"; // 1.0f, 2.0f little-endian
    size_t len;
    st_save(path, &t, 1, NULL, 0, err);
    char *buf = slurp(path, &len);
    CHECK(buf && len == sizeof expect - 1 && !memcmp(buf, expect, len), "exact_bytes_tiny",
          "got %zu bytes: %.80s", len, buf ? buf + 8 : "");
    free(buf);

    const char *meta[2] = {"k", "a\"b\\c\n"};
    const char expect_meta[] =
        "\x58\0\0\0\0\0\0\0" // 88: 87 bytes of JSON and 1 space
        "{\"__metadata__\":{\"k\":\"a\\\"b\\\\c\\n\"},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} "
        "\x00\x00\x80\x3f\x00\x00\x00\x40";
    st_save(path, &t, 1, meta, 1, err);
    buf = slurp(path, &len);
    CHECK(buf && len == sizeof expect_meta - 1 && !memcmp(buf, expect_meta, len),
          "exact_bytes_escaped_metadata", "got %zu bytes: %.100s", len, buf ? buf + 8 : "");
    free(buf);

    // the header is padded to a multiple of 8 whatever its length: names of 1 to 8 bytes
    int aligned = 1;
    for (int k = 1; k <= 8; k++) {
        char name[9] = "xxxxxxxx";
        name[k] = 0;
        t.name = name;
        st_save(path, &t, 1, NULL, 0, err);
        buf = slurp(path, &len);
        size_t json = 53 + (size_t)k, n = (json + 7) / 8 * 8; // 56, 56, 56, 64, ...
        aligned &= buf && len == 8 + n + 8 && (unsigned char)buf[0] == n &&
                   buf[7 + json] == '}' && !memcmp(buf + 8 + n, expect + 64, 8);
        for (size_t i = json; buf && i < n; i++) aligned &= buf[8 + i] == ' ';
        free(buf);
    }
    CHECK(aligned, "header_padded_to_8_bytes", "a header length is not a multiple of 8");
}

static const char *const valid =
    "{\"__metadata__\":{\"k\":\"v\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
static const unsigned char two[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};

static void test_truncated(void) {
    const char *path = tmp_path("trunc.safetensors");
    spit_st(path, valid, two, 8);
    size_t len;
    char *whole = slurp(path, &len);
    CHECK(!rejects(path), "truncated_control_opens", "the untruncated file: %s", err);
    int all = 1;
    for (size_t k = 0; k < len; k++) { // every proper prefix of the file
        spit(path, whole, k);
        if (!rejects(path)) { all = 0; printf("prefix %zu accepted\n", k); }
    }
    CHECK(all, "truncated_file_every_prefix", "some prefix opened");
    // every prefix of the JSON alone, with a consistent length prefix and no data after
    // it, so that reading past the header would leave the buffer
    all = 1;
    char header[256];
    for (size_t k = 0; k < strlen(valid); k++) {
        memcpy(header, valid, k);
        header[k] = 0;
        spit_st(path, header, NULL, 0);
        if (!rejects(path)) { all = 0; printf("header prefix %zu accepted\n", k); }
    }
    CHECK(all, "truncated_header_every_prefix", "some prefix opened");
    free(whole);
}

static void test_corrupt(void) {
    const char *path = tmp_path("bad.safetensors");
    // a valid header with a few variants, to show that the framing is right
    const char *good[] = {
        valid,
        " {\"a\" : {\"shape\":[ 2 ],\"data_offsets\":[0,8] , \"dtype\":\"F32\"}}\n\t ",
        "{\"\\u00e9\\ud83d\\ude00\\/"
        "\\t\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}",
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
        "{}",
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        spit_st(path, good[i], two, 8);
        if (rejects(path)) { ok = 0; printf("good header %zu rejected: %s\n", i, err); }
    }
    CHECK(ok, "corrupt_controls_open", "a valid header was rejected");
    spit_st(path, good[2], two, 8);
    StFile *f = st_open(path, err);
    real out[2];
    int shape[2] = {2, 1};
    CHECK(f && !st_read(f, "\xc3\xa9\xf0\x9f\x98\x80/\t", out, 2, shape, err) &&
              out[1] == 2,
          "unicode_escapes_decode_to_utf8", "%s", err);
    st_close(f);
    spit_st(path, good[3], two, 8);
    f = st_open(path, err);
    CHECK(f && st_read(f, "h", out, 1, (int[]){4}, err) && strstr(err, "F16"),
          "read_wrong_dtype", "err: %s", err);
    st_close(f);

#define T(s) "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" s "}}"
    const char *bad[] = {
        "",
        " ",
        "[]",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1}",
        "{\"a\":{}}",
        "{,}",
        "{\"a\" {}}",
        T("[0,8]") ",",
        T("[0,8]") "x",
        T("[0,8],"),
        T("[0,8]]"),
        T("[0 8]"),
        T("[0,8,]"),
        T("[0]"),
        T("[0,8,8]"),
        T("[-1,8]"),
        T("[0.0,8]"),
        T("[0,8e0]"),
        T("[0,99999999999999999999]"),
        T("[0,12]"),
        T("[8,4]"),
        T("[0,4]"),
        T("[4,12]"),
        T("[\"0\",8]"),
        "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,1,1,1,1,1,1,1,1],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}",
        "{\"a\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}",
        T("[0,8]") "," T("[0,8]"), // text after the object
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", // twice
        "{\"__metadata__\":{\"k\":1}}",
        "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}",
        "{\"__metadata__\":[]}",
        "{\"__metadata__\":{\"k\":\"v\"}",
        "{\"__metadata__\":{\"k\":\"\\q\"}}",
        "{\"__metadata__\":{\"k\":\"\\u12\"}}",
        "{\"__metadata__\":{\"k\":\"\\u12g4\"}}",
        "{\"__metadata__\":{\"k\":\"\\ud800\"}}",
        "{\"__metadata__\":{\"k\":\"\\ud800\\u0041\"}}",
        "{\"__metadata__\":{\"k\":\"\\udc00\"}}",
        "{\"__metadata__\":{\"k\":\"\\u0000\"}}",
        "{\"__metadata__\":{\"k\":\"a\nb\"}}",
        "{\"__metadata__\":{\"k\":\"v\\",
        "{\"__metadata__\":{\"k\":\"v",
        "{'a':{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
    };
#undef T
    int all = 1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        spit_st(path, bad[i], two, 8);
        if (!rejects(path)) {
            all = 0;
            printf("corrupt header %zu accepted: %s\n", i, bad[i]);
        }
    }
    CHECK(all, "corrupt_headers_rejected", "see above");

    // a header length beyond the file, and a file shorter than the length prefix
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    spit(path, huge, sizeof huge);
    CHECK(rejects(path) && strstr(err, "header length"), "header_length_beyond_file",
          "err: %s", err);
    CHECK(rejects(tmp_path("does-not-exist")) && strstr(err, "does-not-exist"),
          "open_missing_file", "err: %s", err);

    // every byte of a valid file replaced by characters that matter to the parser: a
    // message or a successful open, never a crash (run under a sanitizer to see more)
    spit_st(path, valid, two, 8);
    size_t len;
    char *whole = slurp(path, &len), *copy = malloc(len);
    const char subst[] = "\"{}[],:\\0 u\x01\xff";
    int opened = 0, rejected = 0, silent = 0;
    for (size_t k = 0; k < len; k++)
        for (size_t s = 0; s < sizeof subst - 1; s++) {
            memcpy(copy, whole, len);
            copy[k] = subst[s];
            spit(path, copy, len);
            err[0] = 0;
            f = st_open(path, err);
            if (f) { opened++; st_read(f, "a", out, 1, (int[]){2}, err); }
            else { rejected++; silent += !err[0]; }
            st_close(f);
        }
    CHECK(rejected > 0 && opened > 0 && silent == 0, "mutated_bytes_handled",
          "%d opened, %d rejected, %d without a message", opened, rejected, silent);
    free(whole);
    free(copy);
}

static void test_atomic_save(void) {
    const real a[2] = {1, 2}, b[3] = {3, 4, 5};
    StTensor ta = {.name = "a", .data = a, .ndim = 1, .shape = {2}},
             tb = {.name = "b", .data = b, .ndim = 1, .shape = {3}}, dup[2] = {ta, ta};
    const char *path = tmp_path("atomic.safetensors"),
               *tmp = tmp_path("atomic.safetensors.tmp");
    st_save(path, &ta, 1, NULL, 0, err);
    size_t len0, len1;
    char *before = slurp(path, &len0), *after;

    CHECK(st_save(path, dup, 2, NULL, 0, err) && strstr(err, "twice"),
          "save_rejects_duplicates", "err: %s", err);
    mkdir(tmp, 0700); // the temporary file cannot be created: a directory is in the way
    CHECK(st_save(path, &tb, 1, NULL, 0, err) && strstr(err, "cannot create"),
          "save_fails_when_tmp_blocked", "err: %s", err);
    rmdir(tmp);
    after = slurp(path, &len1);
    CHECK(after && len0 == len1 && !memcmp(before, after, len0) && access(tmp, F_OK) != 0,
          "failed_save_leaves_file_untouched", "the file changed or %s was left behind",
          tmp);
    free(after);

    CHECK(st_save(tmp_path("no/such/dir.safetensors"), &ta, 1, NULL, 0, err)
          && strstr(err, "no/such/dir.safetensors.tmp"), "save_into_missing_dir_fails",
          "err: %s", err);

    CHECK(st_save(path, &tb, 1, NULL, 0, err) == 0, "save_over_existing", "%s", err);
    StFile *f = st_open(path, err);
    real out[3] = {0};
    CHECK(f && !st_read(f, "b", out, 1, tb.shape, err) && out[2] == 5 &&
          st_read(f, "a", out, 1, ta.shape, err) && access(tmp, F_OK) != 0,
          "save_over_existing_replaces", "%s", err);
    st_close(f);
    free(before);
}

// --------------------------------------------------------------------------- SVG

// An entity at s ('&'): returns the character after its ';', or NULL if invalid.
static const char *entity(const char *s) {
    const char *names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(s, names[i], strlen(names[i]))) return s + strlen(names[i]);
    if (s[1] != '#') return NULL;
    int hex = s[2] == 'x', n = 0;
    for (s += 2 + hex; hex ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s); s++)
        n++;
    return n && *s == ';' ? s + 1 : NULL;
}

static const char *name_end(const char *s) {
    while (*s && (isalnum((unsigned char)*s) || strchr(":-_.", *s))) s++;
    return s;
}

// A small well-formedness check, not a full XML parser: an optional declaration, one
// root element, tags balanced and nested, attributes quoted and separated, '&' only in
// valid entities, no '<' in attribute values. NULL if fine, else the problem.
static const char *xml_check(const char *s) {
    const char *open[64];
    size_t open_len[64];
    int depth = 0, roots = 0;
    if (!strncmp(s, "<?xml", 5)) {
        if (!(s = strstr(s, "?>"))) return "unterminated XML declaration";
        s += 2;
    }
    while (*s) {
        if (*s == '&') {
            if (!(s = entity(s))) return "bad entity in text";
            continue;
        }
        if (*s != '<') {
            if (depth == 0 && !isspace((unsigned char)*s))
                return "text outside the root element";
            s++;
            continue;
        }
        if (!strncmp(s, "<!--", 4)) {
            if (!(s = strstr(s, "-->"))) return "unterminated comment";
            s += 3;
            continue;
        }
        int closing = s[1] == '/';
        const char *name = s + 1 + closing, *end = name_end(name);
        size_t len = (size_t)(end - name);
        if (!len) return "tag without a name";
        s = end;
        if (closing) {
            if (!depth || open_len[depth - 1] != len || strncmp(open[depth - 1], name, len))
                return "closing tag does not match the open one";
            depth--;
            while (isspace((unsigned char)*s)) s++;
            if (*s++ != '>') return "bad closing tag";
            continue;
        }
        if (depth == 0 && roots++) return "more than one root element";
        for (;;) { // attributes, then '>' or '/>'
            int space = 0;
            while (isspace((unsigned char)*s)) s++, space = 1;
            if (*s == '>') {
                if (depth == 64) return "nested too deeply";
                open[depth] = name;
                open_len[depth++] = len;
                s++;
                break;
            }
            if (s[0] == '/' && s[1] == '>') { s += 2; break; }
            const char *attr_end = name_end(s);
            if (!space || attr_end == s) return "bad attribute";
            s = attr_end;
            if (*s++ != '=') return "attribute without '='";
            char quote = *s++;
            if (quote != '"' && quote != '\'') return "unquoted attribute value";
            while (*s != quote) {
                if (!*s || *s == '<') return "unterminated attribute value or '<' in it";
                if (*s != '&') s++;
                else if (!(s = entity(s))) return "bad entity in an attribute";
            }
            s++;
        }
    }
    return depth ? "unclosed element" : roots != 1 ? "no root element" : NULL;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (; (s = strstr(s, what)); s++) n++;
    return n;
}

// Coordinate pairs in the points attribute of the idx-th polyline of class cls.
static int polyline_points(const char *svg, const char *cls, int idx) {
    char key[64];
    snprintf(key, sizeof key, "<polyline class=\"%s\"", cls);
    const char *s = svg;
    for (int i = 0; i <= idx; i++)
        if (!(s = strstr(i ? s + 1 : s, key))) return -1;
    const char *p = strstr(s, "points=\""), *end = p ? strchr(p + 8, '"') : NULL;
    if (!end) return -1;
    int n = 0;
    for (; p < end; p++) n += *p == ',';
    return n;
}

static void test_xml_checker(void) {
    const char *good = "<?xml version=\"1.0\"?>\n<svg a=\"1\" b='&lt;'><g/><!-- c -->"
                       "<text>x &amp; y &#38; &#x26; &gt; ></text></svg>\n";
    const char *bad[] = {
        "<svg><g></svg>", "<svg a=b/>",   "<svg>&foo;</svg>", "<svg>a & b</svg>",
        "<svg><g></g>",   "<svg/><svg/>", "<svg a=\"<\"/>",   "<svg a=\"1\"b=\"2\"/>",
        "x<svg/>",        "<svg></g>",    "<svg a=\"1/>"};
    int all = 1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) all &= xml_check(bad[i]) != NULL;
    CHECK(xml_check(good) == NULL && all, "xml_checker_self_test", "good: %s",
          xml_check(good));
}

static void test_plot(void) {
    const double step[8] = {0, 100, 200, 300, 400, 500, 600, 1000};
    const double secs[8] = {0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.8, 1.0};
    const double tr0[8] = {10, 8, 6, 5, NAN, 4, 3, 2},
                 va0[8] = {9.5, NAN, NAN, 5.5, NAN, NAN, 3.5, NAN};
    const double tr1[8] = {9, 7, 6, 5, 4.5, 4, 3.5, 3},
                 va1[8] = {9, 7.5, 6.5, 5.5, 5, 4.5, 4, 3.8};
    const double tr2[1] = {4}, va2[1] = {4.2};
    PlotRun runs[3] = {{"base & <small>", 8, step, secs, tr0, va0},
                       {"quote \"q\"", 8, step, secs, tr1, va1},
                       {"one point", 1, step + 2, secs + 2, tr2, va2}};
    const char *path = tmp_path("loss.svg");
    CHECK(plot_loss_svg(path, "toy <run> & co", runs, 3, err) == 0, "plot_writes", "%s",
          err);
    size_t len;
    char *svg = slurp(path, &len);
    if (!svg) return;
    const char *problem = xml_check(svg);
    CHECK(problem == NULL, "plot_well_formed_xml", "%s", problem);
    CHECK(!strncmp(svg, "<?xml", 5) &&
              strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""),
          "plot_starts_as_svg", "starts with %.20s", svg);
    CHECK(strstr(svg, "base &amp; &lt;small&gt;") && strstr(svg, "quote &quot;q&quot;") &&
          strstr(svg, "toy &lt;run&gt; &amp; co") && strstr(svg, "one point"),
          "plot_names_escaped", "a run name or the title is missing or not escaped");
    CHECK(strstr(svg, ">step<") && strstr(svg, ">seconds<") && strstr(svg, ">loss<"),
          "plot_axis_labels", "missing");
    // 3 runs x (train, val) x 2 panels; runs in order, train before val, step panel first
    CHECK(count(svg, "<polyline class=\"val\"") == 6 &&
              count(svg, "<polyline class=\"train\"") == 6,
          "plot_polyline_per_series", "%d val, %d train", count(svg, "class=\"val\""),
          count(svg, "class=\"train\""));
    CHECK(polyline_points(svg, "train", 0) == 7 && polyline_points(svg, "val", 0) == 3 &&
              polyline_points(svg, "val", 1) == 8 && polyline_points(svg, "val", 3) == 3,
          "plot_nan_points_skipped", "points: %d %d %d %d",
          polyline_points(svg, "train", 0), polyline_points(svg, "val", 0),
          polyline_points(svg, "val", 1), polyline_points(svg, "val", 3));
    CHECK(polyline_points(svg, "val", 2) == 2, "plot_single_point_drawn_as_dot",
          "%d pairs", polyline_points(svg, "val", 2));
    char *lower = strdup(svg);
    for (char *c = lower; *c; c++) *c = (char)tolower((unsigned char)*c);
    CHECK(!strstr(lower, "nan") && !strstr(lower, "inf"), "plot_no_nan_in_output",
          "found nan/inf");
    free(lower);
    // ticks, by hand: losses 2..10 padded by 4% to [1.68, 10.32]: step 2; steps 0..1000
    // padded by 2%: step 200; seconds 0..1: step 0.2
    CHECK(strstr(svg, ">2</text>") && strstr(svg, ">10</text>") &&
              !strstr(svg, ">1</text>") && strstr(svg, ">200</text>") &&
              strstr(svg, ">1000</text>") && !strstr(svg, ">100</text>") &&
              strstr(svg, ">0.0</text>") && strstr(svg, ">0.4</text>") &&
              !strstr(svg, ">0.5</text>") && !strstr(svg, "-0.0<"),
          "plot_nice_ticks", "unexpected tick labels");
    CHECK(!strstr(svg, "clipped"), "plot_no_clipping_without_outliers", "clipped");
    free(svg);

    // a huge first loss is left above the top edge, and said so
    double big[8] = {500, 8, 6, 5, 4.5, 4, 3, 2};
    PlotRun spike = {"spike", 8, step, secs, big, va1};
    plot_loss_svg(path, NULL, &spike, 1, err);
    svg = slurp(path, &len);
    CHECK(svg && strstr(svg, "values up to 500 ") && !strstr(svg, ">100</text><") &&
              strstr(svg, ">8</text>"),
          "plot_clips_outlier", "no clipping note or wrong ticks");
    free(svg);

    // degenerate input: no runs; a run without points; a run with only NAN losses
    const double nan8[8] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    PlotRun odd[2] = {{"empty", 0, NULL, NULL, NULL, NULL},
                      {"all nan", 8, step, secs, nan8, nan8}};
    int ok = 1;
    for (int nruns = 0; nruns <= 2; nruns++) {
        ok &= plot_loss_svg(path, "", odd, nruns, err) == 0;
        svg = slurp(path, &len);
        ok &= svg && xml_check(svg) == NULL && strstr(svg, "no data") &&
              !strstr(svg, "<polyline");
        free(svg);
    }
    CHECK(ok, "plot_degenerate_runs", "failed or malformed: %s", err);

    // atomic: a failed write leaves the old file; a missing directory is an error
    spit(path, "keep", 4);
    mkdir(tmp_path("loss.svg.tmp"), 0700);
    CHECK(plot_loss_svg(path, "x", runs, 3, err) && strstr(err, "loss.svg.tmp"),
          "plot_fails_when_tmp_blocked", "err: %s", err);
    rmdir(tmp_path("loss.svg.tmp"));
    svg = slurp(path, &len);
    CHECK(svg && !strcmp(svg, "keep"), "plot_failed_write_leaves_file", "file changed");
    free(svg);
    CHECK(plot_loss_svg(tmp_path("no/dir/loss.svg"), "x", runs, 3, err) && err[0],
          "plot_missing_dir_fails", "no error");
}

// `test_checkpoint --xml-check FILE`: the same well-formedness check on a file the
// program wrote (tests/test_cli.sh uses it on the SVG of a compare run).
int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--xml-check")) {
        size_t len;
        char *text = slurp(argv[2], &len);
        const char *problem = text ? xml_check(text) : "cannot read the file";
        if (problem) printf("%s: %s\n", argv[2], problem);
        free(text);
        return problem != NULL;
    }
    if (!mkdtemp(dir)) { printf("FAIL mkdtemp: cannot create %s\n", dir); return 1; }
    test_round_trip();
    test_exact_bytes();
    test_truncated();
    test_corrupt();
    test_atomic_save();
    test_xml_checker();
    test_plot();
    const char *files[] = {"round.safetensors", "tiny.safetensors", "trunc.safetensors",
                           "bad.safetensors", "atomic.safetensors", "loss.svg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) remove(tmp_path(files[i]));
    rmdir(dir);
    CHECK_EXIT();
}
