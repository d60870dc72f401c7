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
#   auks-rs              auks in /usr/bin; auksd, auksdrenewer, aukspriv,
#                        auks-gateway, auksd-etcd in /usr/sbin; systemd
#                        units in /lib/systemd/system; the sysusers.d
#                        entries of the `auks` and `auks-gateway` accounts;
#                        /etc/auks/*.example, /etc/default/aukspriv; man
#                        pages; bash, zsh and fish completions; docs.
#   slurm-spank-auks-rs  the SPANK plugin as <Slurm PluginDir>/auks.so and
#                        its man page auks.so(8); the PAM module as
#                        /usr/lib/<triplet>/security/pam_auks_adopt.so.
# No keytab, auks.conf or auks.acl is ever shipped; postinst creates the
# system accounts `auks` and `auks-gateway` and /var/cache/auks (0700, owned
# by auks). Every program has its man page.
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

# The pieces, in dependency order (each file starts with what it holds).
PKG_LIB=$ROOT/scripts/packages
for part in common contents maintscripts build checks verify; do
    # shellcheck source=/dev/null
    . "$PKG_LIB/$part.sh"
done


TMP=$(mktemp -d "${TMPDIR:-/tmp}/auks-packages.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

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
