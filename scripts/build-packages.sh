#!/usr/bin/env bash
# Build and verify the binary Debian packages of auks-rs WITHOUT debhelper, so
# that it works quickly on a fresh Debian/Ubuntu machine (only cargo, dpkg-deb
# and coreutils are required; dpkg-dev, binutils and systemd are used when
# present).
#
#   scripts/build-packages.sh                 cargo build --release, build the
#                                             .debs into target/packages/,
#                                             verify them
#   scripts/build-packages.sh --no-build      same, reusing target/release/
#   scripts/build-packages.sh --check-only [DEB...]
#                                             only verify existing .debs
#                                             (default: the ones of the current
#                                             version in target/packages/)
#   scripts/build-packages.sh --dry-run       build and verify in a temporary
#                                             directory, keep nothing; binaries
#                                             still being written (auksdrenewer,
#                                             aukspriv) and a plugin without
#                                             SPANK symbols are tolerated
#
# Packages (same layout as packaging/debian/, which is the reference):
#   auks-rs              auks in /usr/bin; auksd, auksdrenewer, aukspriv in
#                        /usr/sbin; systemd units in /lib/systemd/system;
#                        the sysusers.d entry of the `auks` account;
#                        /etc/auks/*.example, /etc/default/aukspriv; man
#                        pages; bash, zsh and fish completions; docs.
#   slurm-spank-auks-rs  the SPANK plugin as <Slurm PluginDir>/auks.so and
#                        its man page auks.so(8); the PAM module as
#                        /usr/lib/<triplet>/security/pam_auks_adopt.so.
# No keytab, auks.conf or auks.acl is ever shipped; postinst creates the
# system account `auks` and /var/cache/auks (0700, owned by auks).
# The man pages must render without warnings (man --warnings), and lintian,
# when installed, must report no error (its warnings are listed).
#
# Prints every check and exits non-zero if any fails. Temporary directories
# are removed on exit; running it twice gives the same result.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG_DIR=$ROOT/packaging
OUT_DIR=$ROOT/target/packages
RELEASE_DIR=$ROOT/target/release

PACKAGES=(auks-rs slurm-spank-auks-rs)
# Binaries tolerated as missing by --dry-run only.
IN_PROGRESS_BINS=(auksdrenewer aukspriv)

MODE=build
DRY_RUN=0
NO_BUILD=0
DEBS=()

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --check-only) MODE=check ;;
        --dry-run) DRY_RUN=1 ;;
        --no-build) NO_BUILD=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "build-packages.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            [ "$MODE" = check ] || { echo "build-packages.sh: .deb arguments need --check-only" >&2; exit 2; }
            DEBS+=("$1")
            ;;
    esac
    shift
done
if [ "$MODE" = check ] && [ "$DRY_RUN" = 1 ]; then
    echo "build-packages.sh: --check-only and --dry-run exclude each other" >&2
    exit 2
fi

die() { printf 'build-packages.sh: error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

FAILS=0
WARNS=0
ok() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; FAILS=$((FAILS + 1)); }
warn() { printf '  WARN  %s\n' "$*"; WARNS=$((WARNS + 1)); }
skip() { printf '  skip  %s\n' "$*"; }
# check DESCRIPTION COMMAND...: ok if the command succeeds, FAIL otherwise.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

have dpkg-deb || die "dpkg-deb not found (package dpkg)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/auks-packages.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Versions and architecture
# ---------------------------------------------------------------------------

# Version of the [package] section of Cargo.toml; a pre-release "1.0.0-rc.1"
# becomes the Debian version "1.0.0~rc.1" (sorts before 1.0.0). Native
# package: no Debian revision, as in packaging/debian/changelog.
cargo_version() {
    awk '/^\[/ { sec = $0 } sec == "[package]" && /^version *=/ {
        gsub(/^version *= *"|".*$/, ""); print; exit }' "$ROOT/Cargo.toml"
}
VERSION=$(cargo_version | tr '-' '~')
[ -n "$VERSION" ] || die "cannot read the version from Cargo.toml"

host_arch() {
    if have dpkg; then dpkg --print-architecture; return; fi
    case "$(uname -m)" in
        x86_64) echo amd64 ;; aarch64) echo arm64 ;; ppc64le) echo ppc64el ;;
        *) die "unknown architecture $(uname -m)" ;;
    esac
}

multiarch_of() {
    local t
    if have dpkg-architecture && t=$(dpkg-architecture -a"$1" -qDEB_HOST_MULTIARCH 2>/dev/null) && [ -n "$t" ]; then
        echo "$t"
        return
    fi
    case "$1" in
        amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;;
        ppc64el) echo powerpc64le-linux-gnu ;; i386) echo i386-linux-gnu ;;
        *) die "no multiarch triplet known for $1" ;;
    esac
}

