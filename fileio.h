// fileio.h: the file and OS chores of the train program: reading text files as lines,
// creating directories, writing files atomically (and appending to a log), joining
// paths, little-endian integers in binary files, the clock, the stop signals; and its
// error messages.
#ifndef KF_FILEIO_H
#define KF_FILEIO_H

#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

// Paths are built in buffers of PATH_CAP bytes; the command line refuses longer
// directory names, so joined paths always fit.
#define PATH_CAP 4096
#define PATH_ARG_MAX 3000

// A text file in memory, cut into lines in place. A line ends at '\n' (a '\r' before
// it is dropped too); a final line without '\n' counts.
typedef struct {
    char *buf;        // (bytes + 1) the file, each line NUL-terminated in place
    char **line;      // (n) start of each line
    size_t *len;      // (n) length of each line in bytes, without the line ending
    size_t n;         // lines
    size_t bytes;     // size of the file
} Lines;

// Reads a whole file (NUL-terminated for convenience). Fails on a missing file or a
// directory.
int read_file(const char *path, char **data, size_t *len, char *err);
// Reads a text file as lines. Fails on a missing or empty file.
int lines_read(Lines *l, const char *path, char *err);
void lines_free(Lines *l);

int file_exists(const char *path);
int is_directory(const char *path);
// mkdir -p
int make_dirs(const char *path, char *err);
// out = dir + "/" + name (out has PATH_CAP bytes)
void path_join(char *out, const char *dir, const char *name);

// Files written atomically, the one way every file of the project is written (a log
// grows, see append_open, but is first written so too):
// replace_begin opens PATH.tmp (in PATH's directory, so that the rename stays on one
// file system); replace_commit flushes it to the disk (fsync), closes it, renames it over
// PATH and syncs the directory, so that after a crash (kill -9, power loss) PATH holds
// the old or the new file, never a partial one. On a write error (disk full, EFBIG of
// `ulimit -f`) it removes PATH.tmp, leaves PATH alone and fails with a message.
// replace_abort drops a file begun but not to be committed; returns NULL.
FILE *replace_begin(const char *path, char *err);
int replace_commit(FILE *f, const char *path, char *err);
FILE *replace_abort(FILE *f, const char *path);

// Flushes what was written to f through to the disk (fflush, fsync). Non-zero if that
// or any earlier write to f failed, with errno saying why.
int flush_to_disk(FILE *f);

// The one file that grows instead of being replaced: a run's log, a row per step. It is
// written whole first (replace_begin), then append_open opens it to add rows, and
// flush_to_disk makes the rows so far durable (before a checkpoint that the log must
// reach). append_close closes it, non-zero (errno saying why) if any write to it
// failed: a full disk must not pass for a complete log.
FILE *append_open(const char *path, char *err);
int append_close(FILE *f);

// Integers in the binary files (tokenizer, token files, safetensors) are little-endian,
// stored byte by byte, so that a file moves between machines of either endianness.
// put_le stores the low `bytes` bytes (1 to 8) of v at p; get_le reads them back.
// Inline, as the readers of weights and tokens call them once per value.
static inline void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t get_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

// Wall-clock time in seconds from the monotonic clock (never set back, unlike the time
// of day), for measuring durations: seconds_since(t0) = seconds_now() - t0.
double seconds_now(void);
double seconds_since(double t0);

// Ctrl-C (SIGINT) and SIGTERM as a request to stop cleanly, which fit and compare check
// between steps and runs. catch_stop_signals clears the request and makes both signals
// only record it, saving the handlers it replaces in saved; stop_requested() is then the
// signal that asked (0: none). The handler is installed without SA_RESTART, so that a
// blocking read or wait returns EINTR and the caller can act on the request at once.
// restore_stop_signals puts the saved handlers back (the request stays readable).
void catch_stop_signals(struct sigaction saved[2]);
void restore_stop_signals(const struct sigaction saved[2]);
int stop_requested(void);

#endif
