/*
 * plugins.h - finding and loading plugins with libltdl.
 *
 * Every *.so in the plugin folders is opened by absolute path, its one
 * symbol called with the host table; the descriptors it registers are
 * checked (ABI version, required slots, unique names). A plugin that fails
 * is remembered with its file and reason, and the others still load.
 */
#ifndef CAIRN_PLUGINS_H
#define CAIRN_PLUGINS_H

#include <stdio.h>
#include <cairn/plugin.h>

/* Loads plugins from a colon-separated list of folders (NULL: PLUGINDIR). */
int cairn_plugins_load(const char *dirs);
void cairn_plugins_unload(void);

/* Called through the host table during a plugin's init. */
int cairn_plugins_register_driver(const cairn_driver_plugin *driver);
int cairn_plugins_register_storage(const cairn_storage_plugin *storage);

/* By name or alias; NULL when not loaded. */
const cairn_driver_plugin *cairn_plugins_driver(const char *name);
/* The i-th loaded driver, NULL past the end. */
const cairn_driver_plugin *cairn_plugins_driver_at(size_t i);
/* The storage whose scheme matches the URL (a plain path is "file"). */
const cairn_storage_plugin *cairn_plugins_storage_for(const char *url);
/* The folders searched, for messages. */
const char *cairn_plugins_dirs(void);

/* Lists loaded and failed plugins; as JSON when json is set. */
void cairn_plugins_report(FILE *out, int json);

#endif
