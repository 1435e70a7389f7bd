#!/usr/bin/env bash
# Starts the whole stack on this machine, no containers: NATS (JetStream), Postgres,
# Redis and the four services, all on 127.0.0.1. State lives in the git-ignored .data/
# (logs in .data/logs, pids in .data/pids). Running it again starts only what is not
# already running. Stop everything with deploy/local/down.sh.
#
# Env: CONFIG (gateway config, default deploy/local/demo.yaml), NATS_PORT PG_PORT
# REDIS_PORT GATEWAY_PORT BUDGET_PORT LEDGER_PORT PRICING_PORT, LOG_LEVEL, PG_BIN,
# READY_TIMEOUT (seconds, default 60), SKIP_BUILD=1 (use the binaries already in .bin/).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
. "$(dirname "$0")/lib.sh"

LOG_LEVEL="${LOG_LEVEL:-info}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
PG_DB=spendledger
PG_ROLE=spendledger

# CONFIG may be relative to the caller's directory or to the repo root.
CONFIG="${CONFIG:-deploy/local/demo.yaml}"
if [ -f "$CONFIG" ]; then
	CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"
elif [ -f "$REPO/$CONFIG" ]; then
	CONFIG="$REPO/$CONFIG"
else
	die "gateway config not found: $CONFIG (set CONFIG=path/to/config.yaml)"
fi

NATS_URL="nats://127.0.0.1:$NATS_PORT"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
DATABASE_URL="postgres://$PG_ROLE@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"

"$REPO/deploy/local/deps.sh"

if [ "${SKIP_BUILD:-}" = 1 ]; then
	log "SKIP_BUILD=1: using the service binaries already in .bin/"
else
	log "building services into .bin/"
	# One go invocation builds the four mains in parallel; -o DIR/ names each binary after its package.
	pkgs=()
	for svc in "${SERVICES[@]}"; do pkgs+=("./services/$svc"); done
	(cd "$REPO" && go build -o "$BIN/" "${pkgs[@]}")
fi

mkdir -p "$LOGS" "$PIDS" "$DATA/nats" "$DATA/redis" "$DATA/spool"
# The postgres user must be able to traverse .data to reach its cluster.
chmod 0755 "$DATA"

# tail_log NAME prints the end of NAME's log, for failure messages.
tail_log() {
	local f="$LOGS/$1.log"
	[ -e "$f" ] || return 0
	echo "----- last 40 lines of $f -----" >&2
	tail -n 40 "$f" >&2 || true
	echo "-----" >&2
}

# port_free NAME PORT: fail early, and clearly, when something else holds PORT.
port_free() {
	if tcp_open "$2"; then
		die "cannot start $1: 127.0.0.1:$2 is already in use by another process (pick another port: $(echo "$1" | tr '[:lower:]' '[:upper:]')_PORT=...)"
	fi
}

# start_bg NAME PORT CMD...: starts CMD in the background in its own session (so a
# Ctrl-C on the terminal that ran `make up` does not reach it, and down.sh can signal
# its whole process group), logging to .data/logs/NAME.log. Skips a running NAME.
start_bg() {
	local name="$1" port="$2"
	shift 2
	if is_running "$name"; then
		log "$name already running (pid $(pid_of "$name"); down.sh then up.sh restarts it)"
		return 0
	fi
	port_free "$name" "$port"
	log "starting $name"
	echo "=== $(date -u +%FT%TZ) up.sh: starting $*" >>"$LOGS/$name.log"
	# setsid execs in place (a background job is not a group leader), so $! is the pid of CMD.
	setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$PIDS/$name.pid"
}

# wait_for NAME DESCRIPTION CHECK...: polls CHECK until it succeeds, NAME dies or the
# deadline passes; on failure prints NAME's log tail and exits.
wait_for() {
	local name="$1" what="$2"
	shift 2
	local deadline=$((SECONDS + READY_TIMEOUT))
	until "$@"; do
		# Not is_running: right after the fork the child's command line is still up.sh's.
		if ! alive "$(pid_of "$name")"; then
			tail_log "$name"
			die "$name exited before it was ready ($what)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail_log "$name"
			die "$name not ready after ${READY_TIMEOUT}s ($what)"
		fi
		sleep 0.2
	done
}

