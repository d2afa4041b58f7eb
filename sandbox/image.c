/* image.c -- open an OCI image layout (directory or tar) and flatten it once into a digest-keyed rootfs cache. */
#include "internal.h"

#include <aicn/fileio.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define LAYOUT_MAX_FILES 100000 /* members of a layout tar */

static int open_blob(int layout_fd, const struct oci_desc *d, struct sbx_err *err)
{
	char path[32 + SHA256_HEX_LEN];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "blobs/sha256/%s", d->digest_str + 7);
	fd = sbx_open_beneath(layout_fd, path, O_RDONLY | O_NOFOLLOW);
	if (fd == -ENOENT)
		return sbx_fail(err, -ENOENT, "blob %s is missing from the image", d->digest_str);
	if (fd < 0)
		return sbx_fail(err, fd, "blob %s cannot be opened: %s", d->digest_str,
				strerror(-fd));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return sbx_fail(err, -EINVAL, "blob %s is not a regular file", d->digest_str);
	}
	if (st.st_size != d->size) {
		close(fd);
		return sbx_fail(err, -EBADMSG, "blob %s is %lld bytes, its descriptor says %lld",
				d->digest_str, (long long)st.st_size, (long long)d->size);
	}
	return fd;
}

/* Read and verify a small JSON blob. */
static int read_blob(int layout_fd, const struct oci_desc *d, char **ret_buf, size_t *ret_len,
		     struct sbx_err *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	uint8_t got[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	size_t len = 0;
	int r;

	if (d->size > (int64_t)OCI_JSON_MAX)
		return sbx_fail(err, -EFBIG, "blob %s is too large for a %s (%lld bytes)",
				d->digest_str, d->media_type, (long long)d->size);
	fd = open_blob(layout_fd, d, err);
	if (fd < 0)
		return fd;
	r = read_fd_all(fd, OCI_JSON_MAX, &buf, &len);
	if (r < 0)
		return sbx_fail(err, r, "blob %s cannot be read: %s", d->digest_str, strerror(-r));
	r = sbx_sha256_buf(buf, len, got, err);
	if (r < 0)
		return r;
	if (len != (size_t)d->size || memcmp(got, d->digest, SHA256_LEN) != 0) {
		hex_encode(got, SHA256_LEN, hex);
		return sbx_fail(err, -EBADMSG, "blob %s: digest mismatch (content is sha256:%s)",
				d->digest_str, hex);
	}
	*ret_buf = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_index, oci_index_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_manifest, oci_manifest_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct oci_config, oci_config_free)

/* Find the first manifest for our platform, following nested indexes. */
static int select_manifest(int layout_fd, const struct oci_index *idx, int depth,
			   struct oci_desc *ret, char *seen, size_t seen_size, struct sbx_err *err)
{
	int r;

	if (depth > OCI_MAX_INDEX_DEPTH)
		return sbx_fail(err, -ELOOP, "image index nested more than %d deep",
				OCI_MAX_INDEX_DEPTH);
	for (size_t i = 0; i < idx->n; i++) {
		const struct oci_desc *d = &idx->manifests[i];

		if (d->has_platform &&
		    strlen(seen) + strlen(d->os) + strlen(d->arch) + 4 < seen_size)
			snprintf(seen + strlen(seen), seen_size - strlen(seen), "%s%s/%s",
				 seen[0] ? ", " : "", d->os, d->arch);
		if (!oci_platform_matches(d))
			continue;
		if (d->kind == OCI_KIND_MANIFEST) {
			*ret = *d;
			return 0;
		}
		if (d->kind == OCI_KIND_INDEX) {
			_cleanup_free_ char *buf = NULL;
			_cleanup_(oci_index_freep) struct oci_index *sub = NULL;
			size_t len = 0;

			r = read_blob(layout_fd, d, &buf, &len, err);
			if (r < 0)
				return r;
			r = oci_index_parse(buf, len, &sub, err);
			if (r < 0)
				return r;
			r = select_manifest(layout_fd, sub, depth + 1, ret, seen, seen_size, err);
			if (r != -ENOENT)
				return r;
		}
	}
	return -ENOENT;
}

/* Copy the members of an OCI layout tar into dest_fd (oci-layout, index.json, blobs/sha256/<hex>). */
static int extract_layout_tar(const char *tar, int dest_fd, struct sbx_err *err)
{
	struct archive *a;
	struct archive_entry *e;
	size_t files = 0;
	int r = sbx_archive_load(err), ar;

	if (r < 0)
		return r;
	a = sbx_la.archive_read_new();
	if (!a)
		return -ENOMEM;
	sbx_la.archive_read_support_format_tar(a);
	sbx_la.archive_read_support_filter_none(a);
	if (mkdirat(dest_fd, "blobs", 0700) < 0 || mkdirat(dest_fd, "blobs/sha256", 0700) < 0) {
		r = sbx_fail(err, -errno, "cannot create the layout's temporary directory");
		goto out;
	}
	if (sbx_la.archive_read_open_filename(a, tar, 1 << 16) != ARCHIVE_OK) {
		r = sbx_fail(err, -EINVAL, "%s is not a tar archive: %s", tar,
			     sbx_la.archive_error_string(a) ?: "unknown format");
		goto out;
	}
	while ((ar = sbx_la.archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *name;
		char clean[PATH_MAX];
		const void *buf;
		size_t size;
		la_int64_t off;
		_cleanup_close_ int fd = -1;

		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = sbx_fail(err, -EINVAL, "%s is a corrupt tar: %s", tar,
				     sbx_la.archive_error_string(a) ?: "bad header");
			goto out;
		}
		if (++files > LAYOUT_MAX_FILES) {
			r = sbx_fail(err, -E2BIG, "%s has too many members", tar);
			goto out;
		}
		name = sbx_la.archive_entry_pathname(e);
		if (!name || sbx_la.archive_entry_filetype(e) != AE_IFREG)
			continue;
		if (strncmp(name, "./", 2) == 0)
			name += 2;
		snprintf(clean, sizeof(clean), "%s", name);
		if (strcmp(clean, "index.json") != 0 && strcmp(clean, "oci-layout") != 0) {
			uint8_t dg[SHA256_LEN];

			if (strncmp(clean, "blobs/sha256/", 13) != 0 ||
			    strlen(clean + 13) != SHA256_HEX_LEN ||
			    hex_decode(clean + 13, SHA256_HEX_LEN, dg, sizeof(dg)) < 0)
				continue; /* manifest.json, repositories, other algorithms */
		}
		fd = openat(dest_fd, clean, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0) {
			r = sbx_fail(err, -errno, "%s: member %s: %s", tar, clean, strerror(errno));
			goto out;
		}
		while ((ar = sbx_la.archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
			while (size) {
				ssize_t n = pwrite(fd, buf, size, off);

				if (n < 0) {
					r = sbx_fail(err, -errno, "%s: writing %s: %s", tar, clean,
						     strerror(errno));
					goto out;
				}
				buf = (const char *)buf + n;
				size -= (size_t)n;
				off += n;
			}
		}
		if (ar != ARCHIVE_EOF) {
			r = sbx_fail(err, -EINVAL, "%s: member %s is truncated: %s", tar, clean,
				     sbx_la.archive_error_string(a) ?: "read error");
			goto out;
		}
		if (ftruncate(fd, sbx_la.archive_entry_size(e)) < 0) {
			r = -errno;
			goto out;
		}
	}
out:
	sbx_la.archive_read_free(a);
	return r;
}

static int mkdir_p_0700(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Remove leftovers of an unpack of HEX that died half way (we hold its lock). */
static void clean_stale(int tmp_fd, const char *hex)
{
	int fd = openat(tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strncmp(de->d_name, hex, SHA256_HEX_LEN) == 0 &&
		    de->d_name[SHA256_HEX_LEN] == '.')
			sbx_rm_rf_at(tmp_fd, de->d_name);
	closedir(d);
}

/*
 * Keep the verified config blob of manifest HEX as CACHE/config/HEX (written through a
 * temporary name, so it is whole or absent).  A later open of the same manifest digest
 * finds the rootfs and its config in the cache and reads no blob of the layout.
 */
static int save_config(const char *cache_dir, const char *hex, const char *buf, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	_cleanup_close_ int fd = -1;

	if (snprintf(path, sizeof(path), "%s/config", cache_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/config/%s", cache_dir, hex);
	snprintf(tmp, sizeof(tmp), "%s/config/.%s.%d", cache_dir, hex, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			unlink(tmp);
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

static int unpack_into_cache(const char *cache_dir, int layout_fd, const struct oci_desc *mdesc,
			     const struct oci_manifest *m, const char *config, size_t config_len,
			     char **ret_rootfs, int *ret_unpacked, struct sbx_err *err)
{
	const char *hex = mdesc->digest_str + 7;
	char path[PATH_MAX], tmpname[SHA256_HEX_LEN + 16];
	_cleanup_close_ int cache_fd = -1, tmp_fd = -1, lock_fd = -1, root_fd = -1;
	struct stat st;
	int r;

	r = snprintf(path, sizeof(path), "%s/rootfs/%s", cache_dir, hex);
	if (r < 0 || r >= (int)sizeof(path))
		return sbx_fail(err, -ENAMETOOLONG, "cache path too long");
	*ret_unpacked = 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		goto done;

	if ((r = mkdir_p_0700(cache_dir)) < 0)
		return sbx_fail(err, r, "cannot create cache %s: %s", cache_dir, strerror(-r));
	cache_fd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cache_fd < 0)
		return sbx_fail(err, -errno, "cannot open cache %s: %m", cache_dir);
	(void)mkdirat(cache_fd, "rootfs", 0700);
	(void)mkdirat(cache_fd, "tmp", 0700);
	(void)mkdirat(cache_fd, "lock", 0700);
	tmp_fd = openat(cache_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	snprintf(tmpname, sizeof(tmpname), "lock/%s", hex);
	lock_fd = openat(cache_fd, tmpname, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tmp_fd < 0 || lock_fd < 0)
		return sbx_fail(err, -errno, "cache %s is not usable: %m", cache_dir);
	/* a concurrent unpack of the same digest holds this lock: wait for it */
	if (flock(lock_fd, LOCK_EX) < 0)
		return sbx_fail(err, -errno, "cannot lock the cache entry: %m");
	snprintf(tmpname, sizeof(tmpname), "rootfs/%s", hex);
	if (fstatat(cache_fd, tmpname, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		goto done; /* the other one finished it */
	clean_stale(tmp_fd, hex);

	snprintf(tmpname, sizeof(tmpname), "%s.%d", hex, (int)getpid());
	if (mkdirat(tmp_fd, tmpname, 0755) < 0)
		return sbx_fail(err, -errno, "cannot create a temporary rootfs: %m");
	root_fd = openat(tmp_fd, tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root_fd < 0 || fchown(root_fd, SBX_ID_BASE, SBX_ID_BASE) < 0) {
		r = sbx_fail(err, -errno, "cannot open the temporary rootfs: %m");
		goto fail;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		_cleanup_close_ int bfd = open_blob(layout_fd, &m->layers[i], err);

		if (bfd < 0) {
			r = bfd;
			goto fail;
		}
		r = unpack_layer(root_fd, bfd, &m->layers[i], err);
		if (r < 0)
			goto fail;
	}
	r = sbx_rootfs_mountpoints(root_fd, SBX_ID_BASE, err);
	if (r < 0)
		goto fail;
	r = save_config(cache_dir, hex, config, config_len);
	if (r < 0) {
		r = sbx_fail(err, r, "cannot keep the image config in the cache: %s", strerror(-r));
		goto fail;
	}
	if (fchmod(root_fd, 0755) < 0 ||
	    renameat(tmp_fd, tmpname, cache_fd,
		     (snprintf(path, sizeof(path), "rootfs/%s", hex), path)) < 0) {
		r = sbx_fail(err, -errno, "cannot move the rootfs into the cache: %m");
		goto fail;
	}
	*ret_unpacked = 1;
done:
	/* an entry cached before configs were kept gets its config now */
	snprintf(path, sizeof(path), "%s/config/%s", cache_dir, hex);
	if (access(path, F_OK) < 0)
		(void)save_config(cache_dir, hex, config, config_len);
	snprintf(path, sizeof(path), "%s/rootfs/%s", cache_dir, hex);
	*ret_rootfs = realpath(path, NULL);
	return *ret_rootfs ? 0 : -errno;
fail:
	sbx_rm_rf_at(tmp_fd, tmpname);
	return r;
}

struct sbx_image *sbx_image_free(struct sbx_image *img)
{
	if (img) {
		free(img->rootfs);
		strv_free(img->entrypoint);
		strv_free(img->cmd);
		strv_free(img->env);
		free(img->workdir);
		free(img->user);
		free(img);
	}
	return NULL;
}

static int config_matches_host(const struct oci_config *c, struct sbx_err *err)
{
	if ((c->os[0] && strcmp(c->os, "linux") != 0) ||
	    (c->arch[0] && strcmp(c->arch, oci_host_arch()) != 0))
		return sbx_fail(err, -ENOEXEC, "image config is for %s/%s, this host runs linux/%s",
				c->os, c->arch, oci_host_arch());
	return 0;
}

static void take_config(struct sbx_image *img, struct oci_config *c)
{
	img->entrypoint = TAKE_PTR(c->entrypoint);
	img->cmd = TAKE_PTR(c->cmd);
	img->env = TAKE_PTR(c->env);
	img->workdir = TAKE_PTR(c->workdir);
	img->user = TAKE_PTR(c->user);
}

/*
 * The cache already holds manifest MD: its rootfs and its config were verified against
 * their digests when they were unpacked, and the cache is keyed by the manifest digest,
 * which names them all.  Returns 1 with img filled, 0 if not cached, or an error.
 */
static int open_cached(const char *cache_dir, const struct oci_desc *md, struct sbx_image *img,
		       struct sbx_err *err)
{
	const char *hex = md->digest_str + 7;
	char path[PATH_MAX];
	_cleanup_free_ char *buf = NULL;
	_cleanup_(oci_config_freep) struct oci_config *c = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;
	int r;

	if (snprintf(path, sizeof(path), "%s/config/%s", cache_dir, hex) >= (int)sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/rootfs/%s", cache_dir, hex);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (read_fd_all(fd, OCI_JSON_MAX, &buf, &len) < 0 ||
	    oci_config_parse(buf, len, &c, NULL) < 0)
		return 0; /* unreadable: the full path verifies the blobs and rewrites it */
	r = config_matches_host(c, err);
	if (r < 0)
		return r;
	img->rootfs = realpath(path, NULL);
	if (!img->rootfs)
		return sbx_fail(err, -errno, "cannot resolve %s: %m", path);
	snprintf(img->digest, sizeof(img->digest), "%s", md->digest_str);
	take_config(img, c);
	return 1;
}

static int open_layout_dir(const char *cache_dir, int layout_fd, struct sbx_image *img,
			   struct sbx_err *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_(oci_index_freep) struct oci_index *idx = NULL;
	_cleanup_(oci_manifest_freep) struct oci_manifest *m = NULL;
	_cleanup_(oci_config_freep) struct oci_config *c = NULL;
	_cleanup_close_ int fd = -1;
	struct oci_desc md;
	char seen[256] = "";
	size_t len = 0;
	int r;

	fd = sbx_open_beneath(layout_fd, "index.json", O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return sbx_fail(err, fd, "image has no readable index.json: %s", strerror(-fd));
	r = read_fd_all(fd, OCI_JSON_MAX, &buf, &len);
	if (r < 0)
		return sbx_fail(err, r, "index.json cannot be read: %s", strerror(-r));
	r = oci_index_parse(buf, len, &idx, err);
	if (r < 0)
		return r;
	r = select_manifest(layout_fd, idx, 0, &md, seen, sizeof(seen), err);
	if (r == -ENOENT)
		return sbx_fail(err, -ENOENT, "image has no manifest for linux/%s (it has: %s)",
				oci_host_arch(), seen[0] ? seen : "none");
	if (r < 0)
		return r;
	r = open_cached(cache_dir, &md, img, err);
	if (r != 0)
		return r < 0 ? r : 0;
	free(TAKE_PTR(buf));
	r = read_blob(layout_fd, &md, &buf, &len, err);
	if (r < 0)
		return r;
	r = oci_manifest_parse(buf, len, &m, err);
	if (r < 0)
		return r;
	free(TAKE_PTR(buf));
	r = read_blob(layout_fd, &m->config, &buf, &len, err);
	if (r < 0)
		return r;
	r = oci_config_parse(buf, len, &c, err);
	if (r < 0)
		return r;
	r = config_matches_host(c, err);
	if (r < 0)
		return r;
	r = unpack_into_cache(cache_dir, layout_fd, &md, m, buf, len, &img->rootfs, &img->unpacked,
			      err);
	if (r < 0)
		return r;
	snprintf(img->digest, sizeof(img->digest), "%s", md.digest_str);
	take_config(img, c);
	return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct sbx_image, sbx_image_free)

int sbx_image_open(const char *cache_dir, const char *image, struct sbx_image **ret_img,
		   struct sbx_err *err)
{
	_cleanup_(sbx_image_freep) struct sbx_image *img = calloc(1, sizeof(*img));
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (err)
		err->msg[0] = '\0';
	if (!img)
		return -ENOMEM;
	fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return sbx_fail(err, -errno, "cannot open image %s: %m", image);
	if (S_ISDIR(st.st_mode)) {
		if (faccessat(fd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			r = open_layout_dir(cache_dir, fd, img, err);
		} else {
			/* a plain rootfs directory */
			r = sbx_rootfs_mountpoints(fd, 0, err);
			if (r >= 0) {
				img->rootfs = realpath(image, NULL);
				r = img->rootfs ? 0 : -errno;
			}
		}
	} else if (S_ISREG(st.st_mode)) {
		char tmp[PATH_MAX], name[64];
		_cleanup_close_ int tmp_fd = -1, lfd = -1;

		r = mkdir_p_0700(cache_dir);
		if (r < 0)
			return sbx_fail(err, r, "cannot create cache %s: %s", cache_dir,
					strerror(-r));
		snprintf(tmp, sizeof(tmp), "%s/tmp", cache_dir);
		(void)mkdir(tmp, 0700);
		tmp_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tmp_fd < 0)
			return sbx_fail(err, -errno, "cannot open %s: %m", tmp);
		snprintf(name, sizeof(name), "layout.%d.%lx", (int)getpid(), (long)st.st_ino);
		sbx_rm_rf_at(tmp_fd, name);
		if (mkdirat(tmp_fd, name, 0700) < 0)
			return sbx_fail(err, -errno, "cannot create %s/%s: %m", tmp, name);
		lfd = openat(tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = lfd < 0 ? -errno : extract_layout_tar(image, lfd, err);
		if (r >= 0)
			r = open_layout_dir(cache_dir, lfd, img, err);
		sbx_rm_rf_at(tmp_fd, name);
	} else {
		return sbx_fail(err, -EINVAL, "image %s is neither a directory nor a tar file",
				image);
	}
	if (r < 0)
		return r;
	*ret_img = TAKE_PTR(img);
	return 0;
}
