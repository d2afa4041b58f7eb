/* tarball.c -- deterministic OCI image archives with libarchive, and result tars extracted without escaping. */
#include "tarball.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#define WALK_MAX_ENTRIES 2000000
#define WALK_MAX_DEPTH 256
#define PATH_LEN_MAX 4096
#define IO_BUF (64 * 1024)
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

static int fail(char *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, IMAGE_ERR_LEN, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- walking a directory tree in sorted order ---- */

struct ent {
	char *path; /* relative, no leading "./" */
	struct stat st;
};

struct walk {
	struct ent *v;
	size_t n, cap;
	char *err;
};

static void walk_done(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].path);
	free(w->v);
	w->v = NULL;
	w->n = w->cap = 0;
}

static int walk_dir(struct walk *w, int dfd, const char *prefix, int depth)
{
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (depth > WALK_MAX_DEPTH)
		return fail(w->err, -ELOOP, "%s: directories nested deeper than %d", prefix,
			    WALK_MAX_DEPTH);
	fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d))) {
		struct ent *e;
		char *path = NULL;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (w->n >= WALK_MAX_ENTRIES) {
			r = fail(w->err, -E2BIG, "more than %d files", WALK_MAX_ENTRIES);
			break;
		}
		if ((prefix ? asprintf(&path, "%s/%s", prefix, de->d_name)
			    : asprintf(&path, "%s", de->d_name)) < 0) {
			r = -ENOMEM;
			break;
		}
		if (strlen(path) >= PATH_LEN_MAX) {
			r = fail(w->err, -ENAMETOOLONG, "%.80s...: name too long", path);
			free(path);
			break;
		}
		if (w->n == w->cap) {
			size_t nc = w->cap ? w->cap * 2 : 256;
			struct ent *nv = realloc(w->v, nc * sizeof(*nv));

			if (!nv) {
				free(path);
				r = -ENOMEM;
				break;
			}
			w->v = nv;
			w->cap = nc;
		}
		e = &w->v[w->n];
		e->path = path;
		if (fstatat(dfd, de->d_name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = fail(w->err, -errno, "%s: %s", path, strerror(errno));
			free(path);
			break;
		}
		w->n++;
		if (S_ISDIR(e->st.st_mode)) {
			_cleanup_close_ int sub = openat(
				dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				r = fail(w->err, -errno, "%s: %s", path, strerror(errno));
				break;
			}
			r = walk_dir(w, sub, path, depth + 1);
			if (r < 0)
				break;
		}
	}
	if (!r && errno)
		r = -errno;
	closedir(d);
	return r;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static int walk_sorted(int rootfd, const char *root, struct walk *w, char *err)
{
	int r;

	w->err = err;
	err[0] = '\0';
	r = walk_dir(w, rootfd, NULL, 0);
	if (r < 0) {
		if (!err[0])
			fail(err, r, "cannot read %s: %s", root, strerror(-r));
		walk_done(w);
		return r;
	}
	if (w->n)
		qsort(w->v, w->n, sizeof(*w->v), ent_cmp);
	return 0;
}

/* ---- archive writers ---- */

static int64_t fixed_mtime(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	if (!s || !*s)
		return 0;
	v = strtoll(s, &end, 10);
	return *end || v < 0 ? 0 : v;
}

/* Stream size bytes from fd into a. */
static int copy_fd(struct archive *a, int fd, const char *name, int64_t size, char *err)
{
	_cleanup_free_ char *buf = malloc(IO_BUF);
	int64_t left = size;

	if (!buf)
		return -ENOMEM;
	while (left > 0) {
		ssize_t n = read(fd, buf, (size_t)MIN((int64_t)IO_BUF, left));

		if (n < 0)
			return fail(err, -errno, "%s: %s", name, strerror(errno));
		if (n == 0)
			return fail(err, -EIO, "%s: changed size while it was read", name);
		if (archive_write_data(a, buf, (size_t)n) != n)
			return fail(err, -EIO, "%s: %s", name, archive_error_string(a));
		left -= n;
	}
	return 0;
}

/* Stream the regular file dfd/name (size bytes) into a. */
static int copy_file(struct archive *a, int dfd, const char *name, int64_t size, char *err)
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return fail(err, -errno, "%s: %s", name, strerror(errno));
	return copy_fd(a, fd, name, size, err);
}

