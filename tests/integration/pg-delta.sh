#!/bin/bash
# Incremental backups that read only the blocks the WAL names: a second
# backup after varied changes (updates in place, inserts that extend a
# table, deletes with a vacuum that truncates, TRUNCATE, new tables and
# indexes, DROP, CLUSTER, sequences) takes most of each changed file from the
# previous backup, reads the rest, and restores to exactly the data of the
# cluster (pg_dump equal, pg_amcheck sound). The same after a backup taken
# while pgbench writes. Where the WAL cannot vouch for the blocks (a
# database was created) the backup reads changed files whole, and says so.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

SCALE=4 # 400,000 accounts, about 60 MB

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing
as_postgres "$PG_BIN/pgbench" -i -q -s "$SCALE" -h "$A_HOST" -p "$A_PORT" -U postgres postgres >"$TMP/pgbench-init.log" 2>&1
ok $? "pgbench -i -s $SCALE" || diag_file "$TMP/pgbench-init.log"
qa postgres "CREATE TABLE shrink (id int PRIMARY KEY, pad text);
	INSERT INTO shrink SELECT g, repeat('x', 500) FROM generate_series(1, 40000) g;
	CREATE TABLE gone (id int); INSERT INTO gone SELECT generate_series(1, 50000);
	CREATE TABLE emptied (id int); INSERT INTO emptied SELECT generate_series(1, 50000);
	CREATE TABLE clustered (id int PRIMARY KEY, v int); INSERT INTO clustered SELECT g, g % 97 FROM generate_series(1, 50000) g;
	CREATE SEQUENCE seq; SELECT nextval('seq')" >/dev/null
ok $? "extra tables"

meta_of() { pgc pg backup-show "$1" --json | json_get "d['meta'].get('$2', '')"; }
stored_of() { pgc pg backup-list --json | json_get "[b for b in d if b['name'] == '$1'][0]['stored_size']"; }

run pgc pg backup-push "$A_DIR"
ok $? "first backup" || _show_result
B1=$OUT
is "$(meta_of "$B1" delta-from)" "" "the first backup has nothing to take blocks from"

# Changes of every kind the WAL describes.
qa postgres "UPDATE pgbench_accounts SET abalance = abalance + 3 WHERE aid BETWEEN 1000 AND 4000;
	UPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid IN (123456, 250000, 399999);
	INSERT INTO pgbench_history SELECT 1, 1, g, 5, now(), 'x' FROM generate_series(1, 20000) g;
	DELETE FROM shrink WHERE id > 10000;
	TRUNCATE emptied; INSERT INTO emptied VALUES (42);
	DROP TABLE gone;
	CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 30000) g;
	CREATE INDEX ON fresh (h);
	CLUSTER clustered USING clustered_pkey;
	SELECT nextval('seq'), nextval('seq')" >/dev/null
ok $? "updates, inserts, deletes, truncate, drop, create, cluster"
qa postgres "VACUUM shrink" >/dev/null
ok $? "vacuum (truncates shrink)"
# Let the server recycle the segments since the first backup began: the
# delta then reads them from the repository.
for i in 1 2 3; do
	pg_switch_wait >/dev/null && qa postgres "CHECKPOINT" >/dev/null
done
ok $? "WAL switched and archived, checkpoints done"
B1_WAL=$(meta_of "$B1" start-wal)
[ ! -e "$A_DIR/pg_wal/$B1_WAL" ]
ok $? "the segment the first backup started in ($B1_WAL) is gone from pg_wal"

run pgc -v pg backup-push "$A_DIR"
ok $? "second backup" || _show_result
B2=$OUT
like "$ERR" "only blocks the WAL since [0-9A-F]+/[0-9A-F]+ names are read" "the log says the delta is used"
like "$ERR" "and [1-9][0-9]* from the repository" "segments gone from pg_wal were read from the repository"
is "$(meta_of "$B2" delta-from)" "$B1" "the second backup took blocks from the first"
copied=$(meta_of "$B2" delta-copied-bytes)
diag "second backup: $copied bytes of changed files taken from $B1, $(stored_of "$B2") bytes stored"
cmp_ok "${copied:-0}" -gt 30000000 "most of pgbench_accounts was not read again"

# dump HOST PORT FILE: the data of database postgres as SQL, without the
# random \restrict key pg_dump puts in every dump.
dump() {
	as_postgres "$PG_BIN/pg_dump" -h "$1" -p "$2" -U postgres -d postgres 2>"$TMP/dump.err" |
		grep -v '^\\\(un\)\?restrict ' >"$3" && [ -s "$3" ] && [ ! -s "$TMP/dump.err" ]
}
dump "$A_HOST" "$A_PORT" "$PGW/want.sql"
ok $? "pg_dump of A" || diag_file "$TMP/dump.err"

