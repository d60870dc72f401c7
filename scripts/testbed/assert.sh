# Assertions and helpers shared by the cluster suites (scripts/slurm-tests.sh,
# scripts/multinode-tests.sh, scripts/renewal-slurm-test.sh,
# scripts/gateway-tests.sh, scripts/pam-tests.sh): pass/fail, case selection,
# as_user under a watchdog, wait_clean, and the exit trap. A suite may define
# its own variant of a helper after sourcing this file.
# Each case sets CASE; assert_report prints the failures and `N passed, N failed`
# last and returns non-zero if anything failed. A suite sets SELECTED=("$@")
# (the case names given on its command line) and runs each case with run_case.
# shellcheck shell=bash

PASSED=0
FAILED=0
FAILURES=()
CASE=""
SELECTED=()

pass() { PASSED=$((PASSED + 1)); echo "  ok   $CASE: $1"; }
fail() { # fail DESC [DETAIL]
    FAILED=$((FAILED + 1))
    FAILURES+=("$CASE: $1")
    echo "  FAIL $CASE: $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/       | /' | head -60; fi
}
check() { # check DESC CMD...
    local d=$1
    shift
    if "$@"; then pass "$d"; else fail "$d" "command: $*"; fi
}
contains() { # contains DESC FILE REGEX
    if grep -qE -- "$3" "$2"; then pass "$1"; else fail "$1" "expected /$3/ in $2:
$(tail -40 "$2")"; fi
}
lacks() { # lacks DESC FILE REGEX
    if grep -qE -- "$3" "$2"; then fail "$1" "unexpected /$3/ in $2:
$(grep -E -- "$3" "$2" | head -20)"; else pass "$1"; fi
}
equals() { # equals DESC EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
at_least() { # at_least DESC MIN ACTUAL [DETAIL]
    if [ "$3" -ge "$2" ] 2>/dev/null; then pass "$1 ($3)"; else fail "$1" "expected at least $2, got '$3'
${4:-}"; fi
}

# want NAME: whether case NAME was selected (no names given: every case).
want() {
    [ ${#SELECTED[@]} -eq 0 ] && return 0
    local s
    for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}
# run_case NAME: runs case_NAME as CASE when it is selected.
run_case() {
    want "$1" || return 0
    CASE=$1
    echo "== $CASE"
    if ! declare -F "case_$1" > /dev/null; then
        fail "no function case_$1 in this suite"
        return 0
    fi
    "case_$1"
}

# as_user USER CMD: runs CMD as USER (tb_as) with stdout/stderr in $OUT/$ERR
# ($WORK/$CASE.out/.err), its status in $RC and its duration in $ELAPSED, under
# a watchdog that kills it by pid after $LIMIT s (default $AS_USER_LIMIT, 300);
# as_bob CMD: the same as the testbed's user.
OUT=""
ERR=""
RC=0
ELAPSED=0
WATCHDOG_FIRED=""
as_user() {
    local u=$1
    shift
    OUT=$WORK/$CASE.out
    ERR=$WORK/$CASE.err
    tb_as "$u" "$*" > "$OUT" 2> "$ERR" &
    local pid=$! t0=$SECONDS
    watch_pid "$pid" "${LIMIT:-${AS_USER_LIMIT:-300}}"
    wait "$pid"
    RC=$?
    ELAPSED=$((SECONDS - t0))
}
as_bob() { as_user "$TB_USER" "$@"; }

# watch_pid PID LIMIT: kill PID (and its children) if it runs past LIMIT s
watch_pid() {
    local pid=$1 limit=$2 i
    for i in $(seq 1 $((limit * 10))); do
        kill -0 "$pid" 2> /dev/null || return 0
        sleep 0.1
    done
    echo "  watchdog: pid $pid still running after ${limit}s: killed" >&2
    pkill -KILL -P "$pid" 2> /dev/null
    kill -KILL "$pid" 2> /dev/null
    WATCHDOG_FIRED=1
}

# slurmd.log (the one-node testbed's) from a mark on: the lines a case's own jobs wrote
# (job ids start again with each cluster, so the whole file holds earlier jobs of the same ids)
slurmd_log_mark() { wc -l < "$TB_SLURM_LOG/slurmd.log"; }
slurmd_log_since() { tail -n +"$(($1 + 1))" "$TB_SLURM_LOG/slurmd.log"; }

# user_jobs NAME: the job ids of a user
user_jobs() { squeue -h -u "$1" -o %i 2>/dev/null; }

# wait until the user has no job, no process and no per-job ccache left
wait_clean() { # wait_clean UID [SECONDS]
    local uid=$1 limit=${2:-15} i name
    name=$(getent passwd "$uid" | cut -d: -f1)
    for i in $(seq 1 $((limit * 5))); do
        if [ -z "$(user_jobs "$name")" ] && ! pgrep -u "$uid" > /dev/null \
            && ! compgen -G "/tmp/krb5cc_${uid}_*" > /dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# suite_trap: on exit, run the suite's own suite_cleanup_extra (when it defines
# one: processes it started, files it moved), remove $WORK and bring the
# testbed down (unless TB_KEEP=1), keeping the exit status; INT/TERM exit 130.
suite_trap() {
    trap suite_cleanup EXIT
    trap 'exit 130' INT TERM
}
suite_cleanup() {
    local rc=$?
    if declare -F suite_cleanup_extra > /dev/null; then suite_cleanup_extra; fi
    [ -n "${WORK:-}" ] && rm -rf "$WORK"
    if [ "${TB_KEEP:-0}" != 1 ]; then tb_down > /dev/null 2>&1; fi
    exit $rc
}

assert_report() {
    if [ "$FAILED" -gt 0 ]; then
        echo "failures:"
        printf '  %s\n' "${FAILURES[@]}"
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}
