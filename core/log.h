/*
 * log.h - messages to stderr, and progress on a terminal.
 *
 * Default level is WARN so scripts and cron stay quiet; -v raises it.
 * Progress is drawn only when stderr is a terminal and the level allows INFO
 * or the user did not ask for quiet.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include <stdint.h>
#include <cairn/plugin.h>

void cairn_log_set_level(int level);
int cairn_log_get_level(void);
void cairn_log(cairn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Enables progress display (only takes effect on a terminal). */
void cairn_progress_enable(int on);
/* Shows "label: done / total" at most a few times per second. */
void cairn_progress_update(uint64_t done, uint64_t total);
/* Clears the progress line. */
void cairn_progress_end(void);

#endif
