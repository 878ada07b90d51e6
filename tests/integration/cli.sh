#!/bin/bash
# cli.sh - the command line: help, version, usage errors, exit codes, option
# placement, per-engine names, backup-list/backup-show output.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SRC=$TMP/src
make_tree "$SRC" 1 101 || ok 1 "make the source tree"

# ---- version and help, with no repository at all ----
check "cairn version exits 0" cairn_norepo version
like "$OUT" '[0-9]+\.[0-9]+\.[0-9]+' "cairn version prints a version number"
like "$OUT" 'cairn' "cairn version names cairn"

check "cairn help exits 0" cairn_norepo help
for word in backup-push backup-fetch backup-list backup-show verify delete plugins; do
	like "$OUT" "$word" "cairn help mentions $word"
done

check "cairn help config exits 0" cairn_norepo help config
for var in CAIRN_REPO CAIRN_CONFIG CAIRN_COMPRESSION CAIRN_ENCRYPTION_KEY_FILE \
	CAIRN_ENCRYPTION_PASSPHRASE CAIRN_PLUGIN_DIR CAIRN_UPLOAD_CONCURRENCY \
	WALG_COMPRESSION_METHOD; do
	like "$OUT" "(^|[^A-Z_])${var}([^A-Z_]|\$)" "cairn help config lists $var"
done

# ---- usage errors ----
expect_fail -c 2 "unknown command: exit 2, one error line" cairn_norepo frobnicate
like "$ERR" 'frobnicate' "the error names the unknown command"
expect_fail -c 2 "unknown engine command: exit 2, one error line" cairn dir frobnicate
like "$ERR" 'frobnicate' "the error names the unknown engine command"
expect_fail -c 2 "unknown option: exit 2, one error line" cairn --frobnicate backup-list
like "$ERR" 'frobnicate' "the error names the unknown option"
expect_fail -c 2 "unknown option after the command: exit 2" cairn backup-list --frobnicate
expect_fail -c 2 "unknown setting --name=value: exit 2" cairn --no-such-setting=1 backup-list
like "$ERR" 'no-such-setting' "the error names the unknown setting"
expect_fail "unknown compression method is refused" cairn --compression=frobzip dir backup-push "$SRC"
like "$ERR" 'frobzip' "the error names the bad compression method"
ok "$([ ! -e "$REPO" ]; echo $?)" "a refused command created no repository"

# The passphrase is never accepted on the command line.
SECRET='hunter2-do-not-echo-9f8e7d'
expect_fail -c 2 "--encryption-passphrase=... on the command line is refused" \
	cairn --encryption-passphrase="$SECRET" dir backup-push "$SRC"
unlike "$ERR$OUT" "$SECRET" "the refusal does not echo the passphrase"
expect_fail -c 2 "--encryption-passphrase VALUE on the command line is refused" \
	cairn dir backup-push "$SRC" --encryption-passphrase "$SECRET"
unlike "$ERR$OUT" "$SECRET" "the refusal does not echo the passphrase (separate value)"
ok "$([ ! -e "$REPO" ]; echo $?)" "no repository was created by the refused pushes"

# ---- a repository that does not exist ----
expect_fail -c 3 "backup-list on a nonexistent repository: exit 3" cairn backup-list
like "$ERR" "$REPO" "the error names the repository path"
ok "$([ ! -e "$REPO" ]; echo $?)" "backup-list did not create the repository"
expect_fail -c 3 "backup-fetch from a nonexistent repository: exit 3" \
	cairn dir backup-fetch "$TMP/nothing" LATEST
ok "$([ ! -e "$TMP/nothing" ]; echo $?)" "backup-fetch from a nonexistent repository did not create DEST"

# An existing empty folder: a clear error or an empty list.
mkdir "$TMP/emptyrepo"
run cairn_norepo --repo "$TMP/emptyrepo" backup-list
if [ "$RC" = 0 ]; then
	is "$(cairn_norepo --repo "$TMP/emptyrepo" backup-list --json 2>/dev/null | json_get 'len(d)')" 0 \
		"backup-list on an empty folder: empty list"
