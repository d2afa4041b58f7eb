/* archive_dl.c -- libarchive, loaded on first use: a run from a cached rootfs never maps it or its dependencies. */
#include "internal.h"

#include <dlfcn.h>
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
	/* never closed: the functions stay valid for the life of the process */
	void *h = dlopen(SBX_ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *e;

	if (!h) {
		e = dlerror();
		snprintf(la_why, sizeof(la_why), "%s", e ? e : "not found");
		la_err = -ELIBACC;
		return;
	}
#define SBX_LA_SYM(f)                                                                              \
	do {                                                                                       \
		*(void **)&sbx_la.f = dlsym(h, #f);                                                \
		if (!sbx_la.f) {                                                                   \
			snprintf(la_why, sizeof(la_why), "it has no %s", #f);                      \
			la_err = -ELIBBAD;                                                         \
			return;                                                                    \
		}                                                                                  \
	} while (0);
	SBX_ARCHIVE_FUNCS(SBX_LA_SYM)
#undef SBX_LA_SYM
}

int sbx_archive_load(struct sbx_err *err)
{
	pthread_once(&la_once, la_load);
	if (la_err < 0)
		return sbx_fail(err, la_err, "cannot load %s to unpack images: %s",
				SBX_ARCHIVE_SONAME, la_why);
	return 0;
}
