#!/usr/bin/env bash
# The tests and the demo run programs of this checkout as unprivileged users
# (auks as a test user; srun loading target/*/libauks.so; the plugin's
# renewer). They need search permission on every directory above the
# checkout. Grant o+x (search only, not read) where it is missing, and say so.
set -euo pipefail
d=$(cd "$(dirname "$0")/.." && pwd)
while [ "$d" != / ]; do
    if [ "$(( 0$(stat -c %a "$d") & 01 ))" -eq 0 ]; then
        echo "traversable: adding o+x to $d so test users can reach the build" >&2
        chmod o+x "$d"
    fi
    d=$(dirname "$d")
done