static int write_mem(struct archive *a, const char *name, const void *data, size_t len,
		     int64_t mtime, char *err)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, mtime, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (len && archive_write_data(a, data, len) != (la_ssize_t)len))
		r = fail(err, -EIO, "writing %s: %s", name, archive_error_string(a));
	archive_entry_free(e);
	return r;
}

static int write_dir(struct archive *a, const char *name, int64_t mtime, char *err)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	archive_entry_set_mtime(e, mtime, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		r = fail(err, -EIO, "writing %s: %s", name, archive_error_string(a));
	archive_entry_free(e);
	return r;
}

/* The layer: tar -> (diff_id hash) -> gzip -> (digest hash) -> file. */
struct layer_sink {
	struct archive *gz; /* raw format + gzip filter */
	struct sha256_ctx *diff, *digest;
	int fd;
	uint64_t bytes;
	int err;
};

static la_ssize_t tar_out(struct archive *a _unused_, void *ud, const void *buf, size_t len)
{
	struct layer_sink *s = ud;

	sha256_update(s->diff, buf, len);
	if (archive_write_data(s->gz, buf, len) != (la_ssize_t)len) {
		s->err = -EIO;
		return -1;
	}
	return (la_ssize_t)len;
}

static la_ssize_t gz_out(struct archive *a _unused_, void *ud, const void *buf, size_t len)
{
	struct layer_sink *s = ud;
	const uint8_t *p = buf;

	sha256_update(s->digest, buf, len);
	for (size_t w = 0; w < len;) {
		ssize_t n = write(s->fd, p + w, len - w);

		if (n < 0) {
			s->err = -errno;
			return -1;
		}
		w += (size_t)n;
	}
	s->bytes += len;
	return (la_ssize_t)len;
}

