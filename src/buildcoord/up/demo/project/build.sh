#!/usr/bin/env bash
# Build greet: test it, then package it as a reproducible .tar.gz and (where dpkg-deb is
# installed) a .deb in $BUILDCOORD_ARTIFACTS_DIR (default: dist/). The same commit and the
# same SOURCE_DATE_EPOCH give byte-identical artifacts on every machine.
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

out=${BUILDCOORD_ARTIFACTS_DIR:-$PWD/dist}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH=$epoch
version=$(cat VERSION)
pause=${DEMO_STEP_SECONDS:-1}  # the steps take a moment so that a live view shows them run

# Add a structured event to the job's log when run by a buildcoord agent; skip otherwise.
event() {
    local level=$1
    shift
    if [[ -n ${BUILDCOORD_JOB_ID:-} ]] && command -v buildcoord >/dev/null 2>&1; then
        buildcoord log event --level "$level" "$*" >/dev/null 2>&1 \
            || echo "(could not add the event to the job log)"
    fi
}

step() {
    echo "==> $*"
    sleep "$pause"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

echo "greet $version, commit ${BUILDCOORD_COMMIT:-unknown}, SOURCE_DATE_EPOCH=$epoch"
event info "building greet $version"

step "compiling greet"
tree=$work/greet-$version
mkdir -p "$tree/bin" "$tree/share/doc/greet"
sed "s/@VERSION@/$version/g" src/greet.sh >"$tree/bin/greet"
chmod 0755 "$tree/bin/greet"
cp README.md "$tree/share/doc/greet/README.md"
chmod 0644 "$tree/share/doc/greet/README.md"

step "testing"
sh tests/test_greet.sh "$tree/bin/greet"

step "packaging greet-$version.tar.gz"
tar --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -C "$work" -cf - "greet-$version" | gzip -9 -n >"$out/greet-$version.tar.gz"

dpkg_help=$(dpkg-deb --help 2>/dev/null || true)
if [[ $dpkg_help == *--root-owner-group* ]]; then
    step "packaging greet_${version}_all.deb"
    root=$work/deb
    mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/doc/greet"
    cp "$tree/bin/greet" "$root/usr/bin/greet"
    cp "$tree/share/doc/greet/README.md" "$root/usr/share/doc/greet/README.md"
    cat >"$root/DEBIAN/control" <<CONTROL
Package: greet
Version: $version
Architecture: all
Maintainer: buildcoord demo <demo@buildcoord.invalid>
Section: utils
Priority: optional
Description: say hello (the buildcoord demo project)
 A tiny package built by buildcoord's demo to show reproducible builds.
CONTROL
    # dpkg-deb clamps mtimes to SOURCE_DATE_EPOCH; setting them makes that explicit.
    find "$root" -exec touch -h -d "@$epoch" {} +
    dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/greet_${version}_all.deb"
else
    echo "(no dpkg-deb with --root-owner-group here: no .deb)"
    event warning "no dpkg-deb with --root-owner-group: built no .deb"
fi

echo "artifacts:"
(cd "$out" && sha256sum -- *)
event success "greet $version packaged"
