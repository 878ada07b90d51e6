#!/bin/bash
# docker/walkthrough.sh ROLE - the two servers of cairn's PostgreSQL walkthrough.
#
#   primary   initdb PGDATA when it is empty, archive WAL with
#             archive_command = 'cairn pg wal-push %p', start, write demo data,
#             push a base backup, write more, switch WAL
#   restore   wait for a backup in the repository, restore the latest with
#             --recovery, start: recovery replays the WAL, then promotes
#
# Both keep the server in the foreground (a container's main process) unless
# WALKTHROUGH_DETACH=1, which returns once the server is up (tests use it).
# Runs as the PostgreSQL user. Environment: PGDATA, CAIRN_REPO (shared by
# both servers), PGPORT (5432), PGHOST (socket folder, /tmp), PG_BIN.
set -eu

role=${1:-}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PGPORT=${PGPORT:-5432} PGHOST=${PGHOST:-/tmp} PGUSER=${PGUSER:-postgres}
: "${PGDATA:?set PGDATA}" "${CAIRN_REPO:?set CAIRN_REPO}"
export PGDATA CAIRN_REPO

psql_do() { "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

start() {
	"$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA.log" -w -t 300 \
		-o "-p $PGPORT -k $PGHOST -c listen_addresses='${LISTEN:-*}' $*" start
	until [ "$(psql_do postgres 'SELECT pg_is_in_recovery()')" = f ]; do sleep 0.5; done
}

serve() {
	[ "${WALKTHROUGH_DETACH:-0}" = 1 ] && return 0
	trap '"$PG_BIN/pg_ctl" -D "$PGDATA" -m fast stop; exit 0' TERM INT
	tail -F "$PGDATA.log" &
	wait
}

case $role in
primary)
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		"$PG_BIN/initdb" -D "$PGDATA" -U "$PGUSER" --auth-local=trust --auth-host=trust -E UTF8 --locale=C
		cat >>"$PGDATA/postgresql.conf" <<-CONF
			archive_mode = on
			archive_command = 'cairn pg wal-push %p'
		CONF
	fi
	start
	psql_do postgres "CREATE TABLE IF NOT EXISTS seed(id int PRIMARY KEY);
		INSERT INTO seed SELECT generate_series(1, 10) ON CONFLICT DO NOTHING"
	cairn pg backup-push "$PGDATA"
	psql_do postgres "INSERT INTO seed SELECT generate_series(11, 20) ON CONFLICT DO NOTHING"
	if [ -z "$(psql_do postgres "SELECT 1 FROM pg_database WHERE datname = 'loan_db'")" ]; then
		psql_do postgres "CREATE DATABASE loan_db"
		psql_do loan_db "CREATE TABLE contract(id int PRIMARY KEY, amount numeric);
			INSERT INTO contract SELECT g, g * 100 FROM generate_series(1, 5) g"
	fi
	# Returns once the WAL written after the backup is in the repository.
	seg=$(psql_do postgres "SELECT pg_walfile_name(pg_switch_wal())")
	tmp=$(mktemp)
	until cairn pg wal-fetch "$seg" "$tmp"; do sleep 0.5; done
	rm -f "$tmp"
	echo "primary: backup pushed, WAL up to $seg archived"
	serve
	;;
restore)
	until cairn pg backup-list --json 2>/dev/null | grep -q '"name"'; do sleep 1; done
	# The primary's WAL switch may still be on its way.
	sleep "${WALKTHROUGH_WAL_WAIT:-5}"
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		cairn pg backup-fetch "$PGDATA" LATEST --recovery
	fi
	# This copy does not archive into the primary's repository.
	start -c archive_mode=off
	psql_do postgres "SELECT 'seed rows: ' || count(*) FROM seed"
	psql_do loan_db "SELECT 'loan_db.contract rows: ' || count(*) FROM contract"
	serve
	;;
*)
	echo "usage: walkthrough.sh primary|restore" >&2
	exit 2
	;;
esac
