#!/bin/bash
# redis-aof.sh - archiving a Redis 7 multi-part AOF and restoring to a point
# in time: writes at t1, t2, t3 with aof-push between them; a restore
# --until a time between t2 and t3 has t1 and t2 and nothing of t3; runs
# that find nothing new upload nothing; a rewrite (BGREWRITEAOF) starts a
# new chain and both chains restore; an AOF directory backed up with
# --from-file comes back whole.

# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=../lib/redis.sh
. "$CAIRN_SRCDIR/tests/lib/redis.sh"

start() {
	redis_start "$@" || return 1
	BG_PIDS+=("$REDIS_PID")
}
rcli() { redis-cli -p "$1" "${@:2}"; }
# appendfsync always: a write reaches the file before its reply (everysec may postpone it
# behind a slow fsync, and a later aof-push would then see "new" bytes).
AOF_ARGS=(--appendonly yes --appendfsync always --aof-timestamp-enabled yes --appenddirname appendonlydir)
# segments: names of the archived AOF segments, one a line
segments() { cairn st ls logs/redis/aof/ | cut -f1 | sort; }

start "$TMP/src" "${AOF_ARGS[@]}"
ok $? "redis-server starts with appendonly yes and timestamps" || done_testing
SRC=$REDIS_PORT
AOFDIR=$TMP/src/appendonlydir
export CAIRN_REDIS_URL="redis://127.0.0.1:$SRC"

# t1
rcli "$SRC" set k1 v1 >/dev/null
rcli "$SRC" incr counter >/dev/null
rcli "$SRC" rpush list a >/dev/null
check "aof-push after t1 (directory asked from the server)" cairn redis aof-push
like "$(segments)" 'appendonly\.aof\.1\.base\.rdb/0000000000000000-' "the base file is archived"
like "$(segments)" 'appendonly\.aof\.1\.incr\.aof/0000000000000000-' "the incremental file is archived"
before=$(segments)
check "aof-push again with nothing new" cairn redis aof-push "$AOFDIR"
is "$(segments)" "$before" "a run with nothing new uploads nothing"
sleep 1.1

# t2
rcli "$SRC" set k2 v2 >/dev/null
rcli "$SRC" incr counter >/dev/null
rcli "$SRC" rpush list b >/dev/null
check "aof-push after t2" cairn redis aof-push "$AOFDIR"
incr_size=$(stat -c %s "$AOFDIR/appendonly.aof.1.incr.aof")
last=$(segments | grep 'incr\.aof/' | tail -n 1)
like "$last" "-$(printf '%016x' "$incr_size")\$" "the second run archived up to the end of the file"
isnt "$last" "$(grep 'incr\.aof/' <<<"$before" | tail -n 1)" "...from where the first run stopped, as a new segment"
sleep 1.2
UNTIL=$(date +%s)
sleep 1.2

# t3
rcli "$SRC" set k3 v3 >/dev/null
rcli "$SRC" incr counter >/dev/null
rcli "$SRC" rpush list c >/dev/null
check "aof-push after t3" cairn redis aof-push "$AOFDIR"
DIGEST3=$(rcli "$SRC" debug digest)

# backup-fetch needs a backup to name: the AOF directory itself.
run cairn redis backup-push --from-file "$AOFDIR"
is "$RC" 0 "backup-push --from-file of the AOF directory"
BA=$OUT
is "$(cairn backup-show "$BA" --json | json_get "d['meta']['kind']")" aof "the backup is of kind aof"

UNTIL_TEXT=$(date -u -d "@$UNTIL" '+%Y-%m-%d %H:%M:%S')
check "backup-fetch --until a time between t2 and t3 ($UNTIL_TEXT UTC)" \
	cairn redis backup-fetch "$TMP/pitr" LATEST --until "$UNTIL_TEXT"
test -f "$TMP/pitr/appendonlydir/appendonly.aof.manifest"
ok $? "the AOF directory is rebuilt with its manifest"
start "$TMP/pitr" "${AOF_ARGS[@]}"
ok $? "a server starts on the rebuilt AOF" || done_testing
P=$REDIS_PORT
is "$(rcli "$P" get k1)" v1 "t1 write is there"
is "$(rcli "$P" get k2)" v2 "t2 write is there"
is "$(rcli "$P" exists k3)" 0 "t3 write is not"
is "$(rcli "$P" get counter)" 2 "INCR applied exactly twice (nothing replayed twice)"
is "$(rcli "$P" lrange list 0 -1 | tr '\n' ' ')" "a b " "the list has the t1 and t2 elements"
redis_stop

