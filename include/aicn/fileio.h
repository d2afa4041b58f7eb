/* fileio.h -- whole-file reads with a size bound, for configs, keys, cgroup files and image metadata. */
#ifndef AICN_FILEIO_H
#define AICN_FILEIO_H

#include <stddef.h>

/*
 * Read fd to its end into a malloc'd, NUL-terminated buffer of at most max
 * bytes (-EFBIG beyond).  EINTR is retried; the fd is not closed.
 */
int read_fd_all(int fd, size_t max, char **ret_buf, size_t *ret_len);
/* Read fd into buf (size bytes including the NUL written after the data); returns the length. */
int read_fd_into(int fd, char *buf, size_t size);

#endif /* AICN_FILEIO_H */
