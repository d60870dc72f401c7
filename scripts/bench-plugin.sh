#!/usr/bin/env bash
# Cost of the auks SPANK plugin (release builds: target/release/libauks.so, auksd and
# the renewer `auks`) on the one-node testbed (scripts/testbed/lib.sh):
#   * wall time of `srun true` as the test user, N runs each, interleaved:
#     no plugin at all / plugin loaded with --auks=no / plugin with --auks=yes
#     (ADD at submission, GET + ccache + renewer + cleanup on the node), the
#     node authenticating to auksd in each of its two ways:
#       hostcredcache=  a ccache kept fresh by aukspriv (as a C AUKS site does),
#                       the GET and ccache made by a helper process per step, or
#                       by aukspriv's fetch agent (fetchagent=, AUKS_PRIV_FETCH_SOCKET);
#       keytab=         a TGT from the host keytab at every step (AS exchange);
#   * the same for a SPANK plugin that does nothing in the same hooks as
#     ours (C, built here with cc from slurm/spank.h): the cost of Slurm's
#     own SPANK machinery for those hooks, measured beside ours;
#   * VmRSS of the slurmstepd of a `sleep` step with and without the plugin;
#   * where a --auks=yes step's time goes: the ADD in srun (`srun -v` prints it) and, on
#     the node, the phases the plugin logs in slurmd.log ("auks: step phases: ...":
#     check of the job's own ccache, GET, ccache write, HelperScript, job record, renewer start, its
#     stop, ccache removal), medians;
#   * a step inside an existing allocation: `srun true` timed inside a batch script
#     (sbatch --auks=yes vs no plugin, alternating rounds, also as the median of
#     the per-round differences), the steps keeping the batch step's ccache; and
#     inside ONE --auks=yes batch job whose steps run with and without the
#     plugin (plugstack.conf rewritten between steps), per-block differences.
# Prints figures only (no pass/fail). Run as root after `cargo build --release`
# (and `cargo build`: the testbed tools are the debug builds).
# Usage: scripts/bench-plugin.sh [N]   (N >= 30, default 30); AUKS_BENCH_ROUNDS sets
# the number of alternating in-allocation rounds (default 5), AUKS_BENCH_BLOCKS the
# blocks of the one-allocation comparison (default N).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"

N=${1:-30}
[ "$N" -ge 30 ] 2>/dev/null || { echo "bench-plugin: N must be a number >= 30" >&2; exit 2; }
tb_need_root
SO=$TB_REPO/target/release/libauks.so
RENEWER=$TB_REPO/target/release/auks
for f in "$SO" "$RENEWER" "$TB_REPO/target/release/auksd" "$TB_REPO/target/release/aukspriv"; do
    [ -e "$f" ] || { echo "bench-plugin: $f not found: run 'cargo build --release'" >&2; exit 2; }
done

WORK=""
EMPTY_DIR=""
PRIV_PID=""
cleanup() {
    [ -n "$PRIV_PID" ] && kill "$PRIV_PID" 2> /dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ -n "$EMPTY_DIR" ] && rm -rf "$EMPTY_DIR"
    [ "${TB_KEEP:-0}" = 1 ] || tb_down > /dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# the release auksd, as a site runs it (restarted if the testbed was up already)
export TB_AUKSD=$TB_REPO/target/release/auksd
tb_up || exit 1
tb_auksd_down
tb_auksd_up || exit 1
WORK=$(mktemp -d /var/tmp/auks-bench.XXXXXX)

# aukspriv keeps the node's ccache for hostcredcache= and serves fetches at
# $AGENT (in $WORK: root's, 0700); fd 9 (the testbed lock) closed
HOSTCC=FILE:$WORK/hostcc
AGENT=$WORK/fetch.sock
AUKS_PRIV_CCACHE=$HOSTCC AUKS_PRIV_KEYTAB=$TB_HOST_KEYTAB AUKS_PRIV_FETCH_SOCKET=$AGENT \
    "$TB_REPO/target/release/aukspriv" -v > "$WORK/aukspriv.log" 2>&1 9>&- &
