/* archive_dl.c -- libarchive, loaded on first use: a run from a cached rootfs never maps it or its dependencies. */
#include "internal.h"

#include <pthread.h>
#include <string.h>

/* libarchive 3.x keeps this soname; Debian's libarchive13 and Fedora's libarchive ship it */
#define SBX_ARCHIVE_SONAME "libarchive.so.13"

struct sbx_archive_api sbx_la;
static int la_err;
static char la_why[256];
static pthread_once_t la_once = PTHREAD_ONCE_INIT;

static void la_load(void)
{
#define SBX_LA_NAME(f) #f,
#define SBX_LA_SLOT(f) (void **)&sbx_la.f,
	static const char *const names[] = {SBX_ARCHIVE_FUNCS(SBX_LA_NAME)};
	void **const slots[] = {SBX_ARCHIVE_FUNCS(SBX_LA_SLOT)};
#undef SBX_LA_SLOT
#undef SBX_LA_NAME

	la_err = sbx_dl_load(SBX_ARCHIVE_SONAME, names, slots, ARRAY_SIZE(names), la_why,
			     sizeof(la_why));
}

int sbx_archive_load(struct sbx_err *err)
{
	pthread_once(&la_once, la_load);
	if (la_err < 0)
		return sbx_fail(err, la_err, "cannot load %s to unpack images: %s",
				SBX_ARCHIVE_SONAME, la_why);
	return 0;
}
