# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this
# Shared settings and helpers for deploy/local/{deps,up,down}.sh. Sourced, not executed.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$REPO/.bin"
DATA="$REPO/.data"
LOGS="$DATA/logs"
PIDS="$DATA/pids"

# Postgres 15 is what Debian 12 ships; any other major version apt left behind works too.
if [ -z "${PG_BIN:-}" ]; then
	PG_BIN=/usr/lib/postgresql/15/bin
	if [ ! -x "$PG_BIN/postgres" ]; then
		newest="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
		[ ! -x "$newest/postgres" ] || PG_BIN="$newest"
	fi
fi
BIND="${BIND:-127.0.0.1}"

NATS_PORT="${NATS_PORT:-4222}"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
GATEWAY_PORT="${GATEWAY_PORT:-4000}"
BUDGET_PORT="${BUDGET_PORT:-4010}"
LEDGER_PORT="${LEDGER_PORT:-4020}"
PRICING_PORT="${PRICING_PORT:-4030}"

SERVICES=(pricing ledger budget gateway) # start order; stopped in reverse

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# as_pg runs a command as the postgres OS user: postgres refuses to run as root.
# When we are not root we already are an unprivileged user and run it directly.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pg_datadir prints the postgres data directory. It is .data/postgres unless the
# postgres user cannot reach it (e.g. the repo lives under a 0700 home), in which
# case up.sh chose another place and recorded it in .data/pgdata.path.
pg_datadir() {
	if [ -f "$DATA/pgdata.path" ]; then
		cat "$DATA/pgdata.path"
	else
		echo "$DATA/postgres"
	fi
}

# pid_of NAME prints the recorded pid of NAME, or nothing.
pid_of() {
	local f="$PIDS/$1.pid"
	[ -s "$f" ] && tr -dc '0-9' <"$f"
	return 0
}

# alive PID: the process exists and is not a zombie. Processes up.sh started are
# re-parented to init once up.sh exits, and init may reap them late; a zombie
# still answers kill -0.
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }" # the state letter follows "(comm) "
	[ "${stat%% *}" != Z ]
}

# is_running NAME: the pid file names a live process whose command line still
# mentions NAME (guards against a recycled pid after a reboot).
is_running() {
	local name="$1" pid
	pid="$(pid_of "$name")"
	[ -n "$pid" ] || return 1
	alive "$pid" || return 1
	# postgres' command line is "postgres -D ..."; everything else is its own binary name.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

# http_status URL prints the HTTP status code of GET URL (000 when unreachable).
http_status() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# tcp_open PORT: something accepts connections on 127.0.0.1:PORT.
tcp_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
