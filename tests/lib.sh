# tests/lib.sh: sourced by the shell tests that run ./train end to end. pass and fail
# print "PASS name" / "FAIL name: why" (fail also sets FAILED=1); expect_exit checks a
# command's exit code and, for code 2, its one-line error message. Needs $T, a
# temporary directory.
FAILED=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILED=1; }

# expect_exit NAME CODE CMD...: runs CMD, stderr to $T/err; checks the exit code, and
# for code 2 that stderr has the one-line "train: error:" message.
expect_exit() {
    name=$1; want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$name" "exit $got, expected $want; stderr: $(head -c 300 "$T/err")"
    elif [ "$want" -eq 2 ] && ! grep -q '^train: error: ' "$T/err"; then
        fail "$name" "no 'train: error:' line on stderr: $(head -c 300 "$T/err")"
    else
        pass "$name"
    fi
}
