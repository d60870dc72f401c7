#!/usr/bin/env bash
# Cost of a submission through auks-gateway on the one-node testbed (release builds of
# auksd and auks-gateway; scripts/testbed/lib.sh + rest.sh), in one interleaved run:
#   gateway   HTTPS POST /v1/jobs with curl, request to job id (AS exchange + verification
#             against the keytab + ADD to auksd as the user + JWT + slurmrestd submit);
#   sbatch    `sbatch --auks=yes` of the same script by the user on the node itself
#             (ADD of the user's TGT by the plugin, then the submission over munge);
#   rest      a bare slurmrestd submit (plain HTTP, loopback) with a ready JWT;
#   kinit     `kinit` with the password (one AS exchange), and
#   auks -a   one ADD of that TGT to auksd: together, what the gateway adds to `rest`.
# Then requests/s with 16 concurrent clients through the gateway.
# Prints figures only (no pass/fail). Run as root after `cargo build --release` (and
# `cargo build`: the testbed tools are the debug builds).
# Usage: scripts/bench-gateway.sh [N [CLIENTS [PER_CLIENT]]]   (N >= 20, default 30;
#        16 clients x 8 submissions by default)
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"
# shellcheck source=testbed/rest.sh
. "$HERE/testbed/rest.sh"

N=${1:-30}
CLIENTS=${2:-16}
PER=${3:-8}
[ "$N" -ge 20 ] 2>/dev/null || { echo "bench-gateway: N must be a number >= 20" >&2; exit 2; }
[ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 64 ] && [ "$PER" -ge 1 ] && [ "$PER" -le 50 ] 2>/dev/null ||
    { echo "bench-gateway: 1 <= CLIENTS <= 64, 1 <= PER_CLIENT <= 50" >&2; exit 2; }
tb_need_root
for f in target/release/auksd target/release/auks-gateway target/debug/libauks.so target/debug/auks; do
    [ -e "$TB_REPO/$f" ] || { echo "bench-gateway: $TB_REPO/$f not found: run 'cargo build --release' and 'cargo build'" >&2; exit 2; }
done

WORK=""
cleanup() {
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ "${TB_KEEP:-0}" = 1 ] || tb_down > /dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export TB_AUKSD=$TB_REPO/target/release/auksd
export TB_GATEWAY=$TB_REPO/target/release/auks-gateway
export TB_GW_MAX_CONCURRENT=64
tb_lock
tb_rest_prepare
tb_up || exit 1
tb_slurmrestd_up || exit 1
tb_gateway_up || exit 1
tb_plugstack optional "$(tb_plugstack_default_args)"
WORK=$(mktemp -d /var/tmp/auks-bench-gw.XXXXXX)
chmod 0755 "$WORK"
install -d -m 1777 "$WORK/out"
U=$TB_USER
PW=$TB_PW_USER
GW=$(tb_gateway_url)
CA=$(tb_gateway_ca)
REST=http://127.0.0.1:$TB_REST_PORT/slurm/$TB_REST_VERSION/job/submit

SCRIPT_TEXT=$'#!/bin/bash\ntrue'
jq -n --arg s "$SCRIPT_TEXT" --arg o "$WORK/out/%j.out" \
    '{script: $s, name: "bench", time_limit: 1, output: $o}' > "$WORK/gw.json"
HOME_U=$(getent passwd "$U" | cut -d: -f6)
jq -n --arg s "$SCRIPT_TEXT" --arg o "$WORK/out/%j.out" --arg h "$HOME_U" \
    '{script: $s, job: {name: "bench", time_limit: 1, standard_output: $o,
      current_working_directory: $h, environment: {PATH: "/usr/bin:/bin", SLURM_SPANK_AUKS: "done"}}}' \
    > "$WORK/rest.json"
printf '%s\n' "$SCRIPT_TEXT" > "$WORK/job.sh"
chmod 0644 "$WORK/job.sh"
TOKEN=$(tb_jwt_token "$U" 3600)
printf 'user = "%s:%s"\n' "$U" "$PW" > "$WORK/curl.cfg"
chmod 0600 "$WORK/curl.cfg"
tb_kinit "$U"

