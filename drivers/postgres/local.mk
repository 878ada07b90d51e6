# drivers/postgres/local.mk - build rules of this plugin, included by the top Makefile.am.
