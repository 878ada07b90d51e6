/* pipeline.c - parallel, ordered chunk processing (see pipeline.h). */
#include "pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

enum { JOB_EMPTY = 0, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct cairn_pipeline {
	cairn_repo *repo;
	cairn_work_fn work_fn;
	cairn_consume_fn consume;
	void *arg;
	int workers;
	pthread_t *threads;
	int started;

	cairn_job *jobs; /* ring of `depth` jobs */
	size_t depth;
	uint64_t head; /* oldest job not yet consumed */
	uint64_t next; /* oldest job no worker has taken */
	uint64_t tail; /* next free job */
	size_t budget; /* bytes the unconsumed jobs may weigh together */
	size_t weight; /* what they weigh now (owner's thread only) */
	int stopping;

	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stopping */
	pthread_cond_t done; /* a job finished */
	pthread_rwlock_t index_lock;
};

int cairn_pipeline_default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* Hashes and, for a new chunk, encodes. Runs on a worker (or the owner). */
static void job_run(cairn_pipeline *p, cairn_job *job)
{
	cairn_repo *repo = p->repo;

	job->error = 0;
	if (job->kind != CAIRN_JOB_CHUNK)
		return;
	if (p->work_fn) {
		if ((job->error = p->work_fn(repo, job)) < 0)
			snprintf(job->message, sizeof(job->message), "%s", cairn_error_message());
		return;
	}
	cairn_frame_checksum(&repo->keys, job->data.data, job->data.len, job->id);
	pthread_rwlock_rdlock(&p->index_lock);
	job->known = cairn_index_find(&repo->index, job->id) != NULL;
	pthread_rwlock_unlock(&p->index_lock);
	cairn_buf_clear(&job->frame);
	if (job->known)
		return;
	if ((job->error = cairn_frame_encode(&repo->keys, repo->codec, repo->level, 0, job->data.data,
	                                     job->data.len, job->id, &job->frame)) < 0)
		snprintf(job->message, sizeof(job->message), "%s", cairn_error_message());
}

static void *worker_main(void *arg)
{
	cairn_pipeline *p = arg;
	cairn_job *job;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stopping && p->next == p->tail)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stopping)
			break;
		job = &p->jobs[p->next++ % p->depth];
		job->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->lock);
		job_run(p, job);
		pthread_mutex_lock(&p->lock);
		job->state = JOB_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int cairn_pipeline_new(cairn_pipeline **out, cairn_repo *repo, int workers, cairn_work_fn work,
                       cairn_consume_fn consume, void *arg)
{
	cairn_pipeline *p;
	int i, error = 0;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	p->repo = repo;
	p->work_fn = work;
	p->consume = consume;
	p->arg = arg;
	p->workers = workers < 0 ? 0 : workers;
	/* Two jobs per worker keep every worker busy while the owner consumes. */
	/*
	 * Enough jobs that a worker always finds one while the owner is busy
	 * reading or writing (a shallow ring left both cores idle a quarter of
	 * a cold PostgreSQL backup); the byte budget keeps large chunks from
	 * multiplying that into much memory.
	 */
	if (p->workers) {
		p->depth = CAIRN_PIPELINE_JOBS_PER_WORKER * (size_t)p->workers + 2;
		if (p->depth > CAIRN_PIPELINE_MAX_JOBS)
			p->depth = CAIRN_PIPELINE_MAX_JOBS;
	} else {
		p->depth = 1;
	}
	p->budget = p->depth * CAIRN_PIPELINE_BYTES_PER_JOB;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	pthread_rwlock_init(&p->index_lock, NULL);
	if (!(p->jobs = calloc(p->depth, sizeof(*p->jobs))) ||
	    (p->workers && !(p->threads = calloc((size_t)p->workers, sizeof(*p->threads))))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < p->workers; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
			error = cairn_error_set(CAIRN_ERROR, "cannot start worker thread %d", i + 1);
			goto fail;
		}
		p->started++;
	}
	*out = p;
	return 0;
