/*
 * pipeline.h - parallel chunk processing with results in submission order.
 *
 * The owner (the backup writer, on one thread) submits chunks and marks.
 * Worker threads hash each chunk, look its id up in the repository index
 * and, when it is new, compress and encrypt it into a frame. The owner's
 * consume callback receives every job in the order it was submitted, so
 * manifests and packs are written exactly as a single thread would write
 * them. At most CAIRN_PIPELINE_JOBS_PER_WORKER x workers + 2 jobs (at most
 * CAIRN_PIPELINE_MAX_JOBS) are in flight, weighing together at most that
 * many times CAIRN_PIPELINE_BYTES_PER_JOB (a job weighs its data, or the
 * chunk it decodes to; one job is always let in): memory is about twice
 * that budget (data + frame), whatever the input size.
 *
 * With workers = 0 everything runs on the owner's thread, in order.
 */
#ifndef CAIRN_PIPELINE_H
#define CAIRN_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "repo.h"

#define CAIRN_PIPELINE_JOBS_PER_WORKER 16
#define CAIRN_PIPELINE_MAX_JOBS 258
#define CAIRN_PIPELINE_BYTES_PER_JOB (128u * 1024)

typedef enum cairn_job_kind {
	CAIRN_JOB_CHUNK = 1, /* data is a chunk to hash and maybe encode */
	CAIRN_JOB_MARK = 2,  /* data is passed through untouched (an entry line) */
	CAIRN_JOB_ENTRY = 3, /* a whole manifest entry (entry line and its references) */
	CAIRN_JOB_REF = 4    /* data is the id of a stored chunk of `value` bytes, reused */
} cairn_job_kind;

typedef struct cairn_job {
	cairn_job_kind kind;
	cairn_buf data;
	uint64_t value;              /* marks: a number for the consumer */
	uint8_t id[CAIRN_HASH_LEN];  /* chunks: the chunk id */
	int known;                   /* chunks: in the index when hashed */
	cairn_buf frame;             /* chunks: the encoded frame unless known */
	int state;                   /* internal */
	size_t weight;               /* internal: counted against the budget */
	int error;                   /* internal: a worker's failure */
	char message[512];
} cairn_job;

/* Receives finished jobs in submission order; a negative return stops. */
typedef int (*cairn_consume_fn)(void *arg, cairn_job *job);
/*
 * Work done on a worker thread; NULL selects the backup work (hash, look up,
 * encode). Returns 0 or a negative code with the message set (it is carried
 * to the owner's thread).
 */
typedef int (*cairn_work_fn)(cairn_repo *repo, cairn_job *job);

typedef struct cairn_pipeline cairn_pipeline;

int cairn_pipeline_new(cairn_pipeline **out, cairn_repo *repo, int workers, cairn_work_fn work,
                       cairn_consume_fn consume, void *arg);
int cairn_pipeline_submit(cairn_pipeline *p, cairn_job_kind kind, const void *data, size_t len,
                          uint64_t value);
/* Waits for every submitted job and consumes it. */
int cairn_pipeline_drain(cairn_pipeline *p);
/* Jobs submitted and not consumed yet. */
size_t cairn_pipeline_pending(const cairn_pipeline *p);
/*
 * 1 when submitting this job would not first consume an older one (no slot
 * or byte budget left): a caller whose consume callback must not run inside
 * submit asks before submitting.
 */
int cairn_pipeline_can_submit(const cairn_pipeline *p, cairn_job_kind kind, size_t len,
                              uint64_t value);
/* Consumes the oldest job (waiting for it); 0 when none is pending. */
int cairn_pipeline_consume_one(cairn_pipeline *p);
/*
 * Adds to the repository index while workers may be reading it; only the
 * consumer calls this.
 */
int cairn_pipeline_index_add(cairn_pipeline *p, const cairn_index_entry *e);
/* Stops the workers (discarding unfinished jobs); accepts NULL. */
void cairn_pipeline_free(cairn_pipeline *p);

/* The default number of workers: the number of online CPUs. */
int cairn_pipeline_default_workers(void);

#endif
