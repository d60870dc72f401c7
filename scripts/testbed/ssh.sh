# The ssh variant of the testbed (scripts/testbed/lib.sh), used only by
# scripts/pam-tests.sh: Slurm with PrologFlags=contain and proctrack/cgroup on the cgroup v1
# hierarchy of this machine (no systemd), an sshd on a loopback port with its own config and
# PAM service (`auks-sshd`: pam_slurm_adopt in account, pam_auks_adopt in session), key-based
# logins for the test users, and a syslog sink on /dev/log when the machine has none.
#
# Source it after lib.sh and before tb_up: it wraps tb_slurm_conf so the cluster starts
# with the variant, and tb_ssh_down undoes everything it added (call it before tb_down).
# Everything is recorded in PID files / markers and stopped from there.
# shellcheck shell=bash

TB_SSH_DIR=/run/auks-testbed-ssh
TB_SSH_PAM_SERVICE=auks-sshd
TB_SSH_PAM_FILE=/etc/pam.d/$TB_SSH_PAM_SERVICE
TB_CGROUP_CONF=/etc/slurm/cgroup.conf
TB_SYSLOG=${TB_DIR}/log/syslog
TB_PAM_MODULE=${TB_PAM_MODULE:-$TB_REPO/target/debug/libpam_auks_adopt.so}
TB_RECORD_DIR=/run/auks/jobs

# tb_slurm_conf of lib.sh, then the variant on top of it
eval "$(declare -f tb_slurm_conf | sed '1s/^tb_slurm_conf/tb_slurm_conf_plain/')"
tb_slurm_conf() {
    tb_slurm_conf_plain
    sed -i -e 's|^ProctrackType=.*|ProctrackType=proctrack/cgroup|' \
        -e 's|^# written by auks-rs scripts/testbed/lib.sh.*|& (ssh variant: contain, proctrack/cgroup)|' \
        /etc/slurm/slurm.conf
    sed -i -e 's|^SlurmdDebug=.*|SlurmdDebug=verbose|' /etc/slurm/slurm.conf
    echo "PrologFlags=contain" >> /etc/slurm/slurm.conf
    tb_backup "$TB_CGROUP_CONF"
    cat > "$TB_CGROUP_CONF" <<EOF
# written by auks-rs scripts/testbed/ssh.sh (cgroup v1 hierarchy of this machine)
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
EOF
    chmod 0644 "$TB_CGROUP_CONF"
}

# the running cluster uses the variant (restarted with it if not)
tb_ssh_slurm_check() {
    if ! scontrol show config 2>/dev/null | grep -qiE '^PrologFlags.*contain'; then
        tb_log "restarting Slurm with the ssh variant"
        [ -e "$TB_DIR/slurmd.ours" ] && tb_stop_pidfile /run/slurm/slurmd.pid
        [ -e "$TB_DIR/slurmctld.ours" ] && tb_stop_pidfile /run/slurm/slurmctld.pid
        tb_slurm_up
    fi
    scontrol show config | grep -qiE '^ProctrackType *= *proctrack/cgroup' \
        || tb_die "Slurm does not run with proctrack/cgroup"
}

# a syslog sink on /dev/log, only when nothing listens there
tb_syslog_up() {
    mkdir -p "$TB_DIR/log"
    : >> "$TB_SYSLOG"
    [ -e /dev/log ] && return 0
    cd / || exit 1
    setsid python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$TB_SYSLOG" > /dev/null 2>&1 < /dev/null 9>&- &
    echo $! > "$TB_DIR/syslog.pid"
    local i
    for i in $(seq 1 50); do [ -S /dev/log ] && return 0; sleep 0.1; done
    tb_die "syslog sink did not start"
}

tb_syslog_down() {
    if [ -e "$TB_DIR/syslog.pid" ]; then
        tb_stop_pidfile "$TB_DIR/syslog.pid"
        [ -S /dev/log ] && rm -f /dev/log
    fi
}

# a key pair for a test user: private key owned by the user, public key authorized
tb_ssh_user_key() {
    local u=$1
    install -d -o root -g root -m 0755 "$TB_SSH_DIR/keys" "$TB_SSH_DIR/authorized_keys"
    rm -f "$TB_SSH_DIR/keys/$u" "$TB_SSH_DIR/keys/$u.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$u@auks-testbed" -f "$TB_SSH_DIR/keys/$u" \
        || tb_die "ssh-keygen for $u failed"
    chown "$u" "$TB_SSH_DIR/keys/$u"
    chmod 0600 "$TB_SSH_DIR/keys/$u"
    install -o root -g root -m 0644 "$TB_SSH_DIR/keys/$u.pub" "$TB_SSH_DIR/authorized_keys/$u"
}

