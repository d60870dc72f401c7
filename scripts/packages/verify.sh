# shellcheck shell=bash
# Sourced by scripts/build-packages.sh: the checks on one .deb
# (verify_deb) and the small predicates they use.

verify_deb() {
    local deb=$1 pkg version arch dir expected actual f mode dest src st
    local -a tolerated=()
    echo "==> checking $deb"
    [ -f "$deb" ] || { fail "$deb does not exist"; return; }
    pkg=$(field "$deb" Package) || { fail "dpkg-deb -f: not a Debian package"; return; }
    version=$(field "$deb" Version)
    arch=$(field "$deb" Architecture)
    dir=$TMP/check/$pkg
    rm -rf "$dir"
    mkdir -p "$dir/root" "$dir/DEBIAN"

    # --- dpkg-deb -I: control fields -------------------------------------
    case " ${PACKAGES[*]} " in
        *" $pkg "*) ok "Package: $pkg" ;;
        *) fail "Package: '$pkg' is not one of ${PACKAGES[*]}"; return ;;
    esac
    if [ "$CHECK_VERSION" = 1 ]; then
        check "Version: $version (Cargo.toml: $VERSION)" test "$version" = "$VERSION"
    else
        check "Version: $version" test -n "$version"
    fi
    check "Architecture: $arch (this host: $ARCH)" test "$arch" = "$ARCH"
    check "file name is ${pkg}_${version}_${arch}.deb" test "$(basename "$deb")" = "${pkg}_${version}_${arch}.deb"
    for f in Maintainer Installed-Size Section Priority Description; do
        check "field $f present" test -n "$(field "$deb" "$f")"
    done
    local depends
    depends=$(field "$deb" Depends)
    if [ "$pkg" = auks-rs ]; then
        check "Depends names libkrb5-3 and libc6 ($depends)" \
            depends_on "$depends" libkrb5-3 libc6
    else
        check "Depends: auks-rs (= $version)" grep -qF "auks-rs (= $version)" <<<"$depends"
        check "Depends names libkrb5-3 (the plugin opens it on first use) ($depends)" \
            depends_on "$depends" libkrb5-3
        check "Depends pins the Slurm release (slurm-wlm-basic-plugins >= x.y, << x.y+1)" \
            grep -qE 'slurm-wlm-basic-plugins \(>= [0-9]+\.[0-9]+\), slurm-wlm-basic-plugins \(<< [0-9]+\.[0-9]+\)' <<<"$depends"
    fi
    if dpkg-deb -I "$deb" >"$dir/info" 2>&1; then ok "dpkg-deb -I reads the control archive"; else fail "dpkg-deb -I failed"; fi

    # --- dpkg-deb -c: exact file list, owners and modes -------------------
    dpkg-deb -c "$deb" >"$dir/listing" || { fail "dpkg-deb -c failed"; return; }
    if [ "$DRY_RUN" = 1 ] && [ "$pkg" = auks-rs ]; then
        tolerated=("${SKIPPED_BINS[@]}")
    fi
    expected=$(contents "$arch" | while read -r p mode dest src; do
        [ "$p" = "$pkg" ] || continue
        [[ " ${tolerated[*]} " == *" ${dest##*/} "* ]] && [ "${src#target/release/}" != "$src" ] && continue
        echo ".$dest $mode"
    done | LC_ALL=C sort)
    # "-rwxr-xr-x root/root 123 2024-01-01 00:00 ./usr/bin/auks" -> "./usr/bin/auks 0755"
    actual=$(awk '$1 ~ /^-/ { print $6, $1 }' "$dir/listing" | while read -r f perm; do
        printf '%s %s\n' "$f" "$(perm_octal "$perm")"
    done | LC_ALL=C sort)
    if [ "$expected" = "$actual" ]; then
        ok "dpkg-deb -c: exactly the $(wc -l <<<"$expected") expected files, with the expected modes"
    else
        fail "dpkg-deb -c: file list or modes differ (< expected, > packaged):"
        diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | grep '^[<>]' | sed 's/^/          /' || true
    fi
    for f in "${tolerated[@]}"; do warn "--dry-run: /usr/sbin/$f not packaged (not built yet)"; done
    local owners
    owners=$(awk '{ print $2 }' "$dir/listing" | sort -u | tr '\n' ' ')
    check "every entry is owned by root/root ($owners)" test "$owners" = "root/root "
    check "no keytab shipped" no_path_matches "$dir/listing" 'keytab'
    check "no live /etc/auks/auks.conf or /etc/auks/auks.acl shipped" \
        no_path_matches "$dir/listing" '^\./etc/auks/auks\.(conf|acl)$'
    check "/var/cache/auks not shipped (postinst creates it)" \
        no_path_matches "$dir/listing" '^\./var/cache/auks'
    check "no setuid/setgid/sticky entry" no_special_modes "$dir/listing"
    check "every directory is 0755" all_dirs_0755 "$dir/listing"

    # --- control archive: conffiles and maintainer scripts ----------------
    dpkg-deb -e "$deb" "$dir/DEBIAN"
    local etc_files conffiles
    etc_files=$(awk '$1 ~ /^-/ && $6 ~ /^\.\/etc\// { print substr($6, 2) }' "$dir/listing" | LC_ALL=C sort)
    conffiles=$(LC_ALL=C sort "$dir/DEBIAN/conffiles" 2>/dev/null || true)
    check "conffiles lists exactly the files under /etc ($(tr '\n' ' ' <<<"$conffiles"))" \
        test "$etc_files" = "$conffiles"
    if [ "$pkg" = auks-rs ]; then
        for f in postinst prerm postrm; do
            st=$(stat -c '%a' "$dir/DEBIAN/$f" 2>/dev/null || echo absent)
            check "$f present, mode 0755 ($st), valid sh syntax" \
                script_ok "$st" "$dir/DEBIAN/$f"
        done
        check "postinst creates /var/cache/auks with mode 0700" \
            grep -qE 'install -d .*-m 0700 .*/var/cache/auks' "$dir/DEBIAN/postinst"
        check "maintainer scripts keep no #DEBHELPER# token" \
            not_grep '#DEBHELPER#' "$dir/DEBIAN/postinst" "$dir/DEBIAN/postrm"
        check "maintainer scripts honour DPKG_ROOT" grep -q 'DPKG_ROOT' "$dir/DEBIAN/postinst"
    fi

    # --- extracted tree -----------------------------------------------------
    dpkg-deb -x "$deb" "$dir/root"
    check "md5sums lists every file but the conffiles, with the right sums" \
        md5sums_ok "$dir"
    check_man_pages "$dir/root"
    if [ "$pkg" = auks-rs ]; then
        for f in "$dir"/root/usr/bin/* "$dir"/root/usr/sbin/*; do
            check "${f#"$dir/root"} is an ELF executable" \
                test "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF'
            if have ldd && [ "$arch" = "$ARCH" ]; then
                check "${f#"$dir/root"}: every shared library resolves" libs_resolve "$f"
            fi
        done
        if [ "$arch" = "$ARCH" ]; then
            for f in usr/bin/auks usr/sbin/auksd usr/sbin/auksd-etcd usr/sbin/auks-gateway; do
                check "/$f -h runs and exits 0" runs_help "$dir/root/$f"
            done
        fi
        # Every ExecStart/ExecReload program of the units is in the package
        # (or is /bin/kill).
        local prog
        for prog in $(sed -n 's/^Exec[A-Za-z]*=[-@!+:]*\([^ ]*\).*/\1/p' "$dir"/root/lib/systemd/system/*.service | sort -u); do
            case "$prog" in
                /bin/kill) ok "units: $prog (system)" ;;
                *)
                    if [[ " ${tolerated[*]} " == *" ${prog##*/} "* ]]; then
                        warn "units: $prog not packaged (--dry-run)"
                    else
                        check "units: $prog is in the package" test -x "$dir/root$prog"
                    fi
                    ;;
            esac
        done
        local units=$dir/root/lib/systemd/system
        check "units: auksd has PrivateTmp=yes, ProtectSystem=strict, NoNewPrivileges=yes, ProtectProc=invisible" \
            has_lines "$units/auksd.service" 'PrivateTmp=yes' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
            'ProtectProc=invisible'
        check "units: auksd runs as auks, no capability, Type=notify, CacheDirectory=auks, LogsDirectory=auks" \
            has_lines "$units/auksd.service" 'User=auks' 'Group=auks' 'CapabilityBoundingSet=' \
            'Type=notify' 'CacheDirectory=auks' 'CacheDirectoryMode=0700' 'LogsDirectory=auks' 'RuntimeDirectory=auks'
        check "units: no daemon may dump core (LimitCORE=0) or see other processes (ProtectProc=invisible)" \
            all_units_have "$units" 'LimitCORE=0' 'ProtectProc=invisible'
        check "units: no broad ReadWritePaths=/var/log" not_grep -E '^ReadWritePaths=.*/var/log' "$units"/*.service
        check "sysusers.d declares the auks account" \
            grep -qE '^u auks - ' "$dir/root/usr/lib/sysusers.d/auks-rs.conf"
        check "sysusers.d declares the auks-gateway account (the User= of its unit)" \
            grep -qE '^u auks-gateway - ' "$dir/root/usr/lib/sysusers.d/auks-rs.conf"
        check "postinst falls back to adduser for both accounts" \
            has_adduser_for "$dir/DEBIAN/postinst" auks auks-gateway
        check "postinst without systemd-sysusers runs adduser for auks and auks-gateway (stubbed, nothing touched)" \
            adduser_fallback_ok "$dir/DEBIAN/postinst"
        # Every program has its man page (lintian: no-manual-page).
        for f in "$dir"/root/usr/bin/* "$dir"/root/usr/sbin/*; do
            local sec=8
            [ "${f%/*}" = "$dir/root/usr/bin" ] && sec=1
            check "${f#"$dir/root"} has its man page ${f##*/}($sec)" \
                test -f "$dir/root/usr/share/man/man$sec/${f##*/}.$sec.gz"
        done
        for f in usr/bin/auks usr/sbin/auksd usr/sbin/auksdrenewer usr/sbin/aukspriv; do
            if [ "$arch" = "$ARCH" ] && [ -x "$dir/root/$f" ]; then
                check "/$f --version names auks-rs $version and the Slurm and krb5 releases" \
                    version_ok "$dir/root/$f" "${f##*/}"
            fi
        done
        check "bash completion parses (bash -n)" bash -n "$dir/root/usr/share/bash-completion/completions/auks"
        if have zsh; then
            check "zsh completion parses (zsh -n)" zsh -n "$dir/root/usr/share/zsh/vendor-completions/_auks"
        else
            skip "zsh completion syntax (zsh not found)"
        fi
        if have fish; then
            check "fish completion parses (fish -n)" fish -n "$dir/root/usr/share/fish/vendor_completions.d/auks.fish"
        else
            skip "fish completion syntax (fish not found)"
        fi
        check "units: auksd and auksdrenewer reload with SIGHUP" \
            has_lines "$units/auksd.service" 'ExecReload=/bin/kill -HUP $MAINPID'
        check "units: auksdrenewer reloads with SIGHUP and starts after aukspriv" \
            has_lines "$units/auksdrenewer.service" 'ExecReload=/bin/kill -HUP $MAINPID' \
            'After=network-online.target aukspriv.service auksd.service'
        check "units: aukspriv reads /etc/default/aukspriv and /etc/sysconfig/aukspriv" \
            has_lines "$units/aukspriv.service" 'EnvironmentFile=-/etc/default/aukspriv' \
            'EnvironmentFile=-/etc/sysconfig/aukspriv'
        check "units: aukspriv and auksdrenewer keep the real /tmp (no PrivateTmp)" \
            not_grep '^PrivateTmp=yes' "$units/aukspriv.service" "$units/auksdrenewer.service"
        check "units: auks-gateway runs as its own account, without privilege" \
            has_lines "$units/auks-gateway.service" 'User=auks-gateway' 'NoNewPrivileges=yes' \
            'CapabilityBoundingSet=' 'ProtectSystem=strict'
        check "/etc/auks/gateway.toml.example documents every key of the gateway" \
            gateway_example_complete "$dir/root/etc/auks/gateway.toml.example"
        check "units: every daemon runs in the foreground (-F) with Restart=on-failure" \
            all_units_foreground "$units"
        check_units "$dir/root"
        check "/etc/default/aukspriv sets nothing (all settings commented out)" \
            not_grep -vE '^[[:space:]]*(#|$)' "$dir/root/etc/default/aukspriv"
    else
        local so plugdir
        plugdir=$(slurm_plugin_dir "$arch")
        so=$dir/root$plugdir/auks.so
        check "$plugdir/auks.so is an ELF shared object" \
            test "$(head -c 4 "$so" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF'
        if have dpkg && [ "$arch" = "$ARCH" ] && dpkg -L slurm-wlm-basic-plugins >/dev/null 2>&1; then
            local real
            real=$(dpkg -L slurm-wlm-basic-plugins | grep '/auth_munge\.so$' | head -1)
            check "plugin directory is the one of this host's Slurm (${real%/*})" test "${real%/*}" = "$plugdir"
        else
            skip "plugin directory cross-check (slurm-wlm-basic-plugins not installed)"
        fi
        if have nm; then
            local syms missing_syms=()
            syms=$(nm -D --defined-only "$so" 2>/dev/null | awk '{ print $NF }')
            for f in plugin_name plugin_type plugin_version slurm_spank_init; do
                grep -qx "$f" <<<"$syms" || missing_syms+=("$f")
            done
            if [ "${#missing_syms[@]}" = 0 ]; then
                ok "auks.so exports the SPANK symbols (plugin_name, plugin_type, plugin_version, slurm_spank_init)"
            elif [ "$DRY_RUN" = 1 ]; then
                warn "auks.so does not export ${missing_syms[*]} yet (--dry-run)"
            else
                fail "auks.so does not export ${missing_syms[*]}: Slurm would not load it"
            fi
        else
            skip "SPANK symbol check (nm not found)"
        fi
        # PAM loads modules with RTLD_NOW: pam_auks_adopt.so must export the PAM entry
        # points and need no Slurm symbol.
        local pam
        pam=$dir/root/usr/lib/$(multiarch_of "$arch")/security/pam_auks_adopt.so
        if have nm; then
            check "pam_auks_adopt.so exports pam_sm_open_session" \
                grep -qx pam_sm_open_session <<<"$(nm -D --defined-only "$pam" 2>/dev/null | awk '{ print $NF }')"
            check "pam_auks_adopt.so needs no Slurm symbol (loadable by PAM with RTLD_NOW)" \
                not_grep -E 'spank|slurm' <<<"$(nm -D -u "$pam" 2>/dev/null)"
        fi
    fi
}

