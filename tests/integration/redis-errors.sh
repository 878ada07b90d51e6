#!/bin/bash
# redis-errors.sh - bad input gives one clear error and lists no backup:
# wrong or missing password (the password never shows), a server killed in
# the middle of a transfer, a port that does not speak Redis, nothing
# listening, rediss:// (no TLS in this build). And what must work: AUTH
# with an ACL user and password from the URL or the environment.

# shellcheck source=lib.sh
. "$CAIRN_SRCDIR/tests/integration/lib.sh"
# shellcheck source=../lib/redis.sh
. "$CAIRN_SRCDIR/tests/lib/redis.sh"

start() {
	redis_start "$@" || return 1
	BG_PIDS+=("$REDIS_PID")
}
rcli() { redis-cli -p "$1" "${@:2}"; }
no_backup() { is "$(backup_names | grep -c .)" 0 "$1: no backup is listed"; }
PASSWORD='s3cret-Pa55word'

# ---- passwords -----------------------------------------------------------------
REDIS_START_AUTH=$PASSWORD start "$TMP/auth" --requirepass "$PASSWORD"
ok $? "a server with requirepass starts" || done_testing
AUTH=$REDIS_PORT
redis-cli -p "$AUTH" --no-auth-warning -a "$PASSWORD" acl setuser backup on '>bk-pass' '+@all' '~*' >/dev/null
export CAIRN_REDIS_URL="redis://127.0.0.1:$AUTH"

CAIRN_REDIS_PASSWORD=wrong-Guess99 expect_fail -c 6 "wrong password: exit 6, one line" cairn redis backup-push
unlike "$ERR" 'wrong-Guess99' "the password is not in the message"
like "$ERR" 'refused the password' "the message says the password was refused"
no_backup "wrong password"
expect_fail -c 6 "no password for a server that needs one: exit 6" cairn redis backup-push
like "$ERR" 'requires a password' "the message says a password is needed"
CAIRN_REDIS_URL="redis://backup:wrong-Guess99@127.0.0.1:$AUTH" expect_fail -c 6 \
	"wrong password of an ACL user in the URL: exit 6" cairn redis backup-push
unlike "$ERR" 'wrong-Guess99' "a password from the URL is not in the message either"
no_backup "wrong passwords"
expect_fail -c 2 "--redis-password is refused on the command line" \
	cairn redis backup-push --redis-password "$PASSWORD"

CAIRN_REDIS_PASSWORD=$PASSWORD check "the right password (CAIRN_REDIS_PASSWORD) works" cairn redis backup-push
REDISCLI_AUTH=$PASSWORD check "REDISCLI_AUTH works too" cairn redis backup-push
CAIRN_REDIS_URL="redis://backup:bk-pass@127.0.0.1:$AUTH" check "an ACL user and password in the URL work" \
	cairn redis backup-push
is "$(backup_names | grep -c .)" 3 "three backups listed"
unlike "$(cairn backup-list --json)" "$PASSWORD|bk-pass" "no password in the backup list"
redis_stop "$AUTH"
rm -rf "$REPO"

# ---- a server killed during the transfer ----------------------------------------
# rdb-key-save-delay (microseconds per key) makes the snapshot take ~10 s.
start "$TMP/slow" --rdb-key-save-delay 200
ok $? "a slow-saving server starts" || done_testing
SLOW=$REDIS_PORT
SLOW_PID=$REDIS_PID
rcli "$SLOW" debug populate 50000 key 100 >/dev/null
CAIRN_REDIS_URL="redis://127.0.0.1:$SLOW" cairn redis backup-push >"$TMP/kill.out" 2>"$TMP/kill.err" &
push=$!
BG_PIDS+=("$push")
# Kill once the snapshot is being sent (the server forked for it).
for ((i = 0; i < 100; i++)); do
	[ "$(rcli "$SLOW" info persistence | tr -d '\r' | sed -n 's/^rdb_bgsave_in_progress://p')" = 1 ] && break
	sleep 0.1
done
sleep 0.5
kill -9 "$SLOW_PID"
wait "$push"
rc=$?
bg_forget "$push"
isnt "$rc" 0 "backup-push fails when the server dies mid-transfer"
is "$(grep -c '' "$TMP/kill.err")" 1 "one error line" || diag_file "$TMP/kill.err"
like "$(cat "$TMP/kill.err")" '^cairn: .*(closed the connection|lost the connection)' "it says the connection ended"
no_backup "server killed mid-transfer"

# ---- not a Redis server ------------------------------------------------------------
HTTP_PORT=$(free_port)
"$PYTHON" -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$TMP" >/dev/null 2>&1 &
BG_PIDS+=("$!")
wait_port "$HTTP_PORT"
CAIRN_REDIS_URL="redis://127.0.0.1:$HTTP_PORT" expect_fail -c 2 "an HTTP port: exit 2, one line" \
	cairn redis backup-push
like "$ERR" 'does not speak the Redis protocol' "it says the port does not speak Redis"
no_backup "non-Redis port"

NOBODY=$(free_port)
CAIRN_REDIS_URL="redis://127.0.0.1:$NOBODY" expect_fail "nothing listening: one line" cairn redis backup-push
like "$ERR" "cannot connect to redis://127.0.0.1:$NOBODY" "it names the address"
CAIRN_REDIS_URL="rediss://127.0.0.1:$NOBODY" expect_fail "rediss:// is refused clearly" cairn redis backup-push
like "$ERR" 'not supported by this build' "it says TLS is not supported by this build"
CAIRN_REDIS_URL="http://x" expect_fail -c 2 "a URL of another scheme: exit 2" cairn redis backup-push
no_backup "bad addresses"

done_testing
