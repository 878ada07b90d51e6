/* plugins.c - plugin loading (see plugins.h). */
#include "plugins.h"

#include <dirent.h>
#include <errno.h>
#include <ltdl.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "host.h"
#include "log.h"
#include "settings.h"
#include "text.h"

#ifndef PLUGINDIR
#define PLUGINDIR "/usr/local/lib/cairn"
#endif

#define PLUGINS_MAX 64

typedef struct plugin_record {
	char *file;
	lt_dlhandle handle;
	const cairn_driver_plugin *driver;
	const cairn_storage_plugin *storage;
	char *failure; /* NULL when loaded */
} plugin_record;

static plugin_record records[PLUGINS_MAX];
static size_t record_count;
static plugin_record *loading; /* the file whose init is running */
static int loading_registered;
static char *searched_dirs;
static int ltdl_ready;

static int record_failure(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int record_failure(const char *file, const char *fmt, ...)
{
	plugin_record *r;
	va_list ap;
	char reason[1024];

	if (record_count == PLUGINS_MAX)
		return CAIRN_ERROR;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	r = &records[record_count++];
	memset(r, 0, sizeof(*r));
	r->file = strdup(file);
	r->failure = strdup(reason);
	cairn_log(CAIRN_LOG_DEBUG, "plugin %s not loaded: %s", file, reason);
	return 0;
}

static int check_version(unsigned int version, const char *what, const char *name)
{
	if (version == 0 || version > CAIRN_ABI_VERSION)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
		                       "%s '%s' declares ABI version %u; this cairn supports 1 to %u",
		                       what, name ? name : "?", version, CAIRN_ABI_VERSION);
	return 0;
}

int cairn_plugins_register_driver(const cairn_driver_plugin *d)
{
	int error;

	if (!loading)
		return cairn_error_set(CAIRN_EINVALID, "register_driver called outside plugin init");
	if (!d || !d->name || !*d->name)
		return cairn_error_set(CAIRN_EINVALID, "driver descriptor without a name");
	if ((error = check_version(d->version, "driver", d->name)) < 0)
		return error;
	if (!d->backup || !d->restore)
		return cairn_error_set(CAIRN_EINVALID, "driver '%s' lacks backup or restore", d->name);
	if (cairn_plugins_driver(d->name))
		return cairn_error_set(CAIRN_EEXISTS, "driver '%s' is already loaded", d->name);
	if (loading->driver || loading->storage)
		return cairn_error_set(CAIRN_EINVALID, "a plugin file registers one descriptor");
	if (d->settings && (error = cairn_settings_register(d->settings, d->name)) < 0)
		return error;
	loading->driver = d;
	loading_registered = 1;
	return 0;
}

int cairn_plugins_register_storage(const cairn_storage_plugin *s)
{
	int error;

	if (!loading)
		return cairn_error_set(CAIRN_EINVALID, "register_storage called outside plugin init");
	if (!s || !s->name || !*s->name)
		return cairn_error_set(CAIRN_EINVALID, "storage descriptor without a name");
	if ((error = check_version(s->version, "storage", s->name)) < 0)
		return error;
	if (!s->open || !s->schemes || !s->schemes[0])
		return cairn_error_set(CAIRN_EINVALID, "storage '%s' lacks open or schemes", s->name);
	if (loading->driver || loading->storage)
		return cairn_error_set(CAIRN_EINVALID, "a plugin file registers one descriptor");
	if (s->settings && (error = cairn_settings_register(s->settings, s->name)) < 0)
		return error;
	loading->storage = s;
	loading_registered = 1;
	return 0;
}

