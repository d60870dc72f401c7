# shellcheck shell=bash
# Sourced by scripts/build-packages.sh: the checks on the packages as a
# set: install test into a throwaway root, systemd units, man pages,
# lintian.

# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------

field() { dpkg-deb -f "$1" "$2" 2>/dev/null; }

# Installs both packages into a throwaway root with dpkg --root, checks the
# result of postinst, then purges them.
install_test() {
    local root=$TMP/instroot admin log
    if [ "$(id -u)" != 0 ]; then
        skip "install into a throwaway root (dpkg --root needs root)"
        return
    fi
    if ! have dpkg; then
        skip "install into a throwaway root (dpkg not found)"
        return
    fi
    # The maintainer scripts run on this host (chrootless): only packages
    # whose scripts either honour DPKG_ROOT or touch no system path are
    # installed.
    local deb script
    for deb in "$@"; do
        rm -rf "$TMP/ctl-guard"
        dpkg-deb -e "$deb" "$TMP/ctl-guard"
        for script in preinst postinst prerm postrm; do
            [ -f "$TMP/ctl-guard/$script" ] || continue
            if grep -qE '(^|[[:space:]"'"'"'=])/(etc|var|usr|lib|opt|srv|home|root|tmp)/' "$TMP/ctl-guard/$script" &&
                ! grep -q 'DPKG_ROOT' "$TMP/ctl-guard/$script"; then
                skip "install into a throwaway root ($(basename "$deb") $script does not honour DPKG_ROOT)"
                return
            fi
        done
    done
    rm -rf "$root"
    admin=$root/var/lib/dpkg
    mkdir -p "$admin/info" "$admin/updates" "$admin/triggers"
    : >"$admin/status"
    : >"$admin/available"
    log=$TMP/dpkg.log
    # --force-script-chrootless: maintainer scripts run on this host with
    # DPKG_ROOT=$root (they honour it); --force-depends: the throwaway
    # database knows none of the dependencies.
    local -a dpkg_cmd=(dpkg "--root=$root" --force-script-chrootless --force-depends
        --no-triggers "--log=$TMP/dpkg-history.log")
    if "${dpkg_cmd[@]}" -i "$@" >"$log" 2>&1; then
        ok "dpkg --root=<tmp> -i installs both packages"
    else
        fail "dpkg --root=<tmp> -i failed:"
        sed 's/^/          /' "$log"
        return
    fi
    local st owner=0:0 auks_uid auks_gid
    if have systemd-sysusers; then
        auks_uid=$(awk -F: '$1 == "auks" { print $3 }' "$root/etc/passwd" 2>/dev/null || true)
        auks_gid=$(awk -F: '$1 == "auks" { print $3 }' "$root/etc/group" 2>/dev/null || true)
        check "postinst created the system account auks (uid ${auks_uid:-none}) in the target root" \
            test -n "$auks_uid" -a -n "$auks_gid" -a "${auks_uid:-1000}" -lt 1000
        owner=$auks_uid:$auks_gid
        local gw_uid gw_gid
        gw_uid=$(awk -F: '$1 == "auks-gateway" { print $3 }' "$root/etc/passwd" 2>/dev/null || true)
        gw_gid=$(awk -F: '$1 == "auks-gateway" { print $3 }' "$root/etc/group" 2>/dev/null || true)
        check "postinst created the system account auks-gateway (uid ${gw_uid:-none}), distinct from auks" \
            test -n "$gw_uid" -a -n "$gw_gid" -a "${gw_uid:-1000}" -lt 1000 -a "$gw_uid" != "$auks_uid"
    else
        skip "system account in a throwaway root (systemd-sysusers not found; adduser only runs on the real root)"
    fi
    st=$(stat -c '%a %u:%g %F' "$root/var/cache/auks" 2>/dev/null || echo absent)
    check "postinst created /var/cache/auks 0700 owned by auks ($st)" \
        test "$st" = "700 $owner directory"
    st=$(stat -c '%a %U:%G' "$root/usr/sbin/auksd" 2>/dev/null || echo absent)
    check "installed /usr/sbin/auksd is 0755 root:root ($st)" test "$st" = "755 root:root"
    st=$("${dpkg_cmd[@]}" -s auks-rs 2>/dev/null | sed -n 's/^Status: //p')
    check "dpkg status of auks-rs is 'install ok installed' ($st)" test "$st" = "install ok installed"
    st=$("${dpkg_cmd[@]}" -s slurm-spank-auks-rs 2>/dev/null | sed -n 's/^Status: //p')
    check "dpkg status of slurm-spank-auks-rs is 'install ok installed' ($st)" test "$st" = "install ok installed"
    # Reinstall over itself (upgrade path of the maintainer scripts).
    if "${dpkg_cmd[@]}" -i "$@" >"$log" 2>&1; then
        ok "reinstalling over the installed packages (upgrade path) works"
    else
        fail "reinstall failed:"
        sed 's/^/          /' "$log"
    fi
    # A credential in the repository must go away on purge.
    install -m 0600 /dev/null "$root/var/cache/auks/aukscc_12345"
    if "${dpkg_cmd[@]}" --purge slurm-spank-auks-rs auks-rs >"$log" 2>&1; then
        ok "dpkg --purge removes both packages"
    else
        fail "dpkg --purge failed:"
        sed 's/^/          /' "$log"
        return
    fi
    check "purge removed /var/cache/auks" test ! -e "$root/var/cache/auks"
    local left
    # The account database stays: system accounts are not removed on purge.
    left=$(cd "$root" && find . -path ./var/lib/dpkg -prune -o \( -type f -o -type l \) -print |
        { grep -vxE '\./etc/(passwd|group|shadow|gshadow|\.pwd\.lock)-?' || true; } | LC_ALL=C sort | head -5)
    check "purge left no file behind${left:+ (left: $left)}" test -z "$left"
    [ ! -e /var/cache/auks/aukscc_12345 ] || fail "the install test touched the real /var/cache/auks"
}

