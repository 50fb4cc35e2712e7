// check.h: the tests' few assertions. Every check prints one line, "PASS name" or
// "FAIL name: detail"; tests/run.sh counts them. A test program exits non-zero if any
// of its checks failed.
#ifndef KF_CHECK_H
#define KF_CHECK_H

#include <stdio.h>
#include <stdarg.h>

static int check_failures = 0, check_passes = 0;

// CHECK(cond, name, detail format, ...): detail is printed only on failure.
static void check_(int ok, const char *name, const char *fmt, ...) {
    if (ok) { check_passes++; printf("PASS %s\n", name); fflush(stdout); return; }
    check_failures++;
    printf("FAIL %s: ", name);
    va_list ap; va_start(ap, fmt); vprintf(fmt, ap); va_end(ap);
    printf("\n"); fflush(stdout);
}
#define CHECK(cond, name, ...) check_((cond) ? 1 : 0, (name), __VA_ARGS__)
#define CHECK_EXIT() return check_failures ? 1 : 0

#endif
