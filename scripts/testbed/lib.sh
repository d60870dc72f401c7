#!/usr/bin/env bash
# A throw-away one-node test cluster for the auks SPANK plugin: an MIT KDC on loopback,
# our auksd, munge, slurmctld and slurmd (Slurm 22.05, no systemd). Sourced by the test
# and benchmark scripts; can also be run directly: `lib.sh up|down|status`.
#
# Everything the testbed starts is recorded in a PID file under $TB_DIR and stopped from
# there (never by process name). System files it changes are backed up once and restored
# by `tb_down`: /etc/krb5.conf, /etc/krb5.keytab, /etc/slurm/slurm.conf,
# /etc/slurm/plugstack.conf, /etc/auks (created if absent).
#
# Requires root (Debian 12). Users auksbob (2000) and aukscarol (2001) are created if
# missing and left in place (harmless; their ccaches and jobs are cleaned up).
#
# Multi-node: TB_NODES=N (2..9) before `tb_up` runs N slurmd on this machine as nodes
# n1..nN (Debian's Slurm is built with multiple-slurmd support): each its own port,
# spool directory, log (/var/log/slurm/slurmd-<node>.log) and PID file; they all share
# this machine's /tmp, /run and users. Default: one node named after the host, as before.

TB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TB_DIR=${TB_DIR:-/var/tmp/auks-testbed}
TB_REALM=TEST.REALM
TB_HOST=$(hostname)
TB_USER=auksbob
TB_UID=2000
TB_USER2=aukscarol
TB_UID2=2001
TB_PW_USER='bob-Pw-2000'
TB_PW_USER2='carol-Pw-2001'
TB_AUKS_CONF=/etc/auks/auks.conf
TB_AUKS_ACL=/etc/auks/auks.acl
TB_AUKSD_KEYTAB=/etc/auks/auksd.keytab
TB_HOST_KEYTAB=/etc/krb5.keytab
TB_PLUGSTACK_DIR=/etc/slurm/plugstack.conf.d
TB_PLUGSTACK_FILE=$TB_PLUGSTACK_DIR/auks.conf
TB_SLURM_LOG=/var/log/slurm
TB_BACKUP_SUFFIX=.auks-testbed.orig
TB_NODES=${TB_NODES:-1}
TB_SLURMD_PORT0=6818

tb_log() { echo "testbed: $*" >&2; }
tb_die() { echo "testbed: ERROR: $*" >&2; exit 1; }

tb_need_root() { [ "$(id -u)" -eq 0 ] || tb_die "must run as root"; }

# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------

# pid in a file, if that process is alive
tb_pid_alive() {
    local f=$1 pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# stop the process whose pid is in file $1 (TERM, then KILL after ~10 s)
tb_stop_pidfile() {
    local f=$1 pid i
    [ -s "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$f"
}

# a free TCP port on 127.0.0.1: below the ephemeral range (32768-60999), with no socket at
# all on it (a client socket on the port makes a daemon's bind fail)
tb_free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 12000))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    tb_die "no free port found"
}

# back a system file up once (the first backup is the original)
tb_backup() {
    local f=$1
    if [ -e "$f" ] && [ ! -e "$f$TB_BACKUP_SUFFIX" ]; then
        cp -a "$f" "$f$TB_BACKUP_SUFFIX"
    elif [ ! -e "$f" ] && [ ! -e "$f$TB_BACKUP_SUFFIX" ]; then
        # remember that the file did not exist
        : > "$f$TB_BACKUP_SUFFIX.absent"
    fi
}

tb_restore() {
    local f=$1
    if [ -e "$f$TB_BACKUP_SUFFIX" ]; then
        mv -f "$f$TB_BACKUP_SUFFIX" "$f"
    elif [ -e "$f$TB_BACKUP_SUFFIX.absent" ]; then
        rm -f "$f" "$f$TB_BACKUP_SUFFIX.absent"
    fi
}

