#!/usr/bin/env bash
# Stops what deploy/local/up.sh started, by pid: services first (gateway before the
# services it calls), then the stores. SIGTERM, then SIGKILL after STOP_TIMEOUT seconds
# (default 15). Data in .data/ is kept; remove .data/ for a clean slate. Idempotent.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "$0")/lib.sh"

STOP_TIMEOUT="${STOP_TIMEOUT:-15}"

# signal_group SIG PID: up.sh starts everything with setsid, so PID leads its own
# process group; signal the group so no child outlives it, else just the process.
signal_group() {
	kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null || true
}

# stop NAME: SIGTERM, wait, SIGKILL; removes the pid file.
stop() {
	local name="$1" pid deadline
	pid="$(pid_of "$name")"
	if is_running "$name"; then
		log "stopping $name (pid $pid)"
		signal_group TERM "$pid"
		deadline=$((SECONDS + STOP_TIMEOUT))
		while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.2
		done
		if alive "$pid"; then
			log "$name did not exit in ${STOP_TIMEOUT}s; killing it"
			signal_group KILL "$pid"
		fi
	fi
	rm -f "$PIDS/$name.pid"
}

for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
	stop "${SERVICES[i]}"
done
stop redis
stop nats

# Postgres: a fast shutdown through pg_ctl (rolls back sessions, checkpoints); the
# pid-based stop is the fallback when pg_ctl cannot do it.
PGDATA="$(pg_datadir)"
if [ -x "$PG_BIN/pg_ctl" ] && [ -s "$PGDATA/postmaster.pid" ] &&
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
	log "stopping postgres"
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" stop -m fast -w -t "$STOP_TIMEOUT" >/dev/null ||
		log "pg_ctl stop failed; falling back to signals"
fi
stop postgres

log "stopped"