# --- small predicates used by verify_deb ----------------------------------

# depends_on "Depends value" pkg...: every package is named in the value.
depends_on() {
    local deps=", $1," p
    shift
    for p in "$@"; do
        [[ "$deps" =~ ,\ ${p}[\ ,] ]] || return 1
    done
}
# no_path_matches LISTING ERE: no path of a dpkg-deb -c listing matches.
no_path_matches() { ! awk '{ print $6 }' "$1" | grep -qE "$2"; }
no_special_modes() { ! awk '{ print substr($1, 2) }' "$1" | grep -q '[sStT]'; }
all_dirs_0755() { ! awk '$1 ~ /^d/ && $1 != "drwxr-xr-x"' "$1" | grep -q .; }
# not_grep [grep options] PATTERN FILE...: no line matches.
not_grep() { ! grep -q "$@"; }
script_ok() { [ "$1" = 755 ] && sh -n "$2"; }
libs_resolve() {
    local out
    out=$(ldd "$1" 2>&1) || return 1
    ! grep -q 'not found' <<<"$out"
}
runs_help() { timeout 10 "$1" -h </dev/null >/dev/null 2>&1; }
# has_lines FILE LINE...: every LINE is a whole line of FILE.
has_lines() {
    local f=$1 l
    shift
    for l in "$@"; do grep -qxF -- "$l" "$f" || return 1; done
}
# md5sums_ok DIR: DIR/DEBIAN/md5sums covers exactly the files of DIR/root
# outside the conffiles, and every sum matches.
md5sums_ok() {
    local d listed files
    d=$(cd "$1" && pwd) || return 1
    [ -f "$d/DEBIAN/md5sums" ] || return 1
    listed=$(awk '{ print $2 }' "$d/DEBIAN/md5sums" | LC_ALL=C sort)
    files=$(cd "$d/root" && find . -type f | sed 's|^\./||' |
        { grep -vxF -f <(sed 's|^/||' "$d/DEBIAN/conffiles" 2>/dev/null) || true; } | LC_ALL=C sort)
    [ "$listed" = "$files" ] || return 1
    (cd "$d/root" && md5sum --quiet -c "$d/DEBIAN/md5sums" >/dev/null 2>&1)
}
# has_adduser_for POSTINST USER...: an `adduser --system ... USER` line
# (possibly continued with backslashes) for each USER.
has_adduser_for() {
    local f=$1 u joined
    shift
    joined=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$f")
    for u in "$@"; do
        grep -qE "adduser --system .* $u\$" <<<"$joined" || return 1
    done
}
# adduser_fallback_ok POSTINST: run `postinst configure` with a PATH that
# has no systemd-sysusers and stubs for adduser, getent (no account exists),
# install and systemctl that only record their calls; adduser must be called
# for both accounts, as system accounts with a group.
adduser_fallback_ok() {
    local stub=$TMP/adduser-stub log c
    rm -rf "$stub"
    mkdir -p "$stub/bin"
    log=$stub/calls
    for c in adduser install systemctl; do
        printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$c" "$log" >"$stub/bin/$c"
    done
    printf '#!/bin/sh\nexit 2\n' >"$stub/bin/getent"
    ln -s "$(command -v awk)" "$stub/bin/awk"
    chmod 0755 "$stub"/bin/*
    env -i PATH="$stub/bin" /bin/sh "$1" configure >/dev/null 2>&1 || return 1
    grep -qE '^adduser --system --group .* auks$' "$log" &&
        grep -qE '^adduser --system --group .* auks-gateway$' "$log" &&
        ! grep -q '^systemd-sysusers' "$log"
}
# every key of RawConfig (src/gateway/config.rs) appears in the example
gateway_example_complete() {
    local k
    for k in $(sed -n '/^struct RawConfig/,/^}/s/^ *\([a-z_]*\): .*/\1/p' "$ROOT/src/gateway/config.rs"); do
        grep -qE "^#?$k = " "$1" || { echo "gateway.toml.example lacks $k" >&2; return 1; }
    done
}

