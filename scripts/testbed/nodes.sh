# The testbed's nodes, sourced by scripts/testbed/lib.sh: one slurmd per node
# (TB_NODES=1: the machine's own slurmd; TB_NODES=N: n1..nN on this machine,
# each with its own port, spool, log and PID file), started, stopped and
# waited for.
# shellcheck shell=bash

# names of the testbed's nodes, one a line
tb_nodes() {
    if [ "$TB_NODES" -le 1 ]; then
        echo "$TB_HOST"
    else
        seq -f 'n%g' 1 "$TB_NODES"
    fi
}

tb_multi() { [ "$TB_NODES" -gt 1 ]; }

# PID file and log of a node's slurmd
tb_slurmd_pidfile() { if tb_multi; then echo "/run/slurm/slurmd-$1.pid"; else echo /run/slurm/slurmd.pid; fi; }
tb_slurmd_log() { if tb_multi; then echo "$TB_SLURM_LOG/slurmd-$1.log"; else echo "$TB_SLURM_LOG/slurmd.log"; fi; }
# marker: this testbed started that slurmd (one node: slurmd.ours, as scripts/testbed/ssh.sh expects)
tb_slurmd_marker() { if tb_multi; then echo "$TB_DIR/slurmd-$1.ours"; else echo "$TB_DIR/slurmd.ours"; fi; }

# start one node's slurmd: tb_slurmd_start NODE [VAR=value...] (extra environment, e.g. to
# make that node fail); it is recorded in $TB_DIR/slurmd-NODE.ours
tb_slurmd_start() {
    local node=$1
    shift
    local args=()
    tb_multi && args=(-N "$node")
    cd / || exit 1
    setsid env "$@" /usr/sbin/slurmd -D "${args[@]}" \
        >> "$TB_SLURM_LOG/slurmd-$node.stdout" 2>&1 < /dev/null 9>&- &
    : > "$(tb_slurmd_marker "$node")"
}

tb_slurmd_stop() {
    local node=$1 m
    m=$(tb_slurmd_marker "$node")
    [ -e "$m" ] && tb_stop_pidfile "$(tb_slurmd_pidfile "$node")"
    rm -f "$m"
}

# wait until every node (or the ones given) is idle
tb_nodes_idle() {
    local nodes=("$@") i n ok
    [ ${#nodes[@]} -eq 0 ] && mapfile -t nodes < <(tb_nodes)
    for i in $(seq 1 150); do
        ok=1
        for n in "${nodes[@]}"; do
            sinfo -h -n "$n" -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)$' || ok=0
        done
        [ $ok = 1 ] && return 0
        sleep 0.2
    done
    return 1
}

# restart a node's slurmd with an extra environment: tb_slurmd_restart NODE [VAR=value...]
tb_slurmd_restart() {
    local node=$1
    tb_slurmd_stop "$node"
    tb_slurmd_start "$@"
    tb_nodes_idle "$node" || tb_die "node $node not idle after restart: $(tail -5 "$(tb_slurmd_log "$node")")"
}