fail:
	cairn_pipeline_free(p);
	return error;
}

/* Consumes the oldest job, waiting for it when a worker still has it. */
static int consume_oldest(cairn_pipeline *p)
{
	cairn_job *job = &p->jobs[p->head % p->depth];
	int error;

	pthread_mutex_lock(&p->lock);
	while (job->state != JOB_DONE)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
	if (job->error < 0) {
		error = cairn_error_set(job->error, "%s", job->message);
	} else {
		error = p->consume(p->arg, job);
	}
	job->state = JOB_EMPTY;
	p->weight -= job->weight;
	/* A slot keeps no more than its share of the budget between jobs. */
	if (job->data.cap > 2 * CAIRN_PIPELINE_BYTES_PER_JOB)
		cairn_buf_free(&job->data);
	if (job->frame.cap > 2 * CAIRN_PIPELINE_BYTES_PER_JOB)
		cairn_buf_free(&job->frame);
	p->head++;
	return error;
}

/*
 * What a job weighs against the budget: a chunk to decode (value set) the
 * chunk it decodes to, whatever it holds when submitted (its id, or the id
 * and the stored frame); anything else its data.
 */
static size_t job_weight(cairn_job_kind kind, size_t len, uint64_t value)
{
	if (kind == CAIRN_JOB_CHUNK && value)
		return (size_t)value;
	return len;
}

int cairn_pipeline_submit(cairn_pipeline *p, cairn_job_kind kind, const void *data, size_t len,
                          uint64_t value)
{
	cairn_job *job;
	size_t weight = job_weight(kind, len, value);
	int error;

	while (p->tail - p->head == p->depth ||
	       (p->tail != p->head && p->weight + weight > p->budget))
		if ((error = consume_oldest(p)) < 0)
			return error;
	job = &p->jobs[p->tail % p->depth];
	cairn_buf_clear(&job->data);
	if ((error = cairn_buf_append(&job->data, data, len)) < 0)
		return error;
	job->kind = kind;
	job->value = value;
	job->known = 0;
	job->weight = weight;
	p->weight += weight;
	if (!p->workers) {
		job_run(p, job);
		job->state = JOB_DONE;
		p->tail++;
		return consume_oldest(p);
	}
	pthread_mutex_lock(&p->lock);
	job->state = JOB_QUEUED;
	p->tail++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int cairn_pipeline_drain(cairn_pipeline *p)
{
	int error;

	while (p->head != p->tail)
		if ((error = consume_oldest(p)) < 0)
			return error;
	return 0;
}

size_t cairn_pipeline_pending(const cairn_pipeline *p)
{
	return (size_t)(p->tail - p->head);
}

int cairn_pipeline_can_submit(const cairn_pipeline *p, cairn_job_kind kind, size_t len,
                              uint64_t value)
{
	if (p->tail - p->head == p->depth)
		return 0;
	return p->tail == p->head || p->weight + job_weight(kind, len, value) <= p->budget;
}

int cairn_pipeline_consume_one(cairn_pipeline *p)
{
	return p->head == p->tail ? 0 : consume_oldest(p);
}

int cairn_pipeline_index_add(cairn_pipeline *p, const cairn_index_entry *e)
{
	int error;

	pthread_rwlock_wrlock(&p->index_lock);
	error = cairn_index_add(&p->repo->index, e);
	pthread_rwlock_unlock(&p->index_lock);
	return error;
}

void cairn_pipeline_free(cairn_pipeline *p)
{
	size_t i;
	int t;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (t = 0; t < p->started; t++)
		pthread_join(p->threads[t], NULL);
	for (i = 0; p->jobs && i < p->depth; i++) {
		cairn_buf_free(&p->jobs[i].data);
		cairn_buf_free(&p->jobs[i].frame);
	}
	free(p->jobs);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_rwlock_destroy(&p->index_lock);
	free(p);
}
