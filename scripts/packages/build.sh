# shellcheck shell=bash
# Sourced by scripts/build-packages.sh: staging and building the .debs.

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
    echo "libc6 (>= 2.34), libgcc-s1 (>= 4.2)"
}

# libkrb5 is loaded by its soname on first use, not linked: named by hand.
KRB5_DEP="libkrb5-3 (>= 1.18)"

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

# DEBIAN/md5sums as dh_md5sums writes it: every file but the conffiles
# (dpkg keeps their sums itself), paths relative to the root.
write_md5sums() {
    local stage=$1
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' |
        { grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles) || true; } | LC_ALL=C sort |
        xargs -r -d '\n' md5sum) >"$stage/DEBIAN/md5sums"
    chmod 0644 "$stage/DEBIAN/md5sums"
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
    for bin in auks auksd auksdrenewer aukspriv auks-gateway auksd-etcd libauks.so libpam_auks_adopt.so; do
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
            "$TMP/stage/slurm-spank-auks-rs$(slurm_plugin_dir "$ARCH")/auks.so" \
            "$TMP/stage/slurm-spank-auks-rs/usr/lib/$(multiarch_of "$ARCH")/security/pam_auks_adopt.so"
    else
        echo "build-packages.sh: strip not found, binaries left unstripped" >&2
    fi

    # DEBIAN/ of auks-rs.
    stage=$TMP/stage/auks-rs
    local -a elf=()
    for f in "$stage"/usr/bin/* "$stage"/usr/sbin/*; do elf+=("$f"); done
    # adduser: postinst creates the auks account with it where
    # systemd-sysusers is missing. libkrb5-3: opened with dlopen on first
    # use (src/krb5/ffi.rs), so dpkg-shlibdeps cannot see it.
    write_control auks-rs "$stage" "$(shlib_depends auks-rs "${elf[@]}")" adduser "$KRB5_DEP"
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
    write_control slurm-spank-auks-rs "$stage" "auks-rs (= $VERSION)" "$KRB5_DEP" \
        "$(shlib_depends slurm-spank-auks-rs "$stage$(slurm_plugin_dir "$ARCH")/auks.so" \
            "$stage/usr/lib/$(multiarch_of "$ARCH")/security/pam_auks_adopt.so")" "$slurm_deps"
    find "$stage/etc" -type f | sed "s|^$stage||" | LC_ALL=C sort >"$stage/DEBIAN/conffiles"

    echo "==> dpkg-deb --build"
    mkdir -p "$out"
    for pkg in "${PACKAGES[@]}"; do
        stage=$TMP/stage/$pkg
        write_md5sums "$stage"
        find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
        rm -f "$out/${pkg}_"*.deb
        dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/${pkg}_${VERSION}_${ARCH}.deb" >/dev/null
        echo "    $out/${pkg}_${VERSION}_${ARCH}.deb"
        DEBS+=("$out/${pkg}_${VERSION}_${ARCH}.deb")
    done
}
