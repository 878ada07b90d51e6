#!/bin/bash
# redis-roundtrip.sh - RDB snapshots of a real Redis 7 over the replication
# protocol: 100,000 keys of mixed types back up and restore to a server with
# the same dataset (DEBUG DIGEST: every key, value, type and expire time);
# an unchanged dataset stores almost nothing, 1% of keys changed little;
# both transfer forms ($EOF: diskless, $<length> from disk); --from-file.

# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=../lib/redis.sh
. "$CAIRN_SRCDIR/tests/lib/redis.sh"
DATA="$PYTHON $CAIRN_SRCDIR/tests/lib/redis-data.py"
KEYS=100000

# Servers die with the test (lib.sh kills BG_PIDS on exit).
start() {
	redis_start "$@" || return 1
	BG_PIDS+=("$REDIS_PID")
}

rcli() { redis-cli -p "$1" "${@:2}"; }

# meta KEY of backup $1 (JSON of backup-show)
meta() { cairn backup-show "$1" --json | json_get "d['meta'].get('$2', '')"; }
stored_pct() {
	cairn backup-show "$1" --json | json_get "'%d %d' % (d['stored_size'], d['size'])"
}

start "$TMP/src"
ok $? "redis-server 7.0 starts" || done_testing
SRC=$REDIS_PORT
$DATA populate $KEYS 1 | rcli "$SRC" --pipe >"$TMP/populate.log" 2>&1
grep -q "errors: 0" "$TMP/populate.log"
ok $? "populated $KEYS keys of mixed types (and $((KEYS / 100)) in db 1)" || diag_file "$TMP/populate.log"
is "$(rcli "$SRC" dbsize)" "$KEYS" "db 0 holds $KEYS keys"
DIGEST1=$(rcli "$SRC" debug digest)
KEYSPACE1=$(rcli "$SRC" info keyspace | grep '^db' | cut -d, -f1,2)
export CAIRN_REDIS_URL="redis://127.0.0.1:$SRC"

# ---- 1. a snapshot over the network ----------------------------------------
run cairn redis backup-push
is "$RC" 0 "backup-push over the replication protocol" || diag "$ERR"
B1=$OUT
like "$B1" "$BACKUP_NAME_RE" "backup-push prints the backup name"
is "$(meta "$B1" kind)" rdb "manifest: kind rdb"
like "$(meta "$B1" redis_version)" '^7\.0\.' "manifest: redis_version 7.0.x"
is "$(meta "$B1" databases)" 2 "manifest: 2 databases hold keys"
is "$(meta "$B1" databases_configured)" 16 "manifest: 16 databases configured"
is "$(meta "$B1" keys)" $((KEYS + KEYS / 100)) "manifest: key count"
is "$(meta "$B1" transfer)" diskless "the diskless (\$EOF:) transfer form was used"
like "$(meta "$B1" repl_id)" '^[0-9a-f]{40}$' "manifest: replication id"
between "$(meta "$B1" snapshot_time)" $(($(date +%s) - 120)) $(($(date +%s) + 5)) "manifest: snapshot time"
is "$(cairn backup-show "$B1" --json | json_get "d['entries']")" 1 "the snapshot is one entry"

check "backup-fetch writes dump.rdb" cairn redis backup-fetch "$TMP/r1" "$B1"
test -s "$TMP/r1/dump.rdb"
ok $? "dump.rdb exists in DEST"
start "$TMP/r1"
ok $? "a second server starts on the restored dump.rdb" || done_testing
R1=$REDIS_PORT
is "$(rcli "$R1" debug digest)" "$DIGEST1" "restored dataset equals the source (DEBUG DIGEST: keys, values, types, TTLs)"
is "$(rcli "$R1" info keyspace | grep '^db' | cut -d, -f1,2)" "$KEYSPACE1" "same keys and keys with a TTL in each database"
# A sample of keys compared value by value (DUMP of a hashtable-encoded set
# depends on the order of its hash table, which a reload may change).
value_of() {
	local port=$1 key=$2
	case $(rcli "$port" type "$key") in
	string) echo string; rcli "$port" get "$key" ;;
	hash) echo hash; rcli "$port" hgetall "$key" | paste - - | sort ;;
	list) echo list; rcli "$port" lrange "$key" 0 -1 ;;
	set) echo set; rcli "$port" smembers "$key" | sort ;;
	zset) echo zset; rcli "$port" zrange "$key" 0 -1 withscores ;;
	*) echo none ;;
	esac
}
same=0
for k in k:string:000000 k:hash:000008 k:list:000011 k:set:000014 k:zset:000016 k:ttl:000018 k:hash:000028; do
	a=$(value_of "$SRC" "$k")
	[ "$a" = "$(value_of "$R1" "$k")" ] && [ "${a%%$'\n'*}" != none ] && same=$((same + 1))
