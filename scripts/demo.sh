#!/usr/bin/env bash
# Demo of the main job of auks-rs, on a fresh Debian 12 machine, as root:
#   a throw-away Kerberos realm on loopback, our auksd, a one-node Slurm 22.05
#   cluster loading our SPANK plugin, and a user whose ticket goes into auksd
#   and comes back out (auks -a / auks -g), then a job that is handed its
#   owner's Kerberos ticket (srun --auks=yes); then the same from a "laptop":
#   a job submitted with curl over HTTPS through auks-gateway (password ->
#   verified TGT -> auksd -> Slurm JWT -> slurmrestd), whose output shows
#   its owner's klist.
#
# Usage: bash scripts/demo.sh [--keep]
#   --keep   leave the realm, auksd and the cluster running afterwards
#            (stop them with: bash scripts/testbed/lib.sh down)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/demo.sh must run as root (it starts a KDC, auksd and Slurm)" >&2
    exit 1
fi
keep=no
[ "${1:-}" = "--keep" ] && keep=yes
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

say "installing packages (if missing) and building auks-rs"
bash scripts/deps.sh
bash scripts/traversable.sh
cargo build --quiet

# The testbed library is written for scripts without errexit: from here on,
# every step that matters is checked explicitly.
set +e
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
# shellcheck source=testbed/lib.sh
source scripts/testbed/lib.sh
# shellcheck source=testbed/rest.sh
source scripts/testbed/rest.sh
if [ "$keep" = no ]; then
    trap 'say "tearing the demo down"; tb_down' EXIT
fi
say "starting a throw-away realm ($TB_REALM), auksd, munge, slurmctld (with Slurm JWT), slurmd"
tb_lock
tb_rest_prepare
tb_up || fail "testbed did not start"
tb_plugstack optional "$(tb_plugstack_default_args)"
echo "plugstack: $(cat "$TB_PLUGSTACK_FILE")"

AUKS=$TB_REPO/target/debug/auks
U=$TB_USER

say "1. $U logs in on the login node and gets a ticket"
tb_kinit "$U"
show "klist"
tb_as "$U" "klist" || fail "no ticket for $U"

say "2. auks -a: the TGT goes into auksd"
show "auks -a"
tb_as "$U" "AUKS_CONF=$TB_AUKS_CONF $AUKS -a" || fail "auks -a"
show "auks -D   (as root, with the host keytab: admin role)"
hostcc=$(mktemp -u /tmp/auks-demo-host.XXXXXX)
kinit -k -t "$TB_HOST_KEYTAB" -c "$hostcc" "host/$TB_HOST@$TB_REALM" || fail "host kinit"
KRB5CCNAME=$hostcc AUKS_CONF=$TB_AUKS_CONF "$AUKS" -D || fail "auks -D"

say "3. auks -g: the ticket comes back out (into a fresh ccache)"
show "auks -g -u $TB_UID -C FILE:/tmp/demo-$TB_UID.cc"
KRB5CCNAME=$hostcc AUKS_CONF=$TB_AUKS_CONF "$AUKS" -g -u "$TB_UID" -C "FILE:/tmp/demo-$TB_UID.cc" \
    || fail "auks -g"
klist -c "/tmp/demo-$TB_UID.cc" || fail "klist of the fetched ccache"
rm -f "/tmp/demo-$TB_UID.cc"
kdestroy -q -c "$hostcc" || true

say "4. a job is handed its owner's ticket: srun --auks=yes"
show "srun --auks=yes bash -c 'echo KRB5CCNAME=\$KRB5CCNAME; ls -l \${KRB5CCNAME#FILE:}; klist'"
tb_as "$U" "srun --auks=yes bash -c 'echo KRB5CCNAME=\$KRB5CCNAME; ls -l \${KRB5CCNAME#FILE:} 2>/dev/null; klist'" \
    || fail "the job did not see its owner's ticket"

say "5. after the job: no ccache and no renewer left on the node"
sleep 1
show "ls /tmp/krb5cc_${TB_UID}_*"
ls /tmp/krb5cc_"${TB_UID}"_* 2>/dev/null || echo "(none)"
show "pgrep -u $U -f 'auks -R loop'"
pgrep -u "$U" -af 'auks -R loop' || echo "(none)"

say "6. from a laptop: a job through auks-gateway over HTTPS, with curl"
tb_slurmrestd_up || fail "slurmrestd did not start"
tb_gateway_up || fail "auks-gateway did not start"
GW=$(tb_gateway_url)
CA=$(tb_gateway_ca)
tb_kdestroy "$U"
echo "(no ticket of $U is left anywhere: the gateway makes a fresh one from the password)"
show "curl --cacert ca.pem $GW/v1/health"
curl -sS --cacert "$CA" "$GW/v1/health" && echo
OUTDIR=$(mktemp -d /tmp/auks-demo-out.XXXXXX)
chmod 1777 "$OUTDIR"
cat > "$OUTDIR/job.json" <<JSON
{"script": "#!/bin/bash\necho \"job \$SLURM_JOB_ID on \$(hostname) as \$(id -un)\"\nklist\n",
 "name": "from-laptop", "time_limit": 5, "output": "$OUTDIR/gw-%j.out"}
JSON
show "curl --cacert ca.pem -u $U:******** -H 'Content-Type: application/json' --data-binary @job.json $GW/v1/jobs"
reply=$(printf 'user = "%s:%s"\n' "$U" "$TB_PW_USER" | curl -sS --cacert "$CA" -K - \
    -H 'Content-Type: application/json' --data-binary "@$OUTDIR/job.json" "$GW/v1/jobs") \
    || fail "curl POST /v1/jobs"
echo "$reply"
job=$(sed -n 's/.*"job_id":\([0-9]*\).*/\1/p' <<< "$reply")
[ -n "$job" ] || fail "no job id in the gateway's reply"
for _ in $(seq 1 300); do
    st=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case "$st" in COMPLETED | FAILED | CANCELLED | TIMEOUT | "") break ;; esac
    sleep 0.2
done
show "curl --cacert ca.pem -u $U:******** $GW/v1/jobs/$job"
printf 'user = "%s:%s"\n' "$U" "$TB_PW_USER" | curl -sS --cacert "$CA" -K - "$GW/v1/jobs/$job" && echo
show "cat gw-$job.out   (the job's output: its owner's fresh ticket)"
cat "$OUTDIR/gw-$job.out" || fail "no job output"
grep -q "Default principal: $U@$TB_REALM" "$OUTDIR/gw-$job.out" || fail "the job did not see its owner's ticket"
rm -rf "$OUTDIR"
show "the gateway's audit log"
grep ' audit ' "$TB_DIR/log/gateway.log" | tail -3

say "done"
