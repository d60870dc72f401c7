#!/usr/bin/env bash
# The compute node at full size, on a real Slurm 22.05 cluster of three nodes n1..n3 (three
# slurmd on this machine, scripts/testbed/lib.sh with TB_NODES=3), a real KDC and our auksd:
# - multi-node jobs (srun -N2, sbatch -N3 with steps on every node, salloc -N2): every
#   node gets the credential, its own ccache and renewer, and cleans up; a node whose
#   fetch fails behaves as optional/required say;
# - the renewer and the HelperScript start clean (groups, descriptors, signals, session,
#   parent-death signal), as the test user sees them in /proc;
# - KRB5CCNAME naming a FIFO, a DIR: collection with a FIFO primary, another user's and
#   root's ccache, in srun's and in the job's environment: no step blocks, nothing of
#   anyone else is read or changed, the job gets its own ccache, the message says what
#   was ignored (each case under a watchdog that kills by pid);
# - root's ccache out of /tmp: a /tmp/krb5cc_0 created by a user changes nothing for
#   aukspriv, the plugin or auksdrenewer.
#
# Run as root after `cargo build`: scripts/multinode-tests.sh [CASE...]. The testbed is
# torn down at exit (TB_KEEP=1 keeps it). Prints `N passed, N failed` last.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TB_NODES=3
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"
# shellcheck source=testbed/assert.sh
. "$HERE/testbed/assert.sh"
WORK=""
NODES=(n1 n2 n3)
SHARED_GROUP=aukssharedgrp
AUKS=$TB_REPO/target/debug/auks

# as_user / as_bob (testbed/assert.sh): each command under a 60 s watchdog here
AS_USER_LIMIT=60

log_mark() { wc -l < "$(tb_slurmd_log "$1")"; }
log_since() { tail -n +"$(($2 + 1))" "$(tb_slurmd_log "$1")"; }
marks() { local n; for n in "${NODES[@]}"; do MARK[$n]=$(log_mark "$n"); done; }
declare -A MARK

# user_jobs / wait_clean: testbed/assert.sh

no_leftovers() {
    if wait_clean "$TB_UID"; then
        pass "nothing left on any node (no job, no process, no /tmp/krb5cc_${TB_UID}_*)"
    else
        fail "nothing left on any node" "$(ps -o pid,args -u "$TB_UID"; ls -l /tmp/krb5cc_"${TB_UID}"_* 2>&1)"
    fi
}

# per node: the step's log says stored / renewer started / stopped / destroyed, with the
# ccache the task of that node printed as CC_<node>=...
per_node_lifecycle() { # per_node_lifecycle JOB STEP NODE...
    local job=$1 step=$2 n cc log
    shift 2
    for n in "$@"; do
        log=$WORK/$CASE.$n.log
        log_since "$n" "${MARK[$n]}" | grep "\[$job.$step\]" > "$log"
        cc=$(sed -n "s/^CC_$n=//p" "$OUT" | head -1)
        check "$n: the task has a per-job ccache of its own ($cc)" \
            grep -qE "^FILE:/tmp/krb5cc_${TB_UID}_${job}_[A-Za-z0-9]{6}\$" <<< "$cc"
        contains "$n: slurmd-$n.log: stored in that ccache" "$log" "credential stored in ${cc}\$"
        contains "$n: its own renewer started" "$log" "credential renewer .* started \(pid [0-9]+\)"
        contains "$n: renewer stopped at the end" "$log" "credential renewer \(pid [0-9]+\) stopped"
        contains "$n: ccache destroyed at the end" "$log" "destroyed ${cc}\$"
        check "$n: the ccache file is gone" test ! -e "${cc#FILE:}"
    done
    local distinct
    distinct=$(sed -n 's/^CC_n[0-9]=//p' "$OUT" | sort -u | wc -l)
    equals "one distinct ccache per node" "$#" "$distinct"
}

# task body printing what the checks need (node, ccache, TGT, renewers of the user)
TASK='echo "CC_$SLURMD_NODENAME=$KRB5CCNAME"; [ -n "$KRB5CCNAME" ] && klist -s && echo "TGT_$SLURMD_NODENAME=yes"; sleep 1; echo "RENEWERS_$SLURMD_NODENAME=$(pgrep -u $(id -u) -x auks | wc -l)"; sleep 1'

ARGS_BASE=""
plug() { tb_plugstack "$@"; }

