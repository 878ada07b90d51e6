#!/bin/bash
# Incremental cost: after about 1% of a pgbench database's pages change, the
# next backup stores under 5% of the bytes the first one stored, and both
# restore correctly. The change is a contiguous 1% of pgbench_accounts'
# rows, which is about 1% of its pages (plus the pages the new row versions
# go to). Changing 1% of the rows at random touches far more pages (rows
# are ~60 to a page): that ratio is measured and reported, not asserted.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

SCALE=5 # 500,000 accounts, about 75 MB
ROWS=$((SCALE * 100000))

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing
as_postgres "$PG_BIN/pgbench" -i -q -s "$SCALE" -h "$A_HOST" -p "$A_PORT" -U postgres postgres >"$TMP/pgbench-init.log" 2>&1
ok $? "pgbench -i -s $SCALE" || diag_file "$TMP/pgbench-init.log"

stored_of() { pgc pg backup-list --json | json_get "[b for b in d if b['name'] == '$1'][0]['stored_size']"; }
size_of() { pgc pg backup-list --json | json_get "[b for b in d if b['name'] == '$1'][0]['size']"; }

run pgc pg backup-push "$A_DIR"
ok $? "first backup" || _show_result
B1=$OUT
S1=$(stored_of "$B1")
diag "first backup: $(size_of "$B1") bytes, $S1 stored"

qa postgres "UPDATE pgbench_accounts SET abalance = abalance + 7 WHERE aid <= $((ROWS / 100))" >/dev/null
ok $? "1% of the accounts changed, a contiguous range (about 1% of the pages)"
run pgc pg backup-push "$A_DIR"
ok $? "second backup" || _show_result
B2=$OUT
S2=$(stored_of "$B2")
diag "second backup stored $S2 bytes: $((S2 * 10000 / S1 / 100)).$(printf '%02d' $((S2 * 10000 / S1 % 100)))% of the first"
cmp_ok "$((S2 * 100))" -lt "$((S1 * 5))" "the second backup stores under 5% of the first one's bytes"

qa postgres "UPDATE pgbench_accounts SET abalance = abalance + 1
	WHERE aid IN (SELECT (random() * $((ROWS - 1)))::int + 1 FROM generate_series(1, $((ROWS / 100))))" >/dev/null
run pgc pg backup-push "$A_DIR"
ok $? "third backup, after 1% of the rows changed at random" || _show_result
B3=$OUT
S3=$(stored_of "$B3")
diag "random 1% of the rows: third backup stored $S3 bytes, $((S3 * 100 / S1))% of the first (measured, not asserted)"

# Both restore to exactly what they held.
restore_check() {
	local name=$1 dir=$2 want=$3
	run pgc pg backup-fetch "$dir" "$name" --immediate
	ok $? "backup-fetch $name" || { _show_result; return 1; }
	pg_start_b "$dir"
	ok $? "B starts from $name" || return 1
	is "$(qb postgres "SELECT count(*), sum(abalance) FROM pgbench_accounts")" "$want" \
		"$name restores its accounts"
	run as_postgres "$PG_BIN/pg_amcheck" -h "$B_HOST" -p "$B_PORT" -U postgres --all --heapallindexed --install-missing
	ok $? "pg_amcheck finds $name's restored cluster sound" || _show_result
	postgres_stop "$B_DIR"
}
restore_check "$B1" "$PGW/b1" "$ROWS|0"
restore_check "$B2" "$PGW/b2" "$ROWS|$((ROWS / 100 * 7))"

done_testing
