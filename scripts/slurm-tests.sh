#!/usr/bin/env bash
# Integration tests of the auks SPANK plugin (target/debug/libauks.so) on a real one-node
# Slurm 22.05 cluster with a real KDC and our auksd (scripts/testbed/lib.sh).
#
# Run as root after `cargo build`: scripts/slurm-tests.sh [CASE...]
# (case names: see the `run_case` lines at the bottom; default: all).
# Every case runs as the unprivileged test user with a fresh kinit. The testbed is torn
# down at exit (TB_KEEP=1 keeps it up for debugging). Prints `N passed, N failed` last
# and exits non-zero if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"

# shellcheck source=testbed/assert.sh
. "$HERE/testbed/assert.sh"
WORK=""

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
# as_user / as_bob: testbed/assert.sh

# slurmd_log_mark / slurmd_log_since, user_jobs / wait_clean: testbed/assert.sh

# after a job: nothing of the user left on the node
no_leftovers() { # no_leftovers [UID]
    local uid=${1:-$TB_UID}
    if wait_clean "$uid"; then
        pass "nothing left after the job (no job, no process, no /tmp/krb5cc_${uid}_*)"
    else
        fail "nothing left after the job" "jobs: $(user_jobs "$(getent passwd "$uid" | cut -d: -f1)" | tr '\n' ' ')
processes: $(ps -o pid,user,args -u "$uid" 2>/dev/null | tail -n +2)
ccaches: $(ls -l /tmp/krb5cc_"${uid}"_* 2>/dev/null)"
    fi
}

# processes of the test user that are exactly the fake renewer (`sleep 3600`)
renewer_count() { ps -u "$TB_UID" -o args= 2>/dev/null | grep -cx 'sleep 3600'; }

# plugstack lines
ARGS_BASE=""
plug() { tb_plugstack "$@"; }

