/* dl.c -- load a library on first use and resolve the functions we call from it (libarchive, libcrypto). */
#include "internal.h"

#include <dlfcn.h>
#include <stdio.h>

int sbx_dl_load(const char *soname, const char *const *names, void **const *slots, size_t n,
		char *why, size_t why_len)
{
	/* never closed: the functions stay valid for the life of the process */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		snprintf(why, why_len, "%s", e ? e : "not found");
		return -ELIBACC;
	}
	for (size_t i = 0; i < n; i++) {
		*slots[i] = dlsym(h, names[i]);
		if (!*slots[i]) {
			snprintf(why, why_len, "it has no %s", names[i]);
			return -ELIBBAD;
		}
	}
	return 0;
}
