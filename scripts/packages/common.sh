# shellcheck shell=bash
# Sourced by scripts/build-packages.sh: the check reporting helpers
# (ok/FAIL/WARN/skip, counted) and the facts of this host (version,
# architecture, multiarch triplet, Slurm plugin directory).

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