done
is "$same" 7 "one key of every type has the same value"
between "$(rcli "$R1" ttl k:ttl:000018)" 80000 86500 "a key with a TTL keeps it"
is "$(rcli "$R1" type k:zset:000016)" zset "types survive (zset)"
redis_stop "$R1"

expect_fail "backup-fetch refuses to overwrite dump.rdb" cairn redis backup-fetch "$TMP/r1" "$B1"
check "backup-fetch --force replaces it" cairn redis backup-fetch "$TMP/r1" "$B1" --force

# ---- 2. deduplication ------------------------------------------------------
run cairn redis backup-push
is "$RC" 0 "backup-push of the unchanged dataset"
B2=$OUT
read -r st2 sz2 <<<"$(stored_pct "$B2")"
diag "unchanged: $st2 new bytes stored for a $sz2-byte snapshot"
cmp_ok $((st2 * 100)) -lt "$sz2" "unchanged dataset stores under 1% new bytes"

bytes_before=$(repo_bytes "$REPO")
$DATA change $KEYS 2 1 | rcli "$SRC" --pipe >"$TMP/change.log" 2>&1
grep -q "errors: 0" "$TMP/change.log"
ok $? "changed 1% of the keys" || diag_file "$TMP/change.log"
DIGEST3=$(rcli "$SRC" debug digest)
isnt "$DIGEST3" "$DIGEST1" "the dataset changed"
run cairn redis backup-push
is "$RC" 0 "backup-push after 1% of the keys changed"
B3=$OUT
read -r st3 sz3 <<<"$(stored_pct "$B3")"
bytes_after=$(repo_bytes "$REPO")
diag "1% changed: $st3 new bytes stored for a $sz3-byte snapshot ($((st3 * 1000 / sz3))/1000); repository grew $((bytes_after - bytes_before)) bytes with manifests"
cmp_ok $((st3 * 10)) -lt "$sz3" "1% of keys changed stores under 10% new bytes"

check "backup-fetch of the third backup" cairn redis backup-fetch "$TMP/r3" "$B3"
start "$TMP/r3"
ok $? "a server starts on the third backup" || done_testing
is "$(rcli "$REDIS_PORT" debug digest)" "$DIGEST3" "third backup restores the changed dataset"
redis_stop "$REDIS_PORT" 2>/dev/null
redis_stop

# ---- 3. the length-prefixed form (the server saves to disk first) ------------
start "$TMP/disk" --repl-diskless-sync no
ok $? "a server with repl-diskless-sync no starts" || done_testing
DISK=$REDIS_PORT
rcli "$DISK" debug populate 5000 key 64 >/dev/null
rcli "$DISK" select 3 >/dev/null
DIGESTD=$(rcli "$DISK" debug digest)
run cairn redis backup-push --redis-url "redis://127.0.0.1:$DISK"
is "$RC" 0 "backup-push from a disk-based master"
BD=$OUT
is "$(meta "$BD" transfer)" disk "the \$<length> transfer form was used"
check "backup-fetch of it" cairn redis backup-fetch "$TMP/rd" "$BD"
start "$TMP/rd"
is "$(rcli "$REDIS_PORT" debug digest)" "$DIGESTD" "disk-form snapshot restores the same dataset"
redis_stop

# ---- 4. --from-file ------------------------------------------------------------
run cairn redis backup-push --from-file "$TMP/r1/dump.rdb"
is "$RC" 0 "backup-push --from-file of an RDB file"
BF=$OUT
is "$(meta "$BF" source)" "file:$TMP/r1/dump.rdb" "source names the file"
check "backup-fetch of it" cairn redis backup-fetch "$TMP/rf" "$BF"
cmp -s "$TMP/r1/dump.rdb" "$TMP/rf/dump.rdb"
ok $? "the RDB file comes back byte for byte"
printf 'REDIS0010garbage that is not an RDB' >"$TMP/bad.rdb"
expect_fail "backup-push --from-file of a damaged RDB fails" cairn redis backup-push --from-file "$TMP/bad.rdb"
is "$(backup_names | grep -c .)" 5 "the failed push left no backup"

done_testing
