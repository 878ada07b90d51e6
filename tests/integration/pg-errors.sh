#!/bin/bash
# Bad input: a wrong PGDATA, a server that is not running and an unwritable
# repository each give one clear error. With the repository unwritable,
# PostgreSQL keeps its WAL and retries; once it is writable again nothing
# is missing.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing
qa postgres "CREATE TABLE t(id int PRIMARY KEY)" >/dev/null
run pgc pg backup-push "$A_DIR"
ok $? "a first backup" || _show_result

# ---- wrong PGDATA, no server ---------------------------------------------------
expect_fail "backup-push of a folder that does not exist" pgc pg backup-push "$PGW/nowhere"
like "$ERR" "$PGW/nowhere" "the error names the folder"
as_postgres mkdir -p "$PGW/plain"
expect_fail -c 2 "backup-push of a folder that is not a data directory" pgc pg backup-push "$PGW/plain"
like "$ERR" "not a PostgreSQL data directory" "the error says why"
as_postgres "$PG_BIN/initdb" -D "$PGW/other" -U postgres --auth=trust >/dev/null 2>&1
expect_fail -c 2 "backup-push of another cluster's data directory" pgc pg backup-push "$PGW/other"
like "$ERR" "another cluster" "the error says it is another cluster"
expect_fail -c 2 "backup-push without a data directory" pgc pg backup-push
saved_port=$A_PORT
A_PORT=$(free_port)
expect_fail "backup-push when the server is not running" pgc pg backup-push "$A_DIR"
like "$ERR" "cannot connect to PostgreSQL.*is the server running" "the error says the server cannot be reached"
check "backup-push with --conninfo (PGHOST/PGPORT pointing elsewhere)" \
	pgc pg backup-push "$A_DIR" --conninfo="host=$A_HOST port=$saved_port user=postgres"
A_PORT=$saved_port
is "$(pgc pg backup-list --json | json_get 'len(d)')" "2" "no failed backup is listed"

# ---- the repository unwritable --------------------------------------------------
chmod -R a-w "$REPO"
expect_fail "backup-push into an unwritable repository" pgc pg backup-push "$A_DIR"
qa postgres "INSERT INTO t VALUES (1)" >/dev/null
seg1=$(qa postgres "SELECT pg_walfile_name(pg_switch_wal())")
qa postgres "INSERT INTO t VALUES (2)" >/dev/null
seg2=$(qa postgres "SELECT pg_walfile_name(pg_switch_wal())")
for ((i = 0; i < 100; i++)); do
	[ "$(qa postgres "SELECT failed_count FROM pg_stat_archiver")" -gt 0 ] && break
	sleep 0.1
done
cmp_ok "$(qa postgres "SELECT failed_count FROM pg_stat_archiver")" -gt 0 \
	"archive_command fails while the repository is unwritable"
like "$(qa postgres "SELECT last_failed_wal FROM pg_stat_archiver")" "^$seg1$" "PostgreSQL retries $seg1"
[ -f "$A_DIR/pg_wal/$seg1" ] && [ -f "$A_DIR/pg_wal/archive_status/$seg1.ready" ] &&
	[ -f "$A_DIR/pg_wal/archive_status/$seg2.ready" ]
ok $? "PostgreSQL keeps the WAL it could not archive"
pg_archived "$seg1"
isnt "$?" 0 "nothing was stored"
expect_fail "wal-push by hand into the unwritable repository" pgc pg wal-push "$A_DIR/pg_wal/$seg1"

chmod -R u+w "$REPO"
qa postgres "INSERT INTO t VALUES (3)" >/dev/null
pg_switch_wait
ok $? "once writable, archiving goes on"
pg_archived "$seg1" && pg_archived "$seg2"
ok $? "the WAL kept meanwhile ($seg1, $seg2) reached the repository"
check "wal-verify finds no gap" pgc pg wal-verify
run pgc pg backup-fetch "$PGW/b" LATEST --recovery
ok $? "restore from the first backup" || _show_result
pg_start_b "$PGW/b"
ok $? "B starts" || done_testing
is "$(qb postgres "SELECT string_agg(id::text, ',' ORDER BY id) FROM t")" "1,2,3" \
	"B has the rows written while the repository was unwritable"
postgres_stop "$B_DIR"

# ---- a restore into a destination it cannot write ------------------------------
as_postgres mkdir -p "$PGW/ro" && chmod 555 "$PGW/ro"
expect_fail "backup-fetch into a destination it cannot write" pgc pg backup-fetch "$PGW/ro/x" LATEST

done_testing
