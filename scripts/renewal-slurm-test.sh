#!/usr/bin/env bash
# Credential renewal on a real one-node Slurm 22.05 cluster with one-minute tickets
# (scripts/testbed/lib.sh: MIT KDC, our auksd, munge, slurmctld, slurmd, the SPANK plugin
# target/debug/libauks.so), plus our aukspriv and auksdrenewer.
#
#  1. A user with a fresh 60 s ticket submits `sbatch --auks=yes --begin=now+120`: the
#     ticket expires long before the job starts, so the job only gets a valid credential
#     because auksdrenewer keeps the stored one renewed.
#  2. The job runs 180 s (three ticket lifetimes) and runs `klist -s` on its KRB5CCNAME
#     every 5 s: every check must succeed, thanks to the plugin's `auks -R loop`.
#  3. Afterwards no job ccache and no renewer process remain, and auksd's log shows the
#     renewals (ADDs by the renewer's host principal).
#  4. A credential whose renewable period (100 s) has ended is not renewed any more and
#     is cleaned from auksd; a new job with `--auks=done` then fails, saying so.
#
# Run as root after `cargo build`: scripts/renewal-slurm-test.sh
# Takes about 6 minutes (plus any wait for the testbed lock held by another test
# script). The testbed is torn down at exit (TB_KEEP=1 keeps it up).
# Prints `N passed, N failed` last and exits non-zero if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"

# shellcheck source=testbed/assert.sh
. "$HERE/testbed/assert.sh"
WORK=""

# renewer settings for one-minute tickets: check every 5 s, renew when 40 s or less remain
RENEW_DELAY=5
RENEW_MIN_LIFE=40
CLEAN_DELAY=5
TICKET_LIFE=60
# the second user's credential is renewable for this long
SHORT_RENEW=100
JOB_BEGIN=120
JOB_RUN=180

JOB_RENEWER_LOG=$TB_DIR/log/job-renewer.log
RENEWER_LOG=$TB_DIR/log/auksdrenewer.log
PRIV_LOG=$TB_DIR/log/aukspriv.log
RENEWER_CC=FILE:$TB_DIR/renewer.cc
AUKS=$TB_REPO/target/debug/auks

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
OUT=""
ERR=""
RC=0
as_user() { # as_user USER TAG CMD: stdout/stderr in $OUT/$ERR, status in $RC
    local u=$1 tag=$2
    shift 2
    OUT=$WORK/$tag.out
    ERR=$WORK/$tag.err
    tb_as "$u" "$*" > "$OUT" 2> "$ERR"
    RC=$?
}

# lifetime in seconds of the TGT in the user's default ccache (klist's US dates)
tgt_life() { # tgt_life USER
    local line start end
    line=$(tb_as "$1" "klist" 2>/dev/null | grep -m1 "krbtgt/$TB_REALM@$TB_REALM") || return 1
    start=$(date -d "$(awk '{print $1" "$2}' <<< "$line")" +%s) || return 1
    end=$(date -d "$(awk '{print $3" "$4}' <<< "$line")" +%s) || return 1
    echo $((end - start))
}

# the stored credentials, as root with the renewer's host ccache: "uid endtime renew_till"
dump_rows() {
    KRB5CCNAME=$RENEWER_CC "$AUKS" -f "$TB_AUKS_CONF" -D 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1, $4, $5}'
}

stored() { dump_rows | awk -v u="$1" '$1 == u {found=1} END {exit !found}'; }

# auksd runs with -F: its log lines go to auksd.stdout (LogFile when daemonised)
auksd_log() { cat "$TB_DIR/log/auksd.log" "$TB_DIR/log/auksd.stdout" 2>/dev/null; }

