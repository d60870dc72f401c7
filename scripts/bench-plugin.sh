#!/usr/bin/env bash
# Cost of the auks SPANK plugin (release build, target/release/libauks.so) on the
# one-node testbed (scripts/testbed/lib.sh):
#   * wall time of `srun true` as the test user, N runs each, interleaved:
#     no plugin at all / plugin loaded with --auks=no / plugin with --auks=yes
#     (ADD at submission, GET + ccache + renewer + cleanup on the node);
#   * VmRSS of the slurmstepd of a `sleep` step with and without the plugin.
# Prints figures only (no pass/fail). Run as root after `cargo build --release` and
# `cargo build` (the testbed's auksd is target/debug/auksd).
# Usage: scripts/bench-plugin.sh [N]   (N >= 30, default 30)
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=testbed/lib.sh
. "$HERE/testbed/lib.sh"

N=${1:-30}
[ "$N" -ge 30 ] 2>/dev/null || { echo "bench-plugin: N must be a number >= 30" >&2; exit 2; }
tb_need_root
SO=$TB_REPO/target/release/libauks.so
RENEWER=$TB_REPO/target/release/auks
[ -e "$SO" ] || { echo "bench-plugin: $SO not found: run 'cargo build --release'" >&2; exit 2; }
[ -x "$RENEWER" ] || RENEWER=$TB_REPO/target/debug/auks
[ -x "$TB_REPO/target/debug/auksd" ] || { echo "bench-plugin: run 'cargo build' first" >&2; exit 2; }

WORK=""
cleanup() {
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ "${TB_KEEP:-0}" = 1 ] || tb_down > /dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM
tb_up || exit 1
WORK=$(mktemp -d /var/tmp/auks-bench.XXXXXX)

ARGS="default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$RENEWER"
with_plugin() { TB_PLUGIN=$SO tb_plugstack optional "$ARGS"; }
without_plugin() { tb_plugstack_clear; }

tb_kinit

# one timed srun as the user; prints milliseconds
timed_srun() {
    local opt=$1 t0 t1
    t0=$(date +%s%N)
    tb_as "$TB_USER" "srun $opt true" > /dev/null 2>>"$WORK/srun.err" || echo "srun $opt failed" >&2
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# warm-up (page cache, first job id, auksd)
with_plugin
timed_srun --auks=yes > /dev/null
timed_srun --auks=no > /dev/null
without_plugin
timed_srun "" > /dev/null

: > "$WORK/none"; : > "$WORK/no"; : > "$WORK/yes"
for i in $(seq 1 "$N"); do
    without_plugin
    timed_srun "" >> "$WORK/none"
    with_plugin
    timed_srun --auks=no >> "$WORK/no"
    timed_srun --auks=yes >> "$WORK/yes"
    printf '\r%d/%d' "$i" "$N" >&2
done
echo >&2

m_none=$(median < "$WORK/none")
m_no=$(median < "$WORK/no")
m_yes=$(median < "$WORK/yes")

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
with_plugin
rss_no=$(stepd_rss --auks=no)
rss_yes=$(stepd_rss --auks=yes)
without_plugin

echo "auks SPANK plugin cost ($N interleaved runs each, median wall time of 'srun true' as $TB_USER)"
printf '  %-34s %8s ms\n' "no plugin" "$m_none" "plugin loaded, --auks=no" "$m_no" "plugin, --auks=yes" "$m_yes"
awk -v a="$m_none" -v b="$m_no" -v c="$m_yes" 'BEGIN {
    printf "  added by loading the plugin        %8.1f ms per step (ratio %.2f)\n", b - a, b / a
    printf "  added by --auks=yes vs --auks=no   %8.1f ms per step (ratio %.2f)\n", c - b, c / b
    printf "  --auks=yes vs no plugin            %8.1f ms per step (ratio %.2f)\n", c - a, c / a
}'
echo "slurmstepd VmRSS during a 'sleep' step"
printf '  %-34s %8s kB\n' "no plugin" "$rss_none" "plugin loaded, --auks=no" "$rss_no" "plugin, --auks=yes" "$rss_yes"
if [[ "$rss_none" =~ ^[0-9]+$ && "$rss_no" =~ ^[0-9]+$ && "$rss_yes" =~ ^[0-9]+$ ]]; then
    echo "  plugin contribution: $((rss_no - rss_none)) kB loaded, $((rss_yes - rss_none)) kB with --auks=yes"
fi
if [ -s "$WORK/srun.err" ]; then
    echo "(srun stderr during the runs, first lines:)"
    head -5 "$WORK/srun.err"
fi
