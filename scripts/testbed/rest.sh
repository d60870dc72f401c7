#!/usr/bin/env bash
# The REST side of the testbed, sourced after scripts/testbed/lib.sh: Slurm's JWT
# authentication (AuthAltTypes=auth/jwt with a generated HS256 key), slurmrestd (Debian
# package `slurmrestd`, run as its own unprivileged account: it refuses root and
# SlurmUser) and auks-gateway (this tree's build, run as its own account with its own
# keytab HTTP/<host>, a copy of the JWT key and a throw-away TLS CA + certificate).
#
# Order: tb_rest_prepare (before tb_up: writes the key, adds the slurm.conf lines), tb_up,
# tb_slurmrestd_up, tb_gateway_up. tb_down calls tb_rest_down. Everything started here is
# stopped by PID file.
# shellcheck shell=bash

TB_REST_USER=auksrest
TB_GW_USER=auksgw
TB_JWT_KEY=/var/spool/slurmctld/jwt_hs256.key
TB_GW_DIR=/etc/auks/gateway
TB_REST_VERSION=${TB_REST_VERSION:-v0.0.38}

tb_rest_deps() {
    local p missing=()
    for p in slurmrestd slurm-wlm-jwt-plugin curl openssl jq; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] || bash "$TB_REPO/scripts/deps.sh" || tb_die "cannot install ${missing[*]}"
}

tb_system_user() { # tb_system_user NAME
    id -u "$1" > /dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin -U "$1" \
        || tb_die "useradd $1 failed"
}

# Before tb_up: the JWT key slurmctld reads, and the slurm.conf lines that enable it.
tb_rest_prepare() {
    tb_rest_deps
    install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld
    if [ ! -s "$TB_JWT_KEY" ]; then
        (umask 077 && head -c 32 /dev/urandom > "$TB_JWT_KEY")
    fi
    chown slurm:slurm "$TB_JWT_KEY"
    chmod 0600 "$TB_JWT_KEY"
    export TB_SLURM_EXTRA_CONF="AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$TB_JWT_KEY"
}

tb_slurmrestd_up() {
    tb_load_state
    if tb_pid_alive "$TB_DIR/slurmrestd.pid"; then return 0; fi
    tb_system_user "$TB_REST_USER"
    mkdir -p "$TB_DIR/log"
    local attempt i
    # a port free a moment ago may be taken meanwhile: a few attempts, a new port each
    for attempt in 1 2 3; do
        if [ -z "${TB_REST_PORT:-}" ] || [ "$attempt" -gt 1 ]; then
            TB_REST_PORT=$(tb_free_port)
            tb_state_set TB_REST_PORT "$TB_REST_PORT"
        fi
        cd / || exit 1
        # SLURM_JWT=daemon: slurmrestd authenticates to slurmctld with the callers' JWTs
        # (without it, it keeps auth/munge and rejects every token: "Rejecting thread
        # config token")
        SLURM_JWT=daemon setsid setpriv --reuid="$TB_REST_USER" --regid="$TB_REST_USER" --init-groups \
            /usr/sbin/slurmrestd -a rest_auth/jwt -s "openapi/$TB_REST_VERSION" "127.0.0.1:$TB_REST_PORT" \
            >> "$TB_DIR/log/slurmrestd.log" 2>&1 < /dev/null 9>&- &
        echo $! > "$TB_DIR/slurmrestd.pid"
        for i in $(seq 1 100); do
            ss -Htln "sport = :$TB_REST_PORT" | grep -q . && return 0
            tb_pid_alive "$TB_DIR/slurmrestd.pid" || break
            sleep 0.1
        done
        tb_stop_pidfile "$TB_DIR/slurmrestd.pid"
        tb_log "slurmrestd did not start on port $TB_REST_PORT (attempt $attempt)"
    done
    tb_die "slurmrestd did not start: $(tail -5 "$TB_DIR/log/slurmrestd.log")"
}

tb_slurmrestd_down() {
    tb_stop_pidfile "$TB_DIR/slurmrestd.pid"
}

# A throw-away CA ($TB_DIR/gw/ca.pem, what a laptop user would be given) and the
# gateway's certificate for localhost / 127.0.0.1 / the host name.
tb_gateway_pki() {
    local d=$TB_DIR/gw ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    mkdir -p "$d"
    chmod 0755 "$d"
    [ -s "$d/ca.pem" ] && [ -s "$TB_GW_DIR/tls.key" ] && return 0
    (
        cd "$d" || exit 1
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=auks testbed CA" > /dev/null 2>&1 &&
        openssl req "${ec[@]}" -keyout tls.key -out tls.csr -subj "/CN=localhost" > /dev/null 2>&1 &&
        printf 'subjectAltName=DNS:localhost,DNS:%s,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' \
            "$TB_HOST" > ext.cnf &&
        openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem \
            -days 2 -extfile ext.cnf > /dev/null 2>&1
    ) || tb_die "cannot make the gateway's TLS certificate"
    chmod 0644 "$d/ca.pem" "$d/tls.pem"
    install -o "$TB_GW_USER" -g "$TB_GW_USER" -m 0600 "$d/tls.key" "$TB_GW_DIR/tls.key"
    install -o root -g root -m 0644 "$d/tls.pem" "$TB_GW_DIR/tls.pem"
    rm -f "$d/tls.key" "$d/ca.key"
}