ms() { awk '{ printf "%.1f\n", $1 * 1000 }'; }
gateway_once() {
    curl -sS --max-time 60 --cacert "$CA" -K "$WORK/curl.cfg" -H 'Content-Type: application/json' \
        --data-binary "@$WORK/gw.json" -o "$WORK/gw.reply" -w '%{time_total}\n' "$GW/v1/jobs" | ms
    grep -q '"job_id"' "$WORK/gw.reply" || echo "bench-gateway: gateway submission failed: $(cat "$WORK/gw.reply")" >&2
}
rest_once() {
    curl -sS --max-time 60 -H "X-SLURM-USER-NAME: $U" -H "X-SLURM-USER-TOKEN: $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "@$WORK/rest.json" -o "$WORK/rest.reply" \
        -w '%{time_total}\n' "$REST" | ms
    grep -q '"job_id"' "$WORK/rest.reply" || echo "bench-gateway: slurmrestd submission failed" >&2
}
# timed inside the user's shell (the su start-up is not counted)
user_timed() { # user_timed 'command'
    tb_as "$U" "s=\$(date +%s%N); $1 > /dev/null 2>&1 || echo FAILED >&2; e=\$(date +%s%N); awk -v d=\$((e - s)) 'BEGIN { printf \"%.1f\\n\", d / 1e6 }'"
}
sbatch_once() { user_timed "sbatch --auks=yes --parsable -o $WORK/out/%j.out $WORK/job.sh"; }
kinit_once() { user_timed "echo '$PW' | kinit -f -r 1d -c FILE:/tmp/bench-kinit-$TB_UID $U"; }
add_once() { user_timed "KRB5CCNAME=FILE:/tmp/bench-kinit-$TB_UID AUKS_CONF=$TB_AUKS_CONF $TB_REPO/target/release/auks -a"; }

# warm-up (first connections, first ADD, page cache)
gateway_once > /dev/null
rest_once > /dev/null
sbatch_once > /dev/null
kinit_once > /dev/null
add_once > /dev/null

echo "bench-gateway: $N interleaved rounds (gateway, sbatch --auks=yes, bare slurmrestd, kinit, auks -a)"
for i in $(seq 1 "$N"); do
    gateway_once >> "$WORK/gateway.ms"
    sbatch_once >> "$WORK/sbatch.ms"
    rest_once >> "$WORK/rest.ms"
    kinit_once >> "$WORK/kinit.ms"
    add_once >> "$WORK/add.ms"
    # keep the queue short: the node runs two jobs at a time
    if [ $((i % 5)) = 0 ]; then
        for _ in $(seq 1 100); do [ "$(squeue -h -u "$U" | wc -l)" -lt 4 ] && break; sleep 0.2; done
    fi
done
rm -f "/tmp/bench-kinit-$TB_UID"

stats() { # stats FILE -> "median p99 n"
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        p = int(NR * 0.99 + 0.999); if (p < 1) p = 1; if (p > NR) p = NR
        printf "%8.1f %8.1f %4d\n", m, v[p], NR }'
}
echo
printf '%-44s %8s %8s %4s\n' "submission (ms)" median p99 n
printf '%-44s %s\n' "gateway: HTTPS request -> job id" "$(stats "$WORK/gateway.ms")"
printf '%-44s %s\n' "sbatch --auks=yes on the node" "$(stats "$WORK/sbatch.ms")"
printf '%-44s %s\n' "bare slurmrestd submit, ready token" "$(stats "$WORK/rest.ms")"
printf '%-44s %s\n' "kinit (one AS exchange)" "$(stats "$WORK/kinit.ms")"
printf '%-44s %s\n' "auks -a (one ADD)" "$(stats "$WORK/add.ms")"
med() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
awk -v g="$(med "$WORK/gateway.ms")" -v r="$(med "$WORK/rest.ms")" -v k="$(med "$WORK/kinit.ms")" \
    -v a="$(med "$WORK/add.ms")" 'BEGIN {
    printf "\ngateway - bare slurmrestd = %.1f ms; kinit + auks -a = %.1f ms (target: the first <= the second)\n", g - r, k + a }'

# throughput: CLIENTS concurrent clients, PER submissions each
scancel -u "$U" 2> /dev/null
for _ in $(seq 1 150); do [ -z "$(squeue -h -u "$U")" ] && break; sleep 0.2; done
echo
echo "bench-gateway: $CLIENTS concurrent clients x $PER submissions through the gateway"
start=$(date +%s%N)
pids=()
for c in $(seq 1 "$CLIENTS"); do
    (
        for _ in $(seq 1 "$PER"); do
            curl -sS --max-time 60 --cacert "$CA" -K "$WORK/curl.cfg" -H 'Content-Type: application/json' \
                --data-binary "@$WORK/gw.json" -o /dev/null -w '%{http_code}\n' "$GW/v1/jobs"
        done > "$WORK/tp-$c.codes" 2>> "$WORK/tp.err"
    ) &
    pids+=($!)
done
wait "${pids[@]}"
end=$(date +%s%N)
total=$((CLIENTS * PER))
ok=$(cat "$WORK"/tp-*.codes | grep -c '^201$')
awk -v t="$total" -v ok="$ok" -v ns=$((end - start)) 'BEGIN {
    printf "%d/%d submissions answered 201 in %.2f s: %.1f requests/s\n", ok, t, ns / 1e9, ok / (ns / 1e9) }'
scancel -u "$U" 2> /dev/null
true
