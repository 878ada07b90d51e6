# storages/s3/local.mk - build rules of this plugin, included by the top Makefile.am.
#
# libcairnhttp is the HTTP client shared by the cloud storages (core/http.c):
# a convenience library linked into each plugin that needs it, so that
# libcairn itself never depends on libcurl.

if BUILD_S3
noinst_LTLIBRARIES += libcairnhttp.la
libcairnhttp_la_SOURCES = core/http.c core/http.h
libcairnhttp_la_CFLAGS = $(AM_CFLAGS) $(S3_CFLAGS)
libcairnhttp_la_LIBADD = $(S3_LIBS)

plugin_LTLIBRARIES += plugins/storage_s3.la
plugins_storage_s3_la_SOURCES = storages/s3/s3.c storages/s3/sigv4.c storages/s3/sigv4.h
plugins_storage_s3_la_CFLAGS = $(AM_CFLAGS) $(S3_CFLAGS) $(CRYPTO_CFLAGS)
plugins_storage_s3_la_LIBADD = libcairnhttp.la $(S3_LIBS) $(CRYPTO_LIBS) -lpthread
plugins_storage_s3_la_LDFLAGS = $(PLUGIN_LDFLAGS)

UNIT_TESTS += tests/unit/test_sigv4
tests_unit_test_sigv4_SOURCES = tests/unit/test_sigv4.c storages/s3/sigv4.c storages/s3/sigv4.h
tests_unit_test_sigv4_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_sigv4_LDADD = $(CRYPTO_LIBS)

# Against versitygw, started by tests/lib/s3.sh.
INTEGRATION_TESTS += \
	tests/integration/s3-contract.sh \
	tests/integration/s3-storage.sh \
	tests/integration/s3-settings.sh \
	tests/integration/s3-backup.sh \
	tests/integration/s3-faults.sh
if BUILD_PG
INTEGRATION_TESTS += tests/integration/s3-pg.sh
endif
endif