PRIV_PID=$!
for _ in $(seq 1 50); do [ -s "$WORK/hostcc" ] && [ -S "$AGENT" ] && break; sleep 0.1; done
[ -s "$WORK/hostcc" ] || { echo "bench-plugin: aukspriv did not fill $HOSTCC: $(cat "$WORK/aukspriv.log")" >&2; exit 1; }

# A reference: a SPANK plugin that defines the hooks libauks.so defines
# and does nothing in them, to tell the cost of Slurm's SPANK machinery
# (plugstack.conf read, a plugin loaded, its hooks called in srun and
# slurmstepd) from the cost of this plugin. srun loads
# it as the user: it lives in a directory of its own that the user can read.
EMPTY_DIR=$(mktemp -d /var/tmp/auks-bench-empty.XXXXXX)
chmod 755 "$EMPTY_DIR"
cat > "$WORK/empty.c" << 'EOF'
#include <slurm/spank.h>
SPANK_PLUGIN(empty, 1);
#define NOTHING(hook) \
    int slurm_spank_##hook(spank_t sp, int ac, char **av) \
    { (void)sp; (void)ac; (void)av; return 0; }
NOTHING(init)
NOTHING(init_post_opt)
NOTHING(local_user_init)
NOTHING(user_init)
NOTHING(task_post_fork)
NOTHING(task_exit)
NOTHING(exit)
EOF
EMPTY_SO=""
if cc -shared -fPIC -O2 -o "$EMPTY_DIR/empty.so" "$WORK/empty.c" 2> "$WORK/empty.err"; then
    EMPTY_SO=$EMPTY_DIR/empty.so
else
    echo "bench-plugin: the empty reference plugin did not build (its rows are skipped): $(head -3 "$WORK/empty.err")" >&2
fi

COMMON="default=disabled conf=$TB_AUKS_CONF renewer=$RENEWER"
with_hostcc() { TB_PLUGIN=$SO tb_plugstack optional "$COMMON hostcredcache=$HOSTCC"; }
with_agent() { TB_PLUGIN=$SO tb_plugstack optional "$COMMON hostcredcache=$HOSTCC fetchagent=$AGENT"; }
with_keytab() { TB_PLUGIN=$SO tb_plugstack optional "$COMMON keytab=$TB_HOST_KEYTAB"; }
without_plugin() { tb_plugstack_clear; }
with_empty() { TB_PLUGIN=$EMPTY_SO tb_plugstack optional; }

tb_kinit