check_units() {
    local dir=$1 out bad
    if ! have systemd-analyze; then
        skip "systemd-analyze verify (systemd-analyze not found)"
        return
    fi
    # MANPATH: the Documentation=man: pages are the packaged ones.
    out=$(cd "$dir" && MANPATH=$dir/usr/share/man systemd-analyze verify ./lib/systemd/system/*.service 2>&1) || true
    # Our binaries are not installed on this host: that one complaint is
    # expected and is checked separately against the package contents.
    bad=$(printf '%s\n' "$out" | grep -v -E '^[a-z-]+\.service: Command /usr/sbin/(auksd|auksdrenewer|aukspriv|auks-gateway) is not executable: No such file or directory$' | grep -v '^$' || true)
    if [ -z "$bad" ]; then
        ok "systemd-analyze verify: units parse without warnings"
    else
        fail "systemd-analyze verify reports:"
        printf '%s\n' "$bad" | sed 's/^/          /'
    fi
    # Exposure scores (0 = fully confined, 10 = unconfined); all must be "OK"
    # (< 4).
    local u score
    for u in "$dir"/lib/systemd/system/*.service; do
        score=$(systemd-analyze security --offline=true "$u" 2>/dev/null |
            sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        if [ -z "$score" ]; then
            skip "systemd-analyze security ${u##*/} (needs systemd >= 250)"
        else
            check "systemd-analyze security ${u##*/}: exposure $score (< 4)" \
                awk -v s="$score" 'BEGIN { exit !(s < 4) }'
        fi
    done
}

# Each man page of the extracted tree $1 renders without warnings.
check_man_pages() {
    local f out n=0
    if ! have man; then
        skip "man page rendering (man not found)"
        return
    fi
    for f in "$1"/usr/share/man/man*/*.gz; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null) || out="man failed: $out"
        if [ -z "$out" ]; then
            ok "man -l ${f#"$1"} renders without warnings"
        else
            fail "man -l ${f#"$1"}:"
            printf '%s\n' "$out" | sed 's/^/          /'
        fi
    done
    check "package has man pages ($n)" test "$n" -gt 0
}

# lintian on the .debs: no error; warnings are listed.
run_lintian() {
    local out
    if ! have lintian; then
        skip "lintian (not installed)"
        return
    fi
    # lintian leaves its ELF cache (mldbm-elf-*) in TMPDIR: give it its own.
    local tmp
    tmp=$(mktemp -d)
    out=$(TMPDIR=$tmp lintian --tag-display-limit 0 "$@" 2>&1) || true
    rm -rf "$tmp"
    if grep -q '^E: ' <<<"$out"; then
        fail "lintian reports errors:"
        grep '^E: ' <<<"$out" | sed 's/^/          /'
    else
        ok "lintian reports no error"
    fi
    # (not a pipe: warn must count in this shell, not in a subshell)
    while IFS= read -r l; do warn "lintian ${l#W: }"; done < <(grep '^W: ' <<<"$out" || true)
}