# ---------------------------------------------------------------------------------------
# multi-node jobs
# ---------------------------------------------------------------------------------------
case_srun_n2() {
    plug optional "$ARGS_BASE"
    tb_kinit
    marks
    as_bob "srun -N2 --auks=yes bash -c '$TASK; echo JOB=\$SLURM_JOB_ID'"
    equals "srun -N2 exit status" 0 "$RC"
    local job
    job=$(sed -n 's/^JOB=//p' "$OUT" | head -1)
    for n in n1 n2; do
        contains "$n: the task holds the user's TGT" "$OUT" "^TGT_$n=yes\$"
        contains "$n: two renewers run during the step (one per node)" "$OUT" "^RENEWERS_$n=2\$"
    done
    per_node_lifecycle "$job" 0 n1 n2
    no_leftovers
}

# Inside the allocation, srun steps inherit the batch step's KRB5CCNAME. On n1 that is
# the batch step's own valid ccache: kept, no second renewer. On a real cluster n2 and n3
# do not see that file (their own /tmp) and make their own; on this one-machine testbed
# they share n1's /tmp, so the per-node step runs with KRB5CCNAME unset, as n2/n3 see it.
case_sbatch_n3() {
    plug optional "$ARGS_BASE"
    tb_kinit
    marks
    as_bob "cat > mn.sh <<'EOF'
#!/bin/bash
echo \"BATCH_CC=\$KRB5CCNAME\"
srun -N3 bash -c 'echo KEPT_\$SLURMD_NODENAME=\$KRB5CCNAME; klist -s && echo STEP0_\$SLURMD_NODENAME=yes'
env -u KRB5CCNAME srun -N3 bash -c '$TASK'
echo JOB=\$SLURM_JOB_ID
EOF
rm -f mn.out; sbatch -N3 --auks=yes --wait -o mn.out mn.sh; cat mn.out"
    equals "sbatch -N3 --wait exit status" 0 "$RC"
    local job batch_cc
    job=$(sed -n 's/^JOB=//p' "$OUT")
    batch_cc=$(sed -n 's/^BATCH_CC=//p' "$OUT")
    check "the batch step (n1) has its ccache ($batch_cc)" \
        grep -qE "^FILE:/tmp/krb5cc_${TB_UID}_${job}_[A-Za-z0-9]{6}\$" <<< "$batch_cc"
    for n in "${NODES[@]}"; do
        contains "$n: step 0 holds the TGT" "$OUT" "^STEP0_$n=yes\$"
        contains "$n: step 1 holds the TGT" "$OUT" "^TGT_$n=yes\$"
        contains "$n: step 1 sees one renewer per node + the batch step's" "$OUT" "^RENEWERS_$n=4\$"
    done
    contains "n1: step 0 keeps the batch step's ccache" "$OUT" "^KEPT_n1=$batch_cc\$"
    log_since n1 "${MARK[n1]}" | grep "\[$job.0\]" > "$WORK/$CASE.step0.log"
    contains "n1: step 0 says it keeps it (no fetch, no renewer)" "$WORK/$CASE.step0.log" \
        "keeping the valid credential cache $batch_cc"
    per_node_lifecycle "$job" 1 "${NODES[@]}"
    log_since n1 "${MARK[n1]}" | grep "\[$job.batch\]" > "$WORK/$CASE.batch.log"
    contains "n1: the batch step destroyed its ccache at the end" "$WORK/$CASE.batch.log" "destroyed $batch_cc\$"
    no_leftovers
}

case_salloc_n2() {
    plug optional "$ARGS_BASE"
    tb_kinit
    marks
    as_bob "salloc -N2 --auks=yes srun -N2 bash -c '$TASK; echo JOB=\$SLURM_JOB_ID'"
    equals "salloc -N2 exit status" 0 "$RC"
    local job
    job=$(sed -n 's/^JOB=//p' "$OUT" | head -1)
    for n in n1 n2; do
        contains "$n: the task holds the TGT" "$OUT" "^TGT_$n=yes\$"
    done
    per_node_lifecycle "$job" 0 n1 n2
    no_leftovers
}