expect_fail "backup-fetch --until refuses an existing AOF directory" \
	cairn redis backup-fetch "$TMP/pitr" LATEST --until "$UNTIL"
expect_fail -c 2 "backup-fetch --until rejects a bad time" \
	cairn redis backup-fetch "$TMP/bad" LATEST --until "yesterday-ish"
expect_fail -c 3 "backup-fetch --until before the first base fails" \
	cairn redis backup-fetch "$TMP/early" LATEST --until "2001-01-01T00:00:00Z"

# ---- a rewrite starts a new chain ---------------------------------------------
rcli "$SRC" bgrewriteaof >/dev/null
for ((i = 0; i < 100; i++)); do
	[ "$(rcli "$SRC" info persistence | tr -d '\r' | sed -n 's/^aof_rewrite_in_progress://p')" = 0 ] &&
		[ -f "$AOFDIR/appendonly.aof.2.base.rdb" ] && break
	sleep 0.1
done
test -f "$AOFDIR/appendonly.aof.2.base.rdb"
ok $? "BGREWRITEAOF wrote a new base"
sleep 1.1
rcli "$SRC" set k4 v4 >/dev/null
check "aof-push after the rewrite" cairn redis aof-push "$AOFDIR"
like "$(segments)" 'appendonly\.aof\.2\.base\.rdb/' "the new base is archived"
like "$(segments)" 'appendonly\.aof\.2\.incr\.aof/0000000000000000-' "the new incremental file is archived"
DIGEST4=$(rcli "$SRC" debug digest)

check "backup-fetch --until now rebuilds from the new base" \
	cairn redis backup-fetch "$TMP/now" LATEST --until "$(($(date +%s) + 1))"
like "$(cat "$TMP/now/appendonlydir/appendonly.aof.manifest")" 'appendonly\.aof\.2\.base\.rdb' "the newest base was chosen"
start "$TMP/now" "${AOF_ARGS[@]}"
is "$(rcli "$REDIS_PORT" debug digest)" "$DIGEST4" "restore to now equals the source"
redis_stop

check "backup-fetch --until between t2 and t3 after the rewrite" \
	cairn redis backup-fetch "$TMP/pitr2" LATEST --until "$UNTIL" --force
start "$TMP/pitr2" "${AOF_ARGS[@]}"
is "$(rcli "$REDIS_PORT" get counter)/$(rcli "$REDIS_PORT" exists k3)/$(rcli "$REDIS_PORT" exists k4)" \
	"2/0/0" "the older chain still restores to between t2 and t3"
redis_stop

# ---- the AOF directory backup, restored without --until -----------------------
check "backup-fetch of the AOF directory backup" cairn redis backup-fetch "$TMP/whole" "$BA"
start "$TMP/whole" "${AOF_ARGS[@]}"
is "$(rcli "$REDIS_PORT" debug digest)" "$DIGEST3" "the AOF directory backup restores the state at t3"
redis_stop

# ---- retention: delete drops the chains no remaining backup needs ---------------
sleep 1.1
run cairn redis backup-push
is "$RC" 0 "an RDB snapshot after the rewrite"
KEEP=$OUT
check "delete retain 1 --confirm" cairn redis delete retain 1 --confirm
is "$(backup_names)" "$KEEP" "only the newest backup remains"
unlike "$(segments)" 'appendonly\.aof\.1\.' "the chain of the first base is pruned"
like "$(segments)" 'appendonly\.aof\.2\.base\.rdb/' "the chain of the current base is kept"
expect_fail -c 3 "--until before the kept base now fails" \
	cairn redis backup-fetch "$TMP/gone" LATEST --until "$UNTIL"
check "--until now still restores after the prune" \
	cairn redis backup-fetch "$TMP/now2" LATEST --until "$(($(date +%s) + 1))"

done_testing
