/* unpack.c -- apply one OCI layer (tar, gzip or zstd) onto a rootfs: safe paths, whiteouts, verified digest. */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define UNPACK_MAX_ENTRIES 65536 /* per layer; see docs/sandbox.md */
#define UNPACK_BUF (128u << 10)

/* Paths created by the current layer: an opaque whiteout must keep them. */
struct pathset {
	char **slot;
	size_t cap; /* power of two */
	size_t n;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static int pathset_add(struct pathset *ps, const char *p)
{
	size_t i;

	if ((ps->n + 1) * 2 > ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 1024;
		char **ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (size_t k = 0; k < ps->cap; k++) {
			if (!ps->slot[k])
				continue;
			for (i = fnv1a(ps->slot[k]) & (ncap - 1); ns[i]; i = (i + 1) & (ncap - 1))
				;
			ns[i] = ps->slot[k];
		}
		free(ps->slot);
		ps->slot = ns;
		ps->cap = ncap;
	}
	for (i = fnv1a(p) & (ps->cap - 1); ps->slot[i]; i = (i + 1) & (ps->cap - 1))
		if (strcmp(ps->slot[i], p) == 0)
			return 0;
	ps->slot[i] = strdup(p);
	if (!ps->slot[i])
		return -ENOMEM;
	ps->n++;
	return 0;
}

static int pathset_has(const struct pathset *ps, const char *p)
{
	if (!ps->cap)
		return 0;
	for (size_t i = fnv1a(p) & (ps->cap - 1); ps->slot[i]; i = (i + 1) & (ps->cap - 1))
		if (strcmp(ps->slot[i], p) == 0)
			return 1;
	return 0;
}

static void pathset_clear(struct pathset *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		free(ps->slot[i]);
	free(ps->slot);
	memset(ps, 0, sizeof(*ps));
}

/*
 * Normalize a tar member name into out ("a/b/c", "" for the root): drop "./" and
 * empty components; refuse absolute names and "..".  -EINVAL with a reason.
 */
static int clean_path(const char *in, char *out, size_t size, struct sbx_err *err)
{
	size_t o = 0;
	const char *p = in;

	out[0] = '\0';
	if (in[0] == '/')
		return sbx_fail(err, -EINVAL, "layer entry \"%.200s\" has an absolute path", in);
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return sbx_fail(err, -EINVAL, "layer entry \"%.200s\" contains \"..\"", in);
		if (len && !(len == 1 && p[0] == '.')) {
			if (o + len + 2 > size)
				return sbx_fail(err, -ENAMETOOLONG, "layer entry name too long");
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = *e ? e + 1 : e;
	}
	out[o] = '\0';
	return 0;
}

static int open_how_call(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = resolve,
	};