host_ccache=""
admin_remove_cred() { # remove uid's credential from auksd (as the host principal)
    KRB5CCNAME=$host_ccache "$TB_REPO/target/debug/auks" -f "$TB_AUKS_CONF" -r -u "$1" > /dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------
case_srun_basic() {
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob 'srun --auks=yes bash -c '\''klist; echo "TASK_CCNAME=$KRB5CCNAME"; f=${KRB5CCNAME#FILE:}; echo "STAT=$(stat -c "%U:%G %a %F" "$f")"; echo "JOB=$SLURM_JOB_ID"'\'''
    equals "srun exit status" 0 "$RC"
    contains "klist in the task prints the user's principal" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    local job
    job=$(sed -n 's/^JOB=//p' "$OUT")
    contains "KRB5CCNAME is set in the task to /tmp/krb5cc_<uid>_<jobid>_*" "$OUT" \
        "^TASK_CCNAME=FILE:/tmp/krb5cc_${TB_UID}_${job}_[A-Za-z0-9]{6}\$"
    contains "the ccache is a regular file owned by the user, mode 0600" "$OUT" \
        "^STAT=$TB_USER:$TB_USER 600 regular file\$"
    lacks "no error on stderr" "$ERR" "error"
    no_leftovers
}

# srun's ADD: the first srun of a fresh ticket has no auksd service ticket in the
# user's ccache and uses the helper process (which stores one there); the next
# srun makes its ADD on a thread of srun, without libkrb5; a Kerberos
# configuration that may name another default ccache sends it back to the helper
case_srun_add_paths() {
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob 'srun -v --auks=yes true'
    equals "first srun: exit status" 0 "$RC"
    contains "first srun: no service ticket yet, the helper process adds" "$ERR" \
        "auks: ADD by the helper process: FILE:/tmp/krb5cc_${TB_UID}: no service ticket for auksd in the ccache yet"
    contains "first srun: the credential is forwarded" "$ERR" "auks: Kerberos credential forwarded to auksd"
    # a new ticket in auksd's copy must come from the next ADD: remove it first
    admin_remove_cred "$TB_UID"
    as_bob 'srun -v --auks=yes klist'
    equals "second srun: exit status" 0 "$RC"
    contains "second srun: the credential is forwarded" "$ERR" "auks: Kerberos credential forwarded to auksd"
    lacks "second srun: no helper process" "$ERR" "ADD by the helper process"
    lacks "second srun: no fallback" "$ERR" "did not succeed"
    contains "second srun: the step has the credential its thread added" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    sed 's/^\[libdefaults\]/[libdefaults]\n default_ccache_name = FILE:\/tmp\/krb5cc_%{uid}/' /etc/krb5.conf > "$WORK/krb5-named.conf"
    chmod 644 "$WORK/krb5-named.conf"
    as_bob "KRB5_CONFIG=$WORK/krb5-named.conf srun -v --auks=yes true"
    equals "named default ccache: exit status" 0 "$RC"
    contains "named default ccache: the helper process adds" "$ERR" \
        "auks: ADD by the helper process: .*krb5-named.conf may name the default ccache"
    contains "named default ccache: the credential is forwarded" "$ERR" "auks: Kerberos credential forwarded to auksd"
    no_leftovers
}

case_sbatch() {
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob 'cat > batch.sh <<"EOF"
#!/bin/bash
echo "BATCH_CCNAME=$KRB5CCNAME"
klist | sed "s/^/BATCH /"
srun bash -c "echo STEP_CCNAME=\$KRB5CCNAME; klist | sed \"s/^/STEP /\""
EOF
rm -f batch.out; sbatch --auks=yes --wait -o batch.out batch.sh; cat batch.out'
    equals "sbatch --wait exit status" 0 "$RC"
    contains "the batch script sees the credential" "$OUT" "^BATCH Default principal: $TB_USER@$TB_REALM"
    contains "the batch script has KRB5CCNAME" "$OUT" "^BATCH_CCNAME=FILE:/tmp/krb5cc_${TB_UID}_[0-9]+_"
    contains "an srun inside the batch job sees the credential" "$OUT" "^STEP Default principal: $TB_USER@$TB_REALM"
    no_leftovers
}

case_sbatch_done() {
    plug optional "$ARGS_BASE"
    admin_remove_cred "$TB_UID"
    tb_kinit
    as_bob "AUKS_CONF=$TB_AUKS_CONF $TB_REPO/target/debug/auks -a && kdestroy -q"
    equals "auks -a as the user" 0 "$RC"
    as_bob 'rm -f done.out; sbatch --auks=done --wait -o done.out --wrap "klist; echo CC=\$KRB5CCNAME"; cat done.out'
    equals "sbatch --auks=done exit status" 0 "$RC"
    contains "the job got the credential pushed by auks -a (no ccache at submit)" "$OUT" \
        "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
    # and with nothing stored: the user is told what to do
    admin_remove_cred "$TB_UID"
    as_bob 'srun --auks=done bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    contains "no credential in auksd: plain message on srun stderr" "$ERR" \
        "auks: no credential stored for uid $TB_UID in auksd; submit with --auks=yes after kinit"
    contains "optional plugin: the task still runs, without credential" "$OUT" "^TASK_CCNAME=unset\$"
    no_leftovers
}

case_salloc() {
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob 'salloc --auks=yes -n1 srun bash -c "klist; echo CC=\$KRB5CCNAME"'
    equals "salloc exit status" 0 "$RC"
    contains "srun inside salloc sees the credential" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    contains "KRB5CCNAME set" "$OUT" "^CC=FILE:/tmp/krb5cc_${TB_UID}_"
    no_leftovers
}

case_two_tasks_one_renewer() {
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$SLEEP_RENEWER"
    tb_kinit
    local mark
    mark=$(slurmd_log_mark)
    as_bob "printf '%s\\n' 'sleep 1' 'echo RENEWERS=\$(ps -u $TB_UID -o args= | grep -cx \"sleep 3600\")' 'echo JOB=\$SLURM_JOB_ID' > count.sh"
    as_bob 'srun -n2 --auks=yes bash count.sh'
    equals "srun -n2 exit status" 0 "$RC"
    equals "two tasks ran" 2 "$(grep -c '^RENEWERS=' "$OUT")"
    equals "each task sees exactly one renewer process" "RENEWERS=1 RENEWERS=1" \
        "$(grep '^RENEWERS=' "$OUT" | tr '\n' ' ' | sed 's/ $//')"
    no_leftovers
    equals "no renewer process after the job" 0 "$(renewer_count)"
    local job log
    job=$(sed -n 's/^JOB=//p' "$OUT" | head -1)
    log=$(slurmd_log_since "$mark" | grep "\[$job.0\]")
    equals "one renewer started for the step" 1 "$(grep -c 'credential renewer .* started' <<< "$log")"
    equals "the renewer was stopped once" 1 "$(grep -c 'credential renewer (pid [0-9]*) stopped' <<< "$log")"
    equals "the ccache was destroyed once" 1 "$(grep -c 'destroyed FILE:/tmp/krb5cc_' <<< "$log")"
    # the fetch helper is the renewer= program, which is not ours here: it
    # does not greet, is killed, and the step fetches in slurmstepd
    equals "a fetch helper that does not greet is replaced by a fetch in slurmstepd" 1 \
        "$(grep -c 'fetch helper .*sleep-renewer.sh gave no report (no greeting within 2 s): fetching in slurmstepd' <<< "$log")"
    equals "and it is not left running" 0 "$(ps -u root -o args= | grep -cx 'sleep 3600')"
}

# The step's GET and ccache are done by `auks --spank-fetch` (the fetch
# helper) while slurmstepd sets the step up; helper=none keeps them in
# slurmstepd. Both give the step its credential.
# a --auks=yes step that prints klist, its ccache's owner and mode, and its job id
# ($OUT); its "auks: step phases" line from slurmd.log in $WORK/NAME.log
klist_step_phases() { # klist_step_phases NAME
    local mark job
    mark=$(slurmd_log_mark)
    as_bob 'srun --auks=yes bash -c '\''klist | head -2; f=${KRB5CCNAME#FILE:}; echo "STAT=$(stat -c "%U:%G %a %F" "$f")"; echo "JOB=$SLURM_JOB_ID"'\'''
    job=$(sed -n 's/^JOB=//p' "$OUT")
    slurmd_log_since "$mark" | grep "\[$job.0\] auks: step phases" > "$WORK/$1.log"
}

case_helper_program() {
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$TB_REPO/target/debug/auks"
    tb_kinit
    klist_step_phases fetch-helper
    contains "fetch helper: the step has the credential" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    contains "fetch helper: started at init_post_opt, collected at user_init, its GET and store reported" \
        "$WORK/fetch-helper.log" "prefetch_start=.* prefetch_wait=.* get=.* store="
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$TB_REPO/target/debug/auks helper=none"
    klist_step_phases fetch-none
    contains "helper=none: the step has the credential" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    contains "helper=none: fetched in slurmstepd" "$WORK/fetch-none.log" "step phases: get="
    no_leftovers
}

# fetchagent=: slurmstepd asks aukspriv's fetch agent (AUKS_PRIV_FETCH_SOCKET) and
# starts no helper; without the agent it falls back to the helper
case_fetch_agent() {
    local dir sock pid
    dir=$(mktemp -d /var/tmp/auks-agent.XXXXXX)
    sock=$dir/fetch.sock
    AUKS_PRIV_FETCH_SOCKET=$sock AUKS_PRIV_CCACHE=FILE:$dir/hostcc AUKS_PRIV_KEYTAB=$TB_HOST_KEYTAB \
        AUKS_PRIV_SYSLOG_PRIO=none "$TB_REPO/target/debug/aukspriv" -F > "$WORK/aukspriv.log" 2>&1 9>&- &
    pid=$!
    for _ in $(seq 1 100); do [ -S "$sock" ] && [ -s "$dir/hostcc" ] && break; sleep 0.1; done
    plug optional "default=disabled conf=$TB_AUKS_CONF hostcredcache=FILE:$dir/hostcc renewer=$TB_REPO/target/debug/auks fetchagent=$sock"
    tb_kinit
    klist_step_phases fetch-agent
    contains "fetch agent: the step has the credential" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    contains "fetch agent: the ccache is the user's, mode 0600" "$OUT" "^STAT=$TB_USER:$TB_USER 600 regular file\$"
    contains "fetch agent: asked at init_post_opt, its GET and store reported" "$WORK/fetch-agent.log" \
        "agent_ask=.* prefetch_wait=.* get=.* store="
    lacks "fetch agent: no helper started" "$WORK/fetch-agent.log" "prefetch_start="
    as_bob "python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"$sock\")'"
    contains "fetch agent: the user cannot even connect to its socket" "$ERR" "PermissionError"
    kill "$pid"
    wait "$pid"
    equals "aukspriv with a fetch agent stops on SIGTERM" 0 "$?"
    lacks "aukspriv logged no refused request" "$WORK/aukspriv.log" "fetch agent:"
    [ ! -e "$sock" ] && pass "the agent's socket is removed when aukspriv stops" \
        || fail "the agent's socket is removed when aukspriv stops"
    klist_step_phases fetch-noagent
    contains "no agent: the step still has the credential" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    contains "no agent: the helper fetched" "$WORK/fetch-noagent.log" "prefetch_start=.* get=.* store="
    no_leftovers
    rm -rf "$dir"
}

case_scancel() {
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$SLEEP_RENEWER helper=$TB_REPO/target/debug/auks"
    tb_kinit
    as_bob 'sbatch --auks=yes -o /dev/null --wrap "sleep 300" | awk "{print \$4}"'
    local job i
    job=$(cat "$OUT")
    for i in $(seq 1 100); do
        compgen -G "/tmp/krb5cc_${TB_UID}_${job}_*" > /dev/null && [ "$(renewer_count)" = 1 ] && break
        sleep 0.1
    done
    check "running job $job has its ccache" sh -c "ls /tmp/krb5cc_${TB_UID}_${job}_* >/dev/null 2>&1"
    equals "running job has one renewer" 1 "$(renewer_count)"
    as_bob "scancel $job"
    no_leftovers
    equals "no renewer after scancel" 0 "$(renewer_count)"
}

TIMELIMIT_JOB=""
start_timelimit_job() {
    # as the second user, so that the other cases' leftover checks are not disturbed
    plug optional "$ARGS_BASE"
    tb_kinit "$TB_USER2"
    TIMELIMIT_JOB=$(tb_as "$TB_USER2" 'sbatch --auks=yes --time=1 -o /dev/null --wrap "sleep 600"' | awk '{print $4}')
    tb_kdestroy "$TB_USER2"
    local i
    for i in $(seq 1 100); do
        compgen -G "/tmp/krb5cc_${TB_UID2}_${TIMELIMIT_JOB}_*" > /dev/null && break
        sleep 0.1
    done
}

case_timelimit() {
    local i state
    check "job $TIMELIMIT_JOB (time limit 1 min) got its ccache while running" \
        test -n "$TIMELIMIT_SAW_CCACHE"
    for i in $(seq 1 150); do
        state=$(scontrol -o show job "$TIMELIMIT_JOB" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
        [ "$state" = TIMEOUT ] && [ -z "$(user_jobs "$TB_USER2")" ] && break
        sleep 1
    done
    equals "the job was killed by its time limit" TIMEOUT "$state"
    no_leftovers "$TB_UID2"
}

case_auks_no() {
    plug optional "default=enabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$TB_REPO/target/debug/auks"
    tb_kinit
    as_bob 'srun --auks=no bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}; ls /tmp/krb5cc_'"$TB_UID"'_* 2>/dev/null | wc -l"'
    equals "srun --auks=no exit status" 0 "$RC"
    contains "--auks=no (default=enabled): no KRB5CCNAME in the task" "$OUT" "^TASK_CCNAME=unset\$"
    contains "--auks=no: no per-job ccache created" "$OUT" "^0\$"
    as_bob 'srun bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    contains "no option, default=enabled: credential forwarded" "$OUT" "^TASK_CCNAME=FILE:/tmp/krb5cc_${TB_UID}_"
    as_bob 'srun --auks=maybe true'
    check "a bad --auks value is rejected" test "$RC" -ne 0
    contains "with a clear message" "$ERR" "invalid value 'maybe' for --auks: use --auks=yes, --auks=no or --auks=done"
    no_leftovers
}

case_no_ticket() {
    plug optional "$ARGS_BASE"
    tb_kdestroy
    as_bob 'srun --auks=yes bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset} SPANK_AUKS=\$SLURM_SPANK_AUKS"'
    equals "no ticket, not enforced: the job runs" 0 "$RC"
    contains "with a one-line notice" "$ERR" "auks: no Kerberos credential cache found"
    equals "the notice is one line" 1 "$(grep -c auks "$ERR")"
    contains "and without credential (SLURM_SPANK_AUKS=no)" "$OUT" "^TASK_CCNAME=unset SPANK_AUKS=no\$"
    no_leftovers
}

case_enforced() {
    plug required "$ARGS_BASE enforced"
    tb_kdestroy
    local before
    before=$(squeue -h -t all -o %i | wc -l)
    as_bob 'srun --auks=yes echo RAN'
    check "enforced, no ticket: srun fails" test "$RC" -ne 0
    lacks "the task did not run" "$OUT" "RAN"
    contains "the message says to run kinit" "$ERR" "run kinit"
    as_bob 'sbatch --auks=yes --wrap true'
    check "enforced, no ticket: sbatch fails" test "$RC" -ne 0
    contains "sbatch message says to run kinit" "$ERR" "run kinit"
    equals "nothing was submitted" "$before" "$(squeue -h -t all -o %i | wc -l)"
    tb_kinit
    as_bob 'srun --auks=yes klist'
    contains "enforced, with a ticket: works" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
}

case_minimum_uid() {
    plug optional "$ARGS_BASE minimum_uid=$TB_UID2"
    tb_kinit
    admin_remove_cred "$TB_UID"
    as_bob 'srun --auks=yes bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    equals "uid below minimum_uid: job runs" 0 "$RC"
    contains "uid below minimum_uid: plugin disabled (no credential)" "$OUT" "^TASK_CCNAME=unset\$"
    lacks "uid below minimum_uid: no message" "$ERR" "auks"
    check "uid below minimum_uid: nothing pushed to auksd" \
        sh -c "! KRB5CCNAME=$host_ccache $TB_REPO/target/debug/auks -f $TB_AUKS_CONF -D 2>/dev/null | grep -q '^$TB_UID '"
    tb_kinit "$TB_USER2"
    as_user "$TB_USER2" 'srun --auks=yes bash -c "klist; echo JOB=\$SLURM_JOB_ID"'
    contains "uid = minimum_uid: enabled" "$OUT" "Default principal: $TB_USER2@$TB_REALM"
    tb_kdestroy "$TB_USER2"
    no_leftovers
    # (the second user may have the time-limit job running: look at this job only)
    local job
    job=$(sed -n 's/^JOB=//p' "$OUT")
    sleep 1
    check "uid = minimum_uid: ccache of job $job removed" \
        sh -c "! ls /tmp/krb5cc_${TB_UID2}_${job}_* >/dev/null 2>&1"
}

case_auksd_down() {
    tb_kinit
    # push the credential first, then stop auksd: the step launch cannot reach it
    as_bob "AUKS_CONF=$TB_AUKS_CONF $TB_REPO/target/debug/auks -a"
    tb_auksd_down
    plug optional "$ARGS_BASE"
    as_bob 'srun --auks=done bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    contains "optional: stderr says auksd is unreachable" "$ERR" "auksd is unreachable"
    contains "optional: the task ran without credential" "$OUT" "^TASK_CCNAME=unset\$"
    plug required "$ARGS_BASE"
    as_bob 'srun --auks=done bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    contains "required: stderr says auksd is unreachable" "$ERR" "auksd is unreachable"
    contains "required: the step launch failed" "$ERR" "launch failed"
    lacks "required: the task did not run" "$OUT" "TASK_CCNAME"
    as_bob 'srun --auks=yes true'
    contains "required, at submission: stderr says auksd is unreachable" "$ERR" "auksd is unreachable"
    check "required, at submission: srun fails" test "$RC" -ne 0
    tb_auksd_up
    no_leftovers
}

case_force_file_ccache() {
    plug optional "$ARGS_BASE force_file_ccache"
    tb_kinit
    as_bob 'srun --auks=yes bash -c '\''klist | head -2; echo "TASK_CCNAME=$KRB5CCNAME"; echo "STAT=$(stat -c "%U %a" "$KRB5CCNAME")"'\'''
    contains "force_file_ccache: plain path /tmp/krb5cc_<uid>_<jobid>_XXXXXX" "$OUT" \
        "^TASK_CCNAME=/tmp/krb5cc_${TB_UID}_[0-9]+_[A-Za-z0-9]{6}\$"
    contains "force_file_ccache: owned by the user, 0600" "$OUT" "^STAT=$TB_USER 600\$"
    contains "force_file_ccache: usable" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
}

case_no_cc_switch() {
    plug optional "$ARGS_BASE no_cc_switch"
    tb_kinit
    as_bob 'srun --auks=yes klist'
    contains "no_cc_switch: credential available" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
}

case_spankstackcred() {
    plug optional "$ARGS_BASE spankstackcred=yes sync=yes"
    tb_kinit
    local mark
    mark=$(slurmd_log_mark)
    as_bob 'srun --auks=yes bash -c "klist | head -2; echo JOB=\$SLURM_JOB_ID"'
    contains "spankstackcred=yes: credential available" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
    local job
    job=$(sed -n 's/^JOB=//p' "$OUT")
    slurmd_log_since "$mark" > "$WORK/spankstack.log"
    contains "spankstackcred=yes: KRB5CCNAME exported in slurmstepd" "$WORK/spankstack.log" \
        "\[$job.0\] auks: spankstackcred: KRB5CCNAME=FILE:/tmp/krb5cc_${TB_UID}_${job}_"
    contains "sync=yes: sync() called before the ccache is destroyed" "$WORK/spankstack.log" \
        "\[$job.0\] auks: calling sync\(\)"
}

case_hostcredcache() {
    plug optional "default=disabled conf=$TB_AUKS_CONF hostcredcache=$host_ccache renewer=$TB_REPO/target/debug/auks"
    tb_kinit
    as_bob 'srun --auks=yes klist'
    contains "hostcredcache=: slurmstepd authenticates with that ccache" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
    plug optional "default=disabled conf=$TB_AUKS_CONF hostcredcache=FILE:/nonexistent/cc renewer=$TB_REPO/target/debug/auks"
    as_bob 'srun --auks=yes bash -c "echo TASK_CCNAME=\${KRB5CCNAME:-unset}"'
    contains "hostcredcache= missing: the node cannot authenticate, said plainly" "$ERR" \
        "this node cannot authenticate to auksd"
    no_leftovers
}

case_keytab_principal() {
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB:host/$TB_HOST@$TB_REALM renewer=$TB_REPO/target/debug/auks"
    tb_kinit
    as_bob 'srun --auks=yes klist'
    contains "keytab=PATH:PRINCIPAL works" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    plug optional "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB:host/nosuchhost@$TB_REALM renewer=$TB_REPO/target/debug/auks"
    as_bob 'srun --auks=yes true'
    contains "keytab with a wrong principal: said plainly" "$ERR" "this node cannot get its own Kerberos ticket"
    no_leftovers
}

# the node's default ccache type is KEYRING: the job's cache is a new keyring cache in the
# user's persistent collection, created with the user's real uid (else it would land in
# root's persistent keyring and the tasks could not read it)
case_keyring_ccache() {
    plug optional "$ARGS_BASE"
    tb_kinit
    as_bob "AUKS_CONF=$TB_AUKS_CONF $TB_REPO/target/debug/auks -a && kdestroy -q"
    equals "auks -a as the user" 0 "$RC"
    cp -a /etc/krb5.conf "$WORK/krb5.conf.saved"
    sed -i 's/^\[libdefaults\]$/[libdefaults]\n  default_ccache_name = KEYRING:persistent:%{uid}/' /etc/krb5.conf
    as_bob 'srun --auks=done bash -c "echo TASK_CCNAME=\$KRB5CCNAME; klist | head -2"'
    cp -a "$WORK/krb5.conf.saved" /etc/krb5.conf
    local cc
    cc=$(sed -n 's/^TASK_CCNAME=//p' "$OUT")
    if grep -q 'KEYRING:persistent' "$OUT"; then
        contains "KEYRING default: a new cache in the user's persistent keyring" "$OUT" \
            "^TASK_CCNAME=KEYRING:persistent:$TB_UID:"
        contains "KEYRING default: readable by the tasks (created with the user's real uid)" "$OUT" \
            "Default principal: $TB_USER@$TB_REALM"
        no_leftovers
        as_bob "KRB5CCNAME='$cc' klist -s"
        check "KEYRING cache destroyed after the job" test "$RC" -ne 0
    else
        fail "KEYRING default ccache" "$(cat "$OUT" "$ERR")"
    fi
}

case_unknown_argument() {
    plug optional "$ARGS_BASE bogus_argument"
    tb_kinit
    local mark
    mark=$(slurmd_log_mark)
    as_bob 'srun -v --auks=yes klist'
    contains "an unknown plugstack argument is shown by srun -v" "$ERR" \
        "auks: plugstack argument 'bogus_argument': unknown argument"
    as_bob 'srun --auks=yes true'
    lacks "an unknown plugstack argument is not shown to users without -v" "$ERR" "bogus_argument"
    slurmd_log_since "$mark" > "$WORK/unknown.log"
    contains "an unknown plugstack argument is logged in slurmd.log" "$WORK/unknown.log" \
        "auks: plugstack argument 'bogus_argument': unknown argument"
    as_bob 'srun --auks=yes klist'
    contains "and does not stop the plugin" "$OUT" "Default principal: $TB_USER@$TB_REALM"
    no_leftovers
}

# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
tb_need_root
for f in target/debug/libauks.so target/debug/auks target/debug/auksd; do
    [ -e "$TB_REPO/$f" ] || { echo "slurm-tests: $TB_REPO/$f not found: run 'cargo build' first" >&2; exit 2; }
done

suite_trap

tb_up || exit 1
WORK=$(mktemp -d /var/tmp/auks-slurm-tests.XXXXXX)
chmod 0755 "$WORK"
SLEEP_RENEWER=$TB_DIR/sleep-renewer.sh
printf '#!/bin/sh\n# fake renewer for the tests: stays alive until killed\nexec sleep 3600\n' > "$SLEEP_RENEWER"
chmod 0755 "$SLEEP_RENEWER"
ARGS_BASE=$(tb_plugstack_default_args)
host_ccache=FILE:$TB_DIR/hostcc
kinit -k -t "$TB_HOST_KEYTAB" -c "$host_ccache" "host/$TB_HOST@$TB_REALM" || { echo "host kinit failed" >&2; exit 1; }

SELECTED=("$@")  # want / run_case: testbed/assert.sh

START=$(date +%s)
# the time-limit job runs in the background (it needs ~1-2 minutes) while the
# one-CPU cases run; it is checked after them
TIMELIMIT_SAW_CCACHE=""
if want timelimit; then
    CASE=timelimit
    start_timelimit_job
    compgen -G "/tmp/krb5cc_${TB_UID2}_${TIMELIMIT_JOB}_*" > /dev/null && TIMELIMIT_SAW_CCACHE=yes
fi
run_case srun_basic
run_case srun_add_paths
run_case sbatch
run_case sbatch_done
run_case salloc
run_case auks_no
run_case no_ticket
run_case enforced
run_case minimum_uid
run_case auksd_down
run_case force_file_ccache
run_case no_cc_switch
run_case spankstackcred
run_case hostcredcache
run_case keytab_principal
run_case helper_program
run_case fetch_agent
run_case unknown_argument
run_case keyring_ccache
run_case scancel
run_case timelimit
# needs both CPUs: after the time-limit job is gone
run_case two_tasks_one_renewer

echo
echo "($(($(date +%s) - START)) s)"
assert_report
