/* settings.c - the settings registry (see settings.h). */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cairn/util.h>

#include "error.h"

#define SETTINGS_MAX 256

typedef struct setting_slot {
	const cairn_setting *def;
	const char *scope;
	char *value; /* owned; NULL: unset */
	cairn_setting_source source;
} setting_slot;

static setting_slot slots[SETTINGS_MAX];
static size_t slot_count;
static char default_repo[4096];

static const cairn_setting core_settings[] = {
	{"repo", CAIRN_SETTING_STRING, NULL, "CAIRN_REPO WALG_FILE_PREFIX",
	 "repository URL: a path, file:///path, s3://bucket/prefix, gs://, azure://, ssh://", 0},
	{"config", CAIRN_SETTING_STRING, NULL, "CAIRN_CONFIG",
	 "config file (default /etc/cairn/cairn.conf when it exists)", 0},
	{"plugin-dir", CAIRN_SETTING_STRING, NULL, "CAIRN_PLUGIN_DIR",
	 "colon-separated folders holding plugins (default: the installed plugin folder)", 0},
	{"compression", CAIRN_SETTING_STRING, "zstd:3", "CAIRN_COMPRESSION WALG_COMPRESSION_METHOD",
	 "method[:level] for new data: none, zstd, lz4, lzma, brotli", 0},
	{"encryption-key-file", CAIRN_SETTING_STRING, NULL, "CAIRN_ENCRYPTION_KEY_FILE",
	 "file holding the key that opens an encrypted repository (any length, keep it secret)", 0},
	{"encryption-passphrase", CAIRN_SETTING_STRING, NULL, "CAIRN_ENCRYPTION_PASSPHRASE",
	 "passphrase that opens an encrypted repository (environment or config file only)",
	 CAIRN_SETTING_SECRET},
	{"upload-concurrency", CAIRN_SETTING_INT, "4",
	 "CAIRN_UPLOAD_CONCURRENCY WALG_UPLOAD_CONCURRENCY",
	 "uploads in flight at once for storages that support concurrent puts", 0},
	{"workers", CAIRN_SETTING_INT, "0", "CAIRN_WORKERS",
	 "threads that hash, compress and encrypt chunks (0: one per CPU)", 0},
	{"download-concurrency", CAIRN_SETTING_INT, "4",
	 "CAIRN_DOWNLOAD_CONCURRENCY WALG_DOWNLOAD_CONCURRENCY",
	 "chunks a restore fetches at once from storages that allow it (at least `workers`)", 0},
	{"skip-unchanged", CAIRN_SETTING_BOOL, "true", "CAIRN_SKIP_UNCHANGED",
	 "take files with the size and modification time they had in the previous backup of the "
	 "same source from it instead of reading them again (false: read everything)", 0},
	{"chunk-min-size", CAIRN_SETTING_SIZE, "64K", "CAIRN_CHUNK_MIN_SIZE",
	 "content-defined chunking: smallest chunk (fixed when the repository is created)", 0},
	{"chunk-avg-size", CAIRN_SETTING_SIZE, "256K", "CAIRN_CHUNK_AVG_SIZE",
	 "content-defined chunking: average chunk, a power of two (fixed at creation)", 0},
	{"chunk-max-size", CAIRN_SETTING_SIZE, "1M", "CAIRN_CHUNK_MAX_SIZE",
	 "content-defined chunking: largest chunk (fixed at creation)", 0},
	{"pack-size", CAIRN_SETTING_SIZE, "32M", "CAIRN_PACK_SIZE",
	 "target size of pack objects holding chunks", 0},
	{"index-memory", CAIRN_SETTING_SIZE, "16M", "CAIRN_INDEX_MEMORY",
	 "memory for the chunk index of a backup or restore; beyond it the index goes to temp "
	 "files in $TMPDIR (default /var/tmp), so memory does not grow with the repository", 0},
	{"lock-stale-after", CAIRN_SETTING_INT, "86400", "CAIRN_LOCK_STALE_AFTER",
	 "seconds after which a lock of another host is considered abandoned", 0},
	{"force", CAIRN_SETTING_BOOL, "false", "CAIRN_FORCE",
	 "let a restore write into a non-empty destination", 0},
	{"confirm", CAIRN_SETTING_BOOL, "false", NULL,
	 "really delete (delete is a dry run without it)", 0},
	{"json", CAIRN_SETTING_BOOL, "false", NULL, "data output as JSON", 0},
	{NULL, 0, NULL, NULL, NULL, 0},
};