# n3's slurmd (and so its slurmstepd) uses a krb5.conf whose KDC is unreachable: its
# keytab= TGT cannot be had, so its GET from auksd fails
case_node_fetch_fails() {
    sed 's/kdc = 127.0.0.1:[0-9]*/kdc = 127.0.0.1:1/' /etc/krb5.conf > "$TB_DIR/krb5-broken.conf"
    chmod 0644 "$TB_DIR/krb5-broken.conf"
    tb_slurmd_restart n3 KRB5_CONFIG="$TB_DIR/krb5-broken.conf"
    tb_kinit
    plug optional "$ARGS_BASE"
    as_bob "srun -N3 --auks=yes bash -c '$TASK'"
    equals "optional: srun -N3 succeeds" 0 "$RC"
    contains "optional: n1 has the TGT" "$OUT" "^TGT_n1=yes\$"
    contains "optional: n2 has the TGT" "$OUT" "^TGT_n2=yes\$"
    lacks "optional: n3 has no TGT" "$OUT" "^TGT_n3="
    contains "optional: n3's task has no KRB5CCNAME" "$OUT" "^CC_n3=\$"
    contains "optional: the user is told why, naming the node" "$ERR" "slurmstepd-n3: error: auks: this node cannot get its own Kerberos ticket"
    no_leftovers
    plug required "$ARGS_BASE"
    as_bob "srun -N3 --auks=yes bash -c '$TASK'"
    contains "required: the launch on n3 failed" "$ERR" "launch failed|failed on node n3"
    contains "required: n3 says why" "$ERR" "slurmstepd-n3: error: auks: this node cannot get its own Kerberos ticket"
    lacks "required: no task ran on n3" "$OUT" "^CC_n3="
    no_leftovers
    tb_slurmd_restart n3
}

# ---------------------------------------------------------------------------------------
# renewer and helper hygiene
# ---------------------------------------------------------------------------------------
case_hygiene() {
    local gid helper=$WORK/helper.sh hout=$WORK/h
    mkdir -p "$hout"
    chmod 0777 "$hout"
    gid=$(getent group "$SHARED_GROUP" | cut -d: -f3)
    cat > "$helper" <<EOF
#!/bin/sh
# HelperScript of the test: what the helper process looks like
out=$hout/helper.\$\$
# (a child's own status: dash blocks every signal while it waits for a child)
{ grep -E '^(Groups|SigBlk|SigIgn):' /proc/self/status; echo "SID=\$(ps -o sid= -p \$\$ | tr -d ' ') PID=\$\$"; echo "FDS=\$(ls /proc/self/fd | tr '\n' ' ')"; } > "\$out.tmp"
mv "\$out.tmp" "\$out"
EOF
    chmod 0755 "$helper"
    cp -a "$TB_AUKS_CONF" "$WORK/auks.conf.saved"
    sed -i "s|^api {|api {\n  HelperScript = \"$helper\" ;|" "$TB_AUKS_CONF"
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob "srun -N1 --auks=yes bash -c 'sleep 1; p=\$(pgrep -u \$(id -u) -x auks | head -1); echo RPID=\$p; grep -E \"^(Groups|SigBlk|SigIgn|PPid):\" /proc/\$p/status; echo RSID=\$(ps -o sid= -p \$p | tr -d \" \"); ls /proc/\$p/fd >/dev/null 2>&1 && echo FD_READABLE=yes || echo FD_READABLE=no'"
    local rpid
    rpid=$(sed -n 's/^RPID=//p' "$OUT")
    cp "$WORK/auks.conf.saved" "$TB_AUKS_CONF"
    equals "the job ran" 0 "$RC"
    check "a renewer ran ($rpid)" test -n "$rpid"
    contains "renewer: the user's supplementary group $SHARED_GROUP ($gid) is there" "$OUT" "^Groups:.*\b$gid\b"
    contains "renewer: the user's primary group is there" "$OUT" "^Groups:.*\b$TB_UID\b"
    contains "renewer: no signal blocked" "$OUT" "^SigBlk:[[:space:]]+0+\$"
    contains "renewer: its own session" "$OUT" "^RSID=$rpid\$"
    contains "renewer: the user cannot list its descriptors (not dumpable)" "$OUT" "^FD_READABLE=no\$"
    local h
    h=$(ls "$hout"/helper.[0-9]* 2> /dev/null | head -1)
    if [ -n "$h" ]; then
        contains "helper: the supplementary group is there" "$h" "^Groups:.*\b$gid\b"
        contains "helper: no signal blocked" "$h" "^SigBlk:[[:space:]]+0+\$"
        contains "helper: no signal ignored" "$h" "^SigIgn:[[:space:]]+0+\$"
        contains "helper: its own session" "$h" "^SID=([0-9]+) PID=\\1\$"
        contains "helper: only stdio and the descriptor ls opens" "$h" "^FDS=0 1 2 3 \$"
    else
        fail "the HelperScript ran" "$(ls -l "$WORK")"
    fi
    no_leftovers
}

