#!/usr/bin/env bash
# pam_auks_adopt on a real sshd with a real pam_slurm_adopt: ssh sessions adopted into a job get
# the job's Kerberos credential cache (issue 13). Uses the ssh variant of the testbed
# (scripts/testbed/ssh.sh: PrologFlags=contain, proctrack/cgroup v1, sshd on a loopback
# port with its own PAM service) and tears it all down at exit (TB_KEEP=1 keeps it).
#
# Run as root after `cargo build`: scripts/pam-tests.sh [CASE...]
# Every ssh and every wait is bounded, and the whole suite too (15 minutes).
# Prints `N passed, N failed` last and exits non-zero if anything failed.
set -u

# the whole suite is bounded: it runs under timeout(1), which sends SIGTERM (the cleanup
# below then runs) after 15 minutes
if [ -z "${PAM_TESTS_BOUNDED:-}" ]; then
    PAM_TESTS_BOUNDED=1 exec timeout -k 30 900 bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"
# shellcheck source=testbed/ssh.sh
. "$HERE/testbed/ssh.sh"
# shellcheck source=testbed/assert.sh
. "$HERE/testbed/assert.sh"

WORK=""
OUT=""
ERR=""
RC=0

# ssh as USER running CMD on the node; output in $OUT/$ERR, status in $RC
ssh_as() { # ssh_as USER CMD [SSH OPTION...]
    OUT=$WORK/$CASE.out
    ERR=$WORK/$CASE.err
    tb_ssh "$@" > "$OUT" 2> "$ERR"
    RC=$?
}
# what a session prints: its KRB5CCNAME, klist, its cgroups
PROBE='echo "CC=${KRB5CCNAME:-unset}"; klist 2>&1 | sed "s/^/KLIST /"; sed "s/^/CGROUP /" /proc/self/cgroup'

syslog_mark() { wc -l < "$TB_SYSLOG"; }
syslog_since() { tail -n +"$(($1 + 1))" "$TB_SYSLOG"; }

# submit a job as USER that sleeps; prints its id: start_job USER [SBATCH OPTION...]
start_job() {
    local u=$1
    shift
    tb_as "$u" "sbatch --parsable -o /dev/null $* --wrap 'sleep 300'" 2>> "$WORK/sbatch.err"
}

# the record pam_auks_adopt prefers for a job (extern, then batch, then the lowest step)
record_file() { # record_file JOB UID
    local f
    for f in "$TB_RECORD_DIR/$1.$2.extern" "$TB_RECORD_DIR/$1.$2.batch" \
        $(ls "$TB_RECORD_DIR/$1.$2."[0-9]* 2>/dev/null | sort -t. -k3 -n); do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}
record_ccache() { # record_ccache JOB UID
    local f
    f=$(record_file "$1" "$2") && sed -n 's/^ccache=//p' "$f"
}

# wait (bounded) until a job runs and, with `record` or `extern`, until it has a record
# (`extern`: the extern step's)
wait_running() { # wait_running JOB UID [record|extern]
    local job=$1 uid=$2 i
    for i in $(seq 1 100); do
        if [ "$(squeue -h -j "$job" -o %T 2>/dev/null)" = RUNNING ]; then
            case "${3:-}" in
                "") return 0 ;;
                record) record_file "$job" "$uid" > /dev/null && return 0 ;;
                extern) [ -e "$TB_RECORD_DIR/$job.$uid.extern" ] && return 0 ;;
            esac
        fi
        sleep 0.2
    done
    return 1
}

# wait (bounded, 10 s) until the extern step of JOB has its renewer: a child of that
# slurmstepd running `auks -R loop` as the test user
wait_extern_renewer() { # wait_extern_renewer JOB
    local i stepd
    for i in $(seq 1 50); do
        stepd=$(pgrep -f "^slurmstepd: \[$1\.extern\]" | head -1)
        [ -n "$stepd" ] && pgrep -P "$stepd" -u "$TB_USER" -f 'auks -R loop' > /dev/null && return 0
        sleep 0.2
    done
    return 1
}