# one timed srun as the user; prints milliseconds (0.1 ms resolution)
timed_srun() {
    local opt=$1 t0 t1
    t0=$(date +%s%N)
    tb_as "$TB_USER" "srun $opt true" > /dev/null 2>>"$WORK/srun.err" || echo "srun $opt failed" >&2
    t1=$(date +%s%N)
    awk -v us=$(((t1 - t0) / 1000)) 'BEGIN { printf "%.1f\n", us / 1000 }'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# warm-up (page cache, first job id, auksd, the service ticket in $HOSTCC)
with_keytab
timed_srun --auks=yes > /dev/null
with_hostcc
timed_srun --auks=yes > /dev/null
timed_srun --auks=no > /dev/null
with_agent
timed_srun --auks=yes > /dev/null
without_plugin
timed_srun "" > /dev/null
# the reference plugin must load (plugstack says `optional`, so a plugin
# that fails to load would only print an error and time Slurm without it)
if [ -n "$EMPTY_SO" ]; then
    with_empty
    if tb_as "$TB_USER" "srun true" 2>&1 | grep -q 'empty\.so'; then
        echo "bench-plugin: the empty reference plugin does not load (its rows are skipped)" >&2
        EMPTY_SO=""
    fi
    without_plugin
fi

: > "$WORK/none"; : > "$WORK/no"; : > "$WORK/yes"; : > "$WORK/yes_ag"; : > "$WORK/yes_kt"; : > "$WORK/empty"
for i in $(seq 1 "$N"); do
    without_plugin
    timed_srun "" >> "$WORK/none"
    if [ -n "$EMPTY_SO" ]; then
        with_empty
        timed_srun "" >> "$WORK/empty"
    fi
    with_hostcc
    timed_srun --auks=no >> "$WORK/no"
    timed_srun --auks=yes >> "$WORK/yes"
    with_agent
    timed_srun --auks=yes >> "$WORK/yes_ag"
    with_keytab
    timed_srun --auks=yes >> "$WORK/yes_kt"
    printf '\r%d/%d' "$i" "$N" >&2
done
echo >&2

m_none=$(median < "$WORK/none")
m_no=$(median < "$WORK/no")
m_yes=$(median < "$WORK/yes")
m_kt=$(median < "$WORK/yes_kt")
m_ag=$(median < "$WORK/yes_ag")
# run i of each series ran back to back: the median of the per-run
# differences is less sensitive to the machine's drift than a difference
# of medians
paired() { paste "$1" "$WORK/none" | awk '{print $1 - $2}' | median; }
d_no=$(paired "$WORK/no")
d_yes=$(paired "$WORK/yes")
d_kt=$(paired "$WORK/yes_kt")
d_ag=$(paired "$WORK/yes_ag")
m_empty=""; d_empty=""; d_yes_empty=""
if [ -s "$WORK/empty" ]; then
    m_empty=$(median < "$WORK/empty")
    d_empty=$(paired "$WORK/empty")
    d_yes_empty=$(paste "$WORK/yes" "$WORK/empty" | awk '{print $1 - $2}' | median)
fi

# phases of the --auks=yes (hostcredcache=) steps, from slurmd.log
phase_medians() { # phase_medians LOGFILE
    local names n
    names=$(grep -o 'auks: step phases: .*' "$1" | tr ' ' '\n' | sed -n 's/=.*//p' | grep -v '^$' | sort -u)
    for n in $names; do
        printf '    %-22s %8s ms\n' "$n" \
            "$(grep -o "auks: step phases: .*" "$1" | grep -o "\b$n=[0-9.]*ms" | sed "s/^$n=//; s/ms\$//" | median)"
    done
}
SLURMD_LOG=$(tb_slurmd_log "$(tb_nodes | head -1)")
: > "$WORK/add"
for v in hostcc agent; do
    "with_$v"
    mark=$(wc -l < "$SLURMD_LOG")
    for i in $(seq 1 $((N / 2))); do
        tb_as "$TB_USER" "srun -v --auks=yes true" > "$WORK/add.err" 2>&1
        sed -n 's/.*forwarded to auksd (add=\([0-9.]*\)ms).*/\1/p' "$WORK/add.err" >> "$WORK/add"
    done
    tail -n +"$((mark + 1))" "$SLURMD_LOG" > "$WORK/phases.$v.log"
done
m_add=$(median < "$WORK/add")
[ -s "$WORK/add" ] || { echo "bench-plugin: no ADD time in 'srun -v' output:" >&2; head -20 "$WORK/add.err" >&2; }

# a step inside an allocation: srun true timed inside a batch script
in_alloc() { # in_alloc SBATCH_OPTS COUNT -> the steps' times (ms), one a line
    local out
    out=$(getent passwd "$TB_USER" | cut -d: -f6)/bench-alloc.$RANDOM.out
    tb_as "$TB_USER" "cat > bench-alloc.sh <<'EOF'
#!/bin/bash
srun true
for i in \$(seq 1 $2); do t0=\$(date +%s%N); srun true; t1=\$(date +%s%N); echo \$(( (t1 - t0) / 1000 )); done
EOF
sbatch --wait $1 -o $out bench-alloc.sh > /dev/null"
    awk '/^[0-9]+$/ {printf "%.1f\n", $1 / 1000}' "$out"
    rm -f "$out"
}
# ROUNDS rounds alternating the two, N/3 steps each: the median of all
# steps of each, and the median of the per-round differences (a burst of
# load on the machine during one job then moves one round, not the result)
ROUNDS=${AUKS_BENCH_ROUNDS:-5}
: > "$WORK/alloc_none"; : > "$WORK/alloc_yes"; : > "$WORK/alloc_diff"
: > "$WORK/alloc_empty"; : > "$WORK/alloc_diff_empty"
for r in $(seq 1 $ROUNDS); do
    without_plugin
    in_alloc "" $((N / 3)) > "$WORK/round_none"
    if [ -n "$EMPTY_SO" ]; then
        with_empty
        in_alloc "" $((N / 3)) > "$WORK/round_empty"
        cat "$WORK/round_empty" >> "$WORK/alloc_empty"
        awk -v a="$(median < "$WORK/round_none")" -v b="$(median < "$WORK/round_empty")" \
            'BEGIN { printf "%.2f\n", b - a }' >> "$WORK/alloc_diff_empty"
    fi
    with_agent
    in_alloc "--auks=yes" $((N / 3)) > "$WORK/round_yes"
    cat "$WORK/round_none" >> "$WORK/alloc_none"
    cat "$WORK/round_yes" >> "$WORK/alloc_yes"
    awk -v a="$(median < "$WORK/round_none")" -v b="$(median < "$WORK/round_yes")" \
        'BEGIN { printf "%.2f\n", b - a }' >> "$WORK/alloc_diff"
done
without_plugin
a_none=$(median < "$WORK/alloc_none")
a_yes=$(median < "$WORK/alloc_yes")
a_diff=$(median < "$WORK/alloc_diff")
a_empty=""; a_diff_empty=""
if [ -s "$WORK/alloc_empty" ]; then
    a_empty=$(median < "$WORK/alloc_empty")
    a_diff_empty=$(median < "$WORK/alloc_diff_empty")
fi

# The same inside ONE allocation: between two steps of one batch job the
# bench rewrites plugstack.conf (srun and slurmstepd read it at each step's
# start), so consecutive steps run without a plugin, with ours, and with
# the empty one, in a random order within each block of three. The job
# itself was submitted with --auks=yes and keeps its credential, its
# renewer and the batch step's plugin throughout; a step differs from its
# neighbours only by the plugin loaded for it. Per-block differences cancel
# the machine's drift between jobs, which dominates the rounds above.
BLOCKS=${AUKS_BENCH_BLOCKS:-$N}
SYNC=$(tb_as "$TB_USER" 'mktemp -d /tmp/auks-bench-sync.XXXXXX')
tb_as "$TB_USER" "cat > bench-toggle.sh <<'EOS'
#!/bin/bash
srun true
touch $SYNC/ready
for i in \$(seq 1 $((BLOCKS * 3))); do
    n=0
    while [ ! -e $SYNC/go.\$i ] && [ \$n -lt 6000 ]; do sleep 0.005; n=\$((n + 1)); done
    [ -e $SYNC/go.\$i ] || exit 1
    t0=\$(date +%s%N); srun true; t1=\$(date +%s%N)
    echo \"\$(cat $SYNC/go.\$i) \$(( (t1 - t0) / 1000 ))\"
    touch $SYNC/done.\$i
done
EOS
chmod 700 bench-toggle.sh"
with_agent
TOGGLE_OUT=$(getent passwd "$TB_USER" | cut -d: -f6)/bench-toggle.out
tb_as "$TB_USER" "sbatch --wait --auks=yes -o $TOGGLE_OUT bench-toggle.sh" > /dev/null &
TOGGLE_JOB=$!
for _ in $(seq 1 600); do [ -e "$SYNC/ready" ] && break; sleep 0.1; done
[ -e "$SYNC/ready" ] || { echo "bench-plugin: the one-allocation job did not start" >&2; BLOCKS=0; }
i=0
for b in $(seq 1 "$BLOCKS"); do
    for label in $(printf '%s\n' none yes empty | shuf); do
        [ "$label" = empty ] && [ -z "$EMPTY_SO" ] && continue
        case $label in none) without_plugin ;; yes) with_agent ;; empty) with_empty ;; esac
        i=$((i + 1))
        echo "$b $label" > "$SYNC/go.tmp" && mv "$SYNC/go.tmp" "$SYNC/go.$i"
        for _ in $(seq 1 3000); do [ -e "$SYNC/done.$i" ] && break; sleep 0.005; done
    done
