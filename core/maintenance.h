/*
 * maintenance.h - verify, delete and garbage collection.
 */
#ifndef CAIRN_MAINTENANCE_H
#define CAIRN_MAINTENANCE_H

#include <stddef.h>
#include <stdint.h>

#include "backup.h"
#include "repo.h"

/* Receives one line per problem found. */
typedef void (*cairn_problem_fn)(void *arg, const char *message);

typedef struct cairn_verify_stats {
	uint64_t objects;
	uint64_t chunks;
	uint64_t bytes;
	uint64_t problems;
} cairn_verify_stats;

/*
 * Reads and checks every object of the repository (name NULL), or every
 * object backup `name` needs. Goes on after a problem; returns
 * CAIRN_ECORRUPT when any was found (each reported through `problem`).
 */
int cairn_verify(cairn_repo *repo, const char *name, cairn_problem_fn problem, void *arg,
                 cairn_verify_stats *stats);

typedef enum cairn_delete_mode {
	CAIRN_DELETE_RETAIN = 1, /* keep the newest N */
	CAIRN_DELETE_BEFORE = 2  /* delete those that ended before a time */
} cairn_delete_mode;

/*
 * Chooses the backups to delete (of `engine`, or all when NULL). For
 * BEFORE, `target` is a backup name (deletes those older than it) or a
 * time; for RETAIN, `retain` is N. Fills *out with names (caller frees each
 * and the array).
 */
int cairn_delete_select(cairn_repo *repo, const char *engine, cairn_delete_mode mode,
                        uint64_t retain, const char *target, char ***out, size_t *count);

typedef struct cairn_gc_stats {
	uint64_t backups_deleted;
	uint64_t packs_deleted;
	uint64_t bytes_freed;
	uint64_t packs_kept;
} cairn_gc_stats;

/*
 * Under an exclusive lock: removes the named backups (catalog entry first),
 * then garbage-collects packs, indexes and manifests no remaining backup
 * references. With count 0 it only collects garbage. before_gc (may be
 * NULL) runs under the lock after the backups are gone (drivers prune logs).
 */
int cairn_delete_apply(cairn_repo *repo, char *const *names, size_t count, cairn_gc_stats *stats,
                       int (*before_gc)(void *arg), void *arg);

#endif
