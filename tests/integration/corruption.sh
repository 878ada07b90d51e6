#!/bin/bash
# corruption.sh - damage every stored object in turn (one flipped byte; for
# packs also the first and the last byte; truncation; deletion): verify must
# find it and name the object, and a restore must fail rather than give back
# a different tree.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SRC=$TMP/src
make_tree "$SRC" "${CORRUPTION_TREE_MB:-4}" 505 || ok 1 "make the source tree"
RANDOM=505
ALLOW6=0

# ---- a repository with two backups ----
tree_digest "$SRC" >"$TMP/b1.dig"
push_ok "backup 1" "$SRC"
B1=$PUSHED
rand_file "$SRC/data/new.bin" $((300 * 1024)) 506
printf 'changed\n' >>"$SRC/docs/d02/f0002.txt"
tree_digest "$SRC" >"$TMP/b2.dig"
push_ok "backup 2" "$SRC"
B2=$PUSHED
check "verify of the intact repository exits 0" cairn verify
ORIG=$TMP/orig
cp -a "$REPO" "$ORIG"

# objects KEYS...: the stored objects of $REPO (relative keys, locks left out)
objects() {
	(cd "$1" && find . -type f ! -path './locks/*' | sed 's|^\./||' | LC_ALL=C sort)
}
mapfile -t OBJS < <(objects "$ORIG")
diag "${#OBJS[@]} objects: $(printf '%s ' "${OBJS[@]}" | cut -c1-600)"

# The layout of the repository.
have() { printf '%s\n' "${OBJS[@]}" | grep -Eq "$1"; }
ok "$(have '^config$'; echo $?)" "the repository has config"
ok "$(have "^manifests/$B1\$" && have "^manifests/$B2\$"; echo $?)" "the repository has manifests/<name> of both backups"
ok "$(have "^catalog/$B1\$" && have "^catalog/$B2\$"; echo $?)" "the repository has catalog/<name> of both backups"
ok "$(have '^index/.'; echo $?)" "the repository has index objects"
mapfile -t PACKS < <(printf '%s\n' "${OBJS[@]}" | grep '^packs/')
bad_pack_keys=$(printf '%s\n' "${PACKS[@]}" | grep -Ev '^packs/([0-9a-f]{2})/\1[0-9a-f]{62}$')
ok "$([ "${#PACKS[@]}" -gt 0 ] && [ -z "$bad_pack_keys" ]; echo $?)" \
	"packs are stored as packs/<2 hex>/<64 hex> (${#PACKS[@]} packs)"
[ -z "$bad_pack_keys" ] || diag "bad pack keys: $bad_pack_keys"
no_magic=""
for k in "${OBJS[@]}"; do
	[ "$(head -c 4 "$ORIG/$k")" = CRNO ] || no_magic+="$k "
done
is "$no_magic" "" "every object starts with CRNO"

# mentions TEXT KEY: TEXT names KEY (or its last part when that is specific)
mentions() {
	local text=$1 key=$2 base=${2##*/}
	[[ $text == *"$key"* ]] || { [ "${#base}" -ge 8 ] && [[ $text == *"$base"* ]]; }
}

# restore_check LABEL BACKUP DIGEST: backup-fetch fails cleanly or gives the
# original tree, never a different one.
restore_check() {
	local label=$1 backup=$2 dig=$3
	rm -rf "$TMP/out"
	run cairn dir backup-fetch "$TMP/out" "$backup"
	if [ "$RC" = 0 ]; then
		same_tree "$dig" "$TMP/out" "$label: backup-fetch $backup succeeded and gave the original tree"
	else
		ok "$([ "$RC" -lt 124 ]; echo $?)" "$label: backup-fetch $backup failed cleanly (exit $RC)"
		if [ "$RC" -ge 124 ] || [ "$(head -c 7 "$ERRF")" != "cairn: " ]; then
			_show_result
		fi
	fi
	rm -rf "$TMP/out"
}

_case=0
# damage_case LABEL KEY ACTION [ARG]: on a fresh copy of $ORIG, damage KEY
# (flip OFFSET | truncate | delete | add), then check verify and restores.
# ALLOW6=1: exit 6 (wrong key) is accepted as well, without naming the key.
damage_case() {
	local label=$1 key=$2 action=$3 arg=${4:-} size saved_repo=$REPO
	_case=$((_case + 1))
	REPO=$TMP/work
	rm -rf "$REPO"
	cp -a "$ORIG" "$REPO"
	export XDG_CACHE_HOME="$TMP/cache-$_case"
	case $action in
	flip) flip_byte "$REPO/$key" "$arg" ;;
	truncate)
		size=$(file_size "$REPO/$key")
		truncate -s $((size / 2)) "$REPO/$key"
		;;
	delete) rm -f "$REPO/$key" ;;
	add)
		mkdir -p "$(dirname "$REPO/$key")"
		printf 'not an object\n' >"$REPO/$key"
		;;
	esac
	run cairn verify
	if [ "${ALLOW6:-0}" = 1 ] && [ "$RC" = 6 ]; then
		ok 0 "$label: verify exits 6 (the key does not open)"
	else
		is "$RC" 4 "$label: verify exits 4"
		if mentions "$ERR" "$key"; then
			ok 0 "$label: verify names $key"
		else
			ok 1 "$label: verify names $key"
			_show_result
		fi
	fi
	restore_check "$label" LATEST "$DIG2"
	restore_check "$label" "$BK1" "$DIG1"
	REPO=$saved_repo
}