done
# a job that expects more steps (no empty plugin) gets its last ones unlabelled
while [ "$i" -lt $((BLOCKS * 3)) ]; do
    i=$((i + 1))
    echo "0 spare" > "$SYNC/go.tmp" && mv "$SYNC/go.tmp" "$SYNC/go.$i"
done
wait "$TOGGLE_JOB"
without_plugin
# lines "block label microseconds": per block, yes - none and empty - none (ms)
awk '{t[$1 " " $2] = $3 / 1000; b[$1] = 1} END {
    for (k in b) if ((k " none") in t) {
        if ((k " yes") in t) printf "yes %.3f\n", t[k " yes"] - t[k " none"]
        if ((k " empty") in t) printf "empty %.3f\n", t[k " empty"] - t[k " none"]
    }
}' "$TOGGLE_OUT" > "$WORK/toggle_diff"
for l in none yes empty; do awk -v l="$l" '$2 == l {printf "%.3f\n", $3 / 1000}' "$TOGGLE_OUT" > "$WORK/toggle_$l"; done
t_none=$(median < "$WORK/toggle_none"); t_yes=$(median < "$WORK/toggle_yes")
t_empty=$(median < "$WORK/toggle_empty")
t_dyes=$(awk '$1 == "yes" {print $2}' "$WORK/toggle_diff" | median)
t_dempty=$(awk '$1 == "empty" {print $2}' "$WORK/toggle_diff" | median)
t_blocks=$(grep -c '^yes ' "$WORK/toggle_diff")
rm -f "$TOGGLE_OUT"
tb_as "$TB_USER" "rm -rf $SYNC bench-toggle.sh"

