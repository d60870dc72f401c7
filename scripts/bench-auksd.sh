#!/usr/bin/env bash
# Throughput, latency, memory and start-up of auksd (issue 12), against a
# throw-away MIT KDC on loopback, with the in-process load generator
# (examples/auksd_load.rs: the client library on many threads, each request
# a full new authenticated session, so the daemon and not process start-up
# is measured):
#   * GET and ADD requests/s, p50 and p99 at 1, 16, 64 and 256 clients;
#   * RSS of auksd at 1, 10 000 and 100 000 stored credentials;
#   * time to listen and time to fully loaded at 100 000 credentials;
#   * DUMP of 100 000 credentials;
#   * one auksdrenewer pass over 100 000 stored credentials (section
#     "renewer pass at 100 000", our daemon and renewer only).
# When AUKS_C_PREFIX points at a hand-built C AUKS (its sbin/auksd), the C
# daemon is measured in the same run, with the same configuration.
# Prints figures only (no pass/fail). Run as root; builds the release binaries.
# Usage: scripts/bench-auksd.sh [SECONDS_PER_POINT]   (default 5; each point
# is run AUKS_BENCH_REPEAT times, default 3, and its figures are the medians)
# AUKS_BENCH_ONLY=renewer runs the renewer pass only; AUKS_BENCH_RENEW_N
# sets its size (default 100 000).
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-5}
# Runs per point (AUKS_BENCH_REPEAT, default 3): each figure is their median.
REPEAT=${AUKS_BENCH_REPEAT:-3}
REALM=BENCH.REALM
[ "$(id -u)" -eq 0 ] || { echo "bench-auksd: run as root" >&2; exit 2; }
for t in krb5kdc kdb5_util kadmin.local kinit; do
    command -v "$t" > /dev/null || { echo "bench-auksd: $t not found (scripts/deps.sh)" >&2; exit 2; }
