#!/bin/bash
# The classic walkthrough on real PostgreSQL 15: server A archives its WAL
# with archive_command = 'cairn pg wal-push %p', a base backup is pushed,
# more is written, and server B is built from the latest backup plus WAL.
# Then: wal-push idempotence (.history and .partial too), quiet wal-fetch
# of a missing segment, wal-verify, delete with WAL pruning.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"

pg_setup
ok $? "test folders and a copy of cairn the postgres user can run" || done_testing
pg_start_a "$PGW/a"
ok $? "server A starts, archiving with cairn pg wal-push" || done_testing

qa postgres "CREATE TABLE seed(id int PRIMARY KEY, note text);
	INSERT INTO seed SELECT g, 'row ' || g FROM generate_series(1, 10) g" >/dev/null
ok $? "seed table with 10 rows"

run pgc pg backup-push "$A_DIR"
ok $? "backup-push of A" || { _show_result; done_testing; }
FIRST=$OUT
like "$FIRST" '^pg-[0-9]{8}T[0-9]{6}Z' "backup-push prints the backup name"

run pgc pg backup-list --json
meta=$(printf '%s' "$OUT" | json_get 'd[-1]["meta"]' 2>/dev/null)
like "$meta" '"start-lsn": "[0-9A-F]+/[0-9A-F]+"' "manifest records the start LSN"
like "$meta" '"stop-lsn": "[0-9A-F]+/[0-9A-F]+"' "manifest records the stop LSN"
like "$meta" '"timeline": "1"' "manifest records the timeline"
like "$meta" '"pg-version": "15[0-9]{4}"' "manifest records the PostgreSQL version"
sysid=$(qa postgres "SELECT system_identifier FROM pg_control_system()")
like "$meta" "\"system-identifier\": \"$sysid\"" "manifest records the system identifier"
label=$(printf '%s' "$OUT" | json_get 'd[-1]["meta"]["start-wal"]' 2>/dev/null)
pg_archived "$label"
ok $? "the backup's first WAL segment ($label) is archived"

qa postgres "INSERT INTO seed SELECT g, 'row ' || g FROM generate_series(11, 20) g;
	CREATE TABLE later(id int); INSERT INTO later VALUES (42)" >/dev/null &&
	qa postgres "CREATE DATABASE loan_db" >/dev/null &&
	qa loan_db "CREATE TABLE contract(id int PRIMARY KEY, amount numeric);
	INSERT INTO contract SELECT g, g * 100 FROM generate_series(1, 5) g" >/dev/null
ok $? "10 more rows, a new table, database loan_db with table contract (5 rows)"
pg_switch_wait
ok $? "WAL switched and archived"

run pgc pg backup-fetch "$PGW/b" LATEST --recovery
ok $? "backup-fetch LATEST with --recovery" || _show_result
[ -f "$PGW/b/backup_label" ] && [ -f "$PGW/b/recovery.signal" ]
ok $? "backup_label and recovery.signal are written"
like "$(cat "$PGW/b/postgresql.auto.conf")" "restore_command = '''$BIN/cairn'' pg wal-fetch %f %p" \
	"restore_command runs this cairn by its absolute path"
[ ! -e "$PGW/b/postmaster.pid" ] && [ -z "$(ls -A "$PGW/b/pg_wal" | grep -v archive_status)" ]
ok $? "postmaster.pid and pg_wal contents are not restored"

expect_fail "backup-fetch refuses a non-empty destination" pgc pg backup-fetch "$PGW/b" LATEST

pg_start_b "$PGW/b"
ok $? "server B starts and completes recovery from the repository" || done_testing
is "$(qb postgres "SELECT count(*), sum(id) FROM seed")" "20|210" "B has all 20 rows"
is "$(qb postgres "SELECT id FROM later")" "42" "B has the table created after the backup"
is "$(qb loan_db "SELECT count(*), sum(amount) FROM contract")" "5|1500" \
	"B has loan_db.contract with its 5 rows"
postgres_stop "$B_DIR"

# ---- wal-push / wal-fetch --------------------------------------------------------
W=$PGW/w
as_postgres mkdir -p "$W/orig" "$W/again"
run pgc pg wal-fetch "$label" "$W/orig/$label"
ok $? "wal-fetch of an archived segment"
check "the same segment pushed again succeeds" pgc pg wal-push "$W/orig/$label"
as_postgres cp "$W/orig/$label" "$W/again/$label"
flip_byte "$W/again/$label" 100000
expect_fail "an altered segment with the same name is refused" pgc pg wal-push "$W/again/$label"
as_postgres mkdir -p "$W/check"
pgc pg wal-fetch "$label" "$W/check/$label" && cmp -s "$W/check/$label" "$W/orig/$label"
ok $? "the stored segment is unchanged"