job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
job_exit() { scontrol show job "$1" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p'; }

# wait until the user has no job, no process and no per-job ccache left
wait_clean() { # wait_clean UID CCACHE_PATH [SECONDS]
    local uid=$1 cc=$2 limit=${3:-20} i name
    name=$(getent passwd "$uid" | cut -d: -f1)
    for i in $(seq 1 $((limit * 5))); do
        if [ -z "$(squeue -h -u "$name" -o %i 2>/dev/null)" ] && ! pgrep -u "$uid" > /dev/null \
            && ! compgen -G "/tmp/krb5cc_${uid}_*" > /dev/null && { [ -z "$cc" ] || [ ! -e "$cc" ]; }; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# The testbed writes /etc/auks/auks.conf; adapt it to one-minute tickets: renewer block
# (job renewers log where the user can write) and a short auksd CleanDelay.
eval "$(declare -f tb_auks_conf | sed '1s/^tb_auks_conf /tb_auks_conf_testbed /')"
tb_auks_conf() {
    tb_auks_conf_testbed || return 1
    sed -i \
        -e "s|LogFile = \"/dev/null\" ; LogLevel = 0 ; Delay = 60 ; MinLifeTime = 300 ;|LogFile = \"$JOB_RENEWER_LOG\" ; LogLevel = 2 ; Delay = $RENEW_DELAY ; MinLifeTime = $RENEW_MIN_LIFE ;|" \
        -e "s|CleanDelay = 300|CleanDelay = $CLEAN_DELAY|" "$TB_AUKS_CONF"
    grep -q "MinLifeTime = $RENEW_MIN_LIFE ;" "$TB_AUKS_CONF" && grep -q "CleanDelay = $CLEAN_DELAY ;" "$TB_AUKS_CONF" \
        || tb_die "cannot adapt $TB_AUKS_CONF (has lib.sh changed its template?)"
    # job renewers run as the job user
    : >> "$JOB_RENEWER_LOG"
    chmod 0666 "$JOB_RENEWER_LOG"
}

start_bg() { # start_bg PIDFILE LOG CMD...: a daemon of ours, in the foreground, detached
    local pidf=$1 log=$2
    shift 2
    cd / || exit 1
    # without fd 9: the testbed lock is this script's, not the daemon's
    setsid "$@" >> "$log" 2>&1 < /dev/null 9>&- &
    echo $! > "$pidf"
}

# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
tb_need_root
for f in target/debug/libauks.so target/debug/auks target/debug/auksd target/debug/auksdrenewer target/debug/aukspriv; do
    [ -e "$TB_REPO/$f" ] || { echo "renewal-slurm-test: $TB_REPO/$f not found: run 'cargo build' first" >&2; exit 2; }
done

suite_cleanup_extra() {
    tb_stop_pidfile "$TB_DIR/auksdrenewer.pid"
    tb_stop_pidfile "$TB_DIR/aukspriv.pid"
}
suite_trap

tb_up || exit 1
WORK=$(mktemp -d /var/tmp/auks-renewal-test.XXXXXX)
chmod 0755 "$WORK"
START=$(date +%s)

CASE=setup
# one-minute tickets; the second user's are renewable for $SHORT_RENEW s only
tb_kadmin "modprinc -maxlife ${TICKET_LIFE}s $TB_USER"
tb_kadmin "modprinc -maxlife ${TICKET_LIFE}s -maxrenewlife ${SHORT_RENEW}s $TB_USER2"
tb_plugstack optional "$(tb_plugstack_default_args)"

# root's identity for auksdrenewer: host/<this host> from the keytab, kept fresh by aukspriv
start_bg "$TB_DIR/aukspriv.pid" "$PRIV_LOG" env AUKS_PRIV_KEYTAB="$TB_HOST_KEYTAB" \
    AUKS_PRIV_CCACHE="$RENEWER_CC" AUKS_PRIV_LIFETIME=3600 AUKS_PRIV_RENEW_INT=1800 \
    "$TB_REPO/target/debug/aukspriv" -v
for _ in $(seq 1 100); do [ -s "${RENEWER_CC#FILE:}" ] && break; sleep 0.1; done
contains "aukspriv got the host principal's TGT" "$PRIV_LOG" "host/$TB_HOST@$TB_REALM valid until"
# -v: level 2, where the renewer logs each skipped credential (checked below)
start_bg "$TB_DIR/auksdrenewer.pid" "$RENEWER_LOG" env KRB5CCNAME="$RENEWER_CC" \
    "$TB_REPO/target/debug/auksdrenewer" -F -v -f "$TB_AUKS_CONF"
sleep 1
check "auksdrenewer is running" tb_pid_alive "$TB_DIR/auksdrenewer.pid"

# ---------------------------------------------------------------------------------------
CASE=job_renewal
echo "== $CASE (about $((JOB_BEGIN + JOB_RUN + 20)) s)"
tb_kinit "$TB_USER"
life=$(tgt_life "$TB_USER")
life_ok() { [ -n "$life" ] && [ "$life" -gt 0 ] && [ "$life" -le "$TICKET_LIFE" ]; }
check "the user's ticket lives ${TICKET_LIFE} s (${life:-?} s)" life_ok
home=$(getent passwd "$TB_USER" | cut -d: -f6)
cat > "$home/renew-job.sh" <<EOF
#!/bin/bash
echo "CCNAME=\$KRB5CCNAME"
end=\$((SECONDS + $JOB_RUN))
n=0
bad=0
while [ \$SECONDS -lt \$end ]; do
    if klist -s; then echo "CHECK \$(date +%s) ok"; else echo "CHECK \$(date +%s) FAIL"; bad=\$((bad + 1)); fi
    n=\$((n + 1))
    sleep 5
done
klist | sed 's/^/FINAL /'
echo "CHECKS=\$n BAD=\$bad"
EOF
chown "$TB_USER:" "$home/renew-job.sh"
chmod 0755 "$home/renew-job.sh"
SLURMD_MARK=$(slurmd_log_mark)
as_user "$TB_USER" submit "rm -f renew-job.out; sbatch --auks=yes --begin=now+$JOB_BEGIN -o renew-job.out renew-job.sh"
equals "sbatch exit status" 0 "$RC"
JOB=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' "$OUT")
check "job submitted ($JOB)" [ -n "$JOB" ]
check "the credential is stored in auksd" stored "$TB_UID"
# the job must not find anything but what auksd holds
tb_kdestroy "$TB_USER"

# meanwhile (case renew_till): a credential renewable for $SHORT_RENEW s only
tb_kinit "$TB_USER2"
as_user "$TB_USER2" add2 "AUKS_CONF=$TB_AUKS_CONF $AUKS -a"
equals "second user: auks -a" 0 "$RC"
tb_kdestroy "$TB_USER2"
SHORT_ADDED=$(date +%s)

# wait for the job to start and finish
deadline=$(($(date +%s) + JOB_BEGIN + JOB_RUN + 120))
while :; do
    st=$(job_state "$JOB")
    case "$st" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
    [ "$(date +%s)" -gt "$deadline" ] && break
    sleep 5
done
equals "job state" COMPLETED "$(job_state "$JOB")"
equals "job exit code" 0:0 "$(job_exit "$JOB")"
JOUT=$home/renew-job.out
[ -e "$JOUT" ] || : > "$JOUT"
CC=$(sed -n 's/^CCNAME=//p' "$JOUT")
check "the job had a KRB5CCNAME ($CC)" [ -n "$CC" ]
checks=$(sed -n 's/^CHECKS=\([0-9]*\) .*/\1/p' "$JOUT")
at_least "klist -s checks made over ${JOB_RUN} s" $((JOB_RUN / 5 - 2)) "${checks:-0}" "$(tail -20 "$JOUT")"
contains "every klist -s check succeeded" "$JOUT" "^CHECKS=[0-9]+ BAD=0$"
lacks "no failed check" "$JOUT" "^CHECK [0-9]+ FAIL"
contains "the credential at the end is the user's" "$JOUT" "^FINAL Default principal: $TB_USER@$TB_REALM"
if wait_clean "$TB_UID" "${CC#FILE:}"; then
    pass "no ccache and no renewer (no process of the user) left after the job"
else
    fail "no ccache and no renewer left after the job" "ccache: $(ls -l "${CC#FILE:}" 2>&1)
processes: $(ps -o pid,user,args -u "$TB_UID" 2>/dev/null | tail -n +2)"
fi
auksd_log > "$WORK/auksd.log"
adds=$(grep -cE "host/[^ ]*@$TB_REALM from [^ ]* : add request succeed : uid=$TB_UID principal $TB_USER@$TB_REALM replaced" "$WORK/auksd.log")
at_least "auksd's log shows the renewer's ADDs of the renewed credential" 3 "$adds" "$(grep -E ': (add|dump) request' "$WORK/auksd.log" | tail -10)"
contains "auksdrenewer logs the renewals" "$RENEWER_LOG" "uid $TB_UID $TB_USER@$TB_REALM : renewed: end"
contains "the job's renewer (auks -R loop) renewed the job ccache" "$JOB_RENEWER_LOG" "renewer : FILE:[^ ]* : renewed by "
# SIGTERM, not SIGKILL: the plugin logs how it stopped the renewer (" with
# SIGKILL" when the grace period ran out), in this run's part of slurmd.log
slurmd_log_since "$SLURMD_MARK" > "$WORK/slurmd-job.log"
contains "the job's renewer was stopped by the plugin's SIGTERM (not SIGKILL)" "$WORK/slurmd-job.log" \
    "\\[$JOB\\.batch\\] auks: job $JOB: credential renewer \\(pid [0-9]+\\) stopped$"
lacks "no temporary ccache directory left in /tmp" <(ls -a /tmp) "^\.auks-"

# ---------------------------------------------------------------------------------------
CASE=renew_till
echo "== $CASE"
# renewable until SHORT_ADDED + SHORT_RENEW; then expired and cleaned (CleanDelay)
deadline=$((SHORT_ADDED + SHORT_RENEW + CLEAN_DELAY + 60))
while stored "$TB_UID2" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 5; done
if stored "$TB_UID2"; then
    fail "the credential is cleaned from auksd after its renewable period" "$(dump_rows)"
else
    pass "the credential is cleaned from auksd after its renewable period"
fi
contains "it was renewed while renewable" "$RENEWER_LOG" "uid $TB_UID2 $TB_USER2@$TB_REALM : renewed: end"
contains "then skipped: the renewable period ended" "$RENEWER_LOG" "uid $TB_UID2 $TB_USER2@$TB_REALM : skipped: the renewable period ends"
auksd_log > "$WORK/auksd.log"
contains "auksd's cleaner removed it" "$WORK/auksd.log" "clean stage : uid $TB_UID2 "
as_user "$TB_USER2" done "srun --auks=done klist -s"
check "a new job with --auks=done has no credential (srun status $RC)" [ "$RC" -ne 0 ]
contains "and says why" "$ERR" "no credential stored for uid $TB_UID2"
wait_clean "$TB_UID2" "" > /dev/null

echo
echo "($(($(date +%s) - START)) s)"
if [ "$FAILED" -gt 0 ]; then
    echo "--- auksdrenewer log (tail)"
    tail -20 "$RENEWER_LOG" 2>/dev/null
    echo "--- job renewer log (tail)"
    tail -20 "$JOB_RENEWER_LOG" 2>/dev/null
fi
assert_report
