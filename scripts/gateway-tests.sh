#!/usr/bin/env bash
# End-to-end tests of auks-gateway on the one-node testbed: real KDC, real auksd, real
# slurmctld/slurmd with Slurm's JWT authentication, real slurmrestd (openapi/v0.0.38),
# the plugin at plugstack `default=disabled`, and real HTTPS with a throw-away CA, called
# with curl as a laptop would. The gateway runs as its own unprivileged account.
#
# Run as root after `cargo build`: scripts/gateway-tests.sh [CASE...]
# Prints `N passed, N failed` last and exits non-zero if anything failed. TB_KEEP=1 keeps
# the testbed up for debugging.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"
# shellcheck source=testbed/rest.sh
. "$HERE/testbed/rest.sh"
# shellcheck source=testbed/assert.sh
. "$HERE/testbed/assert.sh"
WORK=""

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
GW_URL=""
GW_CA=""
HTTP=""
BODY=""
HDRS=""
# api METHOD PATH [USER PASSWORD [BODYFILE]]: status in $HTTP, body in file $BODY
api() {
    local m=$1 p=$2 u=${3:-} pw=${4:-} data=${5:-}
    BODY=$WORK/$CASE.body
    HDRS=$WORK/$CASE.headers
    local args=(-sS --max-time 90 -X "$m" --cacert "$GW_CA" -o "$BODY" -D "$HDRS" -w '%{http_code}')
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$data")
    if [ -n "$u" ]; then
        # the password reaches curl on stdin, never on a command line
        HTTP=$(printf 'user = "%s:%s"\n' "$u" "$pw" | curl "${args[@]}" -K - "$GW_URL$p" 2>> "$WORK/curl.err")
    else
        HTTP=$(curl "${args[@]}" "$GW_URL$p" 2>> "$WORK/curl.err")
    fi
}
jbody() { jq -r "$1" "$BODY" 2>/dev/null; }
status_is() { # status_is DESC CODE [ERROR_CODE]
    if [ "$HTTP" = "$2" ] && { [ -z "${3:-}" ] || [ "$(jbody .error)" = "$3" ]; }; then
        pass "$1 ($HTTP${3:+ $3})"
    else
        fail "$1" "expected $2 ${3:-}, got $HTTP: $(head -c 600 "$BODY" 2>/dev/null)"
    fi
}

# job_json FILE SCRIPT [EXTRA_JQ]: a POST /v1/jobs body
job_json() {
    jq -n --arg s "$2" --arg o "$WORK/out/%u-%j.out" "{script: \$s, name: \"gw-$CASE\", output: \$o, time_limit: 5} ${3:-}" > "$1"
}

submit() { # submit USER PASSWORD SCRIPT -> $JOB (empty on failure)
    local f=$WORK/$CASE.job.json
    job_json "$f" "$3"
    api POST /v1/jobs "$1" "$2" "$f"
    JOB=$(jbody .job_id)
    [ "$HTTP" = 201 ] || JOB=""
}

job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
wait_job_done() { # wait_job_done JOB [SECONDS]
    local j=$1 limit=${2:-120} i s
    for i in $(seq 1 $((limit * 5))); do
        s=$(job_state "$j")
        case "$s" in
            COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | "") return 0 ;;
        esac
        sleep 0.2
    done
    return 1
}
wait_job_running() {
    local i
    for i in $(seq 1 300); do
        [ "$(job_state "$1")" = RUNNING ] && return 0
        sleep 0.2
    done
    return 1
}
user_job_count() { squeue -h -u "$1" -t all 2>/dev/null | wc -l; }
cred_file() { echo "$TB_DIR/auksd-cache/aukscc_$1"; }

host_ccache=""
admin_remove_cred() {
    KRB5CCNAME=$host_ccache "$TB_REPO/target/debug/auks" -f "$TB_AUKS_CONF" -r -u "$1" > /dev/null 2>&1 || true
}

