/*
 * settings.h - the one settings registry.
 *
 * Every setting (the core's and each plugin's) is registered here with its
 * name, type, default, environment names and help. The registry drives
 * parsing of the config file, the environment and the command line, and
 * `cairn help config`. Later sources win: default < file < environment <
 * command line. Unknown names in the config file or on the command line are
 * errors; the environment is shared with other programs, so only the names
 * registered are read from it.
 */
#ifndef CAIRN_SETTINGS_H
#define CAIRN_SETTINGS_H

#include <stdint.h>
#include <stdio.h>
#include <cairn/plugin.h>

typedef enum cairn_setting_source {
	CAIRN_SOURCE_DEFAULT = 0,
	CAIRN_SOURCE_FILE = 1,
	CAIRN_SOURCE_ENV = 2,
	CAIRN_SOURCE_CLI = 3
} cairn_setting_source;

/* Registers the core's settings. Call once before anything else. */
int cairn_settings_init(void);
/* Releases all values. */
void cairn_settings_free(void);
/*
 * Registers a plugin's settings (array ended by a NULL name); `scope` is the
 * plugin name shown in help. The array must outlive the registry.
 */
int cairn_settings_register(const cairn_setting *list, const char *scope);
const cairn_setting *cairn_settings_find(const char *name);
/* Finds a setting by its name or any of its environment names. */
const cairn_setting *cairn_settings_find_any(const char *key);

/*
 * Sets a value from a source; a value from an earlier source than the one
 * already set is ignored. Validates the value against the type
 * (CAIRN_EINVALID naming the setting and where it came from).
 */
int cairn_settings_set(const char *name, const char *value, cairn_setting_source source,
                       const char *origin);
/* Reads `name = value` lines (names or environment names). */
int cairn_settings_load_file(const char *path);
/* Reads every registered environment name. */
int cairn_settings_load_env(void);
/*
 * When `repo` was not set, takes it from the setting flagged
 * CAIRN_SETTING_REPO_URL that is set (CAIRN_EINVALID when two disagree).
 * Call after every source is loaded.
 */
int cairn_settings_resolve_repo(void);

const char *cairn_settings_get(const char *name); /* NULL when unset */
int cairn_settings_get_bool(const char *name);
int64_t cairn_settings_get_int(const char *name);
uint64_t cairn_settings_get_size(const char *name);
/* Where the current value came from. */
cairn_setting_source cairn_settings_source(const char *name);

/* Parses "10M" style sizes; CAIRN_EINVALID on bad input. */
int cairn_parse_size(const char *text, uint64_t *out);
int cairn_parse_bool(const char *text, int *out);

/* Prints every setting (name, type, default, env names, help). */
void cairn_settings_print_help(FILE *out);

#endif