# VmRSS (kB) of the slurmstepd of a running `sleep` step
stepd_rss() {
    local opt=$1 job pid i rss=""
    tb_as "$TB_USER" "srun $opt sleep 4" > /dev/null 2>&1 &
    local bg=$!
    for i in $(seq 1 60); do
        job=$(squeue -h -u "$TB_USER" -t RUNNING -o %i | head -1)
        if [ -n "$job" ]; then
            pid=$(pgrep -f "^slurmstepd: \[$job\.0\]" | head -1)
            if [ -n "$pid" ] && [ -n "$(pgrep -P "$pid" -x sleep)" ]; then
                sleep 1
                rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
                break
            fi
        fi
        sleep 0.1
    done
    wait "$bg"
    echo "${rss:-?}"
}

without_plugin
rss_none=$(stepd_rss "")
with_agent
rss_no=$(stepd_rss --auks=no)
rss_yes=$(stepd_rss --auks=yes)
without_plugin

echo "auks SPANK plugin cost ($N interleaved runs each, median wall time of 'srun true' as $TB_USER)"
printf '  %-40s %8s ms\n' "no plugin" "$m_none" "plugin loaded, --auks=no" "$m_no" \
    "--auks=yes, hostcredcache=, fetch helper" "$m_yes" "--auks=yes, hostcredcache=, fetch agent" "$m_ag" \
    "--auks=yes, keytab=" "$m_kt"
awk -v a="$m_none" -v b="$m_no" -v c="$m_yes" -v g="$m_ag" -v d="$m_kt" 'BEGIN {
    printf "  added by loading the plugin              %8.1f ms per step (ratio %.3f)\n", b - a, b / a
    printf "  --auks=yes (fetch helper) vs no plugin   %8.1f ms per step (ratio %.3f)\n", c - a, c / a
    printf "  --auks=yes (fetch agent) vs no plugin    %8.1f ms per step (ratio %.3f)\n", g - a, g / a
    printf "  --auks=yes (keytab=) vs no plugin        %8.1f ms per step (ratio %.3f)\n", d - a, d / a
}'
echo "  median of the per-run differences with 'no plugin' (runs made back to back), and the ratio they give:"
for row in "plugin loaded, --auks=no:$d_no" "--auks=yes, hostcredcache=, fetch helper:$d_yes" \
    "--auks=yes, hostcredcache=, fetch agent:$d_ag" "--auks=yes, keytab=:$d_kt"; do
    awk -v n="${row%:*}" -v d="${row##*:}" -v a="$m_none" \
        'BEGIN { printf "    %-40s %8s ms (ratio %.3f)\n", n, d, (a + d) / a }'
