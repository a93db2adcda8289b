#!/usr/bin/env bash
# Stand-ins for the public images that deploy/Dockerfile and deploy/docker-compose.yml name, made
# on this machine from Debian's packages, because no image registry can be reached here: nothing
# can be pulled. Used by tests/tests/compose.rs (the stack on a Docker engine); never committed
# as images, and never pushed anywhere.
#
#   debian:bookworm-slim        debootstrap --variant=minbase bookworm, imported
#   rust:<v>-slim-bookworm      that base + gcc, libc6-dev + this machine's own Rust toolchain
#                               (it must be the version the Dockerfile names), trusting the
#                               machine's own extra CA certificates (/usr/local/share/
#                               ca-certificates: a network whose proxy re-signs TLS), so cargo
#                               fetches crates inside the build as it does on the host
#   postgres:<v>-bookworm       that base + Debian's postgresql-<v>, with an entrypoint that
#                               reads POSTGRES_USER/_PASSWORD/_DB like the official image's
#   prom/prometheus:<v>         that base + Debian's prometheus package (2.42)
#   saleboard-ci/otlp-receiver  that base + the tests' OTLP receiver (tests/src/bin), standing
#                               in for the OpenTelemetry collector and Jaeger (see
#                               tests/docker/compose.standins.yml)
#
# Every image is kept by tag between runs and made again only when it no longer fits: the base
# when its recipe's version below changes; the Rust image when the machine's toolchain or CA
# certificates differ from the ones it carries (it is the build stage's base, so keeping it
# keeps the Dockerfile's build cache); the others when their directory here or the base
# changed (a digest kept as a label). The debootstrap tarball is cached in $SALEBOARD_CI_CACHE
# (default /var/cache/saleboard-ci).
#
# Usage: tests/docker/standins.sh OTLP_RECEIVER_BINARY
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SALEBOARD_CI_CACHE:-/var/cache/saleboard-ci}"
otlp_bin="${1:?usage: standins.sh OTLP_RECEIVER_BINARY}"
mkdir -p "$cache"

say() { echo "standins: $*" >&2; }

# The digest of a recipe: the files of a directory (names and contents) and some words.
recipe() { # directory, words...
  local dir="$1"; shift
  { (cd "$dir" && for f in *; do echo "$f"; cat "$f"; done); printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}
label_of() { docker image inspect -f '{{ index .Config.Labels "saleboard.standin.recipe" }}' "$1" 2>/dev/null || true; }
current() { [ "$(label_of "$1")" = "$2" ]; }
# The id of the image under a tag, to remove it once a new one has taken the tag.
id_of() { docker image inspect -f '{{ .Id }}' "$1" 2>/dev/null || true; }
drop_old() { # old id, tag: remove the old image when nothing else names it
  if [ -n "$1" ] && [ "$1" != "$(id_of "$2")" ]; then docker rmi "$1" >/dev/null 2>&1 || true; fi
}

# The image names, read from the files users run (so a version bump there is followed here).
compose="$repo/deploy/docker-compose.yml"
dockerfile="$repo/deploy/Dockerfile"
image_of() { # first `image:` of a compose service
  awk -v svc="  $1:" '$0 == svc {found=1; next} found && /^    image:/ {print $2; exit}' "$compose"
}
rust_version="$(sed -n 's/^ARG RUST_VERSION=//p' "$dockerfile")"
rust_from="$(sed -n 's/^FROM \(rust:[^ ]*\) AS chef$/\1/p' "$dockerfile")"
rust_tag="${rust_from//\$\{RUST_VERSION\}/$rust_version}"
runtime_tag="$(sed -n 's/^FROM \(debian:[^ ]*\) AS runtime$/\1/p' "$dockerfile")"
postgres_tag="$(image_of postgres)"
prometheus_tag="$(image_of prometheus)"
otlp_tag="saleboard-ci/otlp-receiver:local"
for v in rust_tag runtime_tag postgres_tag prometheus_tag; do
  [ -n "${!v}" ] || { say "cannot read $v from deploy/"; exit 1; }
done

# --- debian:bookworm-slim from debootstrap.
base="$runtime_tag"
base_recipe="debootstrap-bookworm-minbase-v1"
if ! current "$base" "$base_recipe"; then
  tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
    root="$(mktemp -d "$cache/rootfs.XXXXXX")"
    say "debootstrap bookworm (minbase) into $root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  say "importing $base"
  old="$(id_of "$base")"
  docker import --change 'CMD ["bash"]' --change "LABEL saleboard.standin.recipe=$base_recipe" \
    "$tarball" "$base" >/dev/null
  drop_old "$old" "$base"
fi

# --- rust:<v>-slim-bookworm: the base, a C toolchain, and this machine's Rust toolchain.
host_rustc="$(rustc --version | awk '{print $2}')"
case "$host_rustc" in
  "$rust_version" | "$rust_version".*) ;;
  *) say "the Dockerfile builds with Rust $rust_version; this machine has $host_rustc"; exit 1 ;;