# nothing of the user left on the node: no job, no process, no per-job ccache
no_leftovers() { # no_leftovers UID
    local uid=$1 name i
    name=$(getent passwd "$uid" | cut -d: -f1)
    for i in $(seq 1 100); do
        if [ -z "$(squeue -h -u "$name" 2>/dev/null)" ] && ! pgrep -u "$uid" > /dev/null \
            && ! compgen -G "/tmp/krb5cc_${uid}_*" > /dev/null; then
            pass "nothing of $name left on the node after the job"
            return 0
        fi
        sleep 0.2
    done
    fail "nothing of $name left on the node after the job" \
        "jobs: $(squeue -h -u "$name" | tr '\n' ' ') procs: $(pgrep -u "$uid" -a) ccaches: $(ls /tmp/krb5cc_"${uid}"_* 2>&1)"
}

gw_log() { cat "$TB_DIR/log/gateway.log"; }
gw_log_mark() { wc -l < "$TB_DIR/log/gateway.log"; }
gw_log_since() { tail -n +"$(($1 + 1))" "$TB_DIR/log/gateway.log" > "$WORK/$CASE.gwlog"; echo "$WORK/$CASE.gwlog"; }

KLIST_SCRIPT='#!/bin/bash
echo "WHO=$(id -un)"
klist
f=${KRB5CCNAME#FILE:}
echo "STAT=$(stat -c "%U %a %F" "$f")"
echo "AUKS_MODE=${SLURM_SPANK_AUKS:-}"'

# ---------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------
case_openapi() {
    runuser -u "$TB_REST_USER" -- /usr/sbin/slurmrestd -s list > "$WORK/list.out" 2>&1
    contains "slurmrestd of Slurm 22.05 offers openapi/v0.0.38" "$WORK/list.out" "openapi/v0\.0\.38"
    gw_log > "$WORK/gw-start.log"
    contains "the gateway checked slurmrestd's OpenAPI version at start" "$WORK/gw-start.log" \
        "serves OpenAPI $TB_REST_VERSION"
    api GET /v1/health
    status_is "health: KDC, auksd and slurmrestd reachable" 200
    equals "health names every backend ok" "true true true" \
        "$(jbody '[.kdc.ok, .auksd.ok, .slurmrestd.ok] | map(tostring) | join(" ")')"
}

# slurmrestd serves only openapi/v0.0.38: a gateway configured for another version
# refuses to start and names the versions slurmrestd serves
case_openapi_mismatch() {
    local conf=$TB_GW_DIR/mismatch.toml rc
    sed -e 's/^openapi_version = .*/openapi_version = "v0.0.36"/' \
        -e "s/^listen = .*/listen = \"127.0.0.1:$(tb_free_port)\"/" "$TB_GW_DIR/gateway.toml" > "$conf"
    chmod 0644 "$conf"
    timeout 30 setpriv --reuid="$TB_GW_USER" --regid="$TB_GW_USER" --init-groups \
        "${TB_GATEWAY:-$TB_REPO/target/debug/auks-gateway}" -f "$conf" > "$WORK/mismatch.log" 2>&1
    rc=$?
    equals "a gateway configured for v0.0.36 refuses to start" 2 "$rc"
    contains "and says which versions slurmrestd serves" "$WORK/mismatch.log" \
        "does not serve v0\.0\.36 \(it serves: v0\.0\.38\)"
    rm -f "$conf"
}

case_submit() {
    tb_kdestroy "$TB_USER"
    admin_remove_cred "$TB_UID"
    submit "$TB_USER" "$TB_PW_USER" "$KLIST_SCRIPT"
    status_is "POST /v1/jobs answers 201" 201
    [ -n "$JOB" ] || return
    equals "the reply names the local user" "$TB_USER" "$(jbody .user)"
    check "the credential is in auksd under the user's uid" test -s "$(cred_file "$TB_UID")"
    wait_job_done "$JOB" 120 || fail "job $JOB did not finish"
    local out=$WORK/out/$TB_USER-$JOB.out
    check "the job wrote its output" test -s "$out"
    [ -s "$out" ] || return
    contains "the job ran as its owner" "$out" "^WHO=$TB_USER\$"
    contains "klist in the job shows the owner's TGT" "$out" "Default principal: $TB_USER@$TB_REALM"
    contains "the TGT is a krbtgt ticket" "$out" "krbtgt/$TB_REALM@$TB_REALM"
    contains "the job's ccache is owned by the user, mode 0600" "$out" "^STAT=$TB_USER 600 regular file\$"
    contains "the job got --auks=done semantics through its environment" "$out" "^AUKS_MODE=done\$"
    equals "the output file belongs to the user" "$TB_USER" "$(stat -c %U "$out")"
    no_leftovers "$TB_UID"
    SUBMITTED_JOB=$JOB
}

# Which mechanism carries --auks to slurmstepd for a REST job (plugstack default=disabled):
# straight to slurmrestd with a ready token, three jobs whose environment has
# SLURM_SPANK_AUKS=done only / SLURM_SPANK__SLURM_SPANK_OPTION_auks_auks=done only / neither.
case_spank_option() {
    local base=$WORK/so.json name var j out
    jq -n --arg s "$KLIST_SCRIPT" '{script: $s, job: {current_working_directory: "/tmp",
        environment: {PATH: "/usr/bin:/bin"}}}' > "$base"
    declare -A got
    for name in mode option none; do
        case $name in
            mode) var=SLURM_SPANK_AUKS ;;
            option) var=SLURM_SPANK__SLURM_SPANK_OPTION_auks_auks ;;
            none) var="" ;;
        esac
        jq --arg v "$var" --arg o "$WORK/out/so-$name-%j.out" \
            '.job.standard_output = $o | .job.name = "so-'"$name"'"
             | if $v != "" then .job.environment[$v] = "done" else . end' "$base" > "$WORK/so-$name.json"
        j=$(tb_rest_submit "$TB_USER" "$WORK/so-$name.json" | jq -r .job_id)
        wait_job_done "$j" 60
        out=$WORK/out/so-$name-$j.out
        if grep -q "Default principal: $TB_USER@$TB_REALM" "$out" 2>/dev/null; then got[$name]=ticket; else got[$name]=none; fi
    done
    equals "SLURM_SPANK_AUKS=done in the job environment gives a REST job its ticket" ticket "${got[mode]}"
    equals "with neither variable (default=disabled) the job gets no ticket" none "${got[none]}"
    echo "  note $CASE: SLURM_SPANK__SLURM_SPANK_OPTION_auks_auks=done alone: ${got[option]}"
    no_leftovers "$TB_UID"
}

