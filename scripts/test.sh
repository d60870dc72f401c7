#!/usr/bin/env bash
# Runs every test of auks-rs: formatting, lints, unit tests, integration tests
# against a real MIT KDC and a real auksd, and the Slurm cluster suites.
# Needs root: it installs Debian packages, creates test accounts and starts a
# throw-away KDC, munge, slurmctld and slurmd on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh must run as root (test accounts, KDC, Slurm daemons)" >&2
    exit 1
fi
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "installing packages (if missing)"
bash scripts/deps.sh
bash scripts/traversable.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo build"
cargo build --all-targets

step "fuzz target compiles (cargo check; running it needs nightly + cargo-fuzz)"
cargo check --manifest-path fuzz/Cargo.toml

step "cargo test (unit tests + real KDC/auksd integration tests)"
cargo test --all-targets

step "Slurm cluster: SPANK plugin suite"
bash scripts/slurm-tests.sh

step "Slurm cluster, three nodes: multi-node jobs, renewer hygiene, KRB5CCNAME probing, root's ccache"
bash scripts/multinode-tests.sh

step "Slurm cluster: renewal suite (one-minute tickets)"
bash scripts/renewal-slurm-test.sh

step "Slurm cluster + sshd: pam_auks_adopt suite (ssh into a job's node)"
bash scripts/pam-tests.sh

step "packages: build the .debs and check their contents"
bash scripts/build-packages.sh

step "Slurm cluster: auks-gateway suite (slurmrestd, Slurm JWT, HTTPS)"
bash scripts/gateway-tests.sh