# the renewer's descriptors, seen by root while it runs, and its parent-death signal
case_renewer_fds_pdeathsig() {
    plug optional "$ARGS_BASE"
    tb_kinit
    tb_as "$TB_USER" 'sbatch --auks=yes -o /dev/null --wrap "sleep 120"' > "$WORK/$CASE.sb" 2>&1
    local job rpid i stepd
    job=$(awk '{print $4}' "$WORK/$CASE.sb")
    for i in $(seq 1 100); do
        rpid=$(pgrep -u "$TB_UID" -x auks | head -1)
        [ -n "$rpid" ] && break
        sleep 0.1
    done
    check "the batch step's renewer runs" test -n "$rpid"
    [ -n "$rpid" ] || return
    ls -l "/proc/$rpid/fd" > "$WORK/$CASE.fds" 2>&1
    equals "stdin, stdout, stderr are /dev/null" "/dev/null /dev/null /dev/null" \
        "$(for f in 0 1 2; do readlink "/proc/$rpid/fd/$f"; done | tr '\n' ' ' | sed 's/ $//')"
    lacks "no pipe inherited from slurmstepd" "$WORK/$CASE.fds" "pipe:"
    lacks "no file of slurmd's inherited (logs, spool)" "$WORK/$CASE.fds" "/var/(log|spool)/"
    stepd=$(awk '/^PPid:/ {print $2}' "/proc/$rpid/status")
    check "its parent is the batch step's slurmstepd ($stepd)" grep -q slurmstepd "/proc/$stepd/cmdline"
    local tasks
    tasks=$(pgrep -P "$stepd" | grep -vx "$rpid")
    kill -KILL "$stepd"
    # the batch script's processes (the step's tasks: our test's own processes)
    for i in $tasks; do pkill -KILL -P "$i" 2> /dev/null; kill -KILL "$i" 2> /dev/null; done
    for i in $(seq 1 50); do
        kill -0 "$rpid" 2> /dev/null || break
        sleep 0.1
    done
    check "slurmstepd killed: the renewer goes too (parent-death signal)" sh -c "! kill -0 $rpid 2>/dev/null"
    scancel "$job" 2> /dev/null
    for i in $(seq 1 150); do [ -z "$(user_jobs "$TB_USER")" ] && break; sleep 0.2; done
    rm -f /tmp/krb5cc_"${TB_UID}"_"${job}"_*
    no_leftovers
    # a node may be drained after losing a slurmstepd: back to service for what follows
    scontrol update nodename=n1 state=resume 2> /dev/null || true
}

# ---------------------------------------------------------------------------------------
# KRB5CCNAME probing
# ---------------------------------------------------------------------------------------
FIFO=""
FIFODIR=""
make_traps() {
    FIFO=/tmp/auks-fifo-$TB_UID
    FIFODIR=/tmp/auks-dir-$TB_UID
    rm -rf "$FIFO" "$FIFODIR"
    tb_as "$TB_USER" "mkfifo -m 0600 $FIFO; mkdir -m 0700 $FIFODIR; mkfifo -m 0600 $FIFODIR/primary"
}

# own_ccache_on LABEL NODE...: on each NODE the task ($TASK's output) got a
# job ccache of its own in /tmp and it holds the TGT
own_ccache_on() {
    local label=$1 n
    shift
    for n in "$@"; do
        contains "$label: $n's task got its own ccache" "$OUT" "^CC_$n=FILE:/tmp/krb5cc_${TB_UID}_[0-9]+_"
        contains "$label: $n's task holds the TGT" "$OUT" "^TGT_$n=yes\$"
    done
}