run pgc pg wal-fetch 0000000100000000000000FE "$W/missing"
is "$RC:$ERR" "3:" "wal-fetch of a missing segment exits 3 and prints nothing"
[ ! -e "$W/missing" ]
ok $? "and writes nothing"

printf '1\t0/9000000\tno recovery target specified\n' | as_postgres tee "$W/00000007.history" >/dev/null
as_postgres cp "$W/orig/$label" "$W/000000010000000000000009.partial"
check "wal-push of a .history file" pgc pg wal-push "$W/00000007.history"
check "wal-push of a .partial file" pgc pg wal-push "$W/000000010000000000000009.partial"
as_postgres mkdir -p "$W/back"
pgc pg wal-fetch 00000007.history "$W/back/h" && cmp -s "$W/back/h" "$W/00000007.history"
ok $? "the .history file comes back the same"
pgc pg wal-fetch 000000010000000000000009.partial "$W/back/p" &&
	cmp -s "$W/back/p" "$W/000000010000000000000009.partial"
ok $? "the .partial file comes back the same"
expect_fail -c 2 "wal-push of a file that is not WAL" pgc pg wal-push "$W/back/h"
# The made-up history must not steer later checks to timeline 7.
rm -f "$REPO/logs/pg/timelines/00000007.history"

# ---- prefetch --------------------------------------------------------------------
next1=$(printf '%s%08X' "${label:0:16}" $((16#${label:16} + 1)))
next2=$(printf '%s%08X' "${label:0:16}" $((16#${label:16} + 2)))
# Make sure both follow $label in the repository.
for ((i = 0; i < 3; i++)); do
	pg_archived "$next2" && break
	qa postgres "INSERT INTO seed VALUES (1000 + $i, 'switch')" >/dev/null && pg_switch_wait
done
as_postgres mkdir -p "$W/pf"
check "wal-fetch --prefetch=2" pgc pg wal-fetch "$label" "$W/pf/RECOVERYXLOG" --prefetch=2
for ((i = 0; i < 100; i++)); do
	[ -f "$W/pf/.cairn-prefetch/$next1" ] && [ -f "$W/pf/.cairn-prefetch/$next2" ] && break
	sleep 0.1
done
[ -f "$W/pf/.cairn-prefetch/$next1" ] && [ -f "$W/pf/.cairn-prefetch/$next2" ]
ok $? "the next two segments ($next1, $next2) are prefetched in the background"
check "wal-fetch of a prefetched segment" pgc pg wal-fetch "$next1" "$W/pf/RECOVERYXLOG"
[ ! -e "$W/pf/.cairn-prefetch/$next1" ] && pgc pg wal-fetch "$next1" "$W/pf/direct" &&
	cmp -s "$W/pf/RECOVERYXLOG" "$W/pf/direct"
ok $? "it is taken from the prefetch folder, the same as the archived copy"
as_postgres cp "$W/pf/direct" "$W/pf/.cairn-prefetch/$label"
check "wal-fetch of a later segment" pgc pg wal-fetch "$next2" "$W/pf/RECOVERYXLOG" --prefetch=1
for ((i = 0; i < 100; i++)); do
	[ ! -e "$W/pf/.cairn-prefetch/$label" ] && break
	sleep 0.1
done
[ ! -e "$W/pf/.cairn-prefetch/$label" ]
ok $? "prefetched segments recovery has gone past are removed"

# ---- wal-verify, delete ---------------------------------------------------------
run pgc pg wal-verify
ok $? "wal-verify: WAL is continuous" || _show_result
like "$OUT" "^ok: WAL is continuous from $label" "wal-verify names the range from the oldest backup"

run pgc pg backup-push "$A_DIR"
ok $? "a second backup" || _show_result
SECOND=$OUT
second_start=$(pgc pg backup-list --json | json_get 'd[-1]["meta"]["start-wal"]')
run pgc pg delete retain 1 --confirm
ok $? "delete retain 1 --confirm" || _show_result
names=$(pgc pg backup-list --json | json_get '"\n".join(b["name"] for b in d)')
is "$names" "$SECOND" "only the second backup is left"
pg_archived "$label"
isnt "$?" 0 "WAL before the second backup ($label) was removed"
pg_archived "$second_start"
ok $? "WAL of the remaining backup ($second_start) was kept"
check "wal-verify still passes" pgc pg wal-verify

# A gap: take out one segment after the backup's start.
qa postgres "INSERT INTO seed VALUES (2000, 'x')" >/dev/null && pg_switch_wait
gap=$SWITCHED
qa postgres "INSERT INTO seed VALUES (2001, 'y')" >/dev/null && pg_switch_wait
rm -f "$REPO/logs/pg/wal/"*/"$gap"
run pgc pg wal-verify
isnt "$RC" 0 "wal-verify fails with a segment missing"
like "$OUT" "^missing $gap\.\.$gap" "wal-verify names the gap"

done_testing
