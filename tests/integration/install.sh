#!/bin/bash
# install.sh - `make install` puts cairn, the per-engine names, libcairn, the
# plugins, the public headers and cairn.pc in place, and a plugin built out
# of tree with pkg-config loads into the installed cairn.
# shellcheck source=tests/integration/lib.sh
. "${CAIRN_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

DEST=$TMP/inst
run make -s -C "$CAIRN_BUILDDIR" install DESTDIR="$DEST"
is "$RC" 0 "make install DESTDIR=... exits 0" || diag_file "$ERRF"
prefix=$(sed -n 's/^prefix=//p' "$CAIRN_BUILDDIR/cairn.pc")
root=$DEST$prefix
ok "$([ -x "$root/bin/cairn" ]; echo $?)" "bin/cairn is installed"
for e in dir pg redis; do
	ok "$([ "$(readlink "$root/bin/cairn-$e")" = cairn ]; echo $?)" "bin/cairn-$e is a link to cairn"
done
ok "$([ -f "$root/include/cairn/plugin.h" ] && [ -f "$root/include/cairn/util.h" ]; echo $?)" "the public headers are installed"
ok "$(ls "$root"/lib/libcairn.so* >/dev/null 2>&1; echo $?)" "libcairn is installed"
plugindir=$(PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --define-variable=prefix="$root" --variable=plugindir cairn)
is "$plugindir" "$root/lib/cairn" "cairn.pc names the plugin folder"
ok "$([ -f "$plugindir/driver_dir.so" ] && [ -f "$plugindir/storage_fs.so" ]; echo $?)" "the plugins are in the plugin folder"
ok "$(ls "$plugindir"/*.la >/dev/null 2>&1; [ $? != 0 ]; echo $?)" "no libtool .la files are left in the plugin folder"

# A plugin written against the installed headers only, built with pkg-config.
cat >"$TMP/hello.c" <<'C'
#include <cairn/plugin.h>
#include <cairn/util.h>
static int hello_backup(const cairn_host *host, cairn_backup_writer *w, int argc, char *const *argv)
{
	cairn_entry e = {CAIRN_ENTRY_STREAM, "hello", 0600, 0, 0, 0, 0, 0, NULL, CAIRN_CHUNK_CDC, 0};
	(void)argc;
	(void)argv;
	if (!cairn_key_valid("a/b", 0))
		return host->error(CAIRN_ERROR, "key rules broken");
	if (host->meta_set(w, "source", "hello") < 0 || host->entry_begin(w, &e) < 0 ||
	    host->entry_write(w, "hi\n", 3) < 0)
		return CAIRN_ERROR;
	return host->entry_end(w);
}
static int hello_restore(const cairn_host *host, cairn_backup_reader *r, const char *dest)
{
	const cairn_entry *e;
	(void)dest;
	while (host->entry_next(r, &e) > 0)
		;
	return 0;
}
static const cairn_driver_plugin hello = {
	CAIRN_ABI_VERSION, "hello", NULL, "1.0", "an out-of-tree example", 0, NULL, "", "DEST NAME",
	hello_backup, hello_restore, NULL, NULL};
int cairn_plugin_init(const cairn_host *host) { return host->register_driver(&hello); }
C
cflags=$(PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --define-variable=prefix="$root" --cflags cairn)
run cc -shared -fPIC -Wall -Wextra -Werror $cflags -o "$plugindir/driver_hello.so" "$TMP/hello.c"
is "$RC" 0 "an out-of-tree plugin builds with pkg-config --cflags cairn" || diag_file "$ERRF"
run env CAIRN_PLUGIN_DIR="$plugindir" "$root/bin/cairn" plugins
like "$OUT" 'driver +hello' "the installed cairn loads it"
like "$OUT" 'storage +fs' "and the installed plugins"
run env CAIRN_PLUGIN_DIR="$plugindir" CAIRN_REPO="$TMP/repo" "$root/bin/cairn" hello backup-push
is "$RC" 0 "a backup through the out-of-tree driver"
run env CAIRN_PLUGIN_DIR="$plugindir" CAIRN_REPO="$TMP/repo" "$root/bin/cairn-dir" backup-push "$CAIRN_SRCDIR/core/include"
is "$RC" 0 "the installed per-engine name cairn-dir works"
done_testing