# a step with KRB5CCNAME=$1 in srun's own environment (--auks=yes, then --auks=done)
srun_env_case() { # srun_env_case NAME WHAT
    local name=$1 what=$2
    tb_kinit
    LIMIT=30 as_bob "KRB5CCNAME='$name' srun -N2 --auks=yes bash -c 'echo \"CC_\$SLURMD_NODENAME=\$KRB5CCNAME\"'"
    check "srun env $what, --auks=yes: srun ends within seconds (${ELAPSED}s)" test "$ELAPSED" -lt 20
    equals "srun env $what, --auks=yes: the step ran" 0 "$RC"
    contains "srun env $what: the message names what was ignored" "$ERR" "auks: KRB5CCNAME=.*${what}.*ignored"
    LIMIT=30 as_bob "KRB5CCNAME='$name' sbatch --auks=yes -o /dev/null --wrap true"
    check "sbatch env $what: sbatch ends within seconds (${ELAPSED}s)" test "$ELAPSED" -lt 20
    equals "sbatch env $what: the job is submitted" 0 "$RC"
    contains "sbatch env $what: the message names what was ignored" "$ERR" "auks: KRB5CCNAME=.*${what}.*ignored"
    # with a credential already in auksd, every node gives the step its own ccache
    as_bob "AUKS_CONF=$TB_AUKS_CONF $AUKS -a"
    LIMIT=30 as_bob "KRB5CCNAME='$name' srun -N2 --auks=done bash -c '$TASK'"
    check "srun env $what, --auks=done: ends within seconds (${ELAPSED}s)" test "$ELAPSED" -lt 20
    own_ccache_on "srun env $what" n1 n2
    contains "srun env $what: the step says what it ignored" "$ERR" "auks: KRB5CCNAME=.*${what}.*ignored, the step uses a credential cache of its own"
    no_leftovers
}

case_ccname_srun_fifo() {
    make_traps
    srun_env_case "FILE:$FIFO" "a FIFO"
}

case_ccname_srun_dir_fifo() {
    make_traps
    srun_env_case "DIR:$FIFODIR" "$FIFODIR/primary is a FIFO"
}

# KRB5CCNAME=$1 in the job's environment only (srun has the user's real ccache)
job_env_case() { # job_env_case NAME WHAT
    local name=$1 what=$2
    tb_kinit
    LIMIT=30 as_bob "srun -N2 --auks=yes --export=ALL,KRB5CCNAME='$name' bash -c '$TASK'"
    check "job env $what: the step starts within seconds (${ELAPSED}s)" test "$ELAPSED" -lt 20
    equals "job env $what: exit status" 0 "$RC"
    own_ccache_on "job env $what" n1 n2
    contains "job env $what: the message names what was ignored" "$ERR" "auks: KRB5CCNAME=.*${what}.*ignored"
    no_leftovers
}

case_ccname_job_fifo() {
    make_traps
    job_env_case "FILE:$FIFO" "a FIFO"
    job_env_case "DIR:$FIFODIR" "$FIFODIR/primary is a FIFO"
}

case_ccname_other_users() {
    tb_kinit "$TB_USER2"
    local carol=/tmp/krb5cc_$TB_UID2 before after
    before=$(stat -c '%U %a %s %Y' "$carol"; sha256sum < "$carol")
    job_env_case "FILE:$carol" "belongs to uid $TB_UID2"
    after=$(stat -c '%U %a %s %Y' "$carol"; sha256sum < "$carol")
    equals "the other user's ccache is unchanged" "$before" "$after"
    lacks "nothing names the other user's principal in the job" "$OUT" "$TB_USER2@"
    tb_kdestroy "$TB_USER2"
    check "root's ccache exists (aukspriv ran in root_ccache or here)" \
        sh -c "[ -s /run/auks/krb5cc_0 ] || KRB5CCNAME=FILE:/run/auks/krb5cc_0 kinit -k -t $TB_HOST_KEYTAB host/$TB_HOST@$TB_REALM"
    job_env_case "FILE:/run/auks/krb5cc_0" "(cannot be read|belongs to uid 0,)"
}