# Slurm's plugin directory on Debian (slurm-wlm): /usr/lib/<triplet>/slurm-wlm.
slurm_plugin_dir() { echo "/usr/lib/$(multiarch_of "$1")/slurm-wlm"; }

# "22.05" from SLURM_VERSION_NUMBER 0x160508 of the installed headers.
slurm_major_minor() {
    local hex
    hex=$(sed -n 's/^#define SLURM_VERSION_NUMBER 0x\([0-9a-fA-F]\{6\}\).*/\1/p' \
        /usr/include/slurm/slurm_version.h 2>/dev/null) || true
    [ -n "$hex" ] || return 1
    printf '%d %d\n' "0x${hex:0:2}" "0x${hex:2:2}"
}

# ---------------------------------------------------------------------------
# Package contents: one table used both to stage and to verify.
# Lines: package mode destination source (source relative to the repository;
# @name@ = a file generated by this script).
# ---------------------------------------------------------------------------

contents() {
    local plugdir
    plugdir=$(slurm_plugin_dir "$1")
    cat <<EOF
auks-rs 0755 /usr/bin/auks target/release/auks
auks-rs 0755 /usr/sbin/auksd target/release/auksd
auks-rs 0755 /usr/sbin/auksdrenewer target/release/auksdrenewer
auks-rs 0755 /usr/sbin/aukspriv target/release/aukspriv
auks-rs 0755 /usr/sbin/auks-gateway target/release/auks-gateway
auks-rs 0644 /lib/systemd/system/auksd.service packaging/systemd/auksd.service
auks-rs 0644 /lib/systemd/system/auksdrenewer.service packaging/systemd/auksdrenewer.service
auks-rs 0644 /lib/systemd/system/aukspriv.service packaging/systemd/aukspriv.service
auks-rs 0644 /usr/lib/sysusers.d/auks-rs.conf packaging/sysusers/auks-rs.conf
auks-rs 0644 /usr/share/man/man1/auks.1.gz @man:auks.1@
auks-rs 0644 /usr/share/man/man5/auks.conf.5.gz @man:auks.conf.5@
auks-rs 0644 /usr/share/man/man5/auks.acl.5.gz @man:auks.acl.5@
auks-rs 0644 /usr/share/man/man8/auksd.8.gz @man:auksd.8@
auks-rs 0644 /usr/share/man/man8/auksdrenewer.8.gz @man:auksdrenewer.8@
auks-rs 0644 /usr/share/man/man8/aukspriv.8.gz @man:aukspriv.8@
auks-rs 0644 /usr/share/bash-completion/completions/auks packaging/completions/auks.bash
auks-rs 0644 /usr/share/zsh/vendor-completions/_auks packaging/completions/_auks
auks-rs 0644 /usr/share/fish/vendor_completions.d/auks.fish packaging/completions/auks.fish
auks-rs 0644 /lib/systemd/system/auks-gateway.service packaging/systemd/auks-gateway.service
auks-rs 0644 /etc/auks/gateway.toml.example packaging/etc/gateway.toml.example
auks-rs 0644 /usr/share/doc/auks-rs/examples/gateway.toml.example packaging/etc/gateway.toml.example
auks-rs 0644 /etc/auks/auks.conf.example packaging/etc/auks.conf.example
auks-rs 0644 /etc/auks/auks.acl.example packaging/etc/auks.acl.example
auks-rs 0644 /etc/default/aukspriv packaging/etc/aukspriv.default
auks-rs 0644 /usr/share/doc/auks-rs/README.md packaging/README.md
auks-rs 0644 /usr/share/doc/auks-rs/copyright packaging/debian/copyright
auks-rs 0644 /usr/share/doc/auks-rs/changelog.gz @changelog.gz@
auks-rs 0644 /usr/share/doc/auks-rs/examples/auks.conf.example packaging/etc/auks.conf.example
auks-rs 0644 /usr/share/doc/auks-rs/examples/auks.acl.example packaging/etc/auks.acl.example
auks-rs 0644 /usr/share/doc/auks-rs/examples/aukspriv.default packaging/etc/aukspriv.default
slurm-spank-auks-rs 0644 $plugdir/auks.so target/release/libauks.so
slurm-spank-auks-rs 0644 /usr/lib/$(multiarch_of "$1")/security/pam_auks_adopt.so target/release/libpam_auks_adopt.so
slurm-spank-auks-rs 0644 /etc/slurm/plugstack.conf.d/auks.conf.example packaging/etc/plugstack-auks.conf.example
slurm-spank-auks-rs 0644 /usr/share/man/man8/auks.so.8.gz @man:auks.so.8@
slurm-spank-auks-rs 0644 /usr/share/doc/slurm-spank-auks-rs/copyright packaging/debian/copyright
slurm-spank-auks-rs 0644 /usr/share/doc/slurm-spank-auks-rs/changelog.gz @changelog.gz@
slurm-spank-auks-rs 0644 /usr/share/doc/slurm-spank-auks-rs/examples/plugstack-auks.conf.example packaging/etc/plugstack-auks.conf.example
slurm-spank-auks-rs 0644 /usr/share/doc/slurm-spank-auks-rs/examples/pam.d-sshd-auks-adopt.example packaging/etc/pam.d-sshd-auks-adopt.example
EOF
}

