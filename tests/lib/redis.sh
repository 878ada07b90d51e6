# tests/lib/redis.sh - real Redis 7 servers for tests (see common.sh).
#
#   redis_install              redis-server/redis-tools 7.0 and libhiredis-dev (Debian 12)
#   redis_start DIR [ARGS...]  starts a server with its files in DIR on a free
#                              loopback port; sets REDIS_PORT and REDIS_PID
#                              (the last server started) and REDIS_CLI
#   redis_stop [PID]           stops the last (or the given) server
#   redis_stop_all             stops every server started here (EXIT traps)
#
# Servers start with --repl-diskless-sync-delay 0 (a diskless snapshot would
# otherwise wait 5 s for more replicas), no RDB saving, and the DEBUG command
# enabled for DEBUG DIGEST (a hash of the whole dataset) and DEBUG POPULATE.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REDIS_VERSION_WANTED=7.0
REDIS_PIDS=""

redis_install() {
	apt_install redis-server redis-tools libhiredis-dev || return 1
	redis-server --version | grep -q "v=$REDIS_VERSION_WANTED" || {
		echo "# redis-server is not $REDIS_VERSION_WANTED: $(redis-server --version)" >&2
		return 1
	}
}

redis_start() {
	local dir=$1 port i
	shift
	mkdir -p "$dir" || return 1
	port=$(free_port) || return 1
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' \
		--daemonize no --repl-diskless-sync-delay 0 --enable-debug-command yes \
		--logfile "$dir/redis.log" "$@" &
	REDIS_PID=$!
	REDIS_PIDS="$REDIS_PIDS $REDIS_PID"
	REDIS_PORT=$port
	export REDIS_PORT REDIS_PID
	for ((i = 0; i < 200; i++)); do
		if redis-cli -p "$port" --no-auth-warning ${REDIS_START_AUTH:+-a "$REDIS_START_AUTH"} ping 2>/dev/null | grep -q PONG; then
			return 0
		fi
		if ! kill -0 "$REDIS_PID" 2>/dev/null; then
			echo "# redis-server exited at start:" >&2
			tail -n 5 "$dir/redis.log" 2>/dev/null | sed 's/^/#   /' >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# redis-server on port $port did not answer PING" >&2
	return 1
}

redis_stop() {
	local pid=${1:-$REDIS_PID} i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	return 0
}

redis_stop_all() {
	local pid
	for pid in $REDIS_PIDS; do
		redis_stop "$pid"
	done
	REDIS_PIDS=""
}