case_status_list() {
    local j=${SUBMITTED_JOB:-}
    [ -n "$j" ] || { fail "no job from case submit"; return; }
    api GET "/v1/jobs/$j" "$TB_USER" "$TB_PW_USER"
    status_is "GET /v1/jobs/{id} of one's own job" 200
    equals "its state is COMPLETED" COMPLETED "$(jbody .state)"
    equals "its exit code is shown" 0 "$(jbody '.exit_code')"
    api GET /v1/jobs "$TB_USER" "$TB_PW_USER"
    status_is "GET /v1/jobs" 200
    equals "the caller's jobs include it" "$j" "$(jbody ".jobs[] | select(.job_id == $j) | .job_id")"
    equals "and only the caller's jobs" "" "$(jbody ".jobs[] | select(.user != \"$TB_USER\") | .job_id")"
}

case_cancel() {
    submit "$TB_USER" "$TB_PW_USER" $'#!/bin/bash\nsleep 300'
    status_is "submit a long job" 201
    [ -n "$JOB" ] || return
    wait_job_running "$JOB" || true
    api DELETE "/v1/jobs/$JOB" "$TB_USER" "$TB_PW_USER"
    status_is "DELETE /v1/jobs/{id} of one's own job" 200
    wait_job_done "$JOB" 60
    equals "the job is cancelled" CANCELLED "$(job_state "$JOB")"
    no_leftovers "$TB_UID"
}

case_not_yours() {
    submit "$TB_USER2" "$TB_PW_USER2" $'#!/bin/bash\nsleep 300'
    status_is "carol submits a long job" 201
    [ -n "$JOB" ] || return
    local cj=$JOB
    api GET "/v1/jobs/$cj" "$TB_USER" "$TB_PW_USER"
    status_is "bob cannot see carol's job" 403 forbidden
    api DELETE "/v1/jobs/$cj" "$TB_USER" "$TB_PW_USER"
    status_is "bob cannot cancel carol's job" 403 forbidden
    sleep 1
    case "$(job_state "$cj")" in
        PENDING | RUNNING) pass "carol's job is untouched ($(job_state "$cj"))" ;;
        *) fail "carol's job is untouched" "state $(job_state "$cj")" ;;
    esac
    api GET /v1/jobs "$TB_USER" "$TB_PW_USER"
    equals "bob's job list does not show carol's job" "" "$(jbody ".jobs[] | select(.job_id == $cj) | .job_id")"
    api DELETE "/v1/jobs/$cj" "$TB_USER2" "$TB_PW_USER2"
    status_is "carol cancels her own job" 200
    wait_job_done "$cj" 60
    no_leftovers "$TB_UID2"
}