	return RET_NERRNO((int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

int sbx_open_beneath(int dirfd, const char *path, int flags)
{
	return open_how_call(dirfd, path, flags,
			     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
}

int sbx_open_in_root(int dirfd, const char *path, int flags)
{
	return open_how_call(dirfd, path, flags,
			     RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
}

int sbx_rootfs_mountpoints(int rootfs_fd, uid_t owner, struct sbx_err *err)
{
	static const char *const dirs[] = {"proc", "dev", "tmp", "work"};
	struct stat st;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (fstatat(rootfs_fd, dirs[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				continue;
			/* a /tmp symlink or file would redirect our mount: replace it */
			if (sbx_rm_rf_at(rootfs_fd, dirs[i]) < 0)
				return sbx_fail(err, -ENOTDIR, "rootfs /%s is not a directory",
						dirs[i]);
		} else if (errno != ENOENT) {
			return sbx_fail(err, -errno, "rootfs /%s: %s", dirs[i], strerror(errno));
		}
		if (mkdirat(rootfs_fd, dirs[i], 0755) < 0 ||
		    fchownat(rootfs_fd, dirs[i], owner, owner, AT_SYMLINK_NOFOLLOW) < 0)
			return sbx_fail(err, -errno, "cannot create rootfs /%s: %s", dirs[i],
					strerror(errno));
	}
	return 0;
}

/* Remove NAME under dirfd, recursively, never following symlinks. */
int sbx_rm_rf_at(int dir_fd, const char *name)
{
	struct stat st;
	int r;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d;
		struct dirent *de;

		if (fd < 0)
			return -errno;
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -ENOMEM;
		}
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			r = sbx_rm_rf_at(dirfd(d), de->d_name);
			if (r < 0) {
				closedir(d);
				return r;
			}
		}
		closedir(d);
		return RET_NERRNO(unlinkat(dir_fd, name, AT_REMOVEDIR));
	}
	return RET_NERRNO(unlinkat(dir_fd, name, 0));
}

struct layer_state {
	int root;		  /* rootfs dirfd */
	uint32_t id_base;	  /* host id of image uid 0 */
	struct pathset created;	  /* paths this layer created */
	const struct oci_desc *d; /* the layer */
	struct sbx_err *err;
};

/*
 * Open the parent directory of path (beneath root), creating missing directories
 * (0755, image root).  Sets *base to the last component.
 */
static int open_parent(struct layer_state *ls, char *path, const char **base)
{
	char *slash = strrchr(path, '/');
	int fd;

	if (!slash) {
		*base = path;
		return RET_NERRNO(fcntl(ls->root, F_DUPFD_CLOEXEC, 3));
	}
	*slash = '\0';
	*base = slash + 1;
	fd = sbx_open_beneath(ls->root, path, O_PATH | O_DIRECTORY);
	if (fd == -ENOENT) {
		/* create the missing components one by one */
		_cleanup_close_ int cur = RET_NERRNO(fcntl(ls->root, F_DUPFD_CLOEXEC, 3));
		char *p = path;

		if (cur < 0) {
			*slash = '/';
			return cur;
		}
		while (p) {
			char *e = strchr(p, '/');
			int next;

			if (e)
				*e = '\0';
			next = sbx_open_beneath(cur, p, O_PATH | O_DIRECTORY);
			if (next == -ENOENT) {
				if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
					next = -errno;
				else if (fchownat(cur, p, ls->id_base, ls->id_base,
						  AT_SYMLINK_NOFOLLOW) < 0)
					next = -errno;
				else
					next = sbx_open_beneath(cur, p, O_PATH | O_DIRECTORY);
			}
			if (e)
				*e = '/';
			if (next < 0) {
				*slash = '/';
				fd = next;
				goto out;
			}
			close(cur);
			cur = next;
			p = e ? e + 1 : NULL;
		}
		fd = TAKE_FD(cur);
	}
out:
	*slash = '/';
	if (fd == -EXDEV || fd == -ELOOP)
		return sbx_fail(
			ls->err, -EXDEV,
			"layer %s: entry \"%.200s\" resolves outside the rootfs through a symlink",
			ls->d->digest_str, path);
	if (fd == -ENOTDIR)
		return sbx_fail(ls->err, -ENOTDIR,
				"layer %s: a parent of \"%.200s\" is not a directory",
				ls->d->digest_str, path);
	if (fd < 0)
		return sbx_fail(ls->err, fd, "layer %s: cannot open the parent of \"%.200s\"",
				ls->d->digest_str, path);
	return fd;
}

static int do_whiteout(struct layer_state *ls, char *path, const char *parent_path)
{
	const char *base;
	_cleanup_close_ int pfd = -1;
	int r;

	pfd = open_parent(ls, path, &base);
	if (pfd < 0)
		return pfd;
	if (strcmp(base, ".wh..wh..opq") == 0) {
		/* opaque directory: drop everything lower layers put there */
		int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d;
		struct dirent *de;
		char child[PATH_MAX];

		if (dfd < 0)
			return -errno;
		d = fdopendir(dfd);
		if (!d) {
			close(dfd);
			return -ENOMEM;
		}
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(child, sizeof(child), "%s%s%s", parent_path,
				 parent_path[0] ? "/" : "", de->d_name);
			if (pathset_has(&ls->created, child))
				continue;
			r = sbx_rm_rf_at(dirfd(d), de->d_name);
			if (r < 0) {
				closedir(d);
				return sbx_fail(ls->err, r,
						"layer %s: opaque whiteout of \"%.200s\"",
						ls->d->digest_str, parent_path);
			}
		}
		closedir(d);
		return 0;
	}
	base += 4; /* ".wh." */
	if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
	    strncmp(base, ".wh.", 4) == 0)
		return sbx_fail(ls->err, -EINVAL, "layer %s: malformed whiteout \"%.200s\"",
				ls->d->digest_str, path);
	r = sbx_rm_rf_at(pfd, base);
	if (r < 0)
		return sbx_fail(ls->err, r, "layer %s: whiteout of \"%.200s\" failed",
				ls->d->digest_str, path);
	return 0;
}

/* Make room for a new entry: remove what is there unless both are directories. */
static int clear_slot(int pfd, const char *base, int want_dir, int *ret_exists_dir)
{
	struct stat st;

	*ret_exists_dir = 0;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode) && want_dir) {
		*ret_exists_dir = 1;
		return 0;
	}
	return sbx_rm_rf_at(pfd, base);
}