readyz_ok() { [ "$(http_status "http://127.0.0.1:$1/readyz")" = 200 ]; }

# ---------------------------------------------------------------- NATS
start_bg nats "$NATS_PORT" "$BIN/nats-server" -js -sd "$DATA/nats" -p "$NATS_PORT" -a 127.0.0.1
wait_for nats "port $NATS_PORT" tcp_open "$NATS_PORT"

# ---------------------------------------------------------------- Redis
start_bg redis "$REDIS_PORT" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
	--appendonly yes --dir "$DATA/redis" --daemonize no
wait_for redis "port $REDIS_PORT" tcp_open "$REDIS_PORT"

# ---------------------------------------------------------------- Postgres
# The cluster lives in .data/postgres unless the postgres user cannot reach .data
# (e.g. the checkout sits under a 0700 home directory); then it goes under /var/tmp
# and .data/pgdata.path records where.
if [ "$(id -u)" = 0 ] && [ ! -f "$DATA/pgdata.path" ] && ! runuser -u postgres -- test -x "$DATA"; then
	alt="/var/tmp/spendledger-$(printf '%s' "$REPO" | md5sum | cut -c1-8)/postgres"
	log "postgres user cannot reach $DATA; using $alt"
	echo "$alt" >"$DATA/pgdata.path"
fi
PGDATA="$(pg_datadir)"
PGHOME="$(dirname "$PGDATA")"
PGSOCK="$PGHOME/pgsock" # unix socket dir; listen_addresses keeps TCP on loopback
if [ "$PGHOME" = "$DATA" ]; then
	PGLOG="$LOGS/postgres.log"
else
	PGLOG="$PGHOME/postgres.log"
	ln -sfn "$PGLOG" "$LOGS/postgres.log"
fi
mkdir -p "$PGDATA" "$PGSOCK"
touch "$PGLOG"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$PGDATA" "$PGSOCK" "$PGLOG"
	chmod 0755 "$PGHOME"
fi
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	log "initializing postgres cluster in $PGDATA"
	# trust auth: the server only listens on 127.0.0.1 and a private socket dir.
	as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >>"$PGLOG" 2>&1 ||
		{ tail_log postgres; die "initdb failed"; }
fi

if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
	log "postgres already running"
else
	port_free pg "$PG_PORT"
	log "starting postgres"
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t "$READY_TIMEOUT" \
		-o "-p $PG_PORT -k $PGSOCK -c listen_addresses=127.0.0.1" start >/dev/null ||
		{ tail_log postgres; die "postgres did not start"; }
fi
head -n 1 "$PGDATA/postmaster.pid" >"$PIDS/postgres.pid"

psql_admin() {
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tA "$@"
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'")" != 1 ]; then
	psql_admin -c "CREATE ROLE $PG_ROLE LOGIN"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
	psql_admin -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
fi

# ---------------------------------------------------------------- services
common=(--nats-url "$NATS_URL" --log-level "$LOG_LEVEL")
stores=(--database-url "$DATABASE_URL" --redis-url "$REDIS_URL")

start_bg pricing "$PRICING_PORT" "$BIN/pricing" --http-addr "$BIND:$PRICING_PORT" "${common[@]}"
start_bg ledger "$LEDGER_PORT" "$BIN/ledger" --http-addr "$BIND:$LEDGER_PORT" "${common[@]}" "${stores[@]}"
start_bg budget "$BUDGET_PORT" "$BIN/budget" --http-addr "$BIND:$BUDGET_PORT" "${common[@]}" "${stores[@]}"
start_bg gateway "$GATEWAY_PORT" "$BIN/gateway" --http-addr "$BIND:$GATEWAY_PORT" "${common[@]}" \
	--budget-url "http://127.0.0.1:$BUDGET_PORT" --ledger-url "http://127.0.0.1:$LEDGER_PORT" \
	--config "$CONFIG" --spool-dir "$DATA/spool"

for svc in "${SERVICES[@]}"; do
	port_var="$(echo "$svc" | tr '[:lower:]' '[:upper:]')_PORT"
	wait_for "$svc" "GET /readyz on port ${!port_var}" readyz_ok "${!port_var}"
	log "$svc ready on http://127.0.0.1:${!port_var}"
done

# ---------------------------------------------------------------- summary
# master_key from general_settings; "os.environ/NAME" means: the value of $NAME.
master_key="$(sed -n '/^general_settings:/,/^[^[:space:]#]/p' "$CONFIG" |
	sed -n 's/^[[:space:]]\{1,\}master_key:[[:space:]]*//p' | head -n 1 |
	sed 's/[[:space:]]#.*$//; s/[[:space:]]*$//; s/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/')"
case "$master_key" in
os.environ/*)
	var="${master_key#os.environ/}"
	master_key="${!var:-<unset: export $var>}"
	;;
"") master_key="<none: no general_settings.master_key in $CONFIG>" ;;
esac

cat <<EOF

spendledger is up.
  gateway     http://127.0.0.1:$GATEWAY_PORT   (OpenAI API)
  master key  $master_key
  config      $CONFIG
  budget      http://127.0.0.1:$BUDGET_PORT
  ledger      http://127.0.0.1:$LEDGER_PORT
  pricing     http://127.0.0.1:$PRICING_PORT
  stores      $NATS_URL  $REDIS_URL  $DATABASE_URL
  logs        $LOGS/
stop with: deploy/local/down.sh
EOF