# The paragraph of package $1 in packaging/debian/control, without the fields
# this script computes itself.
control_fields() {
    awk -v pkg="$1" '
        BEGIN { RS = ""; FS = "\n" }
        $1 == "Package: " pkg {
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^[^ \t]/) drop = ($i ~ /^(Architecture|Depends):/)
                if (!drop) print $i
            }
        }' "$PKG_DIR/debian/control"
}
source_field() {
    awk -v f="$1" 'BEGIN { RS = ""; FS = "\n" } NR == 1 {
        for (i = 1; i <= NF; i++) if (index($i, f ": ") == 1) print $i }' "$PKG_DIR/debian/control"
}

# ---------------------------------------------------------------------------
# Maintainer scripts: packaging/debian/auks-rs.{postinst,postrm} with the
# #DEBHELPER# token replaced by the systemd handling debhelper would add.
# They honour $DPKG_ROOT (chrootless installation into another root).
# ---------------------------------------------------------------------------

UNITS="auksd.service auksdrenewer.service aukspriv.service auks-gateway.service"

snippet_postinst() {
    cat <<EOF
# (build-packages.sh) systemd: make the new or changed units known; on
# upgrade, restart the units that are running. Units are never enabled or
# started by the package: a credential vault needs its configuration first.
if [ "\$1" = "configure" ] && [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || true
    if [ -n "\$2" ]; then
        if command -v deb-systemd-invoke >/dev/null 2>&1; then
            deb-systemd-invoke try-restart $UNITS >/dev/null 2>&1 || true
        fi
    fi
fi
EOF
}
snippet_prerm() {
    cat <<EOF
#!/bin/sh
# prerm of auks-rs (generated by scripts/build-packages.sh)
set -e
# Stop the daemons when the package is removed (not on upgrade: postinst
# restarts the running ones).
if [ "\$1" = "remove" ] && [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        deb-systemd-invoke stop $UNITS >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
}
snippet_postrm() {
    cat <<EOF
# (build-packages.sh) systemd: forget the removed units.
if [ -z "\${DPKG_ROOT:-}" ]; then
    if [ "\$1" = "purge" ] && command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge $UNITS >/dev/null 2>&1 || true
    fi
    if [ "\$1" = "remove" ] || [ "\$1" = "purge" ]; then
        if [ -d /run/systemd/system ]; then
            systemctl --system daemon-reload >/dev/null 2>&1 || true
        fi
    fi
fi
EOF
}

# expand_script FILE SNIPPET_FUNCTION: FILE with #DEBHELPER# replaced.
expand_script() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        if [ "$line" = "#DEBHELPER#" ]; then "$2"; else printf '%s\n' "$line"; fi
    done <"$1"
}

# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------

# Runtime dependencies of the staged ELF files: dpkg-shlibdeps when dpkg-dev
# is installed, else a fixed list matching what the binaries link.
shlib_depends() {
    local dir=$TMP/shlibdeps out
    if have dpkg-shlibdeps; then
        rm -rf "$dir"
        mkdir -p "$dir/debian"
        printf 'Source: auks-rs\n\nPackage: %s\nArchitecture: any\n' "$1" >"$dir/debian/control"
        shift
        if out=$(cd "$dir" && dpkg-shlibdeps -O "$@" 2>"$dir/err"); then
            out=${out#shlibs:Depends=}
            [ -n "$out" ] && { echo "$out"; return; }
        fi
        echo "build-packages.sh: dpkg-shlibdeps failed, using a fixed Depends:" >&2
        sed 's/^/  /' "$dir/err" >&2
    fi
    echo "libc6 (>= 2.34), libgcc-s1 (>= 4.2), libkrb5-3 (>= 1.18)"
}

write_control() { # package stage extra-depends...
    local pkg=$1 stage=$2 deps size
    shift 2
    deps=$(printf '%s, ' "$@")
    deps=${deps%, }
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    {
        echo "Package: $pkg"
        echo "Source: auks-rs"
        echo "Version: $VERSION"
        echo "Architecture: $ARCH"
        source_field Maintainer
        echo "Installed-Size: $size"
        echo "Depends: $deps"
        source_field Section
        source_field Priority
        source_field Homepage
        control_fields "$pkg"
    } >"$stage/DEBIAN/control"
}

build_debs() {
    local out=$1 pkg mode dest src stage epoch bin missing=() f
    local -a skipped=()

    if [ "$NO_BUILD" = 0 ]; then
        have cargo || die "cargo not found"
        echo "==> cargo build --release"
        (cd "$ROOT" && cargo build --release)
    fi

    # Missing build outputs.
    for bin in auks auksd auksdrenewer aukspriv auks-gateway libauks.so libpam_auks_adopt.so; do
        [ -f "$RELEASE_DIR/$bin" ] || missing+=("$bin")
    done
    for bin in "${missing[@]}"; do
        if [ "$DRY_RUN" = 1 ] && [[ " ${IN_PROGRESS_BINS[*]} " == *" $bin "* ]]; then
            echo "build-packages.sh: --dry-run: target/release/$bin not built yet, left out" >&2
            skipped+=("$bin")
        else
            die "target/release/$bin is missing (cargo build --release did not produce it)"
        fi
    done
    SKIPPED_BINS=("${skipped[@]}")

    # Reproducible timestamps: the last commit, else the changelog entry.
    epoch=${SOURCE_DATE_EPOCH:-}
    if [ -z "$epoch" ]; then
        epoch=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || true)
    fi
    if [ -z "$epoch" ]; then
        epoch=$(date -d "$(sed -n 's/^ -- .*>  //p' "$PKG_DIR/debian/changelog" | head -1)" +%s)
    fi
    export SOURCE_DATE_EPOCH=$epoch

    gzip -9n -c "$PKG_DIR/debian/changelog" >"$TMP/changelog.gz"
    mkdir -p "$TMP/man"
    for f in "$PKG_DIR"/man/*.[158]; do
        gzip -9n -c "$f" >"$TMP/man/$(basename "$f").gz"
    done

    echo "==> staging (version $VERSION, $ARCH)"
    for pkg in "${PACKAGES[@]}"; do
        stage=$TMP/stage/$pkg
        rm -rf "$stage"
        mkdir -p "$stage/DEBIAN"
        while read -r p mode dest src; do
            [ "$p" = "$pkg" ] || continue
            if [ "${src#target/release/}" != "$src" ] && [[ " ${SKIPPED_BINS[*]} " == *" ${src#target/release/} "* ]]; then
                continue
            fi
            case "$src" in
                @changelog.gz@) src=$TMP/changelog.gz ;;
                @man:*@) src=${src#@man:}; src=$TMP/man/${src%@}.gz ;;
                *) src=$ROOT/$src ;;
            esac
            [ -f "$src" ] || die "missing source file $src"
            install -d -m 0755 "$stage$(dirname "$dest")"
            install -m "$mode" "$src" "$stage$dest"
        done < <(contents "$ARCH")
    done

    # Strip symbols as dh_strip would (copies only; target/ is untouched).
    if have strip; then
        for f in "$TMP"/stage/auks-rs/usr/bin/* "$TMP"/stage/auks-rs/usr/sbin/*; do
            strip --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
        done
        strip --strip-unneeded --remove-section=.comment --remove-section=.note \
            "$TMP/stage/slurm-spank-auks-rs$(slurm_plugin_dir "$ARCH")/auks.so"
    else
        echo "build-packages.sh: strip not found, binaries left unstripped" >&2
    fi

    # DEBIAN/ of auks-rs.
    stage=$TMP/stage/auks-rs
    local -a elf=()
    for f in "$stage"/usr/bin/* "$stage"/usr/sbin/*; do elf+=("$f"); done
    # adduser: postinst creates the auks account with it where
    # systemd-sysusers is missing.
    write_control auks-rs "$stage" "$(shlib_depends auks-rs "${elf[@]}")" adduser
    find "$stage/etc" -type f | sed "s|^$stage||" | LC_ALL=C sort >"$stage/DEBIAN/conffiles"
    expand_script "$PKG_DIR/debian/auks-rs.postinst" snippet_postinst >"$stage/DEBIAN/postinst"
    snippet_prerm >"$stage/DEBIAN/prerm"
    expand_script "$PKG_DIR/debian/auks-rs.postrm" snippet_postrm >"$stage/DEBIAN/postrm"
    chmod 0755 "$stage"/DEBIAN/postinst "$stage"/DEBIAN/prerm "$stage"/DEBIAN/postrm

    # DEBIAN/ of slurm-spank-auks-rs.
    stage=$TMP/stage/slurm-spank-auks-rs
    local mm major minor slurm_deps
    mm=$(slurm_major_minor) || die "/usr/include/slurm/slurm_version.h not found (install libslurm-dev)"
    read -r major minor <<<"$mm"
    slurm_deps="slurm-wlm-basic-plugins (>= $major.$(printf '%02d' "$minor")), slurm-wlm-basic-plugins (<< $major.$(printf '%02d' $((minor + 1))))"
    write_control slurm-spank-auks-rs "$stage" "auks-rs (= $VERSION)" \
        "$(shlib_depends slurm-spank-auks-rs "$stage$(slurm_plugin_dir "$ARCH")/auks.so" \
            "$stage/usr/lib/$(multiarch_of "$ARCH")/security/pam_auks_adopt.so")" "$slurm_deps"
    find "$stage/etc" -type f | sed "s|^$stage||" | LC_ALL=C sort >"$stage/DEBIAN/conffiles"

    echo "==> dpkg-deb --build"
    mkdir -p "$out"
    for pkg in "${PACKAGES[@]}"; do
        stage=$TMP/stage/$pkg
        find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
        rm -f "$out/${pkg}_"*.deb
        dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/${pkg}_${VERSION}_${ARCH}.deb" >/dev/null
        echo "    $out/${pkg}_${VERSION}_${ARCH}.deb"
        DEBS+=("$out/${pkg}_${VERSION}_${ARCH}.deb")
    done
}

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
    out=$(lintian --no-tag-display-limit "$@" 2>&1) || true
    if grep -q '^E: ' <<<"$out"; then
        fail "lintian reports errors:"
        grep '^E: ' <<<"$out" | sed 's/^/          /'
    else
        ok "lintian reports no error"
    fi
    grep '^W: ' <<<"$out" | while IFS= read -r l; do warn "lintian ${l#W: }"; done || true
}

verify_deb() {
    local deb=$1 pkg version arch dir listing expected actual f mode dest src st
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
            for f in usr/bin/auks usr/sbin/auksd; do
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
        local pam=$dir/root/usr/lib/$(multiarch_of "$arch")/security/pam_auks_adopt.so
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
        [[ "$deps" =~ ,\ $p[\ ,] ]] || return 1
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

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

ARCH=$(host_arch)
SKIPPED_BINS=()
CHECK_VERSION=1

changelog_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$PKG_DIR/debian/changelog")
if [ "$changelog_version" != "$VERSION" ]; then
    echo "build-packages.sh: warning: packaging/debian/changelog is at $changelog_version, Cargo.toml at $VERSION" >&2
fi

case "$MODE" in
    build)
        if [ "$DRY_RUN" = 1 ]; then
            build_debs "$TMP/out"
        else
            build_debs "$OUT_DIR"
        fi
        ;;
    check)
        if [ "${#DEBS[@]}" = 0 ]; then
            for pkg in "${PACKAGES[@]}"; do DEBS+=("$OUT_DIR/${pkg}_${VERSION}_${ARCH}.deb"); done
        else
            CHECK_VERSION=0
        fi
        ;;
esac

for deb in "${DEBS[@]}"; do
    verify_deb "$deb"
done
echo "==> lintian"
run_lintian "${DEBS[@]}"

if [ "${#DEBS[@]}" = 2 ] && [ "$(field "${DEBS[0]}" Package 2>/dev/null)" != "$(field "${DEBS[1]}" Package 2>/dev/null)" ]; then
    echo "==> install test"
    install_test "${DEBS[@]}"
else
    echo "==> install test"
    skip "install into a throwaway root (needs both packages)"
fi

echo
if [ "$FAILS" -gt 0 ]; then
    echo "build-packages.sh: $FAILS check(s) FAILED, $WARNS warning(s)"
    exit 1
fi
if [ "$DRY_RUN" = 1 ]; then
    echo "build-packages.sh: dry run passed ($WARNS warning(s)); nothing kept"
else
    echo "build-packages.sh: all checks passed ($WARNS warning(s)): ${DEBS[*]}"
fi