done
echo "  target: --auks=yes (hostcredcache=) at most 1.05 x a step without the plugin"
if [ -n "$m_empty" ]; then
    echo "  reference: a SPANK plugin that does nothing in our seven hooks (C):"
    printf '    %-38s %8s ms\n' "its median" "$m_empty" "paired difference with 'no plugin'" "$d_empty" \
        "--auks=yes (hostcredcache=) minus it" "$d_yes_empty"
    awk -v a="$m_none" -v e="$m_empty" -v c="$m_yes" 'BEGIN {
        printf "    ratio empty plugin / no plugin %.3f; --auks=yes / empty plugin %.3f\n", e / a, c / e
    }'
fi
echo "where a --auks=yes step (hostcredcache=) spends its time, medians:"
printf '    %-22s %8s ms\n' "srun: ADD to auksd" "$m_add"
echo "  slurmstepd (slurmd.log 'auks: step phases'), with the fetch helper:"
phase_medians "$WORK/phases.hostcc.log"
echo "  slurmstepd, with the fetch agent (agent_ask: the request sent):"
phase_medians "$WORK/phases.agent.log"
echo "a step inside an allocation (srun true in a batch script, $ROUNDS alternating rounds of $((N / 3)) steps, median):"
printf '  %-40s %8s ms\n' "no plugin" "$a_none" "sbatch --auks=yes" "$a_yes"
awk -v a="$a_none" -v b="$a_yes" 'BEGIN {
    printf "  added per step inside the allocation     %8.1f ms (target: at most 1 ms)\n", b - a
}'
printf '  %-40s %8s ms (per round: %s)\n' "median of the per-round differences" "$a_diff" "$(tr '\n' ' ' < "$WORK/alloc_diff")"
if [ -n "$a_empty" ]; then
    printf '  %-40s %8s ms\n' "reference: the empty SPANK plugin" "$a_empty"
    printf '  %-40s %8s ms (per round: %s)\n' "  its per-round differences, median" "$a_diff_empty" "$(tr '\n' ' ' < "$WORK/alloc_diff_empty")"
fi
echo "a step inside ONE allocation (a --auks=yes batch job), the plugin loaded or not for each step ($t_blocks blocks of three steps in random order):"
printf '  %-40s %8s ms\n' "no plugin" "$t_none" "our plugin (the job's --auks=yes)" "$t_yes" "the empty SPANK plugin" "${t_empty:-}"
printf '  %-40s %8s ms (target: at most 1 ms)\n' "per block, ours minus none, median" "$t_dyes"
printf '  %-40s %8s ms\n' "per block, empty minus none, median" "${t_dempty:-}"
awk -v a="$m_none" -v c="$m_yes" -v g="$m_ag" -v dc="$d_yes" -v dg="$d_ag" 'BEGIN {
    printf "ratios (target 1.05): --auks=yes / no plugin = %.3f with the fetch helper, %.3f with the fetch agent", c / a, g / a
    printf " (from the paired differences: %.3f, %.3f); in-allocation step: see above\n", (a + dc) / a, (a + dg) / a
}'
echo "slurmstepd VmRSS during a 'sleep' step (fetch agent)"
printf '  %-34s %8s kB\n' "no plugin" "$rss_none" "plugin loaded, --auks=no" "$rss_no" "plugin, --auks=yes" "$rss_yes"
if [[ "$rss_none" =~ ^[0-9]+$ && "$rss_no" =~ ^[0-9]+$ && "$rss_yes" =~ ^[0-9]+$ ]]; then
    echo "  plugin contribution: $((rss_no - rss_none)) kB loaded, $((rss_yes - rss_none)) kB with --auks=yes"
fi
if [ -s "$WORK/srun.err" ]; then
    echo "(srun stderr during the runs, first lines:)"
    head -5 "$WORK/srun.err"
fi
