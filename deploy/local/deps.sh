#!/usr/bin/env bash
# Installs what the local stack needs on a Debian machine, only what is missing:
# redis-server and postgresql (apt), curl (apt, for readiness probes) and
# nats-server (go install into $REPO/.bin). A fast no-op when all is present.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "$0")/lib.sh"

NATS_VERSION="${NATS_VERSION:-v2.12.15}"

apt_pkgs=()
command -v redis-server >/dev/null 2>&1 || apt_pkgs+=(redis-server)
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || apt_pkgs+=(postgresql)
command -v curl >/dev/null 2>&1 || apt_pkgs+=(curl)

if [ "${#apt_pkgs[@]}" -gt 0 ]; then
	log "installing with apt: ${apt_pkgs[*]}"
	sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	# The Debian packages start their own instances via systemd/init where one runs;
	# we never use those, we run our own on our own ports.
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
	# On a machine run by systemd, the packages just installed start the distro's
	# redis and postgres on 6379 and 5432, which are the stack's default ports. We
	# run our own; stop and disable those (only the ones we installed right now).
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		units=()
		for p in "${apt_pkgs[@]}"; do
			case "$p" in redis-server) units+=(redis-server) ;; postgresql) units+=(postgresql) ;; esac
		done
		[ "${#units[@]}" -eq 0 ] || "${sudo[@]}" systemctl disable --now "${units[@]}" >/dev/null 2>&1 || true
	fi
fi

if [ ! -x "$PG_BIN/postgres" ]; then
	# apt may have brought a major version other than the one lib.sh looked for.
	alt="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
	if [ ! -x "$alt/postgres" ]; then
		die "postgres binaries not found under /usr/lib/postgresql/*/bin"
	fi
fi

if [ ! -x "$BIN/nats-server" ]; then
	log "installing nats-server $NATS_VERSION into $BIN"
	mkdir -p "$BIN"
	# GOWORK=off: the install must not depend on the state of this repo's workspace.
	(cd "$REPO" && GOWORK=off GOBIN="$BIN" go install "github.com/nats-io/nats-server/v2@$NATS_VERSION")
fi
