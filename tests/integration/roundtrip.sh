#!/bin/bash
# roundtrip.sh - backup-push then backup-fetch gives back the identical tree,
# for every compression method and every kind of encryption; restore rules
# (non-empty DEST, --force); wrong or missing keys; secrets never stored.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

SRC=$TMP/src
make_tree "$SRC" "${ROUNDTRIP_TREE_MB:-20}" 303 || ok 1 "make the source tree"
tree_digest "$SRC" >"$TMP/src.dig"
tree_digest --no-root "$SRC" >"$TMP/src-noroot.dig"

"$PYTHON" -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(32))' "$TMP/key"
"$PYTHON" -c 'import os, sys; open(sys.argv[1], "wb").write(os.urandom(32))' "$TMP/wrongkey"
PASS='correct horse battery staple 4b7f2e'
printf '%s' "$PASS" >"$TMP/pass"

# secret_in DIR FILE: lists the files below DIR holding FILE's bytes (raw, hex
# or base64); exit 0 when there is one.
# shellcheck disable=SC2317 # called through run
secret_in() {
	"$PYTHON" -c '
import base64, binascii, os, sys
s = open(sys.argv[2], "rb").read()
needles = {s, binascii.hexlify(s), binascii.hexlify(s).upper(), base64.b64encode(s),
           base64.b64encode(s).rstrip(b"="), base64.urlsafe_b64encode(s).rstrip(b"=")}
found = []
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        p = os.path.join(d, f)
        with open(p, "rb") as fh:
            data = fh.read()
        if any(n in data for n in needles):
            found.append(p)
print("\n".join(found))
sys.exit(0 if found else 1)
' "$1" "$2"
}

clear_settings() {
	unset CAIRN_COMPRESSION WALG_COMPRESSION_METHOD CAIRN_ENCRYPTION_KEY_FILE CAIRN_ENCRYPTION_PASSPHRASE
}

# ---- every compression x every encryption ----
PLAIN_NONE_BYTES=""
ci=0
for comp in none zstd zstd:19 lz4 lzma brotli; do
	ei=0
	for enc in none keyfile passphrase; do
		label="$comp, encryption $enc"
		REPO=$TMP/repo-${comp/:/-}-$enc
		clear_settings
		copts=()
		# The compression arrives by option, CAIRN_COMPRESSION or WALG_COMPRESSION_METHOD.
		case $(((ci + ei) % 3)) in
		0) copts=(--compression "$comp") ;;
		1) export CAIRN_COMPRESSION="$comp" ;;
		2)
			if [[ $comp == *:* || $comp == none ]]; then
				export CAIRN_COMPRESSION="$comp"
			else
				export WALG_COMPRESSION_METHOD="$comp"
			fi
			;;
		esac
		case $enc in
		keyfile) export CAIRN_ENCRYPTION_KEY_FILE="$TMP/key" ;;
		passphrase) export CAIRN_ENCRYPTION_PASSPHRASE="$PASS" ;;
		esac

		push_ok "$label: backup-push into a new repository" "$SRC" "${copts[@]}"
		name=$PUSHED
		if [ -n "$name" ]; then
			fetch_ok "$label: backup-fetch" "$name" "$TMP/out"
			same_tree "$TMP/src.dig" "$TMP/out" "$label: the restored tree is identical"
		fi
		check "$label: verify exits 0" cairn verify

		if [ "$enc" = none ]; then
			bytes=$(repo_bytes "$REPO")
			if [ "$comp" = none ]; then
				PLAIN_NONE_BYTES=$bytes
				if grep -rqF "$TREE_MARKER" "$REPO"; then
					diag "sanity: the plaintext marker is visible in an unencrypted, uncompressed repository"
				fi
			elif [ -n "$PLAIN_NONE_BYTES" ]; then
				cmp_ok $((bytes * 100)) -lt $((PLAIN_NONE_BYTES * 95)) \
					"$label: the repository ($bytes bytes) is smaller than without compression ($PLAIN_NONE_BYTES)"
			fi
		else
			run grep -rlF "$TREE_MARKER" "$REPO"
			is "$OUT" "" "$label: no plaintext of the tree in the repository"
			if [ "$enc" = keyfile ]; then
				run secret_in "$REPO" "$TMP/key"
			else
				run secret_in "$REPO" "$TMP/pass"
			fi
			is "$OUT" "" "$label: the key/passphrase is nowhere in the repository"
		fi
		rm -rf "$TMP/out"
		if [ "$comp" != zstd ] || [ "$enc" = none ]; then
			rm -rf "$REPO"
		fi
		ei=$((ei + 1))
	done
	ci=$((ci + 1))