static setting_slot *slot_find(const char *name)
{
	size_t i;

	for (i = 0; i < slot_count; i++)
		if (strcmp(slots[i].def->name, name) == 0)
			return &slots[i];
	return NULL;
}

static int env_has(const char *env, const char *key)
{
	size_t n = strlen(key);
	const char *p = env;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (strncmp(p, key, n) == 0 && (p[n] == ' ' || p[n] == 0))
			return 1;
		p = strchr(p, ' ');
	}
	return 0;
}

static const char *compute_default_repo(void)
{
	const char *home = getenv("HOME");
	const char *xdg = getenv("XDG_DATA_HOME");

	if (geteuid() == 0)
		return "/var/lib/cairn/repo";
	if (xdg && *xdg)
		snprintf(default_repo, sizeof(default_repo), "%s/cairn/repo", xdg);
	else if (home && *home)
		snprintf(default_repo, sizeof(default_repo), "%s/.local/share/cairn/repo", home);
	else
		return "/var/lib/cairn/repo";
	return default_repo;
}

int cairn_settings_init(void)
{
	int error;

	if (slot_count)
		return 0;
	if ((error = cairn_settings_register(core_settings, "core")) < 0)
		return error;
	return cairn_settings_set("repo", compute_default_repo(), CAIRN_SOURCE_DEFAULT, "default");
}

void cairn_settings_free(void)
{
	size_t i;

	for (i = 0; i < slot_count; i++) {
		if (slots[i].value && (slots[i].def->flags & CAIRN_SETTING_SECRET))
			memset(slots[i].value, 0, strlen(slots[i].value));
		free(slots[i].value);
	}
	slot_count = 0;
}