static int write_data(struct archive *a, int fd)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	for (;;) {
		r = sbx_la.archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return -EIO;
		while (size) {
			ssize_t n = pwrite(fd, buf, size, off);

			if (n < 0)
				return -errno;
			buf = (const char *)buf + n;
			size -= (size_t)n;
			off += n;
		}
	}
}

static int apply_entry(struct layer_state *ls, struct archive *a, struct archive_entry *e)
{
	char path[PATH_MAX], parent_path[PATH_MAX], lpath[PATH_MAX];
	const char *base, *hl = sbx_la.archive_entry_hardlink(e);
	_cleanup_close_ int pfd = -1, fd = -1;
	mode_t type = sbx_la.archive_entry_filetype(e), mode = sbx_la.archive_entry_perm(e) & 07777;
	la_int64_t uid = sbx_la.archive_entry_uid(e), gid = sbx_la.archive_entry_gid(e);
	int r, exists_dir;
	struct timespec ts[2];

	if (!sbx_la.archive_entry_pathname(e))
		return sbx_fail(ls->err, -EINVAL, "layer %s: entry without a name",
				ls->d->digest_str);
	r = clean_path(sbx_la.archive_entry_pathname(e), path, sizeof(path), ls->err);
	if (r < 0)
		return r;
	if (!path[0])
		return 0; /* the root itself */
	if (uid < 0 || uid >= SBX_ID_COUNT || gid < 0 || gid >= SBX_ID_COUNT)
		return sbx_fail(ls->err, -ERANGE,
				"layer %s: \"%.200s\" is owned by %lld:%lld, outside 0..%u",
				ls->d->digest_str, path, (long long)uid, (long long)gid,
				SBX_ID_COUNT - 1);
	snprintf(parent_path, sizeof(parent_path), "%s", path);
	{
		char *s = strrchr(parent_path, '/');
		const char *b = s ? s + 1 : parent_path;

		if (strncmp(b, ".wh.", 4) == 0) {
			if (s)
				*s = '\0';
			else
				parent_path[0] = '\0';
			return do_whiteout(ls, path, parent_path);
		}
	}
	r = pathset_add(&ls->created, path);
	if (r < 0)
		return r;
	pfd = open_parent(ls, path, &base);
	if (pfd < 0)
		return pfd;

	if (hl) {
		const char *tbase;
		_cleanup_close_ int tfd = -1;

		r = clean_path(hl, lpath, sizeof(lpath), ls->err);
		if (r < 0)
			return sbx_fail(ls->err, r,
					"layer %s: hardlink \"%.200s\" -> \"%.200s\" escapes",
					ls->d->digest_str, path, hl);
		if (!lpath[0])
			return sbx_fail(ls->err, -EINVAL, "layer %s: hardlink to the root",
					ls->d->digest_str);
		tfd = open_parent(ls, lpath, &tbase);
		if (tfd < 0)
			return tfd;
		r = clear_slot(pfd, base, 0, &exists_dir);
		if (r < 0)
			return sbx_fail(ls->err, r, "layer %s: cannot replace \"%.200s\"",
					ls->d->digest_str, path);
		if (linkat(tfd, tbase, pfd, base, 0) < 0)
			return sbx_fail(ls->err, -errno,
					"layer %s: hardlink \"%.200s\" -> \"%.200s\": %s",
					ls->d->digest_str, path, lpath, strerror(errno));
		return 0;
	}

	switch (type) {
	case AE_IFREG:
		r = clear_slot(pfd, base, 0, &exists_dir);
		if (r < 0)
			break;
		fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			break;
		}
		r = write_data(a, fd);
		if (r == -EIO)
			return sbx_fail(ls->err, -EIO, "layer %s: %s", ls->d->digest_str,
					sbx_la.archive_error_string(a)
						? sbx_la.archive_error_string(a)
						: "read error");
		if (r < 0)
			break;
		if (ftruncate(fd, sbx_la.archive_entry_size(e)) < 0 ||
		    fchown(fd, ls->id_base + (uid_t)uid, ls->id_base + (gid_t)gid) < 0 ||
		    fchmod(fd, mode) < 0) {
			r = -errno;
			break;
		}
		ts[0].tv_sec = ts[1].tv_sec = sbx_la.archive_entry_mtime(e);
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		(void)futimens(fd, ts);
		break;
	case AE_IFDIR:
		r = clear_slot(pfd, base, 1, &exists_dir);
		if (r < 0)
			break;
		if (!exists_dir && mkdirat(pfd, base, 0700) < 0) {
			r = -errno;
			break;
		}
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchown(fd, ls->id_base + (uid_t)uid, ls->id_base + (gid_t)gid) < 0 ||
		    fchmod(fd, mode) < 0)
			r = -errno;
		break;
	case AE_IFLNK:
		if (!sbx_la.archive_entry_symlink(e))
			return sbx_fail(ls->err, -EINVAL, "layer %s: symlink without a target",
					ls->d->digest_str);
		r = clear_slot(pfd, base, 0, &exists_dir);
		if (r < 0)
			break;
		if (symlinkat(sbx_la.archive_entry_symlink(e), pfd, base) < 0 ||
		    fchownat(pfd, base, ls->id_base + (uid_t)uid, ls->id_base + (gid_t)gid,
			     AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		break;
	case AE_IFIFO:
		r = clear_slot(pfd, base, 0, &exists_dir);
		if (r < 0)
			break;
		if (mknodat(pfd, base, S_IFIFO | mode, 0) < 0 ||
		    fchownat(pfd, base, ls->id_base + (uid_t)uid, ls->id_base + (gid_t)gid,
			     AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		break;
	case AE_IFCHR:
	case AE_IFBLK:
		return sbx_fail(ls->err, -EPERM, "layer %s: \"%.200s\" is a device node (refused)",
				ls->d->digest_str, path);
	default:
		return sbx_fail(ls->err, -EINVAL,
				"layer %s: \"%.200s\" has an unsupported type 0%o",
				ls->d->digest_str, path, (unsigned)type);
	}
	if (r < 0)
		return sbx_fail(ls->err, r, "layer %s: cannot create \"%.200s\": %s",
				ls->d->digest_str, path, strerror(-r));
	return 0;
}

/* Reads the blob for libarchive, hashing and counting every byte. */
struct blob_reader {
	int fd;
	struct sbx_sha256 *sha;
	uint64_t total;
	int read_err;
	char buf[UNPACK_BUF];
};

static la_ssize_t blob_read(struct archive *a, void *data, const void **buf)
{
	struct blob_reader *br = data;
	ssize_t n;

	(void)a;
	do
		n = read(br->fd, br->buf, sizeof(br->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		br->read_err = -errno;
		return -1;
	}
	sbx_sha256_update(br->sha, br->buf, (size_t)n);
	br->total += (uint64_t)n;
	*buf = br->buf;
	return n;
}

static void la_read_freep(struct archive **a)
{
	if (*a)
		sbx_la.archive_read_free(*a);
}

int unpack_layer(int rootfs_fd, int blob_fd, const struct oci_desc *d, struct sbx_err *err)
{
	_cleanup_(la_read_freep) struct archive *a = NULL;
	_cleanup_free_ struct blob_reader *br = NULL;
	struct layer_state ls = {.root = rootfs_fd, .id_base = SBX_ID_BASE, .d = d, .err = err};
	struct archive_entry *e;
	uint8_t got[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	size_t entries = 0;
	int r = sbx_archive_load(err), ar;

	if (r < 0)
		return r;
	a = sbx_la.archive_read_new();
	br = calloc(1, sizeof(*br));
	if (!a || !br)
		return -ENOMEM;
	br->fd = blob_fd;
	r = sbx_sha256_new(&br->sha, err);
	if (r < 0)
		return r;
	sbx_la.archive_read_support_format_tar(a);
	if (d->kind == OCI_KIND_LAYER_GZIP)
		sbx_la.archive_read_support_filter_gzip(a);
	else if (d->kind == OCI_KIND_LAYER_ZSTD)
		sbx_la.archive_read_support_filter_zstd(a);
	else
		sbx_la.archive_read_support_filter_none(a);
	if (sbx_la.archive_read_open(a, br, NULL, blob_read, NULL) != ARCHIVE_OK) {
		r = sbx_fail(err, -EINVAL, "layer %s (%s) cannot be read: %s", d->digest_str,
			     d->media_type, sbx_la.archive_error_string(a) ?: "unknown format");
		goto out;
	}
	for (;;) {
		ar = sbx_la.archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = sbx_fail(err, -EINVAL, "layer %s is corrupt: %s", d->digest_str,
				     sbx_la.archive_error_string(a) ?: "bad header");
			goto out;
		}
		if (++entries > UNPACK_MAX_ENTRIES) {
			r = sbx_fail(err, -E2BIG, "layer %s has more than %d entries",
				     d->digest_str, UNPACK_MAX_ENTRIES);
			goto out;
		}
		r = apply_entry(&ls, a, e);
		if (r < 0)
			goto out;
	}
	/* hash whatever libarchive did not need (tar end padding) */
	for (;;) {
		const void *p;

		if (blob_read(a, br, &p) <= 0)
			break;
	}
	if (br->read_err) {
		r = sbx_fail(err, br->read_err, "layer %s: read error", d->digest_str);
		goto out;
	}
	if (br->total != (uint64_t)d->size) {
		r = sbx_fail(err, -EBADMSG, "layer %s is %llu bytes, its descriptor says %lld",
			     d->digest_str, (unsigned long long)br->total, (long long)d->size);
		goto out;
	}
	sbx_sha256_final(br->sha, got);
	if (memcmp(got, d->digest, SHA256_LEN) != 0) {
		hex_encode(got, SHA256_LEN, hex);
		r = sbx_fail(err, -EBADMSG, "layer %s: digest mismatch (content is sha256:%s)",
			     d->digest_str, hex);
		goto out;
	}
out:
	sbx_sha256_free(br->sha);
	pathset_clear(&ls.created);
	return r;
}