all_units_foreground() {
    local u
    for u in "$1"/*.service; do
        grep -qE '^ExecStart=/usr/sbin/[a-z-]+ -F( |$)' "$u" || return 1
        grep -qx 'Restart=on-failure' "$u" || return 1
        grep -qxE 'Type=(simple|exec|notify)' "$u" || return 1
    done
}

# all_units_have DIR LINE...: every unit of DIR has every LINE.
all_units_have() {
    local d=$1 u
    shift
    for u in "$d"/*.service; do has_lines "$u" "$@" || return 1; done
}
# version_ok BINARY NAME: `NAME (auks-rs) <version>` and the built-against line.
version_ok() {
    local out
    out=$(timeout 10 "$1" --version </dev/null 2>&1) || return 1
    grep -qxF "$2 (auks-rs) ${version%%~*}" <<<"$out" || grep -qxF "$2 (auks-rs) $(cargo_version)" <<<"$out" || return 1
    grep -qE '^built against Slurm [0-9]+\.[0-9]+\.[0-9]+, MIT krb5 [0-9.]+$' <<<"$out"
}

# "-rwxr-xr-x" -> 0755
perm_octal() {
    local p=$1 i v o=""
    for i in 1 4 7; do
        v=0
        [ "${p:i:1}" = r ] && v=$((v + 4))
        [ "${p:i+1:1}" = w ] && v=$((v + 2))
        case "${p:i+2:1}" in x | s | t) v=$((v + 1)) ;; esac
        o=$o$v
    done
    echo "0$o"
}
