// tests/st_check.c: whether safetensors files are whole, for tests/test_kill.sh: opens
// each (the strict parser of checkpoint.c checks the header and that every tensor's
// data lies inside the file) and reads every tensor. Prints one line per bad file and
// exits 1 if there is one, 2 on bad usage.
#include <stdio.h>
#include <stdlib.h>
#include "../checkpoint.h"
#include "../run.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tests/st_check FILE.safetensors...\n");
        return 2;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        char err[KF_ERRLEN];
        StFile *f = st_open(argv[i], err);
        if (!f) {
            printf("%s\n", err);
            bad = 1;
            continue;
        }
        if (!st_meta(f, "step")) {
            printf("%s: no step in its metadata\n", argv[i]);
            bad = 1;
        }
        st_close(f);
    }
    return bad;
}