# ---------------------------------------------------------------------------------------
# root's ccache out of /tmp
# ---------------------------------------------------------------------------------------
case_root_ccache() {
    # a user creates /tmp/krb5cc_0 first
    tb_as "$TB_USER" "umask 022; echo not-a-ccache > /tmp/krb5cc_0"
    local before
    before=$(stat -c '%U %a %s %Y' /tmp/krb5cc_0; sha256sum < /tmp/krb5cc_0)
    rm -f /run/auks/krb5cc_0
    (cd / && AUKS_PRIV_KEYTAB=$TB_HOST_KEYTAB AUKS_PRIV_PRINC=host/$TB_HOST@$TB_REALM \
        exec "$TB_REPO/target/debug/aukspriv" -v > "$WORK/aukspriv.out" 2>&1 < /dev/null) &
    local pid=$! i
    for i in $(seq 1 100); do
        [ -s /run/auks/krb5cc_0 ] && break
        sleep 0.1
    done
    kill -TERM "$pid" 2> /dev/null
    watch_pid "$pid" 10
    wait "$pid" 2> /dev/null
    check "aukspriv wrote root's ccache in /run/auks" test -s /run/auks/krb5cc_0
    equals "/run/auks/krb5cc_0 is root's, 0600" "root 600" "$(stat -c '%U %a' /run/auks/krb5cc_0)"
    check "/run/auks is root's and writable by root only" \
        sh -c "[ \"\$(stat -c %U /run/auks)\" = root ] && [ \$((0\$(stat -c %a /run/auks) & 022)) -eq 0 ]"
    check "it holds the host principal" sh -c "klist -c FILE:/run/auks/krb5cc_0 | grep -q 'host/$TB_HOST@$TB_REALM'"
    equals "the user's /tmp/krb5cc_0 is untouched" "$before" \
        "$(stat -c '%U %a %s %Y' /tmp/krb5cc_0; sha256sum < /tmp/krb5cc_0)"
    # the plugin without keytab= nor hostcredcache=: root's ccache in /run/auks
    plug optional "default=disabled conf=$TB_AUKS_CONF renewer=$AUKS"
    tb_kinit
    as_bob "srun -N3 --auks=yes bash -c '$TASK'"
    for n in "${NODES[@]}"; do
        contains "plugin default host ccache: $n's task holds the TGT" "$OUT" "^TGT_$n=yes\$"
    done
    no_leftovers
    # auksdrenewer as its unit runs it (KRB5CCNAME=FILE:/run/auks/krb5cc_0): one pass
    (cd / && KRB5CCNAME=FILE:/run/auks/krb5cc_0 exec "$TB_REPO/target/debug/auksdrenewer" -v -f "$TB_AUKS_CONF" \
        > "$WORK/auksdrenewer.out" 2>&1 < /dev/null) &
    pid=$!
    for i in $(seq 1 50); do
        grep -qiE 'pass|renewed|skipped|credential' "$WORK/auksdrenewer.out" 2> /dev/null && break
        sleep 0.1
    done
    kill -TERM "$pid" 2> /dev/null
    watch_pid "$pid" 10
    wait "$pid" 2> /dev/null
    lacks "auksdrenewer authenticates with root's ccache (no authentication error)" \
        "$WORK/auksdrenewer.out" "[Aa]uthenticat.*(fail|error)|[Pp]ermission denied|krb5cc_0"
    equals "the user's /tmp/krb5cc_0 is still untouched" "$before" \
        "$(stat -c '%U %a %s %Y' /tmp/krb5cc_0; sha256sum < /tmp/krb5cc_0)"
    rm -f /tmp/krb5cc_0
}

# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
tb_need_root
for f in target/debug/libauks.so target/debug/auks target/debug/auksd target/debug/aukspriv target/debug/auksdrenewer; do
    [ -e "$TB_REPO/$f" ] || { echo "multinode-tests: $TB_REPO/$f not found: run 'cargo build' first" >&2; exit 2; }
done

TMP_KRB5CC_0_SAVED=""
suite_cleanup_extra() {
    rm -f /tmp/auks-fifo-"$TB_UID"
    rm -rf /tmp/auks-dir-"$TB_UID"
    rm -f /run/auks/krb5cc_0
    if [ -n "$TMP_KRB5CC_0_SAVED" ]; then mv -f "$TMP_KRB5CC_0_SAVED" /tmp/krb5cc_0; else rm -f /tmp/krb5cc_0; fi
}
suite_trap

tb_lock
# root's own /tmp/krb5cc_0 (if any) is put back at the end
if [ -e /tmp/krb5cc_0 ]; then
    TMP_KRB5CC_0_SAVED=$(mktemp /var/tmp/auks-krb5cc_0.XXXXXX)
    mv -f /tmp/krb5cc_0 "$TMP_KRB5CC_0_SAVED"
fi
tb_users
groupadd -f "$SHARED_GROUP"
id -nG "$TB_USER" | grep -qw "$SHARED_GROUP" || usermod -aG "$SHARED_GROUP" "$TB_USER"
tb_up || exit 1
WORK=$(mktemp -d /var/tmp/auks-multinode-tests.XXXXXX)
chmod 0755 "$WORK"
ARGS_BASE=$(tb_plugstack_default_args)

SELECTED=("$@")  # want / run_case: testbed/assert.sh

START=$(date +%s)
run_case srun_n2
run_case sbatch_n3
run_case salloc_n2
run_case node_fetch_fails
run_case hygiene
run_case ccname_srun_fifo
run_case ccname_srun_dir_fifo
run_case ccname_job_fifo
run_case root_ccache
run_case ccname_other_users
# kills a slurmstepd: last
run_case renewer_fds_pdeathsig
echo
echo "($(($(date +%s) - START)) s)"
assert_report
