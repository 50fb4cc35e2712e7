// fileio.c: see fileio.h.
#include "fileio.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int read_file(const char *path, char **data, size_t *len, char *err) {
    if (is_directory(path)) {
        errorf(err, "%s is a directory; give a file", path);
        return 1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        errorf(err, "cannot open %s (%s); check the path", path, strerror(errno));
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(f); errorf(err, "out of memory reading %s", path); return 1; }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) free(buf);
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errorf(err, "read error on %s; check the file", path);
        return 1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

int lines_read(Lines *l, const char *path, char *err) {
    memset(l, 0, sizeof(*l));
    if (read_file(path, &l->buf, &l->bytes, err)) return 1;
    if (l->bytes == 0) {
        lines_free(l);
        errorf(err, "%s is empty; give a file with at least one line", path);
        return 1;
    }
    // count, then cut
    size_t n = 0;
    for (size_t i = 0; i < l->bytes; i++) n += l->buf[i] == '\n';
    if (l->buf[l->bytes - 1] != '\n') n++;
    l->line = malloc(n * sizeof(char *));
    l->len = malloc(n * sizeof(size_t));
    if (!l->line || !l->len) {
        lines_free(l);
        errorf(err, "out of memory reading %s", path);
        return 1;
    }
    char *p = l->buf, *end = l->buf + l->bytes;
    for (size_t i = 0; i < n; i++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        size_t len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r') len--;
        p[len] = '\0';
        l->line[i] = p;
        l->len[i] = len;
        p = nl + 1;
    }
    l->n = n;
    return 0;
}

void lines_free(Lines *l) {
    free(l->buf);
    free(l->line);
    free(l->len);
    memset(l, 0, sizeof(*l));
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int make_dirs(const char *path, char *err) {
    char buf[PATH_CAP];
    snprintf(buf, sizeof(buf), "%s", path);
    // create every prefix that ends at a '/', then the whole path
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            errorf(err, "cannot create directory %s (%s)", buf, strerror(errno));
            return 1;
        }
        *p = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errorf(err, "%s exists and is not a directory; choose another path", path);
        return 1;
    }
    return 0;
}

void path_join(char *out, const char *dir, const char *name) {
    snprintf(out, PATH_CAP, "%s/%s", dir, name);
}

FILE *replace_begin(const char *path, char *err) {
    char tmp[PATH_CAP + 8];
    if (strlen(path) >= PATH_CAP) {
        errorf(err, "path too long (%zu bytes): %.60s...", strlen(path), path);
        return NULL;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) errorf(err, "cannot create %s (%s); does the directory exist and is it writable?",
                   tmp, strerror(errno));
    return f;
}

// The directory that holds path, into dir (PATH_CAP bytes): "a/b/c" -> "a/b", "c" -> ".".
static void parent_dir(char *dir, const char *path) {
    snprintf(dir, PATH_CAP, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, PATH_CAP, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
}

// fsync of the directory that holds path: the rename of a file is an entry of its
// directory, and only this makes the entry itself durable. A file system that cannot
// sync a directory (EINVAL) has nothing to sync.
static int sync_parent(const char *path) {
    char dir[PATH_CAP];
    parent_dir(dir, path);
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return 1;
    int rc = fsync(fd) != 0 && errno != EINVAL && errno != EROFS;
    close(fd);
    return rc;
}

int replace_commit(FILE *f, const char *path, char *err) {
    char tmp[PATH_CAP + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    errno = 0;
    int bad = ferror(f);
    int why = errno;   // a failed fwrite left its reason (EFBIG, ENOSPC) here
    if (!bad && flush_to_disk(f)) { bad = 1; why = errno; }
    if (fclose(f) != 0 && !bad) { bad = 1; why = errno; }
    if (!bad && rename(tmp, path) != 0) { bad = 1; why = errno; }
    if (bad) {
        remove(tmp);
        errorf(err, "cannot write %s (%s); free disk space, check the permissions and "
                 "`ulimit -f`, then try again", path, why ? strerror(why) : "write error");
        return 1;
    }
    if (sync_parent(path)) {
        errorf(err, "cannot sync the directory of %s (%s); check the disk", path,
               strerror(errno));
        return 1;
    }
    return 0;
}

FILE *replace_abort(FILE *f, const char *path) {
    char tmp[PATH_CAP + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (f) fclose(f);
    remove(tmp);
    return NULL;
}

int flush_to_disk(FILE *f) {
    return fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
}

FILE *append_open(const char *path, char *err) {
    FILE *f = fopen(path, "a");
    if (!f) {
        int why = errno;
        char dir[PATH_CAP];
        parent_dir(dir, path);
        errorf(err, "cannot append to %s (%s); check the permissions of %s", path,
               strerror(why), dir);
    }
    return f;
}

int append_close(FILE *f) {
    int bad = ferror(f);
    return fclose(f) != 0 || bad;
}

double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double seconds_since(double t0) { return seconds_now() - t0; }

static volatile sig_atomic_t stop_signal = 0;
static void on_stop_signal(int sig) { stop_signal = sig; }

void catch_stop_signals(struct sigaction saved[2]) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &saved[0]);
    sigaction(SIGTERM, &sa, &saved[1]);
}

void restore_stop_signals(const struct sigaction saved[2]) {
    sigaction(SIGINT, &saved[0], NULL);
    sigaction(SIGTERM, &saved[1], NULL);
}

int stop_requested(void) { return stop_signal; }
