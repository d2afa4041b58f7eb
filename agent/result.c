/* result.c -- the task's result archive (libarchive, ustar/pax): deterministic, bounded, never follows links. */
#include "result.h"

#include <aicn/compiler.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct builder {
	struct archive *ar;
	struct result_info info;
	char *why;
	size_t whylen;
	char buf[64 * 1024];
};

static int fail(struct builder *b, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(struct builder *b, int err, const char *fmt, ...)
{
	va_list ap;

	if (b->why && b->whylen) {
		va_start(ap, fmt);
		vsnprintf(b->why, b->whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static int header(struct builder *b, const char *name, mode_t type, mode_t perm, int64_t size,
		  const char *link)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_size(e, type == AE_IFREG ? size : 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	if (link)
		archive_entry_set_symlink(e, link);
	r = archive_write_header(b->ar, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return fail(b, -EIO, "writing %s: %s", name, archive_error_string(b->ar));
	return 0;
}

static int data(struct builder *b, const void *p, size_t len)
{
	return archive_write_data(b->ar, p, len) == (la_ssize_t)len
		       ? 0
		       : fail(b, -EIO, "writing data: %s", archive_error_string(b->ar));
}

/* Copy exactly LEN bytes of FD from its offset OFF (a file that shrinks is padded with zeros). */
static int copy_fd(struct builder *b, int fd, off_t off, uint64_t len)
{
	while (len) {
		size_t want = len < sizeof(b->buf) ? (size_t)len : sizeof(b->buf);
		ssize_t n = pread(fd, b->buf, want, off);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(b, -errno, "reading: %m");
		if (n == 0) {
			memset(b->buf, 0, want);
			n = (ssize_t)want;
		}
		r = data(b, b->buf, (size_t)n);
		if (r < 0)
			return r;
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int add_stream(struct builder *b, int dirfd, const char *name)
{
	_cleanup_close_ int fd =
		openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	uint64_t len = 0;
	off_t off = 0;
	int r;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		len = (uint64_t)st.st_size;
		if (len > RESULT_STREAM_MAX) {
			off = (off_t)(len - RESULT_STREAM_MAX);
			len = RESULT_STREAM_MAX;
		}
	}
	r = header(b, name, AE_IFREG, 0644, (int64_t)len, NULL);
	if (r == 0 && len)
		r = copy_fd(b, fd, off, len);
	return r;
}

static int name_cmp(const void *a, const void *c)
{
	return strcmp(*(char *const *)a, *(char *const *)c);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Add directory DIRFD (named PREFIX in the archive) and what is below it, sorted. */
static int add_tree(struct builder *b, int dirfd, const char *prefix, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (depth > RESULT_OUT_DEPTH_MAX) {
		b->info.out_skipped++;
		return 0;
	}
	{
		int fd = dup(dirfd);

		if (fd < 0)
			return fail(b, -errno, "dup: %m");
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return fail(b, -errno, "reading %s: %m", prefix);
		}
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **nn;

			if (n >= RESULT_OUT_ENTRIES_MAX) {
				b->info.out_skipped++;
				continue;
			}
			cap = cap ? cap * 2 : 32;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r == 0 && n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; r == 0 && i < n; i++) {
		_cleanup_free_ char *path = NULL;
		struct stat st;

		if (asprintf(&path, "%s/%s", prefix, names[i]) < 0) {
			path = NULL;
			r = -ENOMEM;
			break;
		}
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (b->info.out_files + b->info.out_skipped >= RESULT_OUT_ENTRIES_MAX) {
			b->info.out_skipped++;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(
				dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				b->info.out_skipped++;
				continue;
			}
			r = header(b, path, AE_IFDIR, 0755, 0, NULL);
			if (r == 0)
				r = add_tree(b, sub, path, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t l = readlinkat(dirfd, names[i], target, sizeof(target) - 1);

			if (l < 0) {
				b->info.out_skipped++;
				continue;
			}
			target[l] = '\0';
			r = header(b, path, AE_IFLNK, 0777, 0, target);
			b->info.out_files++;
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int fd = openat(
				dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			struct stat fst;

			if (fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) ||
			    b->info.out_bytes + (uint64_t)fst.st_size > RESULT_OUT_MAX) {
				b->info.out_skipped++;
				continue;
			}
			r = header(b, path, AE_IFREG, (fst.st_mode & 0111) ? 0755 : 0644,
				   fst.st_size, NULL);
			if (r == 0)
				r = copy_fd(b, fd, 0, (uint64_t)fst.st_size);
			b->info.out_files++;
			b->info.out_bytes += (uint64_t)fst.st_size;
		} else {
			b->info.out_skipped++; /* sockets, fifos, devices */
		}
	}
	free_names(names, n);
	return r;
}

static int archive_to_fd(struct builder *b, int fd)
{
	b->ar = archive_write_new();
	if (!b->ar)
		return -ENOMEM;
	if (archive_write_set_format_pax_restricted(b->ar) != ARCHIVE_OK ||
	    archive_write_add_filter_none(b->ar) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(b->ar, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(b->ar, fd) != ARCHIVE_OK)
		return fail(b, -EIO, "libarchive: %s", archive_error_string(b->ar));
	return 0;
}

int result_build(int task_dirfd, const char *work_rel, int exit_code, const char *out_path,
		 struct result_info *ret_info, char *why, size_t whylen)
{
	_cleanup_free_ struct builder *b = calloc(1, sizeof(*b));
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	char code[16];
	int n, r;

	if (!b)
		return -ENOMEM;
	b->why = why;
	b->whylen = whylen;
	if (asprintf(&tmp, "%s.tmp", out_path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return fail(b, -errno, "creating %s: %m", tmp);
	r = archive_to_fd(b, fd);
	n = snprintf(code, sizeof(code), "%d\n", exit_code);
	if (r == 0)
		r = header(b, "exit_code", AE_IFREG, 0644, n, NULL);
	if (r == 0)
		r = data(b, code, (size_t)n);
	if (r == 0)
		r = add_stream(b, task_dirfd, "stdout");
	if (r == 0)
		r = add_stream(b, task_dirfd, "stderr");
	if (r == 0 && work_rel) {
		_cleanup_close_ int wfd = openat(task_dirfd, work_rel,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int ofd =
			wfd < 0 ? -1
				: openat(wfd, "out",
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (ofd >= 0) {
			r = header(b, "out", AE_IFDIR, 0755, 0, NULL);
			if (r == 0)
				r = add_tree(b, ofd, "out", 1);
		}
	}
	if (b->ar) {
		if (r == 0 && archive_write_close(b->ar) != ARCHIVE_OK)
			r = fail(b, -EIO, "closing the archive: %s", archive_error_string(b->ar));
		archive_write_free(b->ar);
	}
	if (r == 0) {
		struct stat st;

		if (fsync(fd) < 0 || fstat(fd, &st) < 0)
			r = fail(b, -errno, "%s: %m", tmp);
		else
			b->info.size = (uint64_t)st.st_size;
	}
	if (r == 0) {
		r = sha256_file(AT_FDCWD, tmp, b->info.digest);
		if (r < 0)
			fail(b, r, "hashing %s", tmp);
	}
	if (r == 0 && rename(tmp, out_path) < 0)
		r = fail(b, -errno, "renaming to %s: %m", out_path);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	*ret_info = b->info;
	return 0;
}