static void load_file(const char *path)
{
	lt_dlhandle handle;
	cairn_plugin_init_fn init;
	plugin_record *r;
	int rc;

	if (record_count == PLUGINS_MAX)
		return;
	if (!(handle = lt_dlopen(path))) {
		record_failure(path, "cannot open: %s", lt_dlerror());
		return;
	}
	init = (cairn_plugin_init_fn)(uintptr_t)lt_dlsym(handle, CAIRN_PLUGIN_INIT_SYMBOL);
	if (!init) {
		record_failure(path, "no symbol %s: not a cairn plugin", CAIRN_PLUGIN_INIT_SYMBOL);
		lt_dlclose(handle);
		return;
	}
	r = &records[record_count++];
	memset(r, 0, sizeof(*r));
	r->file = strdup(path);
	r->handle = handle;
	loading = r;
	loading_registered = 0;
	cairn_error_clear();
	rc = init(cairn_host_get());
	loading = NULL;
	if (rc < 0 || !loading_registered) {
		char reason[1200];

		if (rc < 0)
			snprintf(reason, sizeof(reason), "init failed (%d): %s", rc,
			         *cairn_error_message() ? cairn_error_message() : "no message");
		else
			snprintf(reason, sizeof(reason), "its init registered nothing");
		r->failure = strdup(reason);
		/* Settings a failing plugin registered stay harmlessly unused. */
		r->driver = NULL;
		r->storage = NULL;
		cairn_log(CAIRN_LOG_DEBUG, "plugin %s not loaded: %s", path, reason);
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **grown, path[4096];
	size_t count = 0, cap = 0, i, n;

	if (!(d = opendir(dir))) {
		cairn_log(CAIRN_LOG_DEBUG, "plugin folder %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 4 || strcmp(de->d_name + n - 3, ".so") != 0 || de->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(grown = realloc(names, cap * sizeof(*names))))
				break;
			names = grown;
		}
		if (!(names[count] = strdup(de->d_name)))
			break;
		count++;
	}
	closedir(d);
	if (count)
		qsort(names, count, sizeof(*names), name_cmp);
	for (i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		load_file(path);
		free(names[i]);
	}
	free(names);
}

int cairn_plugins_load(const char *dirs)
{
	char *copy, *part, *save = NULL, abs_dir[4096];

	if (!ltdl_ready) {
		if (lt_dlinit() != 0)
			return cairn_error_set(CAIRN_ERROR, "cannot initialise libltdl: %s", lt_dlerror());
		ltdl_ready = 1;
	}
	if (!dirs || !*dirs)
		dirs = PLUGINDIR;
	free(searched_dirs);
	if (!(searched_dirs = strdup(dirs)) || !(copy = strdup(dirs)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (part = strtok_r(copy, ":", &save); part; part = strtok_r(NULL, ":", &save)) {
		/* Opened by absolute path so no search path is ever consulted. */
		if (part[0] != '/' && realpath(part, abs_dir))
			load_dir(abs_dir);
		else
			load_dir(part);
	}
	free(copy);
	return 0;
}

void cairn_plugins_unload(void)
{
	size_t i;

	for (i = 0; i < record_count; i++) {
		if (records[i].handle)
			lt_dlclose(records[i].handle);
		free(records[i].file);
		free(records[i].failure);
	}
	record_count = 0;
	free(searched_dirs);
	searched_dirs = NULL;
	if (ltdl_ready)
		lt_dlexit();
	ltdl_ready = 0;
}

const char *cairn_plugins_dirs(void)
{
	return searched_dirs ? searched_dirs : PLUGINDIR;
}

const cairn_driver_plugin *cairn_plugins_driver(const char *name)
{
	size_t i;
	const char *const *a;

	for (i = 0; i < record_count; i++) {
		const cairn_driver_plugin *d = records[i].driver;

		if (!d)
			continue;
		if (strcmp(d->name, name) == 0)
			return d;
		for (a = d->aliases; a && *a; a++)
			if (strcmp(*a, name) == 0)
				return d;
	}
	return NULL;
}

const cairn_driver_plugin *cairn_plugins_driver_at(size_t i)
{
	size_t j, n = 0;

	for (j = 0; j < record_count; j++)
		if (records[j].driver && n++ == i)
			return records[j].driver;
	return NULL;
}

const cairn_storage_plugin *cairn_plugins_storage_for(const char *url)
{
	const char *sep = strstr(url, "://");
	size_t i, n = sep ? (size_t)(sep - url) : 4;
	const char *scheme = sep ? url : "file";
	const char *const *s;

	for (i = 0; i < record_count; i++) {
		const cairn_storage_plugin *p = records[i].storage;

		if (!p)
			continue;
		for (s = p->schemes; *s; s++)
			if (strlen(*s) == n && strncmp(*s, scheme, n) == 0)
				return p;
	}
	return NULL;
}

static void caps_text(const plugin_record *r, char *out, size_t len)
{
	out[0] = 0;
	if (r->storage) {
		unsigned caps = r->storage->caps;

		snprintf(out, len, "%s%s%s%s", caps & CAIRN_STORAGE_CAP_ATOMIC_PUT ? "atomic-put," : "",
		         caps & CAIRN_STORAGE_CAP_RANGE_GET ? "range-get," : "",
		         caps & CAIRN_STORAGE_CAP_LIST_SIZES ? "list-sizes," : "",
		         caps & CAIRN_STORAGE_CAP_CONCURRENT_GET ? "concurrent-get," : "");
	} else if (r->driver) {
		const cairn_command *c;
		size_t n = 0;

		n += (size_t)snprintf(out + n, len - n, "backup,restore,");
		if (r->driver->caps & CAIRN_DRIVER_CAP_RESTORE_OVER && n < len)
			n += (size_t)snprintf(out + n, len - n, "restore-over,");
		for (c = r->driver->commands; c && c->name && n < len; c++)
			n += (size_t)snprintf(out + n, len - n, "%s,", c->name);
	}
	if (*out)
		out[strlen(out) - 1] = 0;
}

void cairn_plugins_report(FILE *out, int json)
{
	size_t i;
	char caps[512];

	if (json)
		fputs("[", out);
	else
		fprintf(out, "%-8s %-10s %-8s %-4s %-40s %s\n", "KIND", "NAME", "VERSION", "ABI",
		        "CAPABILITIES", "FILE");
	for (i = 0; i < record_count; i++) {
		const plugin_record *r = &records[i];
		const char *kind = r->driver ? "driver" : r->storage ? "storage" : "failed";
		const char *name = r->driver ? r->driver->name : r->storage ? r->storage->name : "-";
		const char *ver = r->driver    ? r->driver->plugin_version
		                  : r->storage ? r->storage->plugin_version
		                               : "-";
		unsigned abi = r->driver ? r->driver->version : r->storage ? r->storage->version : 0;

		caps_text(r, caps, sizeof(caps));
		if (json) {
			fprintf(out, "%s{\"kind\":", i ? "," : "");
			cairn_json_string(out, kind);
			fputs(",\"name\":", out);
			cairn_json_string(out, name);
			fputs(",\"version\":", out);
			cairn_json_string(out, ver);
			fprintf(out, ",\"abi\":%u,\"capabilities\":", abi);
			cairn_json_string(out, caps);
			fputs(",\"file\":", out);
			cairn_json_string(out, r->file);
			if (r->failure) {
				fputs(",\"error\":", out);
				cairn_json_string(out, r->failure);
			}
			fputs("}", out);
		} else if (r->failure) {
			fprintf(out, "%-8s %-10s %-8s %-4s %-40s %s: %s\n", kind, "-", "-", "-", "-",
			        r->file, r->failure);
		} else {
			fprintf(out, "%-8s %-10s %-8s %-4u %-40s %s\n", kind, name, ver ? ver : "-", abi,
			        caps, r->file);
		}
	}
	if (json)
		fputs("]\n", out);
	else if (record_count == 0)
		fprintf(out, "(no plugins found in %s)\n", cairn_plugins_dirs());
}
