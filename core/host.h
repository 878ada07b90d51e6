/*
 * host.h - the table of services the core hands to plugins.
 */
#ifndef CAIRN_HOST_H
#define CAIRN_HOST_H

#include <cairn/plugin.h>

/* The one host table, valid for the life of the process. */
const cairn_host *cairn_host_get(void);

#endif
