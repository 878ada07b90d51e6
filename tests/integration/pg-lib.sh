# shellcheck shell=bash
# tests/integration/pg-lib.sh - helpers of the pg-*.sh tests (sourced after lib.sh).
#
# PostgreSQL refuses to run as root, and its archive_command and
# restore_command run cairn as the server's user: so every cairn command of
# these tests runs as user postgres, on a copy of the binary and plugins
# that user can reach, on a repository it owns.
#
#   pg_setup                 $TMP readable, $PGW (postgres' work folder),
#                            $REPO in it, $BIN with cairn and its plugins
#   pgc ARGS...              cairn as user postgres on $REPO (PGHOST/PGPORT of A)
#   pg_start_a DIR           initdb + start with archive_command = 'cairn pg wal-push %p';
#                            sets A_DIR A_HOST A_PORT
#   pg_start_b DIR           start a restored cluster (archiving off) and wait
#                            for recovery to end; sets B_DIR B_HOST B_PORT
#   qa DB SQL / qb DB SQL    psql on A / B: unaligned, tuples only
#   pg_switch_wait           pg_switch_wal() on A, then waits until that
#                            segment is in the repository; sets SWITCHED
#   pg_archived NAME         true when WAL file NAME is in the repository

# shellcheck source=../lib/postgres.sh
. "$CAIRN_SRCDIR/tests/lib/postgres.sh"
trap 'postgres_stop; _cleanup' EXIT

pg_setup() {
	chmod 755 "$TMP" || return 1
	PGW=$TMP/pg
	BIN=$TMP/bin
	mkdir -p "$PGW" "$BIN/plugins" || return 1
	cp "$CAIRN" "$BIN/cairn" || return 1
	ln -sf cairn "$BIN/cairn-pg"
	local d
	for d in ${CAIRN_PLUGIN_DIR//:/ }; do
		cp "$d"/*.so "$BIN/plugins/" 2>/dev/null
	done
	[ -f "$BIN/plugins/driver_pg.so" ] || {
		diag "driver_pg.so was not built (libpq-dev missing at configure time?)"
		return 1
	}
	chmod -R a+rX "$BIN"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$PGW" || return 1; fi
	REPO=$PGW/repo
	export CAIRN_CONFIG
	chmod a+r "$CAIRN_CONFIG"
}

pgc() {
	as_postgres env CAIRN_REPO="$REPO" CAIRN_PLUGIN_DIR="$BIN/plugins" CAIRN_CONFIG="$CAIRN_CONFIG" \
		PGHOST="${A_HOST:-}" PGPORT="${A_PORT:-}" PGUSER=postgres HOME="$PGW" \
		timeout -k 10 "$CAIRN_TEST_TIMEOUT" "$BIN/cairn" "$@"
}

pg_start_a() {
	A_DIR=$1
	as_postgres mkdir -p "$A_DIR" || return 1
	as_postgres "$PG_BIN/initdb" -D "$A_DIR" -U postgres --auth=trust -E UTF8 --locale=C \
		>"$TMP/initdb.log" 2>&1 || { diag_file "$TMP/initdb.log"; return 1; }
	as_postgres tee -a "$A_DIR/postgresql.conf" >/dev/null <<-CONF
		archive_mode = on
		archive_command = 'cairn pg wal-push %p'
		wal_level = replica
	CONF
	# The server's environment tells archive_command where cairn, its
	# plugins and the repository are, as a service manager would.
	PG_ENV="PATH=$BIN:$PATH CAIRN_REPO=$REPO CAIRN_PLUGIN_DIR=$BIN/plugins CAIRN_CONFIG=$CAIRN_CONFIG HOME=$PGW" \
		postgres_start "$A_DIR" || return 1
	A_HOST=$PGHOST
	A_PORT=$PGPORT
}

# wait_recovered HOST PORT: until the server leaves recovery (60 s).
wait_recovered() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(as_postgres psql -X -At -h "$1" -p "$2" -U postgres -d postgres \
			-c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && return 0
		sleep 0.1
	done
	return 1
}

pg_start_b() {
	B_DIR=$1
	PG_ENV="" PG_OPTS="-c archive_mode=off" postgres_start "$B_DIR" || return 1
	B_HOST=$PGHOST
	B_PORT=$PGPORT
	if ! wait_recovered "$B_HOST" "$B_PORT"; then
		diag "the restored server did not finish recovery:"
		diag_file "$(postgres_log "$B_DIR")" 30
		return 1
	fi
}

qa() {
	as_postgres psql -X -At -v ON_ERROR_STOP=1 -h "$A_HOST" -p "$A_PORT" -U postgres -d "$1" -c "$2"
}

qb() {
	as_postgres psql -X -At -v ON_ERROR_STOP=1 -h "$B_HOST" -p "$B_PORT" -U postgres -d "$1" -c "$2"
}

pg_archived() {
	compgen -G "$REPO/logs/pg/wal/*/$1" >/dev/null
}

pg_switch_wait() {
	local i
	SWITCHED=$(qa postgres "SELECT pg_walfile_name(pg_switch_wal())") || return 1
	for ((i = 0; i < 600; i++)); do
		pg_archived "$SWITCHED" && return 0
		sleep 0.1
	done
	diag "WAL file $SWITCHED did not reach the repository"
	diag_file "$(postgres_log "$A_DIR")" 20
	return 1
}
