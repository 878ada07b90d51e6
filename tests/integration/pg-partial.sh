#!/bin/bash
# Partial restore: --restore-only=db/table and --restore-only=db bring back
# only what they name with data; the rest is restored so that recovery
# completes (other user relations as zero-filled files) and B starts.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing

qa postgres "CREATE DATABASE loan_db" >/dev/null &&
	qa postgres "CREATE DATABASE other_db" >/dev/null &&
	qa loan_db "CREATE TABLE contract(id int PRIMARY KEY, terms text);
	INSERT INTO contract SELECT g, repeat('term ' || g, 2000) FROM generate_series(1, 5) g;
	CREATE TABLE ledger(id int PRIMARY KEY, amount int);
	INSERT INTO ledger SELECT g, g FROM generate_series(1, 1000) g" >/dev/null &&
	qa other_db "CREATE TABLE t(id int PRIMARY KEY, v text);
	INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g" >/dev/null
ok $? "loan_db (contract with TOASTed rows, ledger) and other_db (t)"

run pgc pg backup-push "$A_DIR"
ok $? "backup-push" || _show_result
# Written after the backup: replayed from the WAL into the restored table.
qa loan_db "INSERT INTO contract VALUES (6, 'late'), (7, 'later')" >/dev/null && pg_switch_wait
ok $? "two more contracts after the backup, WAL archived"

# The indexes of the tables left out are zeros too, and the planner reads
# every index's metapage: drop the index, then count what the heap holds.
heap_rows() {
	qb "$1" "ALTER TABLE $2 DROP CONSTRAINT $2_pkey" >/dev/null && qb "$1" "SELECT count(*) FROM $2"
}

run pgc pg backup-fetch "$PGW/b" LATEST --restore-only=loan_db/contract
ok $? "backup-fetch --restore-only=loan_db/contract" || _show_result
pg_start_b "$PGW/b"
ok $? "B starts and completes recovery" || done_testing
is "$(qb loan_db "SELECT count(*), sum(length(terms)) > 50000 FROM contract")" "7|t" \
	"loan_db.contract has its 5 backed-up rows (TOAST included) and the 2 from the WAL"
is "$(qb loan_db "SELECT count(*) FROM contract WHERE id = 3")" "1" "contract's index works"
run qb other_db "SELECT count(*) FROM t"
like "$ERR" 'contains unexpected zero page' "a table left out fails loudly through its index, not with wrong rows"
is "$(heap_rows loan_db ledger)" "0" "loan_db.ledger is not restored with data"
is "$(heap_rows other_db t)" "0" "other_db is not restored with data"
is "$(qb postgres "SELECT count(*) FROM pg_database WHERE datname IN ('loan_db', 'other_db')")" "2" \
	"the other database still exists, so it can be dropped"
qb postgres "DROP DATABASE other_db" >/dev/null
ok $? "DROP DATABASE other_db, as the docs tell the user to"
postgres_stop "$B_DIR"

run pgc pg backup-fetch "$PGW/c" LATEST --restore-only=other_db
ok $? "backup-fetch --restore-only=other_db" || _show_result
pg_start_b "$PGW/c"
ok $? "C starts" || done_testing
is "$(qb other_db "SELECT count(*), sum(id) FROM t")" "1000|500500" "other_db.t has all its rows"
is "$(heap_rows loan_db ledger)" "0" "loan_db.ledger is not restored with data"
# (loan_db.contract is not checked here: the pages written after the backup
# come back whole from their full-page images in the WAL, as the docs say.)
postgres_stop "$B_DIR"

expect_fail -c 2 "an unknown database is refused" pgc pg backup-fetch "$PGW/d" LATEST --restore-only=nope_db
expect_fail -c 2 "an unknown table is refused" pgc pg backup-fetch "$PGW/e" LATEST --restore-only=loan_db/nope
[ -z "$(ls -A "$PGW/d" 2>/dev/null)" ]
ok $? "a refused partial restore writes nothing"

done_testing