done
NSSW=$(ls /usr/lib/*/libnss_wrapper.so /usr/lib64/libnss_wrapper.so 2> /dev/null | head -1)
[ -n "$NSSW" ] || { echo "bench-auksd: libnss_wrapper.so not found (scripts/deps.sh)" >&2; exit 2; }

(cd "$REPO" && cargo build --release --bins --example auksd_load) || exit 1
LOAD=$REPO/target/release/examples/auksd_load
OURS=$REPO/target/release/auksd

W=$(mktemp -d /var/tmp/auks-bench-auksd.XXXXXX)
KDC_PID=""
D_PID=""
cleanup() {
    [ -n "$D_PID" ] && kill "$D_PID" 2> /dev/null
    [ -n "$KDC_PID" ] && kill "$KDC_PID" 2> /dev/null
    wait 2> /dev/null
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port below the ephemeral range (the load generator's thousands of
# connections in TIME_WAIT occupy ports of that range) that nothing listens on.
free_port() {
    local p lo
    read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 12000 ] || lo=32768
    while :; do
        p=$(shuf -i 10000-$((lo - 1)) -n 1)
        (echo > "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
    done
}
KPORT=$(free_port)
PORT=$(free_port)

# nss_wrapper crashes under concurrent lookups (auksd's workers look accounts
# up in parallel): both daemons get it behind one lock (tests/common/nss_serial.c).
cc -shared -fPIC -O2 -o "$W/libnss_serial.so" "$REPO/tests/common/nss_serial.c" -ldl -lpthread ||
    { echo "bench-auksd: cannot build tests/common/nss_serial.c" >&2; exit 1; }
NSSW="$W/libnss_serial.so $NSSW"

# --- the realm -------------------------------------------------------------
export KRB5_CONFIG=$W/krb5.conf KRB5_KDC_PROFILE=$W/kdc.conf KRB5RCACHEDIR=$W
cat > "$KRB5_CONFIG" << EOF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  rdns = false
  dns_canonicalize_hostname = false
  noaddresses = true
  ticket_lifetime = 10h
  renew_lifetime = 7d
[realms]
  $REALM = {
    kdc = 127.0.0.1:$KPORT
  }
[domain_realm]
  localhost = $REALM
EOF
cat > "$KRB5_KDC_PROFILE" << EOF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$KPORT
  kdc_tcp_listen = 127.0.0.1:$KPORT
[realms]
  $REALM = {
    database_name = $W/principal
    key_stash_file = $W/stash
    acl_file = $W/kadm5.acl
    max_life = 10h
    max_renewable_life = 7d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:$W/kdc.log
EOF
: > "$W/kadm5.acl"
kdb5_util create -s -r $REALM -P bench-master-pw > /dev/null 2>&1 || { echo "bench-auksd: kdb5_util failed" >&2; exit 1; }
{
    echo "addprinc -randkey auks/localhost"; echo "ktadd -k $W/auks.keytab auks/localhost"
    echo "addprinc -randkey bench";          echo "ktadd -k $W/bench.keytab bench"
    echo "addprinc -randkey host/bench";     echo "ktadd -k $W/admin.keytab host/bench"
    echo "addprinc -randkey b000000";        echo "ktadd -k $W/pop.keytab b000000"
} | kadmin.local -r $REALM > /dev/null 2>&1
krb5kdc -n -P "$W/kdc.pid" > "$W/kdc.out" 2>&1 &
KDC_PID=$!
# The KDC may take seconds to answer while other builds load the CPUs.
for _ in $(seq 300); do kinit -k -t "$W/bench.keytab" -c "FILE:$W/bench.cc" -r 7d bench 2> /dev/null && break; sleep 0.1; done
kinit -k -t "$W/admin.keytab" -c "FILE:$W/admin.cc" -r 7d host/bench || { cat "$W/kdc.out" "$W/kdc.log" >&2; exit 1; }
kinit -k -t "$W/pop.keytab" -c "FILE:$W/pop.cc" -r 7d b000000 || exit 1
BUID=4242
grep -v '^bench:' /etc/passwd > "$W/passwd"; echo "bench:x:$BUID:$BUID::/nonexistent:/usr/sbin/nologin" >> "$W/passwd"
cp /etc/group "$W/group"; echo "bench:x:$BUID:" >> "$W/group"
# The large repositories hold one credential per account b<uid>, uids from
# 100000 on, listed after the machine's accounts (a flat file, as nss_wrapper
# reads it): the C auksd maps each file's principal to its uid by getpwnam.
cp "$W/passwd" "$W/passwd.big"
awk 'BEGIN { for (u = 100000; u < 200000; u++) printf "b%d:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", u, u, u }' >> "$W/passwd.big"

mkdir -m 700 "$W/cache"
cat > "$W/auks.acl" << EOF
rule { principal = ^host/.*@$REALM\$ ; host = * ; role = admin ; }
rule { principal = ^[[:alnum:]]*@$REALM\$ ; host = * ; role = user ; }
EOF
cat > "$W/auks.conf" << EOF
common {
  PrimaryHost = "localhost" ; PrimaryAddress = "127.0.0.1" ; PrimaryPort = "$PORT" ;
  PrimaryPrincipal = "auks/localhost@$REALM" ;
  SecondaryHost = "localhost" ; SecondaryAddress = "127.0.0.1" ; SecondaryPort = "$PORT" ;
  SecondaryPrincipal = "auks/localhost@$REALM" ;
  NAT = no ; Retries = 1 ; Timeout = 30 ; Delay = 1 ;
}
api { LogFile = "$W/api.log" ; LogLevel = 0 ; DebugFile = "$W/api.log" ; DebugLevel = 0 ; }
auksd {
  PrimaryKeytab = "$W/auks.keytab" ; SecondaryKeytab = "$W/auks.keytab" ;
  CacheDir = "$W/cache" ; ACLFile = "$W/auks.acl" ;
  LogFile = "$W/auksd.log" ; LogLevel = 1 ; DebugFile = "$W/auksd.log" ; DebugLevel = 0 ;
  Workers = 10 ; QueueSize = 50 ; RepoSize = 500 ; CleanDelay = 300 ; ReplayCache = yes ;
}
renewer { LogFile = "$W/renewer.log" ; LogLevel = 1 ; Delay = 60 ; MinLifeTime = 300 ; }
EOF
sed 's/Timeout = 30 ;/Timeout = 600 ;/' "$W/auks.conf" > "$W/auks-dump.conf"
grep -q 'Timeout = 600 ;' "$W/auks-dump.conf" || { echo "bench-auksd: auks-dump.conf without its Timeout" >&2; exit 1; }

# --- one daemon ------------------------------------------------------------
ms_now() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$D_PID/status" 2> /dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$D_PID/status" 2> /dev/null || echo 0; }
# start_daemon BINARY PASSWD: sets D_PID and LISTEN_MS ("-" if the port did
# not open within 15 minutes or the daemon exited; the C auksd listens only
# after loading every credential).
start_daemon() {
    local t0 t1 up=0
    : > "$W/auksd.log"
    t0=$(ms_now)
    LD_PRELOAD="$NSSW" NSS_WRAPPER_PASSWD=$2 NSS_WRAPPER_GROUP=$W/group \
        "$1" -F -f "$W/auks.conf" >> "$W/auksd.log" 2>&1 &
    D_PID=$!
    while [ $(($(ms_now) - t0)) -lt 900000 ] && kill -0 "$D_PID" 2> /dev/null; do
        (echo > "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && { up=1; break; }
        sleep 0.005
    done
    t1=$(ms_now)
    LISTEN_MS=$((t1 - t0))
    [ "$up" = 1 ] || { LISTEN_MS="-"; echo "bench-auksd: $1 did not listen (log: $(tail -c 300 "$W/auksd.log"))" >&2; }
    START_MS=$t0
}
stop_daemon() {
    [ -n "$D_PID" ] && kill "$D_PID" 2> /dev/null && wait "$D_PID" 2> /dev/null
    D_PID=""
}
# loaded_ms: milliseconds from start until every credential is loaded: our
# auksd listens first and logs "repository loaded: N credentials" (waited
# for, at most 10 minutes); the C auksd loads CacheDir before it creates
# its socket (auks_cred_repo_init, then the dispatcher), and logs its count
# only at LogLevel 4, so its time to listen is its time to fully loaded.
loaded_ms() {
    [ "$LOADS_FIRST" = 1 ] && { echo "$LISTEN_MS"; return; }
    for _ in $(seq 60000); do
        if grep -q "repository loaded" "$W/auksd.log"; then
            echo $(($(ms_now) - START_MS))
            return
        fi
        kill -0 "$D_PID" 2> /dev/null || break
        sleep 0.01
    done
    echo "-"
}
# populate N: N credentials in CacheDir, files aukscc_<uid> for the accounts
# b<uid> (uid from 100000 on), each a copy of b000000's ccache with the client
# principal renamed (same length, so every length field stays valid): both
# daemons load the same files, and the C auksd, which maps the principal to a
# uid, sees N distinct users.
populate() {
    rm -rf "$W/cache"; mkdir -m 700 "$W/cache"
    perl -MFcntl -e '
        my ($src, $dir, $n) = @ARGV;
        open(my $f, "<:raw", $src) or die "$src: $!";
        my $cc = do { local $/; <$f> };
        close $f;
        $cc =~ /b000000/ or die "$src: principal b000000 not found";
        for my $u (100000 .. 100000 + $n - 1) {
            (my $o = $cc) =~ s/b000000/b$u/g;
            my $p = "$dir/aukscc_$u";
            sysopen(my $h, $p, O_WRONLY | O_CREAT | O_EXCL, 0600) or die "$p: $!";
            binmode $h;
            print $h $o or die "$p: $!";
            close $h or die "$p: $!";
        }' "$W/pop.cc" "$W/cache" "$1" || exit 1
    sync
}
dump_count() {
    "$LOAD" --op dump --conf "$W/auks.conf" --ccache "$W/admin.cc" 2> /dev/null | sed -n 's/.*records=\([0-9]*\).*/\1/p'
}
# dump_big N: one DUMP of the whole repository by our client, with the
# client's Timeout at 600 s (auks-dump.conf): the C auksd builds its reply,
# 32 KiB per record, in memory before it sends a byte (at 100 000: 3.3 GB,
# over a minute, and a peak of about 5 times its RSS), then our client holds
# several copies of that reply while it decrypts it (16 GB for 3.3 GB in
# November 2026). Skipped unless 6 times the daemon's RSS is available,
# rather than pushing the machine into the OOM killer.
dump_big() {
    local rss avail tm=()
    rss=$(rss_kb)
    avail=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)
    if [ "$avail" -lt $((6 * rss)) ]; then
        echo "   DUMP of $1: skipped (daemon RSS $rss kB, only $avail kB of memory available)"
        return
    fi
    [ -x /usr/bin/time ] && tm=(/usr/bin/time -f "client peak RSS %M kB,")
    echo "   DUMP of $1: $("${tm[@]}" "$LOAD" --op dump --conf "$W/auks-dump.conf" --ccache "$W/admin.cc" 2>&1 | tr '\n' ' ')daemon RSS after $(rss_kb) kB, peak $(hwm_kb) kB"
}
point_once() { # op clients -> "rps p50 p99 failed"
    "$LOAD" --op "$1" --clients "$2" --seconds "$SECS" --conf "$W/auks.conf" --ccache "$W/bench.cc" --uid $BUID 2> "$W/load.err" |
        sed -n 's/.*failed=\([0-9]*\).* rps=\([0-9.]*\) p50_ms=\([0-9.]*\) p99_ms=\([0-9.]*\).*/\2 \3 \4 \1/p'
}
# point op clients -> "rps p50 p99 failed": REPEAT runs of SECS seconds back
# to back, the median of each figure (this machine's speed drifts by 10-20 %
# within minutes) and the failures of all runs.
point() {
    local i
    for i in $(seq "$REPEAT"); do point_once "$1" "$2"; done |
        awk '{ r[NR] = $1; a[NR] = $2; b[NR] = $3; f += $4 }
             function med(x, n,   i, j, t) {
                 for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
                 return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
             }
             END { if (NR) printf "%s %s %s %d\n", med(r, NR), med(a, NR), med(b, NR), f }'
}

