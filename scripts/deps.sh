#!/usr/bin/env bash
# Install the system packages auks-rs needs to build and test (Debian 12, run as root).
#
# Idempotent: does nothing (and never touches the network) when every package is already
# installed. Package maintainer scripts must not leave daemons running (krb5kdc, kadmind,
# munged): a temporary policy-rc.d forbids service starts while we install, and any such
# daemon that appears during the install anyway is stopped again (by pid, only the ones
# that were not running before).
set -euo pipefail

PACKAGES=(
    krb5-kdc krb5-user krb5-admin-server libkrb5-dev
    libclang-dev clang pkg-config
    slurmctld slurmd slurm-client libslurm-dev munge
    slurmrestd slurm-wlm-jwt-plugin curl openssl jq
    procps
    man-db lintian
    openssh-server openssh-client libpam-slurm-adopt libpam0g-dev pamtester
    etcd-server etcd-client
    libnss-wrapper
)
# etcd-server: the HA tests start their own members on loopback; the
# package's own service must not stay up.
DAEMONS=(krb5kdc kadmind munged slurmrestd sshd etcd)

die() { echo "deps.sh: $*" >&2; exit 1; }

missing=()
for p in "${PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"

# pids of daemons of interest, from /proc (procps may not be installed yet)
daemon_pids() {
    local d comm pid
    for d in /proc/[0-9]*; do
        comm=$(cat "$d/comm" 2>/dev/null) || continue
        for n in "${DAEMONS[@]}"; do
            if [ "$comm" = "$n" ]; then
                pid=${d#/proc/}
                echo "$pid"
            fi
        done
    done
}

before=" $(daemon_pids | tr '\n' ' ') "

# forbid service starts from maintainer scripts while we install
POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$POLICY"
    chmod 0755 "$POLICY"
    own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
          -o APT::Install-Recommends=false)

log=$(mktemp)
trap 'cleanup; rm -f "$log"' EXIT

# update the package lists once if they are absent or if a first install attempt fails
install_pkgs() { apt-get "${APT_OPTS[@]}" install "${missing[@]}" >>"$log" 2>&1; }
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || ! install_pkgs; then
    apt-get -q update >>"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
    install_pkgs || { cat "$log" >&2; die "apt-get install failed: ${missing[*]}"; }
fi

# verify everything is now installed
for p in "${missing[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || { cat "$log" >&2; die "package $p not installed after apt-get"; }
done

# stop daemons that maintainer scripts may have started despite policy-rc.d
for pid in $(daemon_pids); do
    case "$before" in *" $pid "*) continue ;; esac
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$pid" 2>/dev/null || true
done
for pid in $(daemon_pids); do
    case "$before" in *" $pid "*) continue ;; esac
    die "a daemon (pid $pid) started by package installation is still running"
done

echo "deps.sh: installed ${missing[*]}"