# run a command as a test user, login-like environment, in its home directory
# usage: tb_as USER 'shell command'
tb_as() {
    local u=$1
    shift
    local home
    home=$(getent passwd "$u" | cut -d: -f6)
    (cd "$home" && runuser -u "$u" -- env -i HOME="$home" USER="$u" LOGNAME="$u" \
        PATH=/usr/local/bin:/usr/bin:/bin SHELL=/bin/bash bash -c "$*")
}

# nodes (one slurmd each): scripts/testbed/nodes.sh
# shellcheck source=nodes.sh
. "$TB_REPO/scripts/testbed/nodes.sh"

# ---------------------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------------------
tb_deps() {
    bash "$TB_REPO/scripts/deps.sh" || tb_die "scripts/deps.sh failed"
}

# ---------------------------------------------------------------------------------------
# Kerberos: KDC in $TB_DIR/kdc, realm in /etc/krb5.conf, keytabs, principals
# ---------------------------------------------------------------------------------------
tb_state() { cat "$TB_DIR/state.env" 2>/dev/null; }

tb_load_state() {
    # shellcheck disable=SC1091
    [ -s "$TB_DIR/state.env" ] && . "$TB_DIR/state.env"
    true
}

# tb_state_set NAME VALUE: record NAME=VALUE in state.env, replacing NAME's
# earlier line (the file is replaced by a rename, never left half written)
tb_state_set() {
    { grep -v "^$1=" "$TB_DIR/state.env" 2>/dev/null || true; echo "$1=$2"; } > "$TB_DIR/state.env.new"
    mv "$TB_DIR/state.env.new" "$TB_DIR/state.env"
}