# rand_offset SIZE: a random offset in [0, SIZE)
rand_offset() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }

DIG1=$TMP/b1.dig
DIG2=$TMP/b2.dig
BK1=$B1
for k in "${OBJS[@]}"; do
	size=$(file_size "$ORIG/$k")
	off=$(rand_offset "$size")
	damage_case "$k, byte $off of $size flipped" "$k" flip "$off"
	if [[ $k == packs/* ]]; then
		damage_case "$k, first byte flipped" "$k" flip 0
		damage_case "$k, last byte flipped" "$k" flip $((size - 1))
	fi
done
if [ "${#PACKS[@]}" -gt 0 ]; then
	damage_case "${PACKS[0]} truncated to half" "${PACKS[0]}" truncate
	damage_case "${PACKS[0]} deleted" "${PACKS[0]}" delete
fi
damage_case "manifests/$B1 deleted" "manifests/$B1" delete
damage_case "a foreign file in packs/" "packs/00/$(printf '0%.0s' {1..64})" add

# A missing manifest damages that backup only.
REPO=$TMP/work
rm -rf "$REPO"
cp -a "$ORIG" "$REPO"
rm -f "$REPO/manifests/$B1"
check "with manifests/$B1 gone, verify $B2 exits 0" cairn verify "$B2"
run cairn verify "$B1"
is "$RC" 4 "with manifests/$B1 gone, verify $B1 exits 4"
run cairn dir backup-fetch "$TMP/out" "$B1"
ok "$([ "$RC" != 0 ] && [ "$RC" -lt 124 ]; echo $?)" "with manifests/$B1 gone, backup-fetch $B1 fails cleanly (exit $RC)"
rm -rf "$TMP/out" "$REPO"

# ---- the same on an encrypted repository (one random byte per object) ----
REPO=$TMP/repo-enc
"$PYTHON" -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(32))' "$TMP/key"
export CAIRN_ENCRYPTION_KEY_FILE="$TMP/key"
tree_digest "$SRC" >"$TMP/e1.dig"
push_ok "encrypted backup 1" "$SRC"
E1=$PUSHED
rand_file "$SRC/data/new2.bin" $((200 * 1024)) 507
tree_digest "$SRC" >"$TMP/e2.dig"
push_ok "encrypted backup 2" "$SRC"
check "verify of the intact encrypted repository exits 0" cairn verify
ORIG=$TMP/orig-enc
cp -a "$REPO" "$ORIG"
mapfile -t OBJS < <(objects "$ORIG")
DIG1=$TMP/e1.dig
DIG2=$TMP/e2.dig
BK1=$E1
for k in "${OBJS[@]}"; do
	size=$(file_size "$ORIG/$k")
	off=$(rand_offset "$size")
	ALLOW6=0
	[[ $k == keys/* ]] && ALLOW6=1
	damage_case "encrypted: $k, byte $off of $size flipped" "$k" flip "$off"
done
ok "$(printf '%s\n' "${OBJS[@]}" | grep -q '^keys/.'; echo $?)" "the encrypted repository has keys/<id>"
ALLOW6=0

done_testing
