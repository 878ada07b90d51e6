#!/bin/bash
# Tablespaces: backup-push follows them, backup-fetch restores them where
# they were or, with --tablespace-map, elsewhere (and refuses to write into
# a tablespace folder that is in use).
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing

as_postgres mkdir -p "$PGW/ts1"
qa postgres "CREATE TABLESPACE ts1 LOCATION '$PGW/ts1'" >/dev/null &&
	qa postgres "CREATE TABLE in_ts(id int PRIMARY KEY) TABLESPACE ts1;
	INSERT INTO in_ts SELECT generate_series(1, 100)" >/dev/null
ok $? "tablespace ts1 with a table of 100 rows"
oid=$(qa postgres "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")

run pgc pg backup-push "$A_DIR"
ok $? "backup-push" || _show_result
qa postgres "INSERT INTO in_ts SELECT generate_series(101, 150)" >/dev/null && pg_switch_wait
ok $? "50 more rows in the tablespace after the backup"

expect_fail "a restore into the tablespace folder A uses is refused" pgc pg backup-fetch "$PGW/x" LATEST --recovery
like "$ERR" "tablespace-map" "the error names the remedy"

run pgc pg backup-fetch "$PGW/b" LATEST --recovery --tablespace-map="$oid=$PGW/ts1-b"
ok $? "backup-fetch --tablespace-map=$oid=NEW" || _show_result
is "$(readlink "$PGW/b/pg_tblspc/$oid")" "$PGW/ts1-b" "the tablespace link points to the new folder"
like "$(cat "$PGW/b/tablespace_map")" "^$oid $PGW/ts1-b$" "tablespace_map names the new folder"
[ -n "$(ls "$PGW/ts1-b")" ]
ok $? "the tablespace's files are in the new folder"
pg_start_b "$PGW/b"
ok $? "B starts" || done_testing
is "$(qb postgres "SELECT count(*), sum(id) FROM in_ts")" "150|11325" "B has the table in the tablespace, WAL replayed"
is "$(qb postgres "SELECT pg_tablespace_location($oid)")" "$PGW/ts1-b" "B's tablespace is at the new location"
postgres_stop "$B_DIR"

# Run by root (as a restore often is), the files still belong to the server's user.
if [ "$(id -u)" = 0 ]; then
	run env CAIRN_REPO="$REPO" CAIRN_PLUGIN_DIR="$BIN/plugins" "$BIN/cairn" pg backup-fetch "$PGW/c" LATEST \
		--immediate --tablespace-map="$PGW/ts1=$PGW/ts1-c"
	ok $? "backup-fetch as root, the tablespace remapped by its old path" || _show_result
	is "$(find "$PGW/c" "$PGW/ts1-c" ! -user postgres | head -n 3)" "" "every restored file belongs to postgres"
	pg_start_b "$PGW/c"
	ok $? "the server starts on what root restored" || done_testing
	is "$(qb postgres "SELECT count(*) FROM in_ts")" "100" "--immediate: the table as the backup had it"
fi

done_testing