static void digest_str(struct sha256_ctx *h, char out[72])
{
	uint8_t md[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	sha256_final(h, md);
	hex_encode(md, SHA256_LEN, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static void digest_mem(const void *data, size_t len, char out[72])
{
	uint8_t md[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	sha256(data, len, md);
	hex_encode(md, SHA256_LEN, hex);
	snprintf(out, 72, "sha256:%s", hex);
}

static int layer_entry(struct archive *a, int rootfd, const struct ent *en, struct ent *all,
		       size_t idx, const struct image_config *cfg, int64_t mtime,
		       struct image_stats *st, char *err)
{
	struct archive_entry *e = archive_entry_new();
	const struct stat *s = &en->st;
	int r = 0, data = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, en->path);
	archive_entry_set_mode(e, s->st_mode & (S_IFMT | 07777));
	archive_entry_set_mtime(e, mtime, 0);
	archive_entry_set_uid(e, cfg->keep_owners ? s->st_uid : 0);
	archive_entry_set_gid(e, cfg->keep_owners ? s->st_gid : 0);
	if (S_ISREG(s->st_mode)) {
		const char *first = NULL;

		if (s->st_nlink > 1)
			for (size_t i = 0; i < idx && !first; i++)
				if (all[i].st.st_ino == s->st_ino &&
				    all[i].st.st_dev == s->st_dev && S_ISREG(all[i].st.st_mode))
					first = all[i].path;
		if (first) {
			archive_entry_set_hardlink(e, first);
			archive_entry_set_size(e, 0);
			st->hardlinks++;
		} else {
			archive_entry_set_size(e, s->st_size);
			data = 1;
			st->files++;
		}
	} else if (S_ISLNK(s->st_mode)) {
		char target[PATH_LEN_MAX];
		ssize_t n = readlinkat(rootfd, en->path, target, sizeof(target) - 1);

		if (n < 0) {
			r = fail(err, -errno, "%s: %s", en->path, strerror(errno));
			goto out;
		}
		target[n] = '\0';
		archive_entry_set_symlink(e, target);
		st->symlinks++;
	} else if (S_ISDIR(s->st_mode)) {
		st->dirs++;
	} else {
		if (!st->skipped++)
			snprintf(st->first_skipped, sizeof(st->first_skipped), "%s", en->path);
		goto out;
	}
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		r = fail(err, -EIO, "%s: %s", en->path, archive_error_string(a));
		goto out;
	}
	if (data)
		r = copy_file(a, rootfd, en->path, s->st_size, err);
out:
	archive_entry_free(e);
	return r;
}

static int build_layer(int rootfd, const char *rootfs, const struct image_config *cfg, int outfd,
		       int64_t mtime, char ret_diff[72], char ret_digest[72],
		       struct image_stats *st, char *err)
{
	struct layer_sink s = {.fd = outfd};
	struct walk w = {0};
	struct archive *tar = NULL;
	struct archive_entry *raw = NULL;
	int r;

	r = walk_sorted(rootfd, rootfs, &w, err);
	if (r < 0)
		return r;
	r = -ENOMEM;
	if (sha256_new(&s.diff) < 0 || sha256_new(&s.digest) < 0)
		goto out;
	s.gz = archive_write_new();
	tar = archive_write_new();
	raw = archive_entry_new();
	if (!s.gz || !tar || !raw)
		goto out;
	if (archive_write_add_filter_gzip(s.gz) != ARCHIVE_OK ||
	    archive_write_set_filter_option(s.gz, "gzip", "timestamp", NULL) < ARCHIVE_WARN ||
	    archive_write_set_format_raw(s.gz) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(s.gz, 0) != ARCHIVE_OK ||
	    archive_write_open2(s.gz, &s, NULL, gz_out, NULL, NULL) != ARCHIVE_OK) {
		r = fail(err, -EIO, "gzip: %s", archive_error_string(s.gz));
		goto out;
	}
	archive_entry_set_pathname(raw, "layer.tar");
	archive_entry_set_filetype(raw, AE_IFREG);
	if (archive_write_header(s.gz, raw) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_add_filter_none(tar) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(tar, 1) != ARCHIVE_OK ||
	    archive_write_open2(tar, &s, NULL, tar_out, NULL, NULL) != ARCHIVE_OK) {
		r = fail(err, -EIO, "tar: %s", archive_error_string(tar));
		goto out;
	}
	for (size_t i = 0; i < w.n; i++) {
		r = layer_entry(tar, rootfd, &w.v[i], w.v, i, cfg, mtime, st, err);
		if (r < 0)
			goto out;
	}
	if (archive_write_close(tar) != ARCHIVE_OK || archive_write_close(s.gz) != ARCHIVE_OK ||
	    s.err) {
		r = fail(err, s.err ? s.err : -EIO, "writing the layer: %s",
			 s.err ? strerror(-s.err) : archive_error_string(s.gz));
		goto out;
	}
	digest_str(s.diff, ret_diff);
	digest_str(s.digest, ret_digest);
	st->layer_bytes = s.bytes;
	r = 0;
out:
	archive_write_free(tar);
	archive_write_free(s.gz);
	archive_entry_free(raw);
	sha256_free(s.diff);
	sha256_free(s.digest);
	walk_done(&w);
	return r;
}

static const char *go_arch(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	return u.machine;
}

static cJSON *str_array(const char *const *v, bool add_path)
{
	cJSON *a = cJSON_CreateArray();
	bool has_path = false;

	if (!a)
		return NULL;
	for (; v && *v; v++) {
		if (strncmp(*v, "PATH=", 5) == 0)
			has_path = true;
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(*v)))
			goto fail;
	}
	if (add_path && !has_path && !cJSON_AddItemToArray(a, cJSON_CreateString(DEFAULT_PATH)))
		goto fail;
	return a;
fail:
	cJSON_Delete(a);
	return NULL;
}