# wait (bounded) until the job is gone with everything it left on the node
wait_job_gone() { # wait_job_gone JOB UID
    local job=$1 uid=$2 i
    for i in $(seq 1 100); do
        if [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] \
            && ! compgen -G "$TB_RECORD_DIR/$job.$uid.*" > /dev/null \
            && ! compgen -G "/tmp/krb5cc_${uid}_${job}_*" > /dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

end_job() { # end_job JOB UID
    scancel "$1" 2>/dev/null
    if wait_job_gone "$1" "$2"; then
        pass "job $1 ended: no record, no ccache left"
    else
        fail "job $1 ended: no record, no ccache left" "$(ls -l "$TB_RECORD_DIR" /tmp/krb5cc_"$2"_"$1"_* 2>&1)"
    fi
}

# ---------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------
case_adopted() {
    tb_kinit
    local job cc mark
    job=$(start_job "$TB_USER" --auks=yes)
    check "job $job with --auks=yes runs and has a record" wait_running "$job" "$TB_UID" record
    cc=$(record_ccache "$job" "$TB_UID")
    check "the record names a ccache of this job" test -n "$cc"
    tb_kdestroy
    mark=$(syslog_mark)
    ssh_as "$TB_USER" "$PROBE"
    equals "ssh exit status" 0 "$RC"
    contains "the session's KRB5CCNAME is the job's ccache" "$OUT" "^CC=${cc}\$"
    contains "klist in the session shows the job's principal" "$OUT" "^KLIST Default principal: $TB_USER@$TB_REALM"
    contains "the session is in the job's extern step" "$OUT" "^CGROUP [0-9]+:freezer:/slurm[^/]*/uid_$TB_UID/job_$job/step_extern\$"
    syslog_since "$mark" > "$WORK/adopted.syslog"
    contains "pam_auks_adopt logs the adoption" "$WORK/adopted.syslog" "adopted into job $job: KRB5CCNAME=$cc"
    end_job "$job" "$TB_UID"
}

# default=enabled: the extern step itself fetches the credential when the job starts (Slurm
# 22.05 gives the extern step neither the job's --auks option nor its environment, so only
# the plugstack default decides there), writes the record the session prefers, and keeps
# the ccache renewed until the job ends
case_extern() {
    tb_plugstack optional "$(tb_plugstack_default_args | sed 's/default=disabled/default=enabled/')"
    tb_kinit
    local job cc mark logmark
    logmark=$(slurmd_log_mark)
    job=$(start_job "$TB_USER")
    check "default=enabled: the extern step of job $job wrote a record" wait_running "$job" "$TB_UID" extern
    cc=$(sed -n 's/^ccache=//p' "$TB_RECORD_DIR/$job.$TB_UID.extern")
    # the renewer is forked 200 ms after the step starts, by the step's timer thread
    # (src/spank/remote/deferred.rs), which logs nothing: the step logs the start when it
    # collects the timer, at its end. While the job runs, the process is what is checked.
    check "the extern step started its renewer (auks -R loop, the extern slurmstepd's child, as $TB_USER)" \
        wait_extern_renewer "$job"
    tb_kdestroy
    mark=$(syslog_mark)
    ssh_as "$TB_USER" "$PROBE"
    contains "the session gets the extern step's ccache" "$OUT" "^CC=${cc}\$"
    contains "klist in the session shows the job's principal" "$OUT" "^KLIST Default principal: $TB_USER@$TB_REALM"
    syslog_since "$mark" > "$WORK/extern.syslog"
    contains "pam_auks_adopt says it is the extern step's" "$WORK/extern.syslog" "adopted into job $job: KRB5CCNAME=$cc \(from the extern step\)"
    end_job "$job" "$TB_UID"
    slurmd_log_since "$logmark" > "$WORK/extern.slurmd.log"
    contains "the extern step logged its renewer's start" "$WORK/extern.slurmd.log" \
        "\[$job.extern\] auks: job $job uid $TB_UID: credential renewer .* started"
    contains "the extern step destroyed its ccache at the end" "$WORK/extern.slurmd.log" "\[$job.extern\] auks: job $job: destroyed $cc"
    tb_plugstack optional "$(tb_plugstack_default_args)"
}

case_no_job() {
    local mark
    mark=$(syslog_mark)
    ssh_as "$TB_USER" 'echo SHOULD-NOT-RUN'
    check "ssh without a running job is refused" test "$RC" -ne 0
    lacks "no command ran" "$OUT" "SHOULD-NOT-RUN"
    contains "sshd: the PAM account phase denied it" "$TB_DIR/log/sshd.log" "Access denied for user $TB_USER by PAM account configuration"
    syslog_since "$mark" > "$WORK/no_job.syslog"
    contains "pam_slurm_adopt says why" "$WORK/no_job.syslog" "pam_slurm_adopt.*(no active jobs|Access denied)"
}

case_two_jobs() {
    tb_kinit
    local a b cca ccb
    a=$(start_job "$TB_USER" --auks=yes)
    check "first job runs with its record" wait_running "$a" "$TB_UID" record
    b=$(start_job "$TB_USER" --auks=yes)
    check "second job runs with its record" wait_running "$b" "$TB_UID" record
    cca=$(record_ccache "$a" "$TB_UID")
    ccb=$(record_ccache "$b" "$TB_UID")
    check "the two jobs have different ccaches" test -n "$cca" -a -n "$ccb" -a "$cca" != "$ccb"
    # from outside any job: pam_slurm_adopt adopts into the newest job
    ssh_as "$TB_USER" "$PROBE"
    contains "the session is adopted into the newest job" "$OUT" "^CGROUP [0-9]+:freezer:/slurm[^/]*/uid_$TB_UID/job_$b/step_extern\$"
    contains "and gets that job's ccache" "$OUT" "^CC=${ccb}\$"
    lacks "not the other job's" "$OUT" "^CC=${cca}\$"
    # from inside job a (pam_slurm_adopt's callerid finds the ssh client in job a)
    OUT=$WORK/two_jobs.inner.out
    tb_as "$TB_USER" "timeout 60 srun --jobid=$a --overlap -n1 ssh -q -i $TB_SSH_DIR/keys/$TB_USER -p $TB_SSH_PORT \
        -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o GlobalKnownHostsFile=/dev/null $TB_USER@127.0.0.1 '$PROBE'" > "$OUT" 2>> "$WORK/two_jobs.inner.err"
    contains "an ssh from inside the first job is adopted into it" "$OUT" "^CGROUP [0-9]+:freezer:/slurm[^/]*/uid_$TB_UID/job_$a/step_extern\$"
    contains "and gets the first job's ccache" "$OUT" "^CC=${cca}\$"
    end_job "$a" "$TB_UID"
    end_job "$b" "$TB_UID"
}

case_no_auks() {
    local job mark
    job=$(start_job "$TB_USER")
    check "job without --auks runs" wait_running "$job" "$TB_UID"
    mark=$(syslog_mark)
    ssh_as "$TB_USER" "$PROBE"
    equals "ssh works" 0 "$RC"
    contains "no KRB5CCNAME from pam_auks_adopt" "$OUT" "^CC=unset\$"
    contains "the session is in the job" "$OUT" "job_$job/step_extern"
    syslog_since "$mark" > "$WORK/no_auks.syslog"
    contains "a log line says why" "$WORK/no_auks.syslog" "job $job has no auks credential cache on this node"
    end_job "$job" "$TB_UID"
}

case_other_user() {
    tb_kinit
    local bob carol cc mark
    bob=$(start_job "$TB_USER" --auks=yes)
    check "bob's job runs with its record" wait_running "$bob" "$TB_UID" record
    cc=$(record_ccache "$bob" "$TB_UID")
    carol=$(start_job "$TB_USER2")
    check "carol's job (no --auks) runs" wait_running "$carol" "$TB_UID2"
    ssh_as "$TB_USER2" "$PROBE" -o "SetEnv=KRB5CCNAME=$cc"
    equals "carol's ssh works" 0 "$RC"
    contains "carol's session is in her job" "$OUT" "job_$carol/step_extern"
    contains "carol gets no KRB5CCNAME, even asking for bob's" "$OUT" "^CC=unset\$"
    lacks "carol sees no ticket of bob" "$OUT" "KLIST Default principal: $TB_USER@"
    # planted records for carol's job, naming bob's ccache
    local rec=$TB_RECORD_DIR/$carol.$TB_UID2.extern
    printf 'auks-record 1\nuid=%s\njobid=%s\nstep=extern\nccache=%s\n' "$TB_UID2" "$carol" "$cc" > "$rec"
    chown "$TB_USER2" "$rec"
    chmod 0600 "$rec"
    mark=$(syslog_mark)
    ssh_as "$TB_USER2" "$PROBE"
    contains "a record owned by the user is refused" "$OUT" "^CC=unset\$"
    syslog_since "$mark" > "$WORK/planted1.syslog"
    contains "and logged" "$WORK/planted1.syslog" "refused a record: .*not root"
    chown root "$rec"
    mark=$(syslog_mark)
    ssh_as "$TB_USER2" "$PROBE"
    contains "a root record naming another user's ccache is refused" "$OUT" "^CC=unset\$"
    syslog_since "$mark" > "$WORK/planted2.syslog"
    contains "and logged" "$WORK/planted2.syslog" "owned by uid $TB_UID, not $TB_UID2"
    # a symlink to a record that would be good if followed (root, 0600, naming a ccache
    # of carol's own)
    rm -f "$rec"
    local own=/tmp/krb5cc_${TB_UID2}_planted target=$WORK/planted-record
    tb_as "$TB_USER2" "kinit -c $own $TB_USER2 <<< '$TB_PW_USER2' > /dev/null"
    printf 'auks-record 1\nuid=%s\njobid=%s\nstep=extern\nccache=FILE:%s\n' "$TB_UID2" "$carol" "$own" > "$target"
    chmod 0600 "$target"
    ln -s "$target" "$rec"
    mark=$(syslog_mark)
    ssh_as "$TB_USER2" "$PROBE"
    contains "a symlinked record is refused" "$OUT" "^CC=unset\$"
    syslog_since "$mark" > "$WORK/planted3.syslog"
    contains "and logged" "$WORK/planted3.syslog" "refused a record: .*a symbolic link"
    # the same record as a regular file is accepted (so the refusals above are the checks')
    rm -f "$rec"
    cp "$target" "$rec"
    chmod 0600 "$rec"
    ssh_as "$TB_USER2" "$PROBE"
    contains "the same record, a regular root file, is accepted" "$OUT" "^CC=FILE:$own\$"
    rm -f "$rec" "$own"
    tb_kdestroy "$TB_USER2"
    end_job "$bob" "$TB_UID"
    end_job "$carol" "$TB_UID2"
}

case_job_end() {
    tb_kinit
    local job pid i
    job=$(start_job "$TB_USER" --auks=yes)
    check "job runs with its record" wait_running "$job" "$TB_UID" record
    tb_ssh "$TB_USER" 'echo STARTED; sleep 120' > "$WORK/job_end.out" 2>&1 &
    pid=$!
    for i in $(seq 1 50); do grep -q STARTED "$WORK/job_end.out" && break; sleep 0.2; done
    contains "a long ssh session runs" "$WORK/job_end.out" "^STARTED"
    scancel "$job"
    for i in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        fail "the ssh session ends with the job"
        kill "$pid" 2>/dev/null
    else
        pass "the ssh session ends with the job"
    fi
    wait "$pid" 2>/dev/null
    if wait_job_gone "$job" "$TB_UID"; then
        pass "no record and no ccache left after the job"
    else
        fail "no record and no ccache left after the job" "$(ls -l "$TB_RECORD_DIR" /tmp/krb5cc_"$TB_UID"_* 2>&1)"
    fi
    for i in $(seq 1 50); do pgrep -u "$TB_UID" > /dev/null || break; sleep 0.2; done
    if pgrep -u "$TB_UID" > /dev/null; then
        fail "no process of the user left" "$(ps -o pid,ppid,args -u "$TB_UID")"
    else
        pass "no process of the user left"
    fi
}

# `switch`: with a KEYRING default, the session's module makes the job's cache the primary
# one of the user's collection again (the user had switched to another cache), so tools
# that ignore KRB5CCNAME find it too
case_keyring_switch() {
    tb_kinit
    local job cc other="KEYRING:persistent:$TB_UID:pamtest"
    tb_as "$TB_USER" "AUKS_CONF=$TB_AUKS_CONF $TB_REPO/target/debug/auks -a > /dev/null && kdestroy -q"
    cp -a /etc/krb5.conf "$WORK/krb5.conf.saved"
    sed -i 's/^\[libdefaults\]$/[libdefaults]\n  default_ccache_name = KEYRING:persistent:%{uid}/' /etc/krb5.conf
    sed -i "s|^\(session  optional  .*$(basename "$TB_PAM_MODULE")\) debug\$|\1 debug switch|" "$TB_SSH_PAM_FILE"
    job=$(start_job "$TB_USER" --auks=done)
    check "job runs with its record" wait_running "$job" "$TB_UID" record
    cc=$(record_ccache "$job" "$TB_UID")
    contains "the job's cache is in the user's persistent keyring" <(echo "$cc") "^KEYRING:persistent:$TB_UID:"
    # the user makes another cache of the collection the primary one
    tb_as "$TB_USER" "echo '$TB_PW_USER' | kinit -c $other $TB_USER > /dev/null && kswitch -c $other"
    tb_as "$TB_USER" "klist | head -1" > "$WORK/keyring.before"
    contains "before: another cache is the primary one" "$WORK/keyring.before" "^Ticket cache: $other\$"
    ssh_as "$TB_USER" 'echo "CC=$KRB5CCNAME"; env -u KRB5CCNAME klist | head -2 | sed "s/^/DEFAULT /"'
    contains "the session's KRB5CCNAME is the job's cache" "$OUT" "^CC=$cc\$"
    contains "switch: the job's cache is the primary one again (klist without KRB5CCNAME)" "$OUT" "^DEFAULT Ticket cache: $cc\$"
    contains "and holds the job's principal" "$OUT" "^DEFAULT Default principal: $TB_USER@$TB_REALM"
    tb_as "$TB_USER" "kdestroy -q -c $other"
    end_job "$job" "$TB_UID"
    tb_as "$TB_USER" "kdestroy -q -A"
    cp -a "$WORK/krb5.conf.saved" /etc/krb5.conf
    sed -i "s| debug switch\$| debug|" "$TB_SSH_PAM_FILE"
}

# The module loaded by another PAM application: pamtester in a process that root put into
# the job's extern cgroup (as pam_slurm_adopt does with sshd), and a process outside any job.
case_pamtester() {
    tb_kinit
    local job cc mark svc=/etc/pam.d/auks-pamtester
    check "the module loads with immediate binding (RTLD_NOW)" python3 -c \
        "import ctypes, os; ctypes.CDLL('$TB_PAM_MODULE', mode=os.RTLD_NOW).pam_sm_open_session"
    lacks "the module needs no Slurm symbol" <(nm -D -u "$TB_PAM_MODULE") 'spank|slurm'
    job=$(start_job "$TB_USER" --auks=yes)
    check "job runs with its record" wait_running "$job" "$TB_UID" record
    cc=$(record_ccache "$job" "$TB_UID")
    tb_backup "$svc"
    printf 'session required pam_permit.so\nsession optional %s debug\n' "$TB_PAM_MODULE" > "$svc"
    mark=$(syslog_mark)
    timeout 20 sh -c "echo \$\$ > $(echo /sys/fs/cgroup/freezer/slurm*/uid_$TB_UID/job_$job/step_extern)/cgroup.procs \
        && exec pamtester auks-pamtester $TB_USER open_session" > "$WORK/pamtester.out" 2>&1
    equals "pamtester open_session in the job's cgroup" 0 "$?"
    syslog_since "$mark" > "$WORK/pamtester.syslog"
    contains "the module found the job's ccache" "$WORK/pamtester.syslog" "adopted into job $job: KRB5CCNAME=$cc"
    mark=$(syslog_mark)
    timeout 20 pamtester auks-pamtester "$TB_USER" open_session > "$WORK/pamtester2.out" 2>&1
    equals "pamtester open_session outside any job still succeeds" 0 "$?"
    syslog_since "$mark" > "$WORK/pamtester2.syslog"
    contains "and the module says why it ignored it" "$WORK/pamtester2.syslog" "session not adopted into a Slurm job"
    tb_restore "$svc"
    end_job "$job" "$TB_UID"
}

# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
tb_need_root
for f in target/debug/libauks.so target/debug/auks target/debug/auksd target/debug/libpam_auks_adopt.so; do
    [ -e "$TB_REPO/$f" ] || { echo "pam-tests: $TB_REPO/$f not found: run 'cargo build' first" >&2; exit 2; }
done

cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -n "$WORK" ]; then
        # keep what explains a failure (outputs, sshd and syslog) for a look afterwards
        rm -rf /var/tmp/auks-pam-tests.failed
        cp -a "$WORK" /var/tmp/auks-pam-tests.failed 2>/dev/null
        cp -a "$TB_DIR/log" /var/tmp/auks-pam-tests.failed/ 2>/dev/null
        echo "pam-tests: outputs and logs kept in /var/tmp/auks-pam-tests.failed" >&2
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
    if [ "${TB_KEEP:-0}" != 1 ]; then
        tb_restore /etc/pam.d/auks-pamtester
        tb_ssh_down > /dev/null 2>&1
        tb_down > /dev/null 2>&1
        tb_cgroup_clean
    fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "pam-tests: stopped by a signal (15-minute bound or interrupt)" >&2; exit 130' INT TERM

tb_up || exit 1
tb_ssh_slurm_check
tb_ssh_up
WORK=$(mktemp -d /var/tmp/auks-pam-tests.XXXXXX)
chmod 0755 "$WORK"
tb_plugstack optional "$(tb_plugstack_default_args)"

SELECTED=("$@")

START=$(date +%s)
run_case adopted
run_case extern
run_case no_job
run_case two_jobs
run_case no_auks
run_case other_user
run_case job_end
run_case pamtester
run_case keyring_switch

echo
echo "($(($(date +%s) - START)) s)"
assert_report
