#!/bin/bash
# retention.sh - delete retain N / delete before NAME|TIME: dry run by
# default, --confirm deletes and collects garbage, what remains verifies and
# restores.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SRC=$TMP/src
make_tree "$SRC" "${RETENTION_TREE_MB:-4}" 707 || ok 1 "make the source tree"
NAMES=()
declare -A DIG

# next_backup I: change the tree (a new 2 MiB random file replaces the one
# of the previous step, a text file grows) and back it up.
next_backup() {
	local i=$1
	rm -f "$SRC/data/unique-$((i - 1)).bin"
	rand_file "$SRC/data/unique-$i.bin" $((2 * 1048576)) "$((700 + i))"
	printf 'step %d\n' "$i" >>"$SRC/docs/d04/f0004.txt"
	tree_digest "$SRC" >"$TMP/b$i.dig"
	push_ok "backup $i" "$SRC"
	NAMES[i]=$PUSHED
	[ -n "$PUSHED" ] && DIG[$PUSHED]=$TMP/b$i.dig
}

# listed: the names of backup-list, space-separated
listed() { backup_names | tr '\n' ' ' | sed 's/ $//'; }

# restores NAME...: each restores its own tree
restores() {
	local name
	for name in "$@"; do
		rm -rf "$TMP/out"
		fetch_ok "backup-fetch $name" "$name" "$TMP/out"
		if [ -n "$name" ] && [ -n "${DIG[$name]:-}" ]; then
			same_tree "${DIG[$name]}" "$TMP/out" "$name restores its tree"
		else
			ok 1 "backup '$name' restores its tree (no such backup was made)"
		fi
	done
	rm -rf "$TMP/out"
}

for i in 1 2 3 4 5; do
	next_backup "$i"
done
is "$(listed)" "${NAMES[*]:1:5}" "backup-list lists the five backups, oldest first"

# ---- delete retain 2: dry run ----
bytes0=$(repo_bytes "$REPO")
check "delete retain 2 (dry run) exits 0" cairn delete retain 2
for i in 1 2 3; do
	like "$OUT$ERR" "${NAMES[i]}" "the dry run names ${NAMES[i]} as to be deleted"
done
is "$(listed)" "${NAMES[*]:1:5}" "the dry run deleted no backup"
is "$(repo_bytes "$REPO")" "$bytes0" "the dry run removed no byte"

# ---- delete retain 2 --confirm ----
check "delete retain 2 --confirm exits 0" cairn delete retain 2 --confirm
is "$(listed)" "${NAMES[4]} ${NAMES[5]}" "two backups remain, the newest"
bytes1=$(repo_bytes "$REPO")
cmp_ok "$bytes1" -lt "$bytes0" "the repository shrank ($bytes0 -> $bytes1 bytes)"
cmp_ok $((bytes1 * 100)) -lt $((bytes0 * 85)) "garbage collection removed the data only the deleted backups held"
for i in 1 2 3; do
	ok "$([ ! -e "$REPO/catalog/${NAMES[i]}" ] && [ ! -e "$REPO/manifests/${NAMES[i]}" ]; echo $?)" \
		"catalog and manifest of ${NAMES[i]} are gone"
done
expect_fail -c 3 "backup-fetch of a deleted backup: exit 3" cairn dir backup-fetch "$TMP/gone" "${NAMES[1]}"
expect_fail -c 3 "backup-show of a deleted backup: exit 3" cairn backup-show "${NAMES[2]}"
check "verify exits 0 after delete retain" cairn verify
restores "${NAMES[4]}" "${NAMES[5]}"
check "delete retain 2 --confirm again changes nothing" cairn delete retain 2 --confirm
is "$(listed)" "${NAMES[4]} ${NAMES[5]}" "still the same two backups"

# ---- delete before NAME ----
for i in 6 7 8; do
	next_backup "$i"
done
bytes2=$(repo_bytes "$REPO")
check "delete before NAME (dry run) exits 0" cairn delete before "${NAMES[7]}"
is "$(listed)" "${NAMES[*]:4:5}" "the dry run of delete before deleted no backup"
is "$(repo_bytes "$REPO")" "$bytes2" "the dry run of delete before removed no byte"
check "delete before ${NAMES[7]} --confirm exits 0" cairn delete before "${NAMES[7]}" --confirm
is "$(listed)" "${NAMES[7]} ${NAMES[8]}" "delete before NAME removed the older backups and kept NAME"
check "verify exits 0 after delete before" cairn verify
restores "${NAMES[7]}" "${NAMES[8]}"

check "delete before a time long past --confirm exits 0" cairn delete before 2000-01-01T00:00:00Z --confirm
is "$(listed)" "${NAMES[7]} ${NAMES[8]}" "delete before a time long past deletes nothing"
expect_fail -c 3 "delete before a missing backup: exit 3" cairn delete before dir-20000101T000000Z --confirm
is "$(listed)" "${NAMES[7]} ${NAMES[8]}" "the failed delete deleted nothing"
expect_fail -c 2 "delete retain without a number: exit 2" cairn delete retain
expect_fail -c 2 "delete retain with a bad number: exit 2" cairn delete retain two --confirm
is "$(listed)" "${NAMES[7]} ${NAMES[8]}" "the refused deletes deleted nothing"

# ---- all but one ----
bytes3=$(repo_bytes "$REPO")
check "delete before ${NAMES[8]} --confirm exits 0" cairn delete before "${NAMES[8]}" --confirm
is "$(listed)" "${NAMES[8]}" "one backup remains"
cmp_ok "$(repo_bytes "$REPO")" -lt "$bytes3" "the repository shrank again"
check "verify exits 0 with one backup left" cairn verify
restores "${NAMES[8]}"
check "delete retain 1 --confirm with one backup left exits 0" cairn delete retain 1 --confirm
is "$(listed)" "${NAMES[8]}" "the last backup is kept"

# The repository keeps working after the deletions.
next_backup 9
is "$(listed)" "${NAMES[8]} ${NAMES[9]}" "a new backup after the deletions is listed"
check "verify exits 0 at the end" cairn verify
restores "${NAMES[8]}" "${NAMES[9]}"

done_testing
