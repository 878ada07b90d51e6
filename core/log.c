/* log.c - logging and progress (see log.h). */
#include "log.h"
#include "text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int log_level = CAIRN_LOG_WARN;
static int progress_on;
static int progress_shown;
static struct timespec progress_last;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void cairn_log_set_level(int level)
{
	log_level = level;
}

int cairn_log_get_level(void)
{
	return log_level;
}

static void progress_clear_locked(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = 0;
	}
}

void cairn_log(cairn_log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > log_level)
		return;
	pthread_mutex_lock(&log_lock);
	progress_clear_locked();
	fprintf(stderr, "cairn: %s: ", level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_lock);
}

void cairn_progress_enable(int on)
{
	progress_on = on && isatty(STDERR_FILENO);
}

void cairn_progress_update(uint64_t done, uint64_t total)
{
	struct timespec now;
	char a[32], b[32];

	if (!progress_on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (progress_shown && (now.tv_sec - progress_last.tv_sec) * 1000000000L +
	                              (now.tv_nsec - progress_last.tv_nsec) <
	                          250000000L)
		return;
	pthread_mutex_lock(&log_lock);
	progress_last = now;
	cairn_human_size(done, a, sizeof(a));
	if (total) {
		cairn_human_size(total, b, sizeof(b));
		fprintf(stderr, "\r\033[K%s of %s (%d%%)", a, b, (int)(done * 100 / total));
	} else {
		fprintf(stderr, "\r\033[K%s", a);
	}
	progress_shown = 1;
	pthread_mutex_unlock(&log_lock);
}

void cairn_progress_end(void)
{
	pthread_mutex_lock(&log_lock);
	progress_clear_locked();
	pthread_mutex_unlock(&log_lock);
}