done
clear_settings

# ---- restore rules (on the encrypted repository with a key file) ----
REPO=$TMP/repo-zstd-keyfile
export CAIRN_ENCRYPTION_KEY_FILE="$TMP/key"
mkdir -p "$TMP/busy/sub"
printf 'junk\n' >"$TMP/busy/empty.txt"
printf 'other\n' >"$TMP/busy/sub/file"
tree_digest "$TMP/busy" >"$TMP/busy.dig"
expect_fail "backup-fetch into a non-empty folder without --force fails" \
	cairn dir backup-fetch "$TMP/busy" LATEST
same_tree "$TMP/busy.dig" "$TMP/busy" "the non-empty folder is unchanged"
rm -rf "$TMP/busy/sub"
tree_digest "$TMP/busy" >"$TMP/busy.dig"
expect_fail "backup-fetch over a file of the backup without --force fails" \
	cairn dir backup-fetch "$TMP/busy" LATEST
same_tree "$TMP/busy.dig" "$TMP/busy" "the folder is unchanged"
fetch_ok "backup-fetch into the non-empty folder with --force" LATEST "$TMP/busy" --force
same_tree --no-root "$TMP/src-noroot.dig" "$TMP/busy" "--force restores the tree over the old content"
mkdir "$TMP/emptydest"
fetch_ok "backup-fetch into an existing empty folder" LATEST "$TMP/emptydest"
same_tree --no-root "$TMP/src-noroot.dig" "$TMP/emptydest" "the tree restored into an existing empty folder"

# ---- wrong and missing keys ----
before=$(cairn backup-list --json | json_get 'len(d)')
export CAIRN_ENCRYPTION_KEY_FILE="$TMP/wrongkey"
expect_fail -c 6 "wrong key file: backup-fetch exits 6 with one error line" \
	cairn dir backup-fetch "$TMP/wrong" LATEST
ok "$([ ! -e "$TMP/wrong" ]; echo $?)" "wrong key file: nothing restored"
expect_fail -c 6 "wrong key file: verify exits 6" cairn verify
expect_fail -c 6 "wrong key file: backup-push exits 6" cairn dir backup-push "$SRC"
export CAIRN_ENCRYPTION_KEY_FILE="$TMP/key"
is "$(cairn backup-list --json | json_get 'len(d)')" "$before" "the push with the wrong key added no backup"
check "the right key still verifies" cairn verify

export CAIRN_ENCRYPTION_KEY_FILE="$TMP/no-such-key-file"
expect_fail "a missing key file: one error line" cairn dir backup-fetch "$TMP/wrong" LATEST
like "$ERR" "no-such-key-file" "the error names the missing key file"

unset CAIRN_ENCRYPTION_KEY_FILE
expect_fail "no key for an encrypted repository: one clear error line" \
	cairn dir backup-fetch "$TMP/nokey" LATEST
like "$ERR" '[Kk]ey|[Pp]assphrase|[Ee]ncrypt' "the error says a key or passphrase is needed"
ok "$([ ! -e "$TMP/nokey" ]; echo $?)" "without a key: nothing restored"
expect_fail "no key: backup-push into an encrypted repository fails" cairn dir backup-push "$SRC"

REPO=$TMP/repo-zstd-passphrase
WRONG='wrong passphrase 77c1d0aa'
export CAIRN_ENCRYPTION_PASSPHRASE="$WRONG"
expect_fail -c 6 "wrong passphrase: backup-fetch exits 6" cairn dir backup-fetch "$TMP/wrongp" LATEST
unlike "$ERR" "$WRONG" "the error does not show the passphrase"
expect_fail -c 6 "wrong passphrase: backup-push exits 6" cairn dir backup-push "$SRC"
export CAIRN_ENCRYPTION_PASSPHRASE="$PASS"
run cairn -v dir backup-push "$SRC"
is "$RC" 0 "a verbose backup-push with the passphrase works"
run grep -cF "$PASS" "$ERRF"
is "$OUT" 0 "the verbose log does not show the passphrase"
run secret_in "$REPO" "$TMP/pass"
is "$OUT" "" "after more backups the passphrase is still nowhere in the repository"
fetch_ok "the passphrase repository restores LATEST" LATEST "$TMP/pass-out"
same_tree "$TMP/src.dig" "$TMP/pass-out" "the passphrase repository gives the identical tree"
unset CAIRN_ENCRYPTION_PASSPHRASE

done_testing