else
	expect_fail -c 3 "backup-list on an empty folder: exit 3 with one error line" \
		cairn_norepo --repo "$TMP/emptyrepo" backup-list
fi

# ---- first backups ----
push_ok "backup-push creates the repository and prints the backup name" "$SRC"
B1=$PUSHED
like "$B1" '^dir-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$' "the name is dir-YYYYMMDDTHHMMSSZ[-N]"
ok "$([ -d "$REPO" ]; echo $?)" "the repository folder exists"

# The per-engine name (argv[0] dispatch).
CAIRN_DIR_BIN=$(dirname "$CAIRN")/cairn-dir
ok "$([ -x "$CAIRN_DIR_BIN" ]; echo $?)" "cairn-dir exists next to cairn"
run env CAIRN_REPO="$REPO" timeout 600 "$CAIRN_DIR_BIN" backup-push "$SRC"
ok "$([ "$RC" = 0 ] && [[ $OUT =~ ^dir-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$ ]]; echo $?)" \
	"cairn-dir backup-push works and prints a name"
[ "$RC" = 0 ] || _show_result
B2=$OUT
isnt "$B2" "$B1" "two backups get distinct names"
if [ "${B2%-*}" = "${B1%-*}" ] || [ "$B2" = "${B1%-*}" ]; then
	diag "both taken in the same second: $B1 $B2"
fi

# Options anywhere, --name=value and --name value, -v keeps stdout clean.
run cairn -v dir backup-push "$SRC"
ok "$([ "$RC" = 0 ] && [ "$(grep -c '' "$OUTF")" = 1 ] && [[ $OUT =~ $BACKUP_NAME_RE ]]; echo $?)" \
	"-v before the engine: stdout is still only the backup name"
[ "$RC" = 0 ] || _show_result
B3=$OUT
push_ok "options after the arguments: --compression lz4" "$SRC" --compression lz4
B4=$PUSHED
push_ok "--compression=zstd:3 form" "$SRC" --compression=zstd:3
B5=$PUSHED
run env CAIRN_REPO="$REPO" WALG_COMPRESSION_METHOD=brotli timeout 600 "$CAIRN" dir backup-push "$SRC"
ok "$([ "$RC" = 0 ]; echo $?)" "WALG_COMPRESSION_METHOD=brotli is accepted"
B6=$OUT

# ---- backup-list ----
check "backup-list exits 0" cairn backup-list
LIST=$OUT
first_col=$(printf '%s\n' "$LIST" | tail -n +2 | awk '{ print $1 }')
is "$first_col" "$(printf '%s\n' "$B1" "$B2" "$B3" "$B4" "$B5" "$B6")" \
	"backup-list: header, then one line per backup, oldest first, name first"
check "dir backup-list works too" cairn dir backup-list
is "$OUT" "$LIST" "dir backup-list prints the same as backup-list"
check "--repo option instead of CAIRN_REPO" cairn_norepo backup-list --repo "$REPO"
is "$OUT" "$LIST" "--repo after the command gives the same list"
check "--repo file:// URL" cairn_norepo --repo "file://$REPO" backup-list
is "$OUT" "$LIST" "file:// URL gives the same list"
check "CAIRN_REPO as file:// URL" env CAIRN_REPO="file://$REPO" timeout 600 "$CAIRN" backup-list
is "$OUT" "$LIST" "CAIRN_REPO=file://... gives the same list"

check "backup-list --json exits 0" cairn backup-list --json
JSON=$OUT
is "$(printf '%s' "$JSON" | json_get '" ".join(b["name"] for b in d)')" "$B1 $B2 $B3 $B4 $B5 $B6" \
	"backup-list --json: an array of the backups, oldest first"
check "--json before the command" cairn --json backup-list
is "$OUT" "$JSON" "--json anywhere gives the same output"

