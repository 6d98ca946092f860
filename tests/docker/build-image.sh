#!/usr/bin/env bash
# Build the NIM look-alike image the Docker tests run: a root filesystem
# with a nimdeck binary, the shared libraries it loads, a shell and a
# start-up script, imported into the daemon at $DOCKER_HOST with
# `docker import`. No registry and no base image are involved.
#
#   tests/docker/build-image.sh BIN [TAG]
#
# BIN is a nimdeck binary (build/nimdeck, or build-san/nimdeck with its
# sanitizer runtimes); TAG defaults to nvcr.io/nim/nimdeck/sim-llm:1.0, a
# name in NGC's NIM namespace, so nimdeck treats the image as a NIM (it
# needs NGC_API_KEY) while `docker.pull: "missing"` finds it present.
#
# A container starts like a NIM: /opt/nim/start.sh prints a banner, then
# runs its command, by default `nimdeck sim`, which listens on
# $NIM_SERVER_PORT and prints NIM's start-up lines. A configuration's
# "command" replaces the default, and `sh -c '...'` works in it (busybox).
set -euo pipefail

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: tests/docker/build-image.sh BIN [TAG]" >&2
    exit 2
fi
bin=$1
tag=${2:-nvcr.io/nim/nimdeck/sim-llm:1.0}

if [ ! -x "$bin" ]; then
    echo "build-image.sh: $bin is not an executable; build it first (make all)" >&2
    exit 1
fi
if [ -z "${DOCKER_HOST:-}" ]; then
    echo "build-image.sh: DOCKER_HOST is not set; start a daemon with scripts/dockerd.sh start DIR" >&2
    exit 1
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
    echo "build-image.sh: busybox not found; install it with 'scripts/deps.sh --test' (package busybox-static)" >&2
    exit 1
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/nimdeck-image-XXXXXX")
trap 'rm -rf "$root"' EXIT

# Copy a file to the same path under the root, following symbolic links,
# so the dynamic loader finds each library where ldd found it.
copy_in() {
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}

# The libraries of a dynamically linked program, the loader included. For
# a static program ldd fails and lists nothing.
copy_libraries() {
    local libs lib
    libs=$(ldd "$1" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' || true)
    for lib in $libs; do
        copy_in "$lib"
    done
}

mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/tmp" "$root/root" \
    "$root/opt/nim/.cache"
chmod 1777 "$root/tmp"

install -m 0755 "$bin" "$root/usr/local/bin/nimdeck"
copy_libraries "$bin"
install -m 0755 "$busybox" "$root/bin/busybox"
copy_libraries "$busybox"
ln -s busybox "$root/bin/sh"

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP

cat >"$root/opt/nim/start.sh" <<'START'
#!/bin/sh
# Start-up banner in the shape of a NIM container's, then the command.
echo "============================================"
echo "== nimdeck NIM simulator image (no model) =="
echo "============================================"
echo "NIM version: 1.0 (simulated)"
exec "$@"
START
chmod 0755 "$root/opt/nim/start.sh"

tar -C "$root" -c . | docker import \
    --change 'ENTRYPOINT ["/opt/nim/start.sh"]' \
    --change 'CMD ["nimdeck", "sim", "--load-seconds", "1"]' \
    --change 'ENV PATH=/usr/local/bin:/bin' \
    --change 'ENV NIM_CACHE_PATH=/opt/nim/.cache' \
    --change 'WORKDIR /' \
    --message "nimdeck test image from $(basename "$bin")" \
    - "$tag" >/dev/null
echo "$tag"