# a port below the ephemeral range (a client socket on the same port would make sshd's bind
# fail), with no socket at all on it
tb_ssh_free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((10000 + RANDOM % 10000))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    tb_die "no free port found for sshd"
}

tb_ssh_up() {
    [ -x /usr/sbin/sshd ] || tb_die "sshd missing (scripts/deps.sh installs openssh-server)"
    [ -e "$TB_PAM_MODULE" ] || tb_die "$TB_PAM_MODULE missing: run cargo build"
    tb_syslog_up
    install -d -o root -g root -m 0755 "$TB_SSH_DIR"
    install -d -o root -g root -m 0755 /run/sshd
    if [ ! -e "$TB_SSH_DIR/host_key" ]; then
        ssh-keygen -q -t ed25519 -N '' -f "$TB_SSH_DIR/host_key" || tb_die "host key"
    fi
    tb_ssh_user_key "$TB_USER"
    tb_ssh_user_key "$TB_USER2"
    tb_load_state
    if [ -z "${TB_SSH_PORT:-}" ]; then
        TB_SSH_PORT=$(tb_ssh_free_port)
        echo "TB_SSH_PORT=$TB_SSH_PORT" >> "$TB_DIR/state.env"
    fi
    cat > "$TB_SSH_DIR/sshd_config" <<EOF
# written by auks-rs scripts/testbed/ssh.sh
Port $TB_SSH_PORT
ListenAddress 127.0.0.1
HostKey $TB_SSH_DIR/host_key
PidFile $TB_SSH_DIR/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $TB_SSH_DIR/authorized_keys/%u
PermitRootLogin no
AllowUsers $TB_USER $TB_USER2
X11Forwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
EOF
    # The PAM service is sshd's program name: a link named after the service.
    ln -sfn /usr/sbin/sshd "$TB_SSH_DIR/$TB_SSH_PAM_SERVICE"
    tb_backup "$TB_SSH_PAM_FILE"
    cat > "$TB_SSH_PAM_FILE" <<EOF
# written by auks-rs scripts/testbed/ssh.sh: keys only, adopted into the user's job
auth     required  pam_deny.so
account  required  pam_unix.so
account  required  pam_slurm_adopt.so service=$TB_SSH_PAM_SERVICE log_level=debug
session  required  pam_unix.so
session  optional  $TB_PAM_MODULE debug
EOF
    chmod 0644 "$TB_SSH_PAM_FILE"
    "$TB_SSH_DIR/$TB_SSH_PAM_SERVICE" -t -f "$TB_SSH_DIR/sshd_config" 2> "$TB_DIR/sshd.check" \
        || tb_die "sshd config: $(cat "$TB_DIR/sshd.check")"
    cd / || exit 1
    if ! tb_pid_alive "$TB_SSH_DIR/sshd.pid"; then
        "$TB_SSH_DIR/$TB_SSH_PAM_SERVICE" -f "$TB_SSH_DIR/sshd_config" \
            -E "$TB_DIR/log/sshd.log" 9>&- < /dev/null || tb_die "sshd did not start"
    fi
    local i
    for i in $(seq 1 50); do
        ss -Htln "sport = :$TB_SSH_PORT" | grep -q . && return 0
        sleep 0.1
    done
    tb_die "sshd not listening: $(tail -5 "$TB_DIR/log/sshd.log")"
}

# ssh to this node as a test user: tb_ssh USER 'remote command' [ssh option...]
tb_ssh() {
    local u=$1 cmd=$2
    shift 2
    tb_as "$u" "timeout 30 ssh -q -i $TB_SSH_DIR/keys/$u -p $TB_SSH_PORT \
        -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 $* $u@127.0.0.1 '$cmd'"
}

# remove the empty cgroups Slurm left (deepest first; never a populated one)
tb_cgroup_clean() {
    local d
    for d in /sys/fs/cgroup/*/slurm /sys/fs/cgroup/*/slurm_*; do
        [ -d "$d" ] || continue
        find "$d" -depth -type d -exec rmdir {} + 2> /dev/null || true
    done
}

tb_ssh_down() {
    tb_stop_pidfile "$TB_SSH_DIR/sshd.pid"
    rm -rf "$TB_SSH_DIR"
    tb_restore "$TB_SSH_PAM_FILE"
    tb_restore "$TB_CGROUP_CONF"
    tb_syslog_down
}
