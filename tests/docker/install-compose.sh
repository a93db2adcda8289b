#!/usr/bin/env bash
# Installs Docker Compose v2 (`docker compose`) for the compose test where the machine has only
# Debian bookworm's docker-compose 1.29 (no `up --wait`, no top-level `name:`). Debian trixie's
# docker-compose package carries the v2 plugin (a Go binary needing only libc 2.34+): it is
# downloaded with apt from a source list of its own (the system's sources are left as they are)
# and unpacked into /usr/local/lib/docker/cli-plugins, where the docker client looks for plugins.
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt downloads as its own user, _apt
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb http://deb.debian.org/debian trixie main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
  -o APT::Get::List-Cleanup=0)
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" download -qq docker-compose/trixie)
dpkg-deb -x "$work"/docker-compose_*.deb "$work/root"
install -D -m 755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" \
  /usr/local/lib/docker/cli-plugins/docker-compose
docker compose version
