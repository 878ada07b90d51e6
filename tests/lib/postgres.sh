# shellcheck shell=bash
# tests/lib/postgres.sh - PostgreSQL 15 for the tests (see tests/lib/common.sh).
#
#   postgres_install            apt: postgresql-15 (server, pgbench, pg_amcheck)
#                               and libpq-dev (to build the pg driver)
#   postgres_start DIR [PORT]   initdb into DIR as user postgres when DIR holds
#                               no cluster, then starts it on a free port with
#                               its unix socket in a folder of its own; exports
#                               PGHOST, PGPORT, PGUSER for libpq and psql.
#                               Extra server options: PG_OPTS="-c name=value ..."
#                               Extra server environment: PG_ENV="VAR=value ..."
#   postgres_stop [DIR]         stops DIR's server (default: every one started)
#   as_postgres CMD...          runs CMD as user postgres (PostgreSQL refuses
#                               root); as the current user when not root
#   postgres_log DIR            the server log of DIR
# PostgreSQL 15 is Debian 12's (15.x); no other version is tested.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
POSTGRES_DIRS=()

postgres_install() {
	apt_install postgresql-15 postgresql-client-15 libpq-dev
}

as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The socket folder and the log live beside DIR ("DIR.run"), not in it:
# a base backup of DIR must not carry them.
postgres_log() {
	echo "$1.run/postgres.log"
}

postgres_start() {
	local dir=$1 port=${2:-} run
	[ -n "$port" ] || port=$(free_port) || return 1
	if [ ! -x "$PG_BIN/postgres" ]; then
		echo "# PostgreSQL 15 is not installed in $PG_BIN (postgres_install)" >&2
		return 1
	fi
	run=$dir.run
	mkdir -p "$dir" "$run" || return 1
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$dir" "$run" || return 1
	fi
	chmod 700 "$dir" || return 1
	if [ ! -f "$dir/PG_VERSION" ]; then
		if ! as_postgres "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 \
			--locale=C >"$run/initdb.log" 2>&1; then
			echo "# initdb $dir failed:" >&2
			sed 's/^/#   /' "$run/initdb.log" >&2
			return 1
		fi
	fi
	# shellcheck disable=SC2086 # PG_ENV and PG_OPTS are lists of words
	if ! as_postgres env ${PG_ENV:-} "$PG_BIN/pg_ctl" -D "$dir" -l "$run/postgres.log" -w -t 120 \
		-o "-p $port -k $run -c listen_addresses='' ${PG_OPTS:-}" start >"$run/pg_ctl.log" 2>&1; then
		echo "# PostgreSQL in $dir did not start:" >&2
		tail -n 20 "$run/postgres.log" "$run/pg_ctl.log" 2>/dev/null | sed 's/^/#   /' >&2
		return 1
	fi
	POSTGRES_DIRS+=("$dir")
	export PGHOST=$run PGPORT=$port PGUSER=postgres PGDATABASE=postgres
	unset PGPASSWORD PGSERVICE
}

postgres_stop() {
	local d
	if [ $# -gt 0 ]; then
		[ -f "$1/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null 2>&1
		return 0
	fi
	for d in "${POSTGRES_DIRS[@]}"; do
		[ -f "$d/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null 2>&1
	done
	return 0
}
