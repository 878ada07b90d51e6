# drivers/postgres/local.mk - build rules of this plugin, included by the top Makefile.am.
if BUILD_PG
plugin_LTLIBRARIES += plugins/driver_pg.la
plugins_driver_pg_la_SOURCES = drivers/postgres/pg.h drivers/postgres/pg.c \
	drivers/postgres/backup.c drivers/postgres/restore.c drivers/postgres/wal.c \
	drivers/postgres/walscan.h drivers/postgres/walscan.c
plugins_driver_pg_la_CFLAGS = $(AM_CFLAGS) $(PG_CFLAGS)
plugins_driver_pg_la_LIBADD = $(PG_LIBS)
plugins_driver_pg_la_LDFLAGS = $(PLUGIN_LDFLAGS)
INTEGRATION_TESTS += tests/integration/pg-walkthrough.sh tests/integration/pg-partial.sh \
	tests/integration/pg-pitr.sh tests/integration/pg-incremental.sh \
	tests/integration/pg-concurrent.sh tests/integration/pg-errors.sh \
	tests/integration/pg-tablespace.sh tests/integration/pg-docker-script.sh \
	tests/integration/pg-walscan.sh
# The WAL scanner's dump program for pg-walscan.sh (compared with pg_waldump
# there): built by make check, not a test of its own.
check_PROGRAMS += tests/unit/pg-walscan-dump
tests_unit_pg_walscan_dump_SOURCES = tests/unit/pg-walscan-dump.c \
	drivers/postgres/walscan.h drivers/postgres/walscan.c
endif
