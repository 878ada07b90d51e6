#!/bin/bash
# Point in time: --until TIME, --target-name, --target-lsn and --immediate
# each restore exactly the rows committed before their target.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts" || done_testing

qa postgres "CREATE TABLE t(id int PRIMARY KEY, batch int);
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g" >/dev/null
run pgc pg backup-push "$A_DIR"
ok $? "backup-push" || _show_result

# batch 1, then the time between, then batch 2, a restore point, batch 3,
# an LSN, batch 4.
qa postgres "INSERT INTO t SELECT g, 1 FROM generate_series(11, 20) g" >/dev/null
sleep 1.1
between_time=$(qa postgres "SELECT clock_timestamp()")
sleep 1.1
qa postgres "INSERT INTO t SELECT g, 2 FROM generate_series(21, 30) g" >/dev/null
qa postgres "SELECT pg_create_restore_point('before_batch3')" >/dev/null
qa postgres "INSERT INTO t SELECT g, 3 FROM generate_series(31, 40) g" >/dev/null
lsn=$(qa postgres "SELECT pg_current_wal_insert_lsn()")
qa postgres "INSERT INTO t SELECT g, 4 FROM generate_series(41, 50) g" >/dev/null
pg_switch_wait
ok $? "four batches written around a time, a restore point and an LSN; WAL archived"

# restore_to NAME DIR WANT ARGS...: restores LATEST with ARGS into DIR and
# checks the batches B holds.
restore_to() {
	local name=$1 dir=$2 want=$3
	shift 3
	run pgc pg backup-fetch "$dir" LATEST "$@"
	ok $? "backup-fetch $*" || { _show_result; return 1; }
	pg_start_b "$dir"
	ok $? "B starts and recovers to the target ($name)" || return 1
	is "$(qb postgres "SELECT string_agg(DISTINCT batch::text, ',' ORDER BY batch::text) || '|' || count(*) FROM t")" \
		"$want" "$name: exactly the rows committed before the target"
	postgres_stop "$B_DIR"
}

restore_to "--until, between batch 1 and 2" "$PGW/until" "0,1|20" --until "$between_time"
restore_to "--target-name before batch 3" "$PGW/name" "0,1,2|30" --target-name before_batch3
restore_to "--target-lsn before batch 4" "$PGW/lsn" "0,1,2,3|40" --target-lsn "$lsn"
restore_to "--immediate: the backup itself" "$PGW/imm" "0|10" --immediate
restore_to "--recovery: everything" "$PGW/all" "0,1,2,3,4|50" --recovery

expect_fail -c 2 "two recovery targets are refused" pgc pg backup-fetch "$PGW/x" LATEST --immediate --target-name a
expect_fail -c 2 "a malformed LSN is refused" pgc pg backup-fetch "$PGW/y" LATEST --target-lsn nonsense
[ ! -e "$PGW/x" ] && [ ! -e "$PGW/y" ]
ok $? "refused restores write nothing"

done_testing
