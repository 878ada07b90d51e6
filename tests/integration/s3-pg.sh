#!/bin/bash
# tests/integration/s3-pg.sh - the PostgreSQL walkthrough with the
# repository on S3 (versitygw): server A archives its WAL with
# archive_command = 'cairn pg wal-push %p' into s3://bucket/pg1, a base
# backup is pushed, more is written, and server B is built from the latest
# backup plus the WAL its restore_command fetches from the bucket. Then the
# quiet wal-fetch of a missing segment, wal-verify, and delete with WAL
# pruning, all through the s3 storage. The credentials reach the servers'
# archive and restore commands through their environment (AWS_*), as with
# WAL-G.
# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=pg-lib.sh
. "$CAIRN_SRCDIR/tests/integration/pg-lib.sh"
# shellcheck source=../lib/s3.sh
. "$CAIRN_SRCDIR/tests/lib/s3.sh"

trap 'postgres_stop; s3_stop; _cleanup' EXIT

pg_setup
ok $? "test folders and a copy of cairn the postgres user can run" || done_testing
if ! s3_start "$TMP/s3"; then
	ok 1 "versitygw starts"
	done_testing
fi
ok 0 "versitygw starts on $S3_ENDPOINT"
REPO=s3://$S3_BUCKET/pg1
BUCKET_DIR=$TMP/s3/data/$S3_BUCKET/pg1
# WAL in the repository, seen in the server's folder (pg-lib looks in $REPO).
pg_archived() {
	compgen -G "$BUCKET_DIR/logs/pg/wal/*/$1" >/dev/null
}

pg_start_a "$PGW/a"
ok $? "server A starts, archiving with cairn pg wal-push to $REPO" || done_testing
qa postgres "CREATE TABLE seed(id int PRIMARY KEY, note text);
	INSERT INTO seed SELECT g, 'row ' || g FROM generate_series(1, 10) g" >/dev/null
ok $? "seed table with 10 rows"

run pgc pg backup-push "$A_DIR"
ok $? "backup-push of A to s3" || { _show_result; done_testing; }
like "$OUT" '^pg-[0-9]{8}T[0-9]{6}Z' "backup-push prints the backup name"
label=$(pgc pg backup-list --json | json_get 'd[-1]["meta"]["start-wal"]' 2>/dev/null)
pg_archived "$label"
ok $? "the backup's first WAL segment ($label) is in the bucket"

qa postgres "INSERT INTO seed SELECT g, 'row ' || g FROM generate_series(11, 20) g;
	CREATE TABLE later(id int); INSERT INTO later VALUES (42)" >/dev/null
ok $? "10 more rows and a new table after the backup"
pg_switch_wait
ok $? "WAL switched and archived to s3"

run pgc pg backup-fetch "$PGW/b" LATEST --recovery
ok $? "backup-fetch LATEST --recovery from s3" || _show_result
like "$(cat "$PGW/b/postgresql.auto.conf" 2>/dev/null)" "wal-fetch %f %p.*--repo=[']*s3://$S3_BUCKET/pg1" \
	"restore_command fetches from the s3 repository"
pg_start_b "$PGW/b"
ok $? "server B starts and completes recovery with WAL from the bucket" || done_testing
is "$(qb postgres "SELECT count(*), sum(id) FROM seed")" "20|210" "B has all 20 rows"
is "$(qb postgres "SELECT id FROM later")" "42" "B has the table created after the backup"
postgres_stop "$B_DIR"

as_postgres mkdir -p "$PGW/w"
run pgc pg wal-fetch 0000000100000000000000FE "$PGW/w/missing"
is "$RC:$ERR" "3:" "wal-fetch of a segment not in the bucket exits 3 and prints nothing"
run pgc pg wal-verify
ok $? "wal-verify: WAL in the bucket is continuous" || _show_result

run pgc pg backup-push "$A_DIR"
ok $? "a second backup" || _show_result
SECOND=$OUT
run pgc pg delete retain 1 --confirm
ok $? "delete retain 1 --confirm" || _show_result
is "$(pgc pg backup-list --json | json_get '"\n".join(b["name"] for b in d)')" "$SECOND" \
	"only the second backup is left"
pg_archived "$label"
isnt "$?" 0 "WAL before the second backup ($label) was removed from the bucket"
check "wal-verify still passes" pgc pg wal-verify
run s3_multipart_uploads
is "$OUT" "" "no multipart upload is left"

done_testing
