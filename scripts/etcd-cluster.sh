#!/usr/bin/env bash
# A three-member etcd cluster on loopback, for trying auksd's etcd backend by
# hand (the tests start their own, see tests/common/etcd.rs).
#   scripts/etcd-cluster.sh start DIR [BASE_PORT]   members m0..m2; client ports
#                                                   BASE, BASE+2, BASE+4 (default 23790),
#                                                   peer ports one above each
#   scripts/etcd-cluster.sh stop DIR                kills the members started in DIR
# Prints the EtcdEndpoints value for auks.conf. Loopback only; plain HTTP.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,8p' "$0" >&2; exit 1; }
case "$cmd" in
start)
    command -v etcd > /dev/null || { echo "etcd not found (scripts/deps.sh)" >&2; exit 2; }
    base=${3:-23790}
    mkdir -p "$dir"
    cluster=""
    for i in 0 1 2; do
        cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 2 * i + 1))"
    done
    endpoints=""
    for i in 0 1 2; do
        c=$((base + 2 * i)); p=$((c + 1))
        etcd --name "m$i" --data-dir "$dir/m$i.data" \
            --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
            --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
            --initial-cluster "$cluster" --initial-cluster-token "auks-$base" \
            --initial-cluster-state new > "$dir/m$i.log" 2>&1 &
        echo $! > "$dir/m$i.pid"
        endpoints+="${endpoints:+,}http://127.0.0.1:$c"
    done
    for _ in $(seq 1 100); do
        if ETCDCTL_API=3 etcdctl --endpoints "$endpoints" --dial-timeout=1s endpoint health > /dev/null 2>&1; then
            echo "EtcdEndpoints = \"$endpoints\" ;"
            exit 0
        fi
        sleep 0.2
    done
    echo "etcd cluster not healthy after 20 s; logs in $dir" >&2
    exit 1
    ;;
stop)
    pids=()
    for f in "$dir"/m*.pid; do
        [ -f "$f" ] || continue
        pids+=("$(cat "$f")")
        rm -f "$f"
    done
    [ "${#pids[@]}" -gt 0 ] || exit 0
    kill "${pids[@]}" 2> /dev/null || true
    # A member whose peers are gone may take its time to stop.
    for _ in $(seq 1 25); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2> /dev/null && alive=1; done
        [ "$alive" = 1 ] || exit 0
        sleep 0.2
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null || true; done
    ;;
*) sed -n '2,8p' "$0" >&2; exit 1 ;;
esac