# Fields of one backup.
check_fields() { # LABEL JSON-OBJECT-FILE
	local label=$1 f=$2
	is "$(json_get 'd.get("engine")' <"$f")" dir "$label: engine is dir"
	like "$(json_get 'd.get("source")' <"$f")" "src" "$label: source names the backed-up path"
	like "$(json_get 'd.get("start_time")' <"$f")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$' \
		"$label: start_time is ISO 8601 UTC"
	like "$(json_get 'd.get("end_time")' <"$f")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$' \
		"$label: end_time is ISO 8601 UTC"
	is "$(json_get 'd["start_time"] <= d["end_time"]' <"$f")" true "$label: start_time <= end_time"
	is "$(json_get 'isinstance(d.get("size"), int) and d["size"] > 0' <"$f")" true "$label: size is a positive integer"
	is "$(json_get 'isinstance(d.get("stored_size"), int) and d["stored_size"] >= 0' <"$f")" true \
		"$label: stored_size is an integer"
	is "$(json_get 'isinstance(d.get("entries"), int) and d["entries"] > 10' <"$f")" true "$label: entries is an integer"
}
printf '%s' "$JSON" | json_get 'd[0]' >"$TMP/list0.json"
check_fields "backup-list --json" "$TMP/list0.json"
SRC_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
sz=$(json_get 'd["size"]' <"$TMP/list0.json")
between "$sz" "$SRC_BYTES" $((SRC_BYTES + 65536)) \
	"size ($sz) is the logical size of the tree ($SRC_BYTES bytes of files)"
is "$(json_get 'd[1]["stored_size"] < d[0]["stored_size"]' <<<"$JSON")" true \
	"the second backup of the same tree stored less than the first"

check "backup-show NAME exits 0" cairn backup-show "$B1"
like "$OUT" "$B1" "backup-show names the backup"
check "backup-show NAME --json exits 0" cairn backup-show "$B1" --json
printf '%s' "$OUT" >"$TMP/show.json"
is "$(json_get 'd.get("name")' <"$TMP/show.json")" "$B1" "backup-show --json: name"
check_fields "backup-show --json" "$TMP/show.json"
is "$(json_get 'isinstance(d.get("meta"), dict)' <"$TMP/show.json")" true "backup-show --json has a meta object"
is "$(json_get '{k: d[k] for k in ("name","engine","source","start_time","end_time","size","stored_size","entries")}' <"$TMP/show.json")" \
	"$(json_get '{k: d[k] for k in ("name","engine","source","start_time","end_time","size","stored_size","entries")}' <"$TMP/list0.json")" \
	"backup-show and backup-list agree on the fields"
expect_fail -c 3 "backup-show of a missing backup: exit 3" cairn backup-show dir-20000101T000000Z

# ---- missing backup, missing source ----
expect_fail -c 3 "backup-fetch of a missing backup: exit 3" \
	cairn dir backup-fetch "$TMP/restore-missing" dir-20000101T000000Z
like "$ERR" 'dir-20000101T000000Z' "the error names the missing backup"
ok "$([ ! -e "$TMP/restore-missing" ]; echo $?)" "the failed fetch created no DEST"

before=$(cairn backup-list --json | json_get 'len(d)')
expect_fail -c 1 "backup-push of a missing path: exit 1, one error line" \
	cairn dir backup-push "$TMP/no/such/dir"
like "$ERR" "$TMP/no/such/dir" "the error names the missing path"
is "$OUT" "" "no backup name on stdout"
is "$(cairn backup-list --json | json_get 'len(d)')" "$before" "backup-list shows no new backup"

# ---- the backups restore ----
tree_digest "$SRC" >"$TMP/src.dig"
fetch_ok "backup-fetch LATEST" LATEST "$TMP/r-latest"
same_tree "$TMP/src.dig" "$TMP/r-latest" "LATEST restores the tree"
fetch_ok "backup-fetch by name via cairn-dir" "$B4" "$TMP/r-b4"
same_tree "$TMP/src.dig" "$TMP/r-b4" "the lz4 backup restores the tree"
check "verify exits 0" cairn verify
check "verify NAME exits 0" cairn verify "$B6"
expect_fail -c 3 "verify of a missing backup: exit 3" cairn verify dir-20000101T000000Z

done_testing
