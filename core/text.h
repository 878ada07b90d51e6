/*
 * text.h - small output formatting shared by the CLI and the core.
 */
#ifndef CAIRN_TEXT_H
#define CAIRN_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s as a JSON string literal (quoted, escaped). */
void cairn_json_string(FILE *out, const char *s);
/* "12.3 MiB" style sizes (base 1024). */
void cairn_human_size(uint64_t n, char *out, size_t len);

#endif
