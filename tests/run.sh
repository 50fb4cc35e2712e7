#!/bin/sh
# Runs each test program given as an argument, counts its "PASS"/"FAIL" lines, and
# ends with "N passed, N failed". A program that exits non-zero without printing a
# FAIL line (a crash) counts as one failure. Exits non-zero on any failure.
pass=0; fail=0
for t in "$@"; do
    out=$(mktemp)
    if [ "${t%.sh}" != "$t" ]; then sh "$t" >"$out" 2>&1; else "./$t" >"$out" 2>&1; fi
    rc=$?
    p=$(grep -c '^PASS ' "$out"); f=$(grep -c '^FAIL ' "$out")
    grep '^FAIL ' "$out"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $t: exited with status $rc; last lines:"; tail -n 5 "$out"; f=1
    fi
    echo "  $t: $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
    rm -f "$out"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
