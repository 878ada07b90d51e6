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
endif

# Outside the condition: without the plugin (hiredis missing) these fail
# instead of vanishing.
UNIT_TESTS += tests/unit/test_redis
tests_unit_test_redis_SOURCES = tests/unit/test_redis.c drivers/redis/rdb.c drivers/redis/util.c
tests_unit_test_redis_CFLAGS = $(AM_CFLAGS)
INTEGRATION_TESTS += \
	tests/integration/redis-roundtrip.sh \
	tests/integration/redis-aof.sh \
	tests/integration/redis-errors.sh