int cairn_settings_register(const cairn_setting *list, const char *scope)
{
	const cairn_setting *s;
	setting_slot *slot;

	for (s = list; s && s->name; s++) {
		setting_slot *seen = slot_find(s->name);

		/*
		 * Options that mean the same for every engine (--until, --from-file)
		 * are declared by each driver that takes them; two plugins share
		 * the setting when they agree on its type. The first declaration's
		 * help, default and environment names are kept.
		 */
		if (seen && seen->def->type == s->type && strcmp(seen->scope, "core") != 0)
			continue;
		if (seen)
			return cairn_error_set(CAIRN_EINVALID, "setting '%s' of %s is already defined",
			                       s->name, scope);
		if (slot_count == SETTINGS_MAX)
			return cairn_error_set(CAIRN_EINVALID, "too many settings");
		slot = &slots[slot_count++];
		slot->def = s;
		slot->scope = scope;
		slot->value = NULL;
		slot->source = CAIRN_SOURCE_DEFAULT;
		if (s->default_value && !(slot->value = strdup(s->default_value)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	return 0;
}

const cairn_setting *cairn_settings_find(const char *name)
{
	setting_slot *slot = slot_find(name);

	return slot ? slot->def : NULL;
}

const cairn_setting *cairn_settings_find_any(const char *key)
{
	size_t i;

	for (i = 0; i < slot_count; i++)
		if (strcmp(slots[i].def->name, key) == 0 ||
		    (slots[i].def->env && env_has(slots[i].def->env, key)))
			return slots[i].def;
	return NULL;
}

int cairn_parse_size(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	errno = 0;
	if (!text || !isdigit((unsigned char)*text))
		return CAIRN_EINVALID;
	v = strtoull(text, &end, 10);
	if (errno)
		return CAIRN_EINVALID;
	switch (toupper((unsigned char)*end)) {
	case 0:
		break;
	case 'K': mult = 1ULL << 10; end++; break;
	case 'M': mult = 1ULL << 20; end++; break;
	case 'G': mult = 1ULL << 30; end++; break;
	case 'T': mult = 1ULL << 40; end++; break;
	default:
		return CAIRN_EINVALID;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v > UINT64_MAX / mult)
		return CAIRN_EINVALID;
	*out = v * mult;
	return 0;
}

int cairn_parse_bool(const char *text, int *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on", NULL};
	static const char *const no[] = {"0", "false", "no", "off", "", NULL};
	int i;

	for (i = 0; yes[i]; i++)
		if (strcasecmp(text, yes[i]) == 0)
			return *out = 1, 0;
	for (i = 0; no[i]; i++)
		if (strcasecmp(text, no[i]) == 0)
			return *out = 0, 0;
	return CAIRN_EINVALID;
}

static int validate(const cairn_setting *def, const char *value, const char *origin)
{
	uint64_t size;
	int b;
	char *end;

	switch (def->type) {
	case CAIRN_SETTING_BOOL:
		if (cairn_parse_bool(value, &b) < 0)
			return cairn_error_set(CAIRN_EINVALID,
			                       "setting %s from %s: '%s' is not a boolean (true/false)",
			                       def->name, origin, value);
		break;
	case CAIRN_SETTING_INT:
		errno = 0;
		(void)strtoll(value, &end, 10);
		if (errno || !*value || *end)
			return cairn_error_set(CAIRN_EINVALID,
			                       "setting %s from %s: '%s' is not an integer", def->name,
			                       origin, value);
		break;
	case CAIRN_SETTING_SIZE:
		if (cairn_parse_size(value, &size) < 0)
			return cairn_error_set(CAIRN_EINVALID,
			                       "setting %s from %s: '%s' is not a size (e.g. 512K, 4M)",
			                       def->name, origin, value);
		break;
	case CAIRN_SETTING_STRING:
		break;
	}
	return 0;
}

int cairn_settings_set(const char *name, const char *value, cairn_setting_source source,
                       const char *origin)
{
	setting_slot *slot = slot_find(name);
	char *copy;
	int error;

	if (!slot)
		return cairn_error_set(CAIRN_EINVALID, "unknown setting '%s' in %s", name, origin);
	if (source < slot->source)
		return 0;
	if ((error = validate(slot->def, value, origin)) < 0)
		return error;
	if (!(copy = strdup(value)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (slot->value && (slot->def->flags & CAIRN_SETTING_SECRET))
		memset(slot->value, 0, strlen(slot->value));
	free(slot->value);
	slot->value = copy;
	slot->source = source;
	return 0;
}

int cairn_settings_load_file(const char *path)
{
	FILE *f;
	char line[8192], origin[4200];
	const cairn_setting *def;
	char *key, *value, *eq;
	int lineno = 0, error = 0;
	size_t n;

	if (!(f = fopen(path, "r")))
		return cairn_error_errno(errno, "cannot read config file %s", path);
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
		key = cairn_trim(line);
		if (!*key || *key == '#')
			continue;
		if (!(eq = strchr(key, '='))) {
			error = cairn_error_set(CAIRN_EINVALID, "%s: expected 'name = value'", origin);
			goto done;
		}
		*eq = 0;
		key = cairn_trim(key);
		value = cairn_trim(eq + 1);
		n = strlen(value);
		if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
			value[n - 1] = 0;
			value++;
		}
		if (!(def = cairn_settings_find_any(key))) {
			error = cairn_error_set(CAIRN_EINVALID, "%s: unknown setting '%s'", origin, key);
			cairn_error_hint("'cairn help config' lists the settings");
			goto done;
		}
		if ((error = cairn_settings_set(def->name, value, CAIRN_SOURCE_FILE, origin)) < 0)
			goto done;
	}
	if (ferror(f))
		error = cairn_error_errno(errno, "cannot read config file %s", path);
done:
	fclose(f);
	return error;
}

int cairn_settings_load_env(void)
{
	size_t i;
	int error;

	for (i = 0; i < slot_count; i++) {
		const char *env = slots[i].def->env;
		char name[128], origin[160];
		const char *p = env, *value;
		size_t n;

		/* The first name listed wins over the aliases after it. */
		while (p && *p) {
			while (*p == ' ')
				p++;
			n = strcspn(p, " ");
			if (n && n < sizeof(name)) {
				memcpy(name, p, n);
				name[n] = 0;
				if ((value = getenv(name)) != NULL) {
					snprintf(origin, sizeof(origin), "environment variable %s", name);
					if ((error = cairn_settings_set(slots[i].def->name, value,
					                                CAIRN_SOURCE_ENV, origin)) < 0)
						return error;
					break;
				}
			}
			p += n;
		}
	}
	return 0;
}

int cairn_settings_resolve_repo(void)
{
	setting_slot *repo = slot_find("repo"), *found = NULL;
	size_t i;

	if (!repo || repo->source != CAIRN_SOURCE_DEFAULT)
		return 0;
	for (i = 0; i < slot_count; i++) {
		setting_slot *s = &slots[i];

		if (!(s->def->flags & CAIRN_SETTING_REPO_URL) || s->source == CAIRN_SOURCE_DEFAULT ||
		    !s->value || !*s->value)
			continue;
		if (found && strcmp(found->value, s->value) != 0) {
			cairn_error_set(CAIRN_EINVALID, "settings %s and %s name different repositories",
			                found->def->name, s->def->name);
			cairn_error_hint("set the one to use as CAIRN_REPO or --repo");
			return CAIRN_EINVALID;
		}
		found = s;
	}
	if (!found)
		return 0;
	return cairn_settings_set("repo", found->value, found->source, found->def->name);
}

const char *cairn_settings_get(const char *name)
{
	setting_slot *slot = slot_find(name);

	return slot ? slot->value : NULL;
}

int cairn_settings_get_bool(const char *name)
{
	const char *v = cairn_settings_get(name);
	int b = 0;

	if (v)
		cairn_parse_bool(v, &b);
	return b;
}

int64_t cairn_settings_get_int(const char *name)
{
	const char *v = cairn_settings_get(name);

	return v ? strtoll(v, NULL, 10) : 0;
}

uint64_t cairn_settings_get_size(const char *name)
{
	const char *v = cairn_settings_get(name);
	uint64_t size = 0;

	if (v)
		cairn_parse_size(v, &size);
	return size;
}

cairn_setting_source cairn_settings_source(const char *name)
{
	setting_slot *slot = slot_find(name);

	return slot ? slot->source : CAIRN_SOURCE_DEFAULT;
}

void cairn_settings_print_help(FILE *out)
{
	static const char *const types[] = {"", "string", "integer", "boolean", "size"};
	size_t i;

	fprintf(out, "Settings (config file: name = value; command line: --name value;\n"
	             "environment: the names listed). Later sources win:\n"
	             "default < config file < environment < command line.\n\n");
	for (i = 0; i < slot_count; i++) {
		const cairn_setting *d = slots[i].def;

		fprintf(out, "  %s (%s, %s)", d->name, types[d->type], slots[i].scope);
		if (d->default_value)
			fprintf(out, " default: %s", d->default_value);
		fprintf(out, "\n      %s\n", d->help);
		if (d->env && *d->env)
			fprintf(out, "      environment: %s\n", d->env);
		if (d->flags & CAIRN_SETTING_SECRET)
			fprintf(out, "      secret: not accepted on the command line, never printed\n");
	}
}
