# drivers/redis/local.mk - build rules of this plugin, included by the top Makefile.am.
if BUILD_REDIS
plugin_LTLIBRARIES += plugins/driver_redis.la
plugins_driver_redis_la_SOURCES = \
	drivers/redis/redis.h \
	drivers/redis/redis.c \
	drivers/redis/conn.c \
	drivers/redis/rdb.c \
	drivers/redis/aof.c \
	drivers/redis/util.c
plugins_driver_redis_la_CFLAGS = $(AM_CFLAGS) $(REDIS_CFLAGS)
plugins_driver_redis_la_LIBADD = $(REDIS_LIBS)
plugins_driver_redis_la_LDFLAGS = $(PLUGIN_LDFLAGS)
INTEGRATION_TESTS += \
	tests/integration/redis-roundtrip.sh \
	tests/integration/redis-aof.sh \
	tests/integration/redis-errors.sh
endif