# bench NAME BINARY LOADS_FIRST
bench() {
    local name=$1 bin=$2 c line
    LOADS_FIRST=$3
    rm -rf "$W/cache"; mkdir -m 700 "$W/cache"
    start_daemon "$bin" "$W/passwd"
    "$LOAD" --op add --clients 1 --seconds 0.2 --conf "$W/auks.conf" --ccache "$W/bench.cc" > /dev/null
    echo "== $name: requests/s, p50 and p99 in ms (failed requests)"
    printf "%-4s %8s  %26s  %26s\n" "" "clients" "GET rps / p50 / p99 (fail)" "ADD rps / p50 / p99 (fail)"
    for c in 1 16 64 256; do
        read -r g1 g2 g3 g4 <<< "$(point get $c)"
        read -r a1 a2 a3 a4 <<< "$(point add $c)"
        printf "%-4s %8s  %9s / %5s / %6s (%s)  %9s / %5s / %6s (%s)\n" "" "$c" "$g1" "$g2" "$g3" "$g4" "$a1" "$a2" "$a3" "$a4"
    done
    echo "   RSS with 1 credential: $(rss_kb) kB"
    stop_daemon
    for n in 10000 100000; do
        populate "$n"
        # Our replay cache's journal holds the authenticators of the
        # request points above (hundreds of thousands in a few minutes,
        # about 45 bytes each once loaded back): not part of the
        # repository's memory, which this RSS is about.
        rm -f "$W"/auksd_*.replay.*
        start_daemon "$bin" "$W/passwd.big"
        line=$(loaded_ms)
        sleep 1
        own=$(sed -n 's/.*repository loaded: \([0-9]*\) credentials in \([0-9.]*\) s.*/ (the loader: \1 in \2 s)/p' "$W/auksd.log")
        if [ "$n" = 100000 ]; then
            echo "   $n credentials: port open after ${LISTEN_MS} ms, all loaded after ${line} ms${own}, RSS $(rss_kb) kB"
            dump_big "$n"
        else
            echo "   $n credentials: port open after ${LISTEN_MS} ms, all loaded after ${line} ms${own}, RSS $(rss_kb) kB, DUMP lists $(dump_count)"
        fi
        stop_daemon
    done
}

