/* cache.c -- image cache accounting: LRU order in an array, pins, eviction through a callback, atomic index. */
#include "cache.h"

#include <aicn/compiler.h>
#include <aicn/fileio.h>
#include <aicn/hash.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CACHE_HEADER "aicn-image-cache 1\n"
#define CACHE_INDEX_MAX (1 << 20)

struct cache_entry {
	char digest[CACHE_DIGEST_LEN + 1]; /* "sha256:<hex>" */
	uint64_t size;			   /* bytes the unpacked image takes */
	uint32_t pins;			   /* running tasks using it (not persisted) */
};

struct cache {
	int dirfd;
	uint64_t capacity;
	uint64_t used;
	size_t n;
	struct cache_entry *e; /* least recently used first */
};

static bool digest_ok(const char *d)
{
	uint8_t raw[SHA256_LEN];

	return d && strlen(d) == CACHE_DIGEST_LEN && digest_parse(d, raw) == 0 &&
	       strspn(d + 7, "0123456789abcdef") == 64;
}

static ssize_t find(const struct cache *c, const char *digest)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].digest, digest) == 0)
			return (ssize_t)i;
	return -1;
}

static int save(struct cache *c)
{
	static const char tmp[] = "." CACHE_INDEX_FILE ".tmp";
	FILE *f;
	int fd, r = 0;

	fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		return r;
	}
	fputs(CACHE_HEADER, f);
	for (size_t i = 0; i < c->n; i++)
		fprintf(f, "%llu %s\n", (unsigned long long)c->e[i].size, c->e[i].digest);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0)
		r = errno ? -errno : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(c->dirfd, tmp, c->dirfd, CACHE_INDEX_FILE) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(c->dirfd, tmp, 0);
		return r;
	}
	return fsync(c->dirfd) < 0 ? -errno : 0;
}

/* Parse an index (LEN bytes in BUF, which must have room for a NUL at BUF[LEN]) into C. */
static int parse_index(struct cache *c, char *buf, size_t len)
{
	char *line, *save_ptr = NULL;

	buf[len] = '\0';
	if (len > CACHE_INDEX_MAX || strlen(buf) != len ||
	    strncmp(buf, CACHE_HEADER, strlen(CACHE_HEADER)) != 0 || buf[len - 1] != '\n')
		return -EBADMSG;
	for (line = strtok_r(buf + strlen(CACHE_HEADER), "\n", &save_ptr); line;
	     line = strtok_r(NULL, "\n", &save_ptr)) {
		char *sp = strchr(line, ' '), *end;
		unsigned long long size;
		struct cache_entry *e;

		if (!sp || line[0] < '0' || line[0] > '9')
			return -EBADMSG;
		*sp = '\0';
		errno = 0;
		size = strtoull(line, &end, 10);
		if (errno || *end || !digest_ok(sp + 1) || find(c, sp + 1) >= 0 ||
		    c->n >= CACHE_MAX_ENTRIES || size > UINT64_MAX - c->used)
			return -EBADMSG;
		e = &c->e[c->n++];
		snprintf(e->digest, sizeof(e->digest), "%s", sp + 1);
		e->size = size;
		e->pins = 0;
		c->used += size;
	}
	return 0;
}

static int load(struct cache *c)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = 0;
	int r;

	fd = openat(c->dirfd, CACHE_INDEX_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = read_fd_all(fd, CACHE_INDEX_MAX, &buf, &len);
	if (r == -EFBIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	return parse_index(c, buf, len);
}

int cache_index_check(const char *text, size_t len, size_t *ret_count, uint64_t *ret_used)
{
	struct cache c = {.dirfd = -1};
	char *buf;
	int r;

	if (len > CACHE_INDEX_MAX)
		return -EBADMSG;
	buf = malloc(len + 1);
	c.e = calloc(CACHE_MAX_ENTRIES, sizeof(*c.e));
	if (!buf || !c.e) {
		free(buf);
		free(c.e);
		return -ENOMEM;
	}
	memcpy(buf, text, len);
	r = parse_index(&c, buf, len);
	/* what was accepted is consistent: unique valid digests whose sizes add up */
	for (size_t i = 0; r == 0 && i < c.n; i++)
		if (!digest_ok(c.e[i].digest) || find(&c, c.e[i].digest) != (ssize_t)i)
			r = -EBADMSG;
	if (r == 0) {
		*ret_count = c.n;
		*ret_used = c.used;
	}
	free(buf);
	free(c.e);
	return r;
}

struct cache *cache_free(struct cache *c)
{
	if (!c)
		return NULL;
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->e);
	free(c);
	return NULL;
}