# The gateway's account, keytab, JWT key copy, certificate and configuration; then start
# it (TB_GATEWAY: the binary, default target/debug/auks-gateway of this tree).
tb_gateway_up() {
    tb_load_state
    if tb_pid_alive "$TB_DIR/gateway.pid"; then return 0; fi
    local bin=${TB_GATEWAY:-$TB_REPO/target/debug/auks-gateway}
    [ -x "$bin" ] || tb_die "$bin missing: run cargo build"
    tb_system_user "$TB_GW_USER"
    install -d -o "$TB_GW_USER" -g "$TB_GW_USER" -m 0750 "$TB_GW_DIR"
    if [ ! -s "$TB_GW_DIR/gateway.keytab" ]; then
        tb_kadmin "addprinc -randkey HTTP/$TB_HOST"
        tb_kadmin "ktadd -k $TB_GW_DIR/gateway.keytab HTTP/$TB_HOST"
    fi
    chown "$TB_GW_USER:$TB_GW_USER" "$TB_GW_DIR/gateway.keytab"
    chmod 0600 "$TB_GW_DIR/gateway.keytab"
    [ -s "$TB_GW_DIR/jwt_hs256.key" ] ||
        install -o "$TB_GW_USER" -g "$TB_GW_USER" -m 0600 "$TB_JWT_KEY" "$TB_GW_DIR/jwt_hs256.key"
    tb_gateway_pki
    mkdir -p "$TB_DIR/log"
    : > "$TB_DIR/log/gateway.log"
    local attempt i
    # a port free a moment ago may be taken meanwhile: a few attempts, a new port each
    for attempt in 1 2 3; do
        if [ -z "${TB_GW_PORT:-}" ] || [ "$attempt" -gt 1 ]; then
            TB_GW_PORT=$(tb_free_port)
            tb_state_set TB_GW_PORT "$TB_GW_PORT"
        fi
        tb_gateway_conf
        cd / || exit 1
        setsid setpriv --reuid="$TB_GW_USER" --regid="$TB_GW_USER" --init-groups \
            "$bin" -f "$TB_GW_DIR/gateway.toml" >> "$TB_DIR/log/gateway.log" 2>&1 < /dev/null 9>&- &
        echo $! > "$TB_DIR/gateway.pid"
        for i in $(seq 1 200); do
            grep -q 'listening on' "$TB_DIR/log/gateway.log" && return 0
            tb_pid_alive "$TB_DIR/gateway.pid" || break
            sleep 0.1
        done
        tb_stop_pidfile "$TB_DIR/gateway.pid"
        grep -q 'Address already in use' "$TB_DIR/log/gateway.log" || break
        tb_log "auks-gateway could not listen on port $TB_GW_PORT (attempt $attempt)"
    done
    tb_die "auks-gateway did not start: $(tail -5 "$TB_DIR/log/gateway.log")"
}

tb_gateway_conf() {
    cat > "$TB_GW_DIR/gateway.toml" <<EOF
# written by auks-rs scripts/testbed/rest.sh
listen = "127.0.0.1:$TB_GW_PORT"
tls_cert = "$TB_GW_DIR/tls.pem"
tls_key = "$TB_GW_DIR/tls.key"
auks_conf = "$TB_AUKS_CONF"
keytab = "$TB_GW_DIR/gateway.keytab"
verify_principal = "HTTP/$TB_HOST@$TB_REALM"
jwt_key = "$TB_GW_DIR/jwt_hs256.key"
jwt_lifespan = 120
slurmrestd = "http://127.0.0.1:$TB_REST_PORT"
openapi_version = "$TB_REST_VERSION"
ticket_lifetime = 3600
renew_lifetime = 86400
backend_timeout = 20
max_concurrent_requests = ${TB_GW_MAX_CONCURRENT:-16}
login_failures_before_backoff = 3
login_backoff_base = 5
login_backoff_max = 60
${TB_GW_EXTRA_CONF:-}
EOF
    chmod 0644 "$TB_GW_DIR/gateway.toml"
}

tb_gateway_down() {
    tb_stop_pidfile "$TB_DIR/gateway.pid"
}

tb_rest_down() {
    tb_gateway_down
    tb_slurmrestd_down
    rm -rf "$TB_GW_DIR"
}

# the gateway's URL and CA, for clients
tb_gateway_url() { tb_load_state; echo "https://localhost:$TB_GW_PORT"; }
tb_gateway_ca() { echo "$TB_DIR/gw/ca.pem"; }

# A Slurm JWT for USER signed with the testbed key (HS256; claims sun, iat, exp), as
# `scontrol token` would make it: tb_jwt_token USER [LIFESPAN]
tb_jwt_token() {
    local now b64 h p sig
    now=$(date +%s)
    b64() { basenc --base64url | tr -d '=\n'; }
    h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
    p=$(printf '{"sun":"%s","iat":%s,"exp":%s}' "$1" "$now" $((now + ${2:-600})) | b64)
    sig=$(printf '%s.%s' "$h" "$p" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(od -An -v -tx1 "$TB_JWT_KEY" | tr -d ' \n')" -binary | b64)
    printf '%s.%s.%s\n' "$h" "$p" "$sig"
}

# POST a job straight to slurmrestd with a ready token (no gateway): tb_rest_submit USER
# JSON_FILE; prints the reply
tb_rest_submit() {
    tb_load_state
    curl -sS --max-time 60 -H "X-SLURM-USER-NAME: $1" -H "X-SLURM-USER-TOKEN: $(tb_jwt_token "$1")" \
        -H 'Content-Type: application/json' --data-binary "@$2" \
        "http://127.0.0.1:$TB_REST_PORT/slurm/$TB_REST_VERSION/job/submit"
}
