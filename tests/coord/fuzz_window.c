/* fuzz_window.c -- libFuzzer target: availability window specs (agent config, node registration). */
#include <aicn/window.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = malloc(size + 1), err[128];
	struct window w;
	time_t t, now = 1704110400 + (size ? data[0] : 0) * 3600;

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (window_parse(spec, &w, err, sizeof(err)) == 0) {
		uint32_t n = 0;

		for (unsigned m = 0; m < WINDOW_MINUTES; m++)
			n += window_inside_minute(&w, m);
		if (n != w.inside_minutes)
			abort();
		if (window_next_change_offset(&w, now, -3600, &t) == 0 &&
		    (t <= now ||
		     window_inside_offset(&w, t, -3600) == window_inside_offset(&w, t - 60, -3600)))
			abort(); /* the state must change exactly there */
	} else if (!memchr(err, '\0', sizeof(err)) || strncmp(err, "column ", 7) != 0) {
		abort(); /* every error names its column */
	}
	free(spec);
	return 0;
}