case_bad_login() {
    admin_remove_cred "$TB_UID"
    local before
    before=$(user_job_count "$TB_USER")
    local f=$WORK/$CASE.job.json
    job_json "$f" "$KLIST_SCRIPT"
    api POST /v1/jobs "$TB_USER" "wrong-password" "$f"
    status_is "wrong password" 401 unauthorized
    cp "$BODY" "$WORK/wrong.body"
    api POST /v1/jobs nosuchuser "whatever" "$f"
    status_is "unknown user" 401 unauthorized
    check "unknown user and wrong password get the same answer" cmp -s "$BODY" "$WORK/wrong.body"
    check "nothing stored in auksd" test ! -e "$(cred_file "$TB_UID")"
    equals "no job submitted" "$before" "$(user_job_count "$TB_USER")"
    api GET /v1/jobs "$TB_USER" "wrong-again"
    status_is "third failure" 401
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$f"
    status_is "after repeated failures: rate limited, even with the right password" 429 rate_limited
    local ra
    ra=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$HDRS")
    at_least "Retry-After is given" 1 "${ra:-0}"
    equals "still no job" "$before" "$(user_job_count "$TB_USER")"
    sleep $((${ra:-5} + 1))
}

case_auksd_down() {
    local before
    before=$(user_job_count "$TB_USER")
    tb_auksd_down
    submit "$TB_USER" "$TB_PW_USER" "$KLIST_SCRIPT"
    status_is "auksd down: the error names auksd" 503 auksd_unavailable
    equals "no job submitted without a stored credential" "$before" "$(user_job_count "$TB_USER")"
    tb_auksd_up
}

case_slurmrestd_down() {
    admin_remove_cred "$TB_UID"
    local mark
    mark=$(gw_log_mark)
    tb_slurmrestd_down
    submit "$TB_USER" "$TB_PW_USER" "$KLIST_SCRIPT"
    status_is "slurmrestd down: the error names slurmrestd" 503 slurmrestd_unavailable
    check "the credential had been stored in auksd" test -s "$(cred_file "$TB_UID")"
    contains "the gateway log reports the credential just added" "$(gw_log_since "$mark")" \
        "was added to auksd but no job was submitted"
    tb_slurmrestd_up
}

case_wrong_jwt_key() {
    tb_gateway_down
    head -c 32 /dev/urandom > "$TB_GW_DIR/jwt_hs256.key"
    tb_gateway_up
    submit "$TB_USER" "$TB_PW_USER" "$KLIST_SCRIPT"
    status_is "a wrong JWT key: 502 from slurmrestd" 502 slurmrestd_error
    jbody .message > "$WORK/jwt.msg"
    contains "the message names slurmrestd's rejection" "$WORK/jwt.msg" "slurmrestd rejected"
    tb_gateway_down
    install -o "$TB_GW_USER" -g "$TB_GW_USER" -m 0600 "$TB_JWT_KEY" "$TB_GW_DIR/jwt_hs256.key"
    tb_gateway_up
}

case_malformed() {
    local big=$WORK/big.json f=$WORK/m.json
    head -c 2000000 /dev/zero | tr '\0' 'x' > "$big"
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$big"
    status_is "a body over the limit" 413 body_too_large
    printf '{"script": "#!/bin/sh' > "$f"
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$f"
    status_is "malformed JSON" 400 bad_request
    printf '{"script": ""}' > "$f"
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$f"
    status_is "a script of 0 bytes" 422 invalid_job
    printf '{"script": "#!/bin/sh\\ntrue", "priority": 5}' > "$f"
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$f"
    status_is "an unknown field" 422 invalid_job
    jbody .message > "$WORK/m.msg"
    contains "the message names the field" "$WORK/m.msg" "unknown field .priority"
    printf '{"script": "#!/bin/sh\\ntrue", "partition": "nosuchpart"}' > "$f"
    api POST /v1/jobs "$TB_USER" "$TB_PW_USER" "$f"
    status_is "a job Slurm refuses (unknown partition)" 422 invalid_job
    check "the gateway keeps running" tb_pid_alive "$TB_DIR/gateway.pid"
    api GET /v1/health
    status_is "and answers" 200
}