esac
sysroot="$(rustc --print sysroot)"
extra_cas=(/usr/local/share/ca-certificates)
cas_digest() { cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-16; }
rust_current() {
  docker image inspect -f '{{ range .Config.Env }}{{ println . }}{{ end }}' "$rust_tag" 2>/dev/null \
    | grep -qx "RUST_VERSION=$host_rustc" || return 1
  [ "$(docker run --rm --entrypoint sh "$rust_tag" -c 'cat /usr/local/share/ca-certificates/*.crt 2>/dev/null' \
    | sha256sum | cut -c1-16)" = "$(cas_digest)" ]
}
if ! rust_current; then
  say "making $rust_tag from $sysroot"
  old="$(id_of "$rust_tag")"
  name="saleboard-standin-rust-$$"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run --name "$name" -v "$sysroot:/mnt/toolchain:ro" -v "${extra_cas[0]}:/mnt/cas:ro" "$base" bash -euc '
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates gcc libc6-dev >/dev/null
    rm -rf /var/lib/apt/lists/*
    cp -a /mnt/cas/. /usr/local/share/ca-certificates/ && update-ca-certificates >/dev/null
    mkdir -p /usr/local/rustup/toolchain /usr/local/cargo/bin
    cp -a /mnt/toolchain/bin /mnt/toolchain/lib /mnt/toolchain/libexec /mnt/toolchain/etc /usr/local/rustup/toolchain/
    for b in cargo rustc rustdoc; do ln -s /usr/local/rustup/toolchain/bin/$b /usr/local/cargo/bin/$b; done
    PATH=/usr/local/cargo/bin:$PATH; cargo --version && rustc --version' >&2
  docker commit \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$host_rustc" \
    --change 'CMD ["bash"]' \
    "$name" "$rust_tag" >/dev/null
  docker rm "$name" >/dev/null
  drop_old "$old" "$rust_tag"
fi

# --- The services' stand-ins, each from a small Dockerfile beside this script.
build_standin() { # tag, directory, extra build args...
  local tag="$1" dir="$2"; shift 2
  local r
  r="$(recipe "$dir" "$@" "$(id_of "$base")")"
  if ! current "$tag" "$r"; then
    say "making $tag"
    local old
    old="$(id_of "$tag")"
    docker build -q --label "saleboard.standin.recipe=$r" --build-arg "BASE=$base" "$@" -t "$tag" "$dir" >/dev/null
    drop_old "$old" "$tag"
  fi
}
pg_major="$(echo "$postgres_tag" | sed -n 's/^postgres:\([0-9]*\).*/\1/p')"
build_standin "$postgres_tag" "$here/postgres" --build-arg "PG_MAJOR=$pg_major"
build_standin "$prometheus_tag" "$here/prometheus"

# The receiver's binary is built on this machine (Debian bookworm, like the base) by cargo.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/otlp/Dockerfile" "$ctx/"
cp "$otlp_bin" "$ctx/otlp-receiver"
otlp_recipe="$(recipe "$ctx" "$(id_of "$base")")"
if ! current "$otlp_tag" "$otlp_recipe"; then
  say "making $otlp_tag"
  old="$(id_of "$otlp_tag")"
  docker build -q --label "saleboard.standin.recipe=$otlp_recipe" --build-arg "BASE=$base" -t "$otlp_tag" "$ctx" >/dev/null
  drop_old "$old" "$otlp_tag"
fi
say "ready: $base $rust_tag $postgres_tag $prometheus_tag $otlp_tag"
