#!/bin/bash
# A backup taken while pgbench writes restores to a consistent cluster:
# pgbench's balances agree (accounts, tellers, branches and history sum to
# the same), pg_amcheck finds no corruption and pg_dumpall succeeds.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing
as_postgres "$PG_BIN/pgbench" -i -q -s 2 -h "$A_HOST" -p "$A_PORT" -U postgres postgres >"$TMP/init.log" 2>&1
ok $? "pgbench -i -s 2" || diag_file "$TMP/init.log"

as_postgres "$PG_BIN/pgbench" -c 4 -T 12 -h "$A_HOST" -p "$A_PORT" -U postgres postgres >"$TMP/bench.log" 2>&1 &
BENCH=$!
BG_PIDS+=("$BENCH")
sleep 2
run pgc pg backup-push "$A_DIR"
ok $? "backup-push while pgbench writes" || _show_result
NAME=$OUT
kill -0 "$BENCH" 2>/dev/null
ok $? "pgbench was still writing when the backup ended"
wait "$BENCH"
ok $? "pgbench finished without errors" || diag_file "$TMP/bench.log"
bg_forget "$BENCH"
pg_switch_wait
ok $? "WAL archived"

sums="SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '|' || (SELECT sum(tbalance) FROM pgbench_tellers)
	|| '|' || (SELECT sum(bbalance) FROM pgbench_branches) || '|' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
	|| '|' || (SELECT count(*) FROM pgbench_history)"
want=$(qa postgres "$sums")

for mode in --immediate --recovery; do
	dir=$PGW/b${mode#--}
	run pgc pg backup-fetch "$dir" "$NAME" $mode
	ok $? "backup-fetch $mode" || { _show_result; continue; }
	pg_start_b "$dir"
	ok $? "B starts ($mode)" || continue
	got=$(qb postgres "$sums")
	IFS='|' read -r a t b h n <<<"$got"
	[ -n "$a" ] && [ "$a" = "$t" ] && [ "$t" = "$b" ] && [ "$b" = "$h" ]
	ok $? "$mode: pgbench balances agree ($got)"
	is "$(qb postgres "SELECT count(*) FROM pgbench_accounts")" "200000" "$mode: all accounts"
	if [ "$mode" = --recovery ]; then
		is "$got" "$want" "--recovery: B has everything A committed"
	else
		cmp_ok "$n" -gt 0 "--immediate: B has the transactions committed during the backup"
	fi
	run as_postgres "$PG_BIN/pg_amcheck" -h "$B_HOST" -p "$B_PORT" -U postgres --all --heapallindexed --install-missing
	ok $? "$mode: pg_amcheck finds no corruption" || _show_result
	run as_postgres "$PG_BIN/pg_dumpall" -h "$B_HOST" -p "$B_PORT" -U postgres -f "$PGW/dumpall.sql"
	ok $? "$mode: pg_dumpall of every database succeeds" || _show_result
	postgres_stop "$B_DIR"
done

done_testing
