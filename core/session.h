/*
 * session.h - what a driver command works on: an engine name and its
 * repository (opened on first use), plus the log segment services of
 * ABI version 2.
 */
#ifndef CAIRN_SESSION_H
#define CAIRN_SESSION_H

#include <cairn/plugin.h>

#include "repo.h"

struct cairn_session {
	char engine[64];
	char *url;
	cairn_repo *repo; /* owned; NULL until first use */
};

int cairn_session_new(cairn_session **out, const char *engine, const char *url);
/* The repository, opened on first use (created when `create` is set). */
int cairn_session_repo(cairn_session *s, int create, cairn_repo **out);
void cairn_session_free(cairn_session *s);

int cairn_log_put(cairn_session *s, const char *name, const char *path, uint64_t offset,
                  uint64_t length);
int cairn_log_get(cairn_session *s, const char *name, const char *dest_path);
int cairn_log_read(cairn_session *s, const char *name, cairn_sink_fn sink, void *arg);
int cairn_log_list(cairn_session *s, const char *prefix, cairn_list_fn cb, void *arg);
int cairn_log_remove(cairn_session *s, const char *const *names, size_t count);
int cairn_session_backup_list(cairn_session *s,
                              int (*cb)(void *arg, const char *name, int64_t end_time,
                                        const char *const *meta),
                              void *arg);

#endif