echo "auksd benchmark: $(nproc) CPUs, median of $REPEAT runs of $SECS s per point, $(date -u +%FT%TZ)"
# AUKS_BENCH_ONLY=renewer: only the renewer pass below.
[ "${AUKS_BENCH_ONLY:-}" = renewer ] || bench "auks-rs auksd ($OURS)" "$OURS" 0
if [ -n "${AUKS_C_PREFIX:-}" ] && [ "${AUKS_BENCH_ONLY:-}" != renewer ]; then
    if [ -x "$AUKS_C_PREFIX/sbin/auksd" ]; then
        bench "C auksd ($AUKS_C_PREFIX/sbin/auksd)" "$AUKS_C_PREFIX/sbin/auksd" 1
    else
        echo "bench-auksd: $AUKS_C_PREFIX/sbin/auksd not found: C column skipped" >&2
    fi
fi

# --- renewer pass at 100 000 -------------------------------------------------
# One auksdrenewer pass (DUMP, then for each credential a TGS renewal at the
# KDC and an ADD to auksd, each a new authenticated session) over RN stored
# credentials, all due (MinLifeTime above the ticket life). The repository
# holds copies of the renewable TGTs of RU users (b100000 ...; 64 by
# default, AUKS_BENCH_RENEW_USERS) under RN uids from 110000 on, and every
# ADD stores the renewed TGT under the uid of its principal: the KDC and
# ADD work is that of RN distinct credentials, written to RU files (with
# one user, every ADD waits for the previous one on that user's file, which
# no site's renewals do).
# Prints the pass time, the renewer's summary line (renewed/skipped/failed),
# its peak RSS and the CPU seconds auksdrenewer, auksd and the KDC spent.
RN=${AUKS_BENCH_RENEW_N:-100000}
RU=${AUKS_BENCH_RENEW_USERS:-64}
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2> /dev/null || echo 0; }
renewer_pass() {
    local r_pid t0 t1 k0 d0 k1 d1 rc peak h done_line
    local u i per=$(((RN + RU - 1) / RU)) left=$RN
    rm -rf "$W/cache"; mkdir -m 700 "$W/cache"
    for ((i = 0; i < RU; i++)); do
        u=$((100000 + i))
        echo "addprinc -randkey b$u"; echo "ktadd -k $W/renew-users.keytab b$u"
    done | kadmin.local -r $REALM > /dev/null 2>&1
    for ((i = 0; i < RU && left > 0; i++)); do
        u=$((100000 + i))
        kinit -k -t "$W/renew-users.keytab" -c "FILE:$W/b$u.cc" -r 7d "b$u" || exit 1
        "$LOAD" --op populate --ccache "$W/b$u.cc" --dir "$W/cache" --uid $((110000 + i * per)) \
            --count $((left < per ? left : per)) > /dev/null
        left=$((left - per))
    done
    sync
    LOADS_FIRST=0
    start_daemon "$OURS" "$W/passwd.big"
    loaded_ms > /dev/null
    sed -e "s|^renewer {.*|renewer { LogFile = \"$W/renewer.log\" ; LogLevel = 1 ; Delay = 600 ; MinLifeTime = 3600000 ; }|" \
        "$W/auks.conf" > "$W/renewer.conf"
    : > "$W/renewer.out"
    k0=$(cpu_s "$KDC_PID"); d0=$(cpu_s "$D_PID")
    t0=$(ms_now)
    KRB5CCNAME=FILE:$W/admin.cc "$REPO/target/release/auksdrenewer" -F -f "$W/renewer.conf" >> "$W/renewer.out" 2>&1 &
    r_pid=$!
    peak=0
    # Little work while the pass runs: only the end of renewer.out is read
    # (matching the whole file in bash every 0.1 s, one line per credential,
    # took a fifth of the two CPUs the pass is measured on; a grep and an
    # awk every 0.1 s took 3 %).
    local line
    for _ in $(seq 18000); do # at most 30 minutes
        [[ $(tail -c 2048 "$W/renewer.out") == *"pass done"* ]] && break
        kill -0 "$r_pid" 2> /dev/null || break
        while read -r line; do
            [[ $line == VmHWM:* ]] && { h=${line#VmHWM:}; peak=${h//[^0-9]/}; break; }
        done < "/proc/$r_pid/status" 2> /dev/null
        sleep 0.1
    done
    t1=$(ms_now)
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$r_pid/status" 2> /dev/null) && [ -n "$h" ] && peak=$h
    rc=$(cpu_s "$r_pid"); k1=$(cpu_s "$KDC_PID"); d1=$(cpu_s "$D_PID")
    kill -TERM "$r_pid" 2> /dev/null; wait "$r_pid" 2> /dev/null
    done_line=$(grep -o "pass done.*" "$W/renewer.out" | head -1)
    echo "== renewer pass at $RN: auksdrenewer ($REPO/target/release/auksdrenewer) against our auksd"
    echo "   pass over $RN credentials: $(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.1f", ms / 1000}') s (${done_line:-no summary line: see below}), peak RSS ${peak} kB"
    echo "   CPU during the pass: auksdrenewer ${rc} s, auksd $(awk -v a="$d0" -v b="$d1" 'BEGIN {printf "%.1f", b - a}') s, KDC $(awk -v a="$k0" -v b="$k1" 'BEGIN {printf "%.1f", b - a}') s"
    [ -n "$done_line" ] || grep -v "renewed: end" "$W/renewer.out" | tail -5 | sed 's/^/   /'
    grep -h "renewal failed" "$W/renewer.out" "$W/renewer.log" 2> /dev/null | head -3 | sed 's/^/   /'
    stop_daemon
}
renewer_pass