case_concurrent() {
    local n=50 i u pw f
    rm -f "$WORK"/conc-*.code
    local pids=()
    for i in $(seq 1 $n); do
        if [ $((i % 2)) = 0 ]; then u=$TB_USER pw=$TB_PW_USER; else u=$TB_USER2 pw=$TB_PW_USER2; fi
        f=$WORK/conc-$i.json
        job_json "$f" $'#!/bin/bash\necho "WHO=$(id -un)"\nklist | grep "Default principal"'
        (
            printf 'user = "%s:%s"\n' "$u" "$pw" | curl -sS --max-time 120 -X POST --cacert "$GW_CA" \
                -H 'Content-Type: application/json' --data-binary "@$f" -o "$WORK/conc-$i.out" \
                -w '%{http_code}\n' -K - "$GW_URL/v1/jobs" > "$WORK/conc-$i.code" 2>> "$WORK/curl.err"
            echo "$u $(jq -r .job_id "$WORK/conc-$i.out" 2>/dev/null)" > "$WORK/conc-$i.job"
        ) &
        pids+=($!)
    done
    # only these: a bare `wait` would also wait for the testbed's daemons
    wait "${pids[@]}"
    local ok
    ok=$(cat "$WORK"/conc-*.code | grep -c '^201$')
    equals "$n concurrent submissions by two users all get 201" "$n" "$ok"
    local job good=0 bad=""
    while read -r u job; do
        wait_job_done "$job" 300 || true
        f=$WORK/out/$u-$job.out
        if grep -qx "WHO=$u" "$f" 2>/dev/null && grep -q "Default principal: $u@$TB_REALM" "$f"; then
            good=$((good + 1))
        else
            bad="$bad $u/$job"
        fi
    done < <(cat "$WORK"/conc-*.job)
    equals "each job ran as its owner and saw its owner's ticket" "$n" "$good"
    [ -z "$bad" ] || fail "jobs without their owner's ticket" "$bad"
    no_leftovers "$TB_UID"
    no_leftovers "$TB_UID2"
}

case_audit() {
    gw_log > "$WORK/audit.log"
    contains "one audit line per request: time, client, user, action, job, outcome, duration" \
        "$WORK/audit.log" \
        "^[0-9T:.-]+Z auks-gateway: audit client=127\.0\.0\.1 user=$TB_USER action=submit job=[0-9]+ outcome=\"201\" duration_ms=[0-9]+"
    lacks "no password in the log" "$WORK/audit.log" "$TB_PW_USER|$TB_PW_USER2|wrong-password"
    lacks "no token in the log" "$WORK/audit.log" "eyJ"
}

# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------
tb_need_root
for f in target/debug/libauks.so target/debug/auks target/debug/auksd target/debug/auks-gateway; do
    [ -e "$TB_REPO/$f" ] || { echo "gateway-tests: $TB_REPO/$f not found: run 'cargo build' first" >&2; exit 2; }
done

suite_trap

tb_lock
tb_rest_prepare
tb_up || exit 1
tb_slurmrestd_up
tb_gateway_up
tb_plugstack optional "$(tb_plugstack_default_args)"
GW_URL=$(tb_gateway_url)
GW_CA=$(tb_gateway_ca)
WORK=$(mktemp -d /var/tmp/auks-gateway-tests.XXXXXX)
chmod 0755 "$WORK"
install -d -m 1777 "$WORK/out"
host_ccache=FILE:$TB_DIR/hostcc
kinit -k -t "$TB_HOST_KEYTAB" -c "$host_ccache" "host/$TB_HOST@$TB_REALM" || { echo "host kinit failed" >&2; exit 1; }

SELECTED=("$@")

START=$(date +%s)
run_case openapi
run_case openapi_mismatch
run_case submit
run_case status_list
run_case spank_option
run_case cancel
run_case not_yours
run_case malformed
run_case auksd_down
run_case slurmrestd_down
run_case wrong_jwt_key
run_case concurrent
run_case bad_login
run_case audit
echo
echo "($(($(date +%s) - START)) s)"
assert_report
