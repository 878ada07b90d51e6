#!/bin/bash
# kill.sh - kill -9 backup-push at random moments: every backup that is
# listed afterwards verifies and restores, the repository stays usable and
# a lock left by a dead process does not block the next backup.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

ITERATIONS=${KILL_ITERATIONS:-15}
SRC=$TMP/src
t0=$(date +%s)
make_tree "$SRC" "${KILL_TREE_MB:-200}" 606 || ok 1 "make the source tree"
diag "tree made in $(($(date +%s) - t0)) s"
RANDOM=606
export CAIRN_COMPRESSION=zstd
# Read every file: with unchanged files skipped a push is over before it can be killed.
export CAIRN_SKIP_UNCHANGED=false

now_ms() { echo $(($(date +%s%N) / 1000000)); }

declare -A DIG  # backup name -> digest file of the tree it holds
declare -A SEEN # backup name -> 1 once restored and compared

# next_state: the tree changes a little (a new 4 MiB random file replaces
# the previous one), so every push has new data to upload.
state=0
tree_digest "$SRC" >"$TMP/state0.dig"
next_state() {
	rm -f "$SRC/data/new-$state.bin"
	state=$((state + 1))
	rand_file "$SRC/data/new-$state.bin" $((4 * 1048576)) "$((600 + state))"
	printf 'state %d\n' "$state" >>"$SRC/docs/d03/f0003.txt"
	tree_digest "$SRC" >"$TMP/state$state.dig"
}

# A first complete backup (the kills must never damage it), then a timed
# push of a slightly changed tree: the kills land within that time.
t=$(now_ms)
push_ok "a first, complete backup" "$SRC"
[ -n "$PUSHED" ] && DIG[$PUSHED]=$TMP/state0.dig
diag "the first backup took $(($(now_ms) - t)) ms"
next_state
t=$(now_ms)
push_ok "a second backup after a small change" "$SRC"
PUSH_MS=$(($(now_ms) - t))
[ -n "$PUSHED" ] && DIG[$PUSHED]=$TMP/state$state.dig
MAX_MS=$((PUSH_MS * 12 / 10))
[ "$MAX_MS" -gt 2000 ] && MAX_MS=2000
[ "$MAX_MS" -lt 150 ] && MAX_MS=150
diag "a push of a small change took $PUSH_MS ms: kills come after 50..$MAX_MS ms"

# check_listed LABEL: every listed backup verifies; new ones also restore.
check_listed() {
	local label=$1 names name n=0
	if ! names=$(backup_names); then
		ok 1 "$label: backup-list --json works"
		return
	fi
	for name in $names; do
		n=$((n + 1))
		check "$label: verify $name" cairn verify "$name"
		if [ -z "${DIG[$name]:-}" ]; then
			# Made by a push that was killed after it committed: the tree as it is now.
			DIG[$name]=$TMP/state$state.dig
		fi
		if [ -z "${SEEN[$name]:-}" ]; then
			SEEN[$name]=1
			rm -rf "$TMP/out"
			fetch_ok "$label: backup-fetch $name" "$name" "$TMP/out"
			same_tree "${DIG[$name]}" "$TMP/out" "$label: $name restores its tree"
			rm -rf "$TMP/out"
		fi
	done
	diag "$label: $n backups listed"
}

killed=0
for i in $(seq 1 "$ITERATIONS"); do
	next_state
	ms=$((50 + RANDOM % (MAX_MS - 49)))
	delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
	CAIRN_REPO="$REPO" "$CAIRN" dir backup-push "$SRC" >"$TMP/push.out" 2>"$TMP/push.err" &
	pid=$!
	BG_PIDS+=("$pid")
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	bg_forget "$pid"
	if [ "$rc" = 137 ]; then
		killed=$((killed + 1))
		diag "iteration $i: killed after $delay s"
	else
		# It finished before the kill: it must have succeeded.
		is "$rc" 0 "iteration $i: the push that finished before the kill ($delay s) succeeded"
		name=$(head -n 1 "$TMP/push.out")
		if [ "$rc" = 0 ] && [[ $name =~ $BACKUP_NAME_RE ]]; then
			DIG[$name]=$TMP/state$state.dig
			run backup_names
			like "$OUT" "^$name\$" "iteration $i: the finished backup $name is listed"
		else
			diag_file "$TMP/push.err"
		fi
	fi
	check_listed "after kill $i"
done
cmp_ok "$killed" -gt 0 "pushes were killed while they ran ($killed of $ITERATIONS)"

# A normal backup after all that: no stale lock blocks it.
push_ok "a normal backup-push after the kills succeeds" "$SRC"
if [ -n "$PUSHED" ]; then
	check "the new backup verifies" cairn verify "$PUSHED"
	fetch_ok "the new backup restores" "$PUSHED" "$TMP/final"
	same_tree "$TMP/state$state.dig" "$TMP/final" "the new backup holds the current tree"
	rm -rf "$TMP/final"
fi
check_listed "at the end"
check "verify of the whole repository exits 0 (leftovers of killed pushes are not damage)" cairn verify

done_testing