tb_kdc_up() {
    local R=$TB_DIR/kdc
    tb_load_state
    if tb_pid_alive "$R/kdc.pid"; then
        return 0
    fi
    rm -rf "$R"
    mkdir -p "$R"
    chmod 0700 "$R"
    TB_KDC_PORT=$(tb_free_port)
    cat > "$R/kdc.conf" <<EOF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$TB_KDC_PORT
  kdc_tcp_listen = 127.0.0.1:$TB_KDC_PORT
[realms]
  $TB_REALM = {
    database_name = $R/principal
    key_stash_file = $R/stash
    acl_file = $R/kadm5.acl
    max_life = 1h
    max_renewable_life = 7d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:$R/kdc.log
EOF
    : > "$R/kadm5.acl"
    tb_krb5_conf_install
    export KRB5_KDC_PROFILE=$R/kdc.conf
    kdb5_util create -s -r "$TB_REALM" -P "masterpw-$RANDOM$RANDOM" > "$R/kdb5_util.out" 2>&1 \
        || tb_die "kdb5_util create failed: $(cat "$R/kdb5_util.out")"
    cd / || exit 1
    KRB5_KDC_PROFILE=$R/kdc.conf setsid krb5kdc -n -P "$R/kdc.pid" > "$R/kdc.stdout" 2>&1 < /dev/null 9>&- &
    local i
    for i in $(seq 1 50); do
        ss -Htln "sport = :$TB_KDC_PORT" | grep -q . && break
        sleep 0.1
    done
    tb_pid_alive "$R/kdc.pid" || tb_die "krb5kdc did not start: $(cat "$R/kdc.stdout")"
    tb_state_set TB_KDC_PORT "$TB_KDC_PORT"
    tb_principals
}

tb_krb5_conf_install() {
    tb_backup /etc/krb5.conf
    cat > /etc/krb5.conf <<EOF
# written by auks-rs scripts/testbed/lib.sh; the original is in /etc/krb5.conf$TB_BACKUP_SUFFIX
[libdefaults]
  default_realm = $TB_REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  forwardable = true
  ticket_lifetime = 1h
  renew_lifetime = 1d
[realms]
  $TB_REALM = {
    kdc = 127.0.0.1:$TB_KDC_PORT
  }
EOF
    chmod 0644 /etc/krb5.conf
}

tb_kadmin() {
    KRB5_KDC_PROFILE=$TB_DIR/kdc/kdc.conf kadmin.local -q "$*" > /dev/null 2>"$TB_DIR/kadmin.err" \
        || tb_die "kadmin.local -q '$*' failed: $(cat "$TB_DIR/kadmin.err")"
    if grep -qiE 'error|fail' "$TB_DIR/kadmin.err"; then
        tb_die "kadmin.local -q '$*': $(cat "$TB_DIR/kadmin.err")"
    fi
}

tb_principals() {
    local fqdn
    fqdn=$(hostname -f 2>/dev/null || hostname)
    tb_kadmin "addprinc -randkey auks/localhost"
    mkdir -p /etc/auks
    rm -f "$TB_AUKSD_KEYTAB"
    tb_kadmin "ktadd -k $TB_AUKSD_KEYTAB auks/localhost"
    chmod 0600 "$TB_AUKSD_KEYTAB"
    tb_kadmin "addprinc -randkey host/$TB_HOST"
    tb_backup "$TB_HOST_KEYTAB"
    rm -f "$TB_HOST_KEYTAB"
    tb_kadmin "ktadd -k $TB_HOST_KEYTAB host/$TB_HOST"
    if [ "$fqdn" != "$TB_HOST" ]; then
        tb_kadmin "addprinc -randkey host/$fqdn"
        tb_kadmin "ktadd -k $TB_HOST_KEYTAB host/$fqdn"
    fi
    chmod 0600 "$TB_HOST_KEYTAB"
    tb_kadmin "addprinc -pw $TB_PW_USER $TB_USER"
    tb_kadmin "addprinc -pw $TB_PW_USER2 $TB_USER2"
}

tb_kdc_down() {
    tb_stop_pidfile "$TB_DIR/kdc/kdc.pid"
    rm -rf "$TB_DIR/kdc"
}

# ---------------------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------------------
tb_user() {
    local name=$1 uid=$2 cur
    cur=$(id -u "$name" 2>/dev/null || true)
    if [ -z "$cur" ]; then
        getent passwd "$uid" > /dev/null && tb_die "uid $uid is taken by $(getent passwd "$uid" | cut -d: -f1)"
        useradd -m -u "$uid" -U -s /bin/bash "$name" || tb_die "useradd $name failed"
    elif [ "$cur" != "$uid" ]; then
        tb_die "user $name exists with uid $cur, expected $uid"
    fi
    local home
    home=$(getent passwd "$name" | cut -d: -f6)
    [ -d "$home" ] || install -d -o "$name" -g "$(id -g "$name")" -m 0755 "$home"
}

tb_users() {
    tb_user "$TB_USER" "$TB_UID"
    tb_user "$TB_USER2" "$TB_UID2"
}

# fresh TGT for a test user, in the user's default ccache: tb_kinit [USER]
tb_kinit() {
    local u=${1:-$TB_USER} pw=$TB_PW_USER
    [ "$u" = "$TB_USER2" ] && pw=$TB_PW_USER2
    tb_as "$u" "kdestroy -q -A >/dev/null 2>&1; echo '$pw' | kinit -f -r 1d $u >/dev/null" \
        || tb_die "kinit $u failed"
}

tb_kdestroy() {
    local u=${1:-$TB_USER}
    tb_as "$u" "kdestroy -q -A >/dev/null 2>&1; true"
}

# ---------------------------------------------------------------------------------------
# auksd
# ---------------------------------------------------------------------------------------
tb_auks_conf() {
    tb_load_state
    if [ -z "${TB_AUKSD_PORT:-}" ]; then
        TB_AUKSD_PORT=$(tb_free_port)
        echo "TB_AUKSD_PORT=$TB_AUKSD_PORT" >> "$TB_DIR/state.env"
    fi
    mkdir -p /etc/auks
    mkdir -p "$TB_DIR/auksd-cache" "$TB_DIR/log"
    chmod 0755 "$TB_DIR" "$TB_DIR/log"
    cat > "$TB_AUKS_CONF" <<EOF
# written by auks-rs scripts/testbed/lib.sh
common {
  PrimaryHost = "localhost" ; PrimaryAddress = "127.0.0.1" ; PrimaryPort = "$TB_AUKSD_PORT" ;
  PrimaryPrincipal = "auks/localhost@$TB_REALM" ;
  SecondaryHost = "localhost" ; SecondaryAddress = "127.0.0.1" ; SecondaryPort = "$TB_AUKSD_PORT" ;
  SecondaryPrincipal = "auks/localhost@$TB_REALM" ;
  NAT = no ; Retries = 1 ; Timeout = 3 ; Delay = 1 ;
}
api {
  LogFile = "/dev/null" ; LogLevel = 0 ; DebugFile = "/dev/null" ; DebugLevel = 0 ;
}
auksd {
  PrimaryKeytab = "$TB_AUKSD_KEYTAB" ; SecondaryKeytab = "$TB_AUKSD_KEYTAB" ;
  CacheDir = "$TB_DIR/auksd-cache" ; ACLFile = "$TB_AUKS_ACL" ;
  LogFile = "$TB_DIR/log/auksd.log" ; LogLevel = 3 ; DebugFile = "$TB_DIR/log/auksd.log" ; DebugLevel = 0 ;
  Workers = 4 ; QueueSize = 16 ; RepoSize = 64 ; CleanDelay = 300 ; ReplayCache = yes ;
}
renewer {
  LogFile = "/dev/null" ; LogLevel = 0 ; Delay = 60 ; MinLifeTime = 300 ;
}
EOF
    chmod 0644 "$TB_AUKS_CONF"
    cat > "$TB_AUKS_ACL" <<EOF
# written by auks-rs scripts/testbed/lib.sh
rule { principal = ^host/.*@$TB_REALM\$ ; host = * ; role = admin ; }
rule { principal = ^[[:alnum:]]*@$TB_REALM\$ ; host = * ; role = user ; }
EOF
    chmod 0644 "$TB_AUKS_ACL"
}

tb_auksd_up() {
    tb_load_state
    if tb_pid_alive "$TB_DIR/auksd.pid"; then
        return 0
    fi
    # TB_AUKSD: the auksd binary (default: the debug build of this tree)
    local bin=${TB_AUKSD:-$TB_REPO/target/debug/auksd}
    [ -x "$bin" ] || tb_die "$bin missing: run cargo build"
    tb_auks_conf
    cd / || exit 1
    # Its replay cache in the testbed's directory (removed by tb_down), not
    # in root's default /var/tmp/krb5_0.rcache2.
    mkdir -p -m 700 "$TB_DIR/rcache"
    KRB5RCACHEDIR=$TB_DIR/rcache setsid "$bin" -F -f "$TB_AUKS_CONF" \
        >> "$TB_DIR/log/auksd.stdout" 2>&1 < /dev/null 9>&- &
    echo $! > "$TB_DIR/auksd.pid"
    local i
    for i in $(seq 1 50); do
        ss -Htln "sport = :$TB_AUKSD_PORT" | grep -q . && return 0
        tb_pid_alive "$TB_DIR/auksd.pid" || break
        sleep 0.1
    done
    tb_die "auksd did not start: $(tail -5 "$TB_DIR/log/auksd.stdout" "$TB_DIR/log/auksd.log" 2>/dev/null)"
}

tb_auksd_down() {
    tb_stop_pidfile "$TB_DIR/auksd.pid"
}

# ---------------------------------------------------------------------------------------
# munge + Slurm
# ---------------------------------------------------------------------------------------
tb_munge_up() {
    if tb_pid_alive /run/munge/munged.pid; then
        return 0
    fi
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    cd / || exit 1
    runuser -u munge -- /usr/sbin/munged 9>&- || tb_die "munged failed to start"
    : > "$TB_DIR/munged.ours"
    munge -n | unmunge > /dev/null 2>&1 || tb_die "munge self-test failed"
}

tb_munge_down() {
    if [ -e "$TB_DIR/munged.ours" ]; then
        tb_stop_pidfile /run/munge/munged.pid
        rm -f "$TB_DIR/munged.ours"
    fi
}

tb_slurm_conf() {
    local node mem
    node=$(slurmd -C | head -1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<< "$node")
    [ -n "$mem" ] || tb_die "cannot parse 'slurmd -C': $node"
    [ "$mem" -gt 1000 ] && mem=1000
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$mem/" <<< "$node")
    local spool=/var/spool/slurmd pidf=/run/slurm/slurmd.pid logf=$TB_SLURM_LOG/slurmd.log
    local nodes=$TB_HOST
    if tb_multi; then
        # n1..nN on this host, ports 6818.., their own spool, PID file and log (%n)
        spool=/var/spool/slurmd/%n
        pidf=/run/slurm/slurmd-%n.pid
        logf=$TB_SLURM_LOG/slurmd-%n.log
        nodes="n[1-$TB_NODES]"
        node=$(sed "s/^NodeName=[^ ]*/NodeName=$nodes NodeHostname=$TB_HOST NodeAddr=127.0.0.1 Port=[$TB_SLURMD_PORT0-$((TB_SLURMD_PORT0 + TB_NODES - 1))]/" <<< "$node")
    fi
    tb_backup /etc/slurm/slurm.conf
    cat > /etc/slurm/slurm.conf <<EOF
# written by auks-rs scripts/testbed/lib.sh: one-node test cluster, no systemd, no cgroups
ClusterName=auksbed
SlurmctldHost=$TB_HOST
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=$spool
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=$pidf
SlurmctldLogFile=$TB_SLURM_LOG/slurmctld.log
SlurmdLogFile=$logf
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
PlugStackConfig=/etc/slurm/plugstack.conf
MessageTimeout=10
SlurmdTimeout=300
UnkillableStepTimeout=60
InactiveLimit=0
KillWait=2
MinJobAge=300
$node State=UNKNOWN
PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP
${TB_SLURM_EXTRA_CONF:-}
EOF
    tb_backup /etc/slurm/plugstack.conf
    echo "include $TB_PLUGSTACK_DIR/*.conf" > /etc/slurm/plugstack.conf
    mkdir -p "$TB_PLUGSTACK_DIR"
    [ -e "$TB_PLUGSTACK_FILE" ] || : > "$TB_PLUGSTACK_FILE"
}

# every node's slurmd is alive
tb_slurmds_alive() {
    local n
    for n in $(tb_nodes); do
        tb_pid_alive "$(tb_slurmd_pidfile "$n")" || return 1
    done
}

tb_slurm_up() {
    install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$TB_SLURM_LOG" /run/slurm
    install -d -o root -g root -m 0755 /var/spool/slurmd
    local n
    if tb_multi; then
        for n in $(tb_nodes); do install -d -o root -g root -m 0755 "/var/spool/slurmd/$n"; done
    fi
    if ! tb_pid_alive /run/slurm/slurmctld.pid || ! tb_slurmds_alive; then
        tb_slurm_conf
    fi
    cd / || exit 1
    if ! tb_pid_alive /run/slurm/slurmctld.pid; then
        setsid /usr/sbin/slurmctld -D >> "$TB_SLURM_LOG/slurmctld.stdout" 2>&1 < /dev/null 9>&- &
        : > "$TB_DIR/slurmctld.ours"
    fi
    local i
    for i in $(seq 1 100); do
        scontrol ping 2>/dev/null | grep -q 'is UP' && break
        sleep 0.2
    done
    scontrol ping 2>/dev/null | grep -q 'is UP' || tb_die "slurmctld not up: $(tail -5 "$TB_SLURM_LOG/slurmctld.log")"
    for n in $(tb_nodes); do
        tb_pid_alive "$(tb_slurmd_pidfile "$n")" || tb_slurmd_start "$n"
    done
    tb_nodes_idle && return 0
    tb_die "nodes not idle: $(sinfo -N 2>&1; for n in $(tb_nodes); do tail -5 "$(tb_slurmd_log "$n")"; done)"
}

tb_slurm_down() {
    # jobs first, so that their slurmstepd run the plugin's exit hooks
    if tb_pid_alive /run/slurm/slurmctld.pid; then
        scancel --state=RUNNING,PENDING -u "$TB_USER" 2>/dev/null || true
        scancel --state=RUNNING,PENDING -u "$TB_USER2" 2>/dev/null || true
    fi
    local f n
    # every slurmd this testbed started (also those of another TB_NODES)
    [ -e "$TB_DIR/slurmd.ours" ] && tb_stop_pidfile /run/slurm/slurmd.pid
    rm -f "$TB_DIR/slurmd.ours"
    for f in "$TB_DIR"/slurmd-*.ours; do
        [ -e "$f" ] || continue
        n=${f##*/slurmd-}
        tb_stop_pidfile "/run/slurm/slurmd-${n%.ours}.pid"
        rm -f "$f"
    done
    [ -e "$TB_DIR/slurmctld.ours" ] && tb_stop_pidfile /run/slurm/slurmctld.pid
    rm -f "$TB_DIR/slurmctld.ours"
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
    rm -f "$TB_PLUGSTACK_FILE"
    tb_restore /etc/slurm/slurm.conf
    tb_restore /etc/slurm/plugstack.conf
}

# write the auks plugstack line: tb_plugstack optional|required [ARG...]
# (the .so is target/debug/libauks.so of this tree unless TB_PLUGIN is set)
tb_plugstack() {
    local kind=$1
    shift
    local so=${TB_PLUGIN:-$TB_REPO/target/debug/libauks.so}
    echo "$kind $so $*" > "$TB_PLUGSTACK_FILE"
}

tb_plugstack_default_args() {
    echo "default=disabled conf=$TB_AUKS_CONF keytab=$TB_HOST_KEYTAB renewer=$TB_REPO/target/debug/auks"
}

tb_plugstack_clear() {
    : > "$TB_PLUGSTACK_FILE"
}

# ---------------------------------------------------------------------------------------
# all together
# ---------------------------------------------------------------------------------------
# One testbed user at a time: scripts that bring the testbed up hold this lock (fd 9)
# until they exit, so two test scripts started together run one after the other
# instead of tearing down each other's cluster. Daemons are started with fd 9 closed.
TB_LOCK=/var/tmp/auks-testbed.lock
tb_lock() {
    [ -n "${TB_LOCKED:-}" ] && return 0
    exec 9>> "$TB_LOCK"
    if ! flock -n 9; then
        tb_log "another testbed user holds $TB_LOCK; waiting (up to 30 min)"
        flock -w 1800 9 || tb_die "testbed lock $TB_LOCK not released"
    fi
    TB_LOCKED=1
}

tb_up() {
    tb_need_root
    tb_lock
    tb_deps
    mkdir -p "$TB_DIR"
    chmod 0755 "$TB_DIR"
    # remember whether /etc/auks is ours to remove at the end
    if [ ! -d /etc/auks ]; then
        mkdir -p /etc/auks
        : > "$TB_DIR/etc-auks-created"
    fi
    tb_users
    tb_kdc_up
    tb_auksd_up
    tb_munge_up
    tb_slurm_up
}

tb_down() {
    tb_need_root
    tb_lock
    # slurmrestd and auks-gateway, when scripts/testbed/rest.sh started them
    if declare -F tb_rest_down > /dev/null; then tb_rest_down; fi
    tb_slurm_down
    tb_munge_down
    tb_auksd_down
    tb_kdc_down
    tb_restore /etc/krb5.conf
    tb_restore "$TB_HOST_KEYTAB"
    if [ -e "$TB_DIR/etc-auks-created" ]; then
        rm -rf /etc/auks
    else
        rm -f "$TB_AUKS_CONF" "$TB_AUKS_ACL" "$TB_AUKSD_KEYTAB"
    fi
    # anything the test users left in /tmp
    rm -f /tmp/krb5cc_"$TB_UID" /tmp/krb5cc_"$TB_UID"_* /tmp/krb5cc_"$TB_UID2" /tmp/krb5cc_"$TB_UID2"_*
    rm -rf "$TB_DIR"
}

tb_status() {
    local f
    for f in "$TB_DIR/kdc/kdc.pid" "$TB_DIR/auksd.pid" /run/munge/munged.pid \
        /run/slurm/slurmctld.pid $(for n in $(tb_nodes); do tb_slurmd_pidfile "$n"; done); do
        if tb_pid_alive "$f"; then echo "up   $f ($(cat "$f"))"; else echo "down $f"; fi
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    case "${1:-}" in
        up) tb_up ;;
        down) tb_down ;;
        status) tb_status ;;
        *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
    esac
fi