# restore_check NAME DIR WHAT: B from NAME has A's data and is sound.
restore_check() {
	local name=$1 dir=$2 what=$3
	run pgc pg backup-fetch "$dir" "$name" --immediate
	ok $? "$what: backup-fetch" || { _show_result; return 1; }
	pg_start_b "$dir"
	ok $? "$what: B starts" || return 1
	# before pg_amcheck, which installs its extension
	dump "$B_HOST" "$B_PORT" "$PGW/got.sql"
	ok $? "$what: pg_dump of B" || diag_file "$TMP/dump.err"
	run as_postgres "$PG_BIN/pg_amcheck" -h "$B_HOST" -p "$B_PORT" -U postgres --all --heapallindexed --install-missing
	ok $? "$what: pg_amcheck finds the restored cluster sound" || _show_result
}

restore_check "$B2" "$PGW/b2" "delta backup"
run diff "$PGW/want.sql" "$PGW/got.sql"
ok $? "the delta backup restores exactly A's data" || _show_result
is "$(qb postgres "SELECT count(*) FROM shrink") $(qb postgres "SELECT count(*) FROM emptied") $(qb postgres "SELECT to_regclass('gone') IS NULL")" \
	"10000 1 t" "truncated, emptied and dropped tables are as on A"
postgres_stop "$B_DIR"

# A delta backup taken while pgbench writes.
as_postgres "$PG_BIN/pgbench" -c 3 -T 8 -h "$A_HOST" -p "$A_PORT" -U postgres postgres >"$TMP/bench.log" 2>&1 &
BENCH=$!
sleep 2
run pgc pg backup-push "$A_DIR"
ok $? "third backup, while pgbench writes" || _show_result
B3=$OUT
wait "$BENCH"
ok $? "pgbench finished without errors" || diag_file "$TMP/bench.log"
is "$(meta_of "$B3" delta-from)" "$B2" "the third backup took blocks from the second"
restore_check "$B3" "$PGW/b3" "delta backup during pgbench"
sums="SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '|' || (SELECT sum(tbalance) FROM pgbench_tellers)
	|| '|' || (SELECT sum(bbalance) FROM pgbench_branches)"
# pgbench empties the history table first; the accounts carry the updates above too.
got=$(qb postgres "$sums")
hist=$(qb postgres "SELECT coalesce(sum(delta), 0) FROM pgbench_history")
IFS='|' read -r a t b <<<"$got"
[ -n "$t" ] && [ "$t" = "$b" ] && [ "$b" = "$hist" ] && [ "$a" = $((t + 3 * 3001 - 3)) ]
ok $? "pgbench balances agree in the restored cluster ($got, history $hist)"
postgres_stop "$B_DIR"

# A new database: the WAL copies it as a whole, not block by block.
qa postgres "CREATE DATABASE other" >/dev/null
qa postgres "UPDATE pgbench_accounts SET abalance = 0 WHERE aid < 100" >/dev/null
run pgc -v pg backup-push "$A_DIR"
ok $? "fourth backup, after CREATE DATABASE" || _show_result
B4=$OUT
like "$ERR" "changed files are read whole: a database was created" "the log says why every changed file is read"
is "$(meta_of "$B4" delta-from)" "" "the fourth backup took no blocks"
restore_check "$B4" "$PGW/b4" "after CREATE DATABASE"
is "$(qb postgres "SELECT sum(abalance) FROM pgbench_accounts WHERE aid < 100")" "0" "the last change is there"
postgres_stop "$B_DIR"

# skip-unchanged=false reads everything, the delta included.
run pgc -v pg backup-push "$A_DIR" --skip-unchanged=false
ok $? "backup with --skip-unchanged=false" || _show_result
B5=$OUT
is "$(meta_of "$B5" delta-from)" "" "--skip-unchanged=false: no blocks taken"

# A segment of the range in neither place: changed files are read whole.
qa postgres "UPDATE pgbench_accounts SET abalance = 5 WHERE aid < 100" >/dev/null
for i in 1 2 3; do
	pg_switch_wait >/dev/null && qa postgres "CHECKPOINT" >/dev/null
done
B5_WAL=$(meta_of "$B5" start-wal)
[ ! -e "$A_DIR/pg_wal/$B5_WAL" ] && rm "$REPO"/logs/pg/wal/*/"$B5_WAL"
ok $? "segment $B5_WAL removed from the repository, gone from pg_wal"
run pgc -v pg backup-push "$A_DIR"
ok $? "backup with a segment of the range missing" || _show_result
like "$ERR" "changed files are read whole: WAL segment $B5_WAL is neither in pg_wal nor in the repository" \
	"the log names the missing segment"
is "$(meta_of "$OUT" delta-from)" "" "no blocks taken"

done_testing
