#!/usr/bin/env bash
# Benchmark of auksd's etcd backend next to the local CacheDir, in the same
# run (issue 11): a throw-away MIT KDC and a three-member etcd cluster on
# loopback, one local-backend auksd and two etcd-backed ones (release
# builds), and the in-process load generator of tests/ha_bench.rs (the
# client library on many threads, each request a full authenticated
# session). Prints GET and ADD requests/s, p50 and p99 for both backends and
# the propagation time of an ADD from one instance to another (p50/p99).
# Prints figures only (no pass/fail). Run as root.
# Usage: scripts/bench-ha.sh
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "bench-ha: run as root" >&2; exit 2; }
for t in etcd etcdctl krb5kdc kinit; do
    command -v "$t" > /dev/null || { echo "bench-ha: $t not found (scripts/deps.sh)" >&2; exit 2; }
done
cd "$REPO"
cargo build --release --bins
exec cargo test --release --test ha_bench -- --ignored --nocapture --test-threads 1