int cache_open(const char *dir, uint64_t capacity, struct cache **ret_cache)
{
	struct cache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->capacity = capacity;
	c->e = calloc(CACHE_MAX_ENTRIES, sizeof(*c->e));
	c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!c->e || c->dirfd < 0) {
		r = c->e ? -errno : -ENOMEM;
		cache_free(c);
		return r;
	}
	r = load(c);
	if (r < 0) {
		cache_free(c);
		return r;
	}
	*ret_cache = c;
	return 0;
}

int cache_lookup(struct cache *c, const char *digest, uint64_t *ret_size)
{
	ssize_t i = find(c, digest);
	struct cache_entry hit;

	if (i < 0)
		return -ENOENT;
	hit = c->e[i];
	/* most recently used goes last */
	memmove(&c->e[i], &c->e[i + 1], (c->n - (size_t)i - 1) * sizeof(*c->e));
	c->e[c->n - 1] = hit;
	if (ret_size)
		*ret_size = hit.size;
	/* the order on disk is advisory: a failed write here loses no image, the next save fixes it */
	save(c);
	return 0;
}

/* Evict least recently used, unpinned entries until NEED more bytes fit under CAP (and a slot is free if SLOT). */
static int make_room(struct cache *c, uint64_t cap, uint64_t need, bool slot, cache_evict_fn fn,
		     void *userdata)
{
	uint64_t pinned = 0;
	size_t npinned = 0;
	int r = 0;

	for (size_t i = 0; i < c->n; i++)
		if (c->e[i].pins) {
			pinned += c->e[i].size;
			npinned++;
		}
	/* first decide, then evict: nothing goes unless it makes room */
	if (pinned > cap || need > cap - pinned || (slot && npinned >= CACHE_MAX_ENTRIES))
		return -ENOSPC;
	for (size_t i = 0; i < c->n;) {
		bool fits = c->used <= cap && need <= cap - c->used &&
			    !(slot && c->n >= CACHE_MAX_ENTRIES);

		if (fits)
			break;
		if (c->e[i].pins) {
			i++;
			continue;
		}
		if (fn) {
			r = fn(c->e[i].digest, userdata);
			if (r < 0)
				break;
		}
		c->used -= c->e[i].size;
		memmove(&c->e[i], &c->e[i + 1], (c->n - i - 1) * sizeof(*c->e));
		c->n--;
	}
	if (r < 0) {
		int s = save(c);

		return s < 0 ? s : r;
	}
	return 0;
}

int cache_insert(struct cache *c, const char *digest, uint64_t size, cache_evict_fn fn,
		 void *userdata)
{
	struct cache_entry *e;
	int r;

	if (!digest_ok(digest))
		return -EINVAL;
	if (find(c, digest) >= 0)
		return -EEXIST;
	if (size > c->capacity)
		return -EFBIG;
	r = make_room(c, c->capacity, size, true, fn, userdata);
	if (r < 0)
		return r;
	e = &c->e[c->n++];
	snprintf(e->digest, sizeof(e->digest), "%s", digest);
	e->size = size;
	e->pins = 0;
	c->used += size;
	r = save(c);
	if (r < 0) {
		c->n--;
		c->used -= size;
	}
	return r;
}

int cache_remove(struct cache *c, const char *digest)
{
	ssize_t i = find(c, digest);

	if (i < 0)
		return -ENOENT;
	if (c->e[i].pins)
		return -EBUSY;
	c->used -= c->e[i].size;
	memmove(&c->e[i], &c->e[i + 1], (c->n - (size_t)i - 1) * sizeof(*c->e));
	c->n--;
	return save(c);
}

int cache_pin(struct cache *c, const char *digest)
{
	ssize_t i = find(c, digest);

	if (i < 0)
		return -ENOENT;
	if (c->e[i].pins == UINT32_MAX)
		return -EOVERFLOW;
	c->e[i].pins++;
	return 0;
}

int cache_unpin(struct cache *c, const char *digest)
{
	ssize_t i = find(c, digest);

	if (i < 0)
		return -ENOENT;
	if (!c->e[i].pins)
		return -EINVAL;
	c->e[i].pins--;
	return 0;
}

int cache_set_capacity(struct cache *c, uint64_t capacity, cache_evict_fn fn, void *userdata)
{
	int r = make_room(c, capacity, 0, false, fn, userdata);

	if (r < 0)
		return r;
	c->capacity = capacity;
	return save(c);
}

uint64_t cache_used(const struct cache *c)
{
	return c->used;
}

uint64_t cache_capacity(const struct cache *c)
{
	return c->capacity;
}

size_t cache_count(const struct cache *c)
{
	return c->n;
}

const char *cache_nth(const struct cache *c, size_t n)
{
	return n < c->n ? c->e[n].digest : NULL;
}
