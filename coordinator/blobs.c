/* blobs.c -- content-addressed blobs on disk: verified uploads, reads, deletion after fetch or retention. */
#include "blobs.h"

#include <aicn/compiler.h>
#include <aicn/hash.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blobs {
	int dirfd;  /* DIR */
	int datafd; /* DIR/sha256 */
	int tmpfd;  /* DIR/tmp */
	struct store *st;
};

struct blob_upload {
	int fd;		  /* temp file in DIR/tmp */
	char tmpname[64]; /* its name */
	char digest[80];  /* expected "sha256:<hex>" */
	uint8_t want[SHA256_LEN];
	uint64_t size, got;	 /* announced and received bytes */
	struct sha256_ctx *hash; /* running digest */
	struct blobs *b;
};

static int open_dir_at(int at, const char *name, int *ret)
{
	int fd;

	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

/* "sha256:<hex>" -> the file name "<hex>"; -EINVAL unless a valid lowercase digest. */
static int digest_file(const char *digest, uint8_t bin[SHA256_LEN], char name[SHA256_HEX_LEN + 1])
{
	if (!digest || digest_parse(digest, bin) < 0)
		return -EINVAL;
	hex_encode(bin, SHA256_LEN, name);
	/* Only the canonical lowercase spelling names a blob. */
	if (strcmp(digest + 7, name) != 0)
		return -EINVAL;
	return 0;
}

struct blobs *blobs_free(struct blobs *b)
{
	if (!b)
		return NULL;
	if (b->tmpfd >= 0)
		close(b->tmpfd);
	if (b->datafd >= 0)
		close(b->datafd);
	if (b->dirfd >= 0)
		close(b->dirfd);
	free(b);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct blobs, blobs_free)

int blobs_open(const char *dir, struct store *st, struct blobs **ret)
{
	_cleanup_(blobs_freep) struct blobs *b = calloc(1, sizeof(*b));
	DIR *d;
	struct dirent *de;
	int r, fd;

	if (!b)
		return -ENOMEM;
	b->dirfd = b->datafd = b->tmpfd = -1;
	b->st = st;
	if (!dir || !*dir)
		return -EINVAL;
	r = open_dir_at(AT_FDCWD, dir, &b->dirfd);
	if (r < 0)
		return r;
	r = open_dir_at(b->dirfd, "sha256", &b->datafd);
	if (r < 0)
		return r;
	r = open_dir_at(b->dirfd, "tmp", &b->tmpfd);
	if (r < 0)
		return r;
	/* Uploads interrupted by a crash are garbage. */
	fd = dup(b->tmpfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(b->tmpfd, de->d_name, 0);
	closedir(d);
	/* A blob published just before a crash whose row was never committed: unknown, remove. */
	fd = dup(b->datafd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct store_blob sb;
		char digest[80];

		if (de->d_name[0] == '.')
			continue;
		snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
		if (strlen(de->d_name) != SHA256_HEX_LEN ||
		    store_blob_get(b->st, digest, &sb) == -ENOENT)
			unlinkat(b->datafd, de->d_name, 0);
	}
	closedir(d);
	*ret = TAKE_PTR(b);
	return 0;
}

int blobs_has(struct blobs *b, const char *digest)
{
	uint8_t bin[SHA256_LEN];
	char name[SHA256_HEX_LEN + 1];
	struct store_blob sb;
	struct stat stt;
	int r;

	if (digest_file(digest, bin, name) < 0)
		return 0;
	r = store_blob_get(b->st, digest, &sb);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (fstatat(b->datafd, name, &stt, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISREG(stt.st_mode) && (uint64_t)stt.st_size == sb.size;
}

struct blob_upload *blobs_upload_abort(struct blob_upload *u)
{
	if (!u)
		return NULL;
	if (u->fd >= 0) {
		close(u->fd);
		unlinkat(u->b->tmpfd, u->tmpname, 0);
	}
	sha256_free(u->hash);
	free(u);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct blob_upload, blobs_upload_abort)

int blobs_upload_begin(struct blobs *b, const char *digest, uint64_t size, struct blob_upload **ret)
{
	_cleanup_(blobs_upload_abortp) struct blob_upload *u = NULL;
	static unsigned counter;
	char name[SHA256_HEX_LEN + 1];
	int r;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	u->b = b;
	if (digest_file(digest, u->want, name) < 0)
		return -EINVAL;
	if (size > BLOB_MAX_SIZE)
		return -EFBIG;
	r = blobs_has(b, digest);
	if (r < 0)
		return r;
	if (r > 0)
		return -EEXIST;
	snprintf(u->digest, sizeof(u->digest), "%s", digest);
	u->size = size;
	r = sha256_new(&u->hash);
	if (r < 0)
		return r;
	snprintf(u->tmpname, sizeof(u->tmpname), "up-%d-%u", (int)getpid(), ++counter);
	u->fd = openat(b->tmpfd, u->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		       0600);
	if (u->fd < 0)
		return -errno;
	*ret = TAKE_PTR(u);
	return 0;
}

int blobs_upload_write(struct blob_upload *u, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!u)
		return -EINVAL;
	if (len > u->size - u->got)
		return -EFBIG;
	sha256_update(u->hash, data, len);
	while (len) {
		ssize_t n = write(u->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		u->got += (uint64_t)n;
	}
	return 0;
}

int blobs_upload_finish(struct blobs *b, struct blob_upload *u, int64_t owner, enum blob_kind kind,
			int64_t now, int64_t retention)
{
	_cleanup_(blobs_upload_abortp) struct blob_upload *up = u;
	uint8_t got[SHA256_LEN];
	char name[SHA256_HEX_LEN + 1];
	struct store_blob sb = {0};
	int r;

	if (!up)
		return -EINVAL;
	if (up->got != up->size)
		return -EBADMSG;
	sha256_final(up->hash, got);
	if (memcmp(got, up->want, SHA256_LEN) != 0)
		return -EBADMSG;
	if (fsync(up->fd) < 0)
		return -errno;
	hex_encode(up->want, SHA256_LEN, name);
	if (renameat(b->tmpfd, up->tmpname, b->datafd, name) < 0)
		return -errno;
	close(up->fd);
	up->fd = -1; /* published: nothing to remove */
	if (fsync(b->datafd) < 0)
		return -errno;
	snprintf(sb.digest, sizeof(sb.digest), "%s", up->digest);
	sb.size = up->size;
	sb.owner = owner;
	sb.kind = kind;
	sb.created_at = now;
	sb.expires_at = now + retention;
	r = store_blob_put(b->st, &sb);
	return r;
}

int blobs_put(struct blobs *b, const void *data, size_t len, int64_t owner, enum blob_kind kind,
	      int64_t now, int64_t retention, char ret_digest[80])
{
	struct blob_upload *u = NULL;
	uint8_t d[SHA256_LEN];
	char digest[80];
	int r;

	sha256(data, len, d);
	snprintf(digest, sizeof(digest), "sha256:");
	hex_encode(d, SHA256_LEN, digest + 7);
	r = blobs_upload_begin(b, digest, len, &u);
	if (r == -EEXIST) {
		/* Already stored: refresh its metadata (expiry) only. */
		struct store_blob sb = {0};

		snprintf(sb.digest, sizeof(sb.digest), "%s", digest);
		sb.size = len;
		sb.owner = owner;
		sb.kind = kind;
		sb.created_at = now;
		sb.expires_at = now + retention;
		r = store_blob_put(b->st, &sb);
	} else if (r >= 0 && u) {
		r = blobs_upload_write(u, data, len);
		if (r < 0)
			blobs_upload_abort(u);
		else
			r = blobs_upload_finish(b, u, owner, kind, now, retention);
	}
	if (r < 0)
		return r;
	memcpy(ret_digest, digest, strlen(digest) + 1);
	return 0;
}

int blobs_open_read(struct blobs *b, const char *digest, int *ret_fd, uint64_t *ret_size)
{
	uint8_t bin[SHA256_LEN];
	char name[SHA256_HEX_LEN + 1];
	struct stat stt;
	int fd, r;

	r = digest_file(digest, bin, name);
	if (r < 0)
		return r;
	r = blobs_has(b, digest);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	fd = openat(b->datafd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &stt) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_size = (uint64_t)stt.st_size;
	return 0;
}

int blobs_fetched(struct blobs *b, const char *digest, int64_t now, int64_t grace)
{
	struct store_blob sb;
	int r;

	r = store_blob_get(b->st, digest, &sb);
	if (r < 0)
		return r;
	/* Data ownership: results are not kept once their owner has them. */
	return store_blob_fetched(b->st, digest, now,
				  sb.kind == BLOB_RESULT ? now + grace : sb.expires_at);
}

struct gc_ctx {
	struct blobs *b;
	unsigned deleted;
};

static int gc_cb(const struct store_blob *sb, void *userdata)
{
	struct gc_ctx *x = userdata;
	uint8_t bin[SHA256_LEN];
	char name[SHA256_HEX_LEN + 1];
	int r;

	if (digest_file(sb->digest, bin, name) == 0 && unlinkat(x->b->datafd, name, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	r = store_blob_delete(x->b->st, sb->digest);
	if (r < 0)
		return r;
	x->deleted++;
	return 0;
}

int blobs_gc(struct blobs *b, int64_t now, unsigned *ret_deleted)
{
	struct gc_ctx x = {b, 0};
	int r;

	r = store_blob_foreach_expired(b->st, now, gc_cb, &x);
	if (ret_deleted)
		*ret_deleted = x.deleted;
	return r;
}