static cJSON *descriptor(const char *mt, const char *digest, uint64_t size)
{
	cJSON *d = cJSON_CreateObject();

	if (!d || !cJSON_AddStringToObject(d, "mediaType", mt) ||
	    !cJSON_AddStringToObject(d, "digest", digest) || canon_add_u64(d, "size", size) < 0) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

/* Canonical JSON text of a tree (deterministic: sorted keys, no spaces). */
static char *json_text(const cJSON *v, size_t *len)
{
	char *s = NULL;

	return canon_print(v, &s, len) < 0 ? NULL : s;
}

static int write_blob_entry(struct archive *a, const char *digest, const void *data, size_t len,
			    int64_t mtime, char *err)
{
	char name[128];

	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	return write_mem(a, name, data, len, mtime, err);
}

struct blob_ref {
	char digest[72];
	const char *data; /* NULL: the layer file */
	size_t len;
};

static int blob_cmp(const void *a, const void *b)
{
	return strcmp(((const struct blob_ref *)a)->digest, ((const struct blob_ref *)b)->digest);
}

int image_build_rootfs(const char *rootfs, const struct image_config *cfg, const char *out,
		       struct image_stats *ret_stats, char *err)
{
	_cleanup_close_ int rootfd = -1, layerfd = -1, outfd = -1;
	_cleanup_free_ char *tmp = NULL, *layer_tmp = NULL, *cfg_s = NULL, *man_s = NULL,
			    *idx_s = NULL;
	_cleanup_(cJSON_Deletep) cJSON *conf = NULL, *man = NULL, *idx = NULL;
	struct image_stats st = {0};
	struct blob_ref blobs[3];
	char diff[72], layer[72], cfg_d[72], man_d[72];
	size_t cfg_len, man_len, idx_len;
	int64_t mtime = fixed_mtime();
	struct archive *a = NULL;
	struct stat lst;
	cJSON *c, *o, *layers, *mans, *ann, *plat;
	int r;

	err[0] = '\0';
	rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return fail(err, -errno, "cannot open the directory %s: %s", rootfs,
			    strerror(errno));
	if (asprintf(&tmp, "%s.tmp.%d", out, (int)getpid()) < 0 ||
	    asprintf(&layer_tmp, "%s.layer.%d", out, (int)getpid()) < 0)
		return -ENOMEM;
	layerfd = open(layer_tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (layerfd < 0)
		return fail(err, -errno, "cannot create %s: %s", layer_tmp, strerror(errno));
	unlink(layer_tmp);
	r = build_layer(rootfd, rootfs, cfg, layerfd, mtime, diff, layer, &st, err);
	if (r < 0)
		return r;

	/* config */
	r = -ENOMEM;
	conf = cJSON_CreateObject();
	c = cJSON_CreateObject();
	if (!conf || !c || !cJSON_AddItemToObject(conf, "config", c) ||
	    !cJSON_AddStringToObject(conf, "architecture", go_arch()) ||
	    !cJSON_AddStringToObject(conf, "os", "linux") ||
	    !cJSON_AddItemToObject(c, "Env", str_array(cfg->env, true)))
		return r;
	if (cfg->cmd && cfg->cmd[0] && !cJSON_AddItemToObject(c, "Cmd", str_array(cfg->cmd, false)))
		return r;
	if (cfg->workdir && !cJSON_AddStringToObject(c, "WorkingDir", cfg->workdir))
		return r;
	o = cJSON_AddObjectToObject(conf, "rootfs");
	if (!o || !cJSON_AddStringToObject(o, "type", "layers") ||
	    !cJSON_AddItemToObject(o, "diff_ids",
				   str_array((const char *const[]){diff, NULL}, false)))
		return r;
	cfg_s = json_text(conf, &cfg_len);
	if (!cfg_s)
		return r;
	digest_mem(cfg_s, cfg_len, cfg_d);

	/* manifest */
	man = cJSON_CreateObject();
	layers = cJSON_CreateArray();
	if (!man || !layers || !cJSON_AddItemToObject(man, "layers", layers) ||
	    canon_add_i64(man, "schemaVersion", 2) < 0 ||
	    !cJSON_AddStringToObject(man, "mediaType", MT_MANIFEST) ||
	    !cJSON_AddItemToObject(man, "config", descriptor(MT_CONFIG, cfg_d, cfg_len)) ||
	    !cJSON_AddItemToArray(layers, descriptor(MT_LAYER, layer, st.layer_bytes)))
		return r;
	man_s = json_text(man, &man_len);
	if (!man_s)
		return r;
	digest_mem(man_s, man_len, man_d);

	/* index */
	idx = cJSON_CreateObject();
	mans = cJSON_CreateArray();
	o = descriptor(MT_MANIFEST, man_d, man_len);
	if (!idx || !mans || !cJSON_AddItemToObject(idx, "manifests", mans) ||
	    !cJSON_AddItemToArray(mans, o) || canon_add_i64(idx, "schemaVersion", 2) < 0 ||
	    !cJSON_AddStringToObject(idx, "mediaType", MT_INDEX))
		return r;
	ann = cJSON_AddObjectToObject(o, "annotations");
	plat = cJSON_AddObjectToObject(o, "platform");
	if (!ann || !plat ||
	    !cJSON_AddStringToObject(ann, "org.opencontainers.image.ref.name",
				     cfg->tag ? cfg->tag : "latest") ||
	    !cJSON_AddStringToObject(plat, "architecture", go_arch()) ||
	    !cJSON_AddStringToObject(plat, "os", "linux"))
		return r;
	idx_s = json_text(idx, &idx_len);
	if (!idx_s)
		return r;

	/* the archive: entries in name order */
	outfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (outfd < 0)
		return fail(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
	a = archive_write_new();
	if (!a)
		goto fail_unlink;
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, outfd) != ARCHIVE_OK) {
		r = fail(err, -EIO, "%s: %s", tmp, archive_error_string(a));
		goto fail_unlink;
	}
	blobs[0] = (struct blob_ref){.data = cfg_s, .len = cfg_len};
	blobs[1] = (struct blob_ref){.data = man_s, .len = man_len};
	blobs[2] = (struct blob_ref){.data = NULL, .len = st.layer_bytes};
	memcpy(blobs[0].digest, cfg_d, 72);
	memcpy(blobs[1].digest, man_d, 72);
	memcpy(blobs[2].digest, layer, 72);
	qsort(blobs, 3, sizeof(blobs[0]), blob_cmp);
	r = write_dir(a, "blobs/", mtime, err);
	if (r >= 0)
		r = write_dir(a, "blobs/sha256/", mtime, err);
	for (int i = 0; i < 3 && r >= 0; i++) {
		char name[128];
		struct archive_entry *e;

		if (blobs[i].data) {
			r = write_blob_entry(a, blobs[i].digest, blobs[i].data, blobs[i].len, mtime,
					     err);
			continue;
		}
		if (fstat(layerfd, &lst) < 0 || lseek(layerfd, 0, SEEK_SET) < 0) {
			r = -errno;
			break;
		}
		e = archive_entry_new();
		if (!e) {
			r = -ENOMEM;
			break;
		}
		snprintf(name, sizeof(name), "blobs/sha256/%s", blobs[i].digest + 7);
		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, lst.st_size);
		archive_entry_set_mtime(e, mtime, 0);
		r = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -EIO;
		archive_entry_free(e);
		if (r < 0)
			r = fail(err, r, "%s: %s", tmp, archive_error_string(a));
		else
			r = copy_fd(a, layerfd, "the layer", lst.st_size, err);
	}
	if (r >= 0)
		r = write_mem(a, "index.json", idx_s, idx_len, mtime, err);
	if (r >= 0)
		r = write_mem(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, mtime,
			      err);
	if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
		r = fail(err, -EIO, "%s: %s", tmp, archive_error_string(a));
	if (r >= 0 && fsync(outfd) < 0)
		r = fail(err, -errno, "%s: %s", tmp, strerror(errno));
	if (r >= 0 && rename(tmp, out) < 0)
		r = fail(err, -errno, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
	if (r < 0)
		goto fail_unlink;
	archive_write_free(a);
	if (stat(out, &lst) == 0)
		st.archive_bytes = (unsigned long long)lst.st_size;
	memcpy(st.manifest_digest, man_d, 72);
	memcpy(st.layer_digest, layer, 72);
	if (ret_stats)
		*ret_stats = st;
	return 0;
fail_unlink:
	if (r >= 0)
		r = -ENOMEM;
	archive_write_free(a);
	unlink(tmp);
	return r;
}

int image_pack_layout(const char *layout, const char *out, char *err)
{
	_cleanup_close_ int rootfd = -1, outfd = -1;
	_cleanup_free_ char *tmp = NULL;
	struct walk w = {0};
	struct archive *a = NULL;
	int64_t mtime = fixed_mtime();
	int r;

	err[0] = '\0';
	rootfd = open(layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return fail(err, -errno, "cannot open %s: %s", layout, strerror(errno));
	if (faccessat(rootfd, "index.json", F_OK, 0) < 0 ||
	    faccessat(rootfd, "oci-layout", F_OK, 0) < 0)
		return fail(err, -EINVAL,
			    "%s is not an OCI image layout (no index.json or oci-layout); use "
			    "--rootfs for a plain directory",
			    layout);
	r = walk_sorted(rootfd, layout, &w, err);
	if (r < 0)
		return r;
	if (asprintf(&tmp, "%s.tmp.%d", out, (int)getpid()) < 0) {
		r = -ENOMEM;
		goto out;
	}
	outfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (outfd < 0) {
		r = fail(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	a = archive_write_new();
	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, outfd) != ARCHIVE_OK) {
		r = fail(err, -EIO, "%s: %s", tmp, a ? archive_error_string(a) : "out of memory");
		goto out_unlink;
	}
	for (size_t i = 0; i < w.n; i++) {
		const struct ent *e = &w.v[i];

		if (S_ISDIR(e->st.st_mode)) {
			r = write_dir(a, e->path, mtime, err);
		} else if (S_ISREG(e->st.st_mode)) {
			struct archive_entry *ae = archive_entry_new();

			if (!ae) {
				r = -ENOMEM;
				goto out_unlink;
			}
			archive_entry_set_pathname(ae, e->path);
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, e->st.st_size);
			archive_entry_set_mtime(ae, mtime, 0);
			r = archive_write_header(a, ae) == ARCHIVE_OK
				    ? copy_file(a, rootfd, e->path, e->st.st_size, err)
				    : fail(err, -EIO, "%s: %s", e->path, archive_error_string(a));
			archive_entry_free(ae);
		} else {
			r = fail(err, -EINVAL,
				 "%s/%s: only files and directories belong in a layout", layout,
				 e->path);
		}
		if (r < 0)
			goto out_unlink;
	}
	if (archive_write_close(a) != ARCHIVE_OK || fsync(outfd) < 0) {
		r = fail(err, -EIO, "%s: cannot write", tmp);
		goto out_unlink;
	}
	if (rename(tmp, out) < 0) {
		r = fail(err, -errno, "cannot rename %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	r = 0;
	goto out;
out_unlink:
	unlink(tmp);
out:
	archive_write_free(a);
	walk_done(&w);
	return r;
}

/* ---- result extraction ---- */

static int openat2_beneath(int dfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags,
		.mode = flags & O_CREAT ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long r = syscall(SYS_openat2, dfd, path, &how, sizeof(how));

	return r < 0 ? -errno : (int)r;
}

/* Why a member name is unsafe, or NULL. */
static const char *bad_name(const char *p)
{
	const char *s = p;

	if (!*p)
		return "empty name";
	if (*p == '/')
		return "absolute path";
	if (strlen(p) >= PATH_LEN_MAX)
		return "name too long";
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return "'..' in the path";
		s += n;
		while (*s == '/')
			s++;
	}
	return NULL;
}

/* The parent of path (created beneath dirfd, never through a symlink); *ret_base is the last name. */
static int open_parent(int dirfd, const char *path, const char **ret_base)
{
	char buf[PATH_LEN_MAX];
	char *s = buf, *slash;
	int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

	if (cur < 0)
		return -errno;
	snprintf(buf, sizeof(buf), "%s", path);
	while ((slash = strchr(s, '/'))) {
		int next;

		*slash = '\0';
		if (*s && strcmp(s, ".") != 0) {
			if (mkdirat(cur, s, 0755) < 0 && errno != EEXIST) {
				int e = -errno;

				close(cur);
				return e;
			}
			next = openat2_beneath(cur, s, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
			close(cur);
			if (next < 0)
				return next;
			cur = next;
		}
		s = slash + 1;
	}
	*ret_base = path + (s - buf);
	return cur;
}

static int open_result(struct archive **ret, const char *tar, char *err)
{
	struct archive *a = archive_read_new();

	if (!a)
		return -ENOMEM;
	archive_read_support_format_tar(a);
	archive_read_support_filter_none(a);
	if (archive_read_open_filename(a, tar, IO_BUF) != ARCHIVE_OK) {
		fail(err, -EINVAL, "%s is not a tar archive: %s", tar, archive_error_string(a));
		archive_read_free(a);
		return -EINVAL;
	}
	*ret = a;
	return 0;
}

static int check_result(const char *tar, unsigned long long max_entries,
			unsigned long long max_bytes, char *err)
{
	struct archive *a;
	struct archive_entry *e;
	unsigned long long n = 0, bytes = 0;
	int r = open_result(&a, tar, err), ar;

	if (r < 0)
		return r;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e), *why = NULL;
		mode_t t = archive_entry_filetype(e);

		if (!name)
			why = "no name";
		else if ((why = bad_name(name)))
			;
		else if (archive_entry_hardlink(e))
			why = "hard link";
		else if (t != AE_IFREG && t != AE_IFDIR && t != AE_IFLNK)
			why = "device, fifo or socket";
		else if (++n > max_entries)
			why = "too many members";
		else if (archive_entry_size(e) < 0 ||
			 (bytes += (unsigned long long)archive_entry_size(e)) > max_bytes)
			why = "more data than allowed";
		if (why) {
			r = fail(err, -EPERM, "unsafe member '%.200s' in %s: %s", name ? name : "?",
				 tar, why);
			break;
		}
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = fail(err, -EINVAL, "%s is a corrupt tar: %s", tar, archive_error_string(a));
	archive_read_free(a);
	return r;
}

static int extract_member(struct archive *a, struct archive_entry *e, int dirfd, char *err)
{
	const char *name = archive_entry_pathname(e), *base = NULL;
	mode_t t = archive_entry_filetype(e);
	mode_t perm = archive_entry_perm(e) & 0777;
	_cleanup_close_ int pfd = open_parent(dirfd, name, &base), fd = -1;
	const void *buf;
	size_t size;
	la_int64_t off;
	int ar;

	if (pfd < 0)
		return fail(err, pfd, "%s: %s", name, strerror(-pfd));
	if (!base || !*base || strcmp(base, ".") == 0)
		return 0; /* "out/" style names of directories already made */
	if (t == AE_IFDIR) {
		if (mkdirat(pfd, base, perm | 0700) < 0 && errno != EEXIST)
			return fail(err, -errno, "%s: %s", name, strerror(errno));
		return 0;
	}
	if (t == AE_IFLNK) {
		if (symlinkat(archive_entry_symlink(e), pfd, base) < 0)
			return fail(err, -errno, "%s: %s", name, strerror(errno));
		return 0;
	}
	fd = openat2_beneath(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			     perm | 0600);
	if (fd < 0)
		return fail(err, fd, "%s: %s", name,
			    fd == -EEXIST ? "exists already (a duplicate member, or a file left "
					    "from before in the output directory)"
					  : strerror(-fd));
	while ((ar = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		const uint8_t *p = buf;

		for (size_t w = 0; w < size;) {
			ssize_t n = pwrite(fd, p + w, size - w, off + (off_t)w);

			if (n < 0)
				return fail(err, -errno, "%s: %s", name, strerror(errno));
			w += (size_t)n;
		}
	}
	if (ar != ARCHIVE_EOF)
		return fail(err, -EIO, "%s: %s", name, archive_error_string(a));
	if (ftruncate(fd, archive_entry_size(e)) < 0)
		return fail(err, -errno, "%s: %s", name, strerror(errno));
	return 0;
}

int image_extract_result(const char *tar, int dirfd, unsigned long long max_entries,
			 unsigned long long max_bytes, char *err)
{
	struct archive *a;
	struct archive_entry *e;
	int r, ar;

	err[0] = '\0';
	r = check_result(tar, max_entries, max_bytes, err);
	if (r < 0)
		return r;
	r = open_result(&a, tar, err);
	if (r < 0)
		return r;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		r = extract_member(a, e, dirfd, err);
		if (r < 0)
			break;
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = fail(err, -EINVAL, "%s is a corrupt tar: %s", tar, archive_error_string(a));
	archive_read_free(a);
	return r;
}

int image_result_member(const char *tar, const char *name, char *buf, size_t max, size_t *ret_len)
{
	char err[IMAGE_ERR_LEN];
	struct archive *a;
	struct archive_entry *e;
	size_t len = 0;
	int r = open_result(&a, tar, err), ar;

	if (r < 0)
		return r;
	r = -ENOENT;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		const char *n = archive_entry_pathname(e);

		if (!n || strcmp(n, name) != 0 || archive_entry_filetype(e) != AE_IFREG)
			continue;
		while (len + 1 < max) {
			la_ssize_t got = archive_read_data(a, buf + len, max - 1 - len);

			if (got < 0) {
				archive_read_free(a);
				return -EIO;
			}
			if (got == 0)
				break;
			len += (size_t)got;
		}
		r = 0;
		break;
	}
	archive_read_free(a);
	if (max)
		buf[MIN(len, max - 1)] = '\0';
	if (r == 0 && ret_len)
		*ret_len = len;
	return r;
}
