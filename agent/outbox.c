/* outbox.c -- durable agent outbox: one fsync'd file per signed record, resent until ACKed by sequence. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/outbox.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

struct entry {
	uint64_t seq;
	bool inflight; /* sent on the current connection, not yet ACKed */
	int64_t ref;   /* id of the USAGE_RECORD message in flight */
};

struct outbox {
	int dirfd;
	size_t max;
	struct entry *e; /* sorted by seq */
	size_t n, cap;
	size_t inflight;
	size_t bad;
	struct net_conn *conn; /* the connection records are in flight on */
	net_handler_fn next;
	void *next_ud;
	void (*acked)(uint64_t seq, void *ud);
	void *acked_ud;
};

static void rec_name(uint64_t seq, char *buf, size_t len, const char *ext)
{
	snprintf(buf, len, "%020" PRIu64 ".%s", seq, ext);
}

static long find(const struct outbox *o, uint64_t seq)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (o->e[mid].seq == seq)
			return (long)mid;
		if (o->e[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static int insert(struct outbox *o, uint64_t seq)
{
	long pos = find(o, seq);
	size_t at;

	if (pos >= 0)
		return -EEXIST;
	at = (size_t)(-pos - 1);
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct entry *n = realloc(o->e, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		o->e = n;
		o->cap = cap;
	}
	memmove(o->e + at + 1, o->e + at, (o->n - at) * sizeof(*o->e));
	o->e[at] = (struct entry){.seq = seq};
	o->n++;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int outbox_open(const char *dir, size_t max_pending, struct outbox **ret)
{
	struct outbox *o;
	DIR *d;
	struct dirent *de;
	int fd, r = 0;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	o = calloc(1, sizeof(*o));
	if (!o) {
		close(fd);
		return -ENOMEM;
	}
	o->dirfd = fd;
	o->max = max_pending ? max_pending : 1000000;
	d = fdopendir(dup(fd));
	if (!d) {
		outbox_free(o);
		return -errno;
	}
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		size_t len = strlen(nm);
		char *end;
		uint64_t seq;

		if (strncmp(nm, ".tmp-", 5) == 0) { /* a put interrupted before its rename */
			unlinkat(fd, nm, 0);
			continue;
		}
		if (len != 24 || strcmp(nm + 20, ".rec") != 0)
			continue;
		errno = 0;
		seq = strtoull(nm, &end, 10);
		if (errno || end != nm + 20)
			continue;
		if (o->n == o->cap) {
			size_t cap = o->cap ? o->cap * 2 : 64;
			struct entry *n = realloc(o->e, cap * sizeof(*n));

			if (!n) {
				r = -ENOMEM;
				break;
			}
			o->e = n;
			o->cap = cap;
		}
		o->e[o->n++] = (struct entry){.seq = seq};
	}
	closedir(d);
	if (r < 0) {
		outbox_free(o);
		return r;
	}
	if (o->n)
		qsort(o->e, o->n, sizeof(*o->e), cmp_entry);
	*ret = o;
	return 0;
}

struct outbox *outbox_free(struct outbox *o)
{
	if (!o)
		return NULL;
	if (o->dirfd >= 0)
		close(o->dirfd);
	free(o->e);
	free(o);
	return NULL;
}

int outbox_put(struct outbox *o, uint64_t seq, const char *record, size_t len)
{
	char tmp[40], name[40];
	cJSON *v = NULL;
	const char *perr;
	ssize_t w;
	int fd, r;

	if (len == 0 || len > OUTBOX_MAX_RECORD)
		return -EINVAL;
	if (canon_parse(record, len, 32, &v, &perr) < 0)
		return -EINVAL;
	r = cJSON_IsObject(v) ? 0 : -EINVAL;
	cJSON_Delete(v);
	if (r < 0)
		return r;
	if (find(o, seq) >= 0)
		return -EEXIST;
	if (o->n >= o->max)
		return -ENOSPC;
	snprintf(tmp, sizeof(tmp), ".tmp-%" PRIu64, seq);
	rec_name(seq, name, sizeof(name), "rec");
	fd = openat(o->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	w = write(fd, record, len);
	if (w != (ssize_t)len || fsync(fd) < 0) {
		r = w < 0 || w == (ssize_t)len ? -errno : -EIO;
		close(fd);
		unlinkat(o->dirfd, tmp, 0);
		return r ? r : -EIO;
	}
	close(fd);
	if (renameat(o->dirfd, tmp, o->dirfd, name) < 0 || fsync(o->dirfd) < 0) {
		r = -errno;
		unlinkat(o->dirfd, tmp, 0);
		return r;
	}
	return insert(o, seq);
}

int outbox_ack(struct outbox *o, uint64_t seq)
{
	long pos = find(o, seq);
	char name[40];

	if (pos < 0)
		return 0;
	rec_name(seq, name, sizeof(name), "rec");
	/* no directory fsync: a resurrected file is resent and deduplicated */
	if (unlinkat(o->dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	if (o->e[pos].inflight)
		o->inflight--;
	memmove(o->e + pos, o->e + pos + 1, (o->n - (size_t)pos - 1) * sizeof(*o->e));
	o->n--;
	return 0;
}

size_t outbox_pending(const struct outbox *o)
{
	return o->n;
}

uint64_t outbox_first(const struct outbox *o)
{
	return o->n ? o->e[0].seq : 0;
}

size_t outbox_bad(const struct outbox *o)
{
	return o->bad;
}

/* Read a pending record back; a file that no longer parses is set aside (.bad). */
static int load(struct outbox *o, size_t i, cJSON **ret)
{
	char name[40], bad[40];
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	const char *perr;
	ssize_t n;
	int fd, r;

	rec_name(o->e[i].seq, name, sizeof(name), "rec");
	fd = openat(o->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > OUTBOX_MAX_RECORD) {
		close(fd);
		r = -EINVAL;
		goto set_aside;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size || canon_parse(buf, (size_t)n, 32, ret, &perr) < 0) {
		r = -EINVAL;
		goto set_aside;
	}
	return 0;
set_aside:
	rec_name(o->e[i].seq, bad, sizeof(bad), "bad");
	renameat(o->dirfd, name, o->dirfd, bad);
	o->bad++;
	memmove(o->e + i, o->e + i + 1, (o->n - i - 1) * sizeof(*o->e));
	o->n--;
	return r;
}

int outbox_pump(struct outbox *o, struct net_conn *c)
{
	size_t i = 0;
	int sent = 0;

	if (!c || !net_conn_alive(c))
		return -ENOTCONN;
	if (o->conn != c) { /* a new connection: everything is to be sent again */
		for (size_t k = 0; k < o->n; k++)
			o->e[k].inflight = false;
		o->inflight = 0;
		o->conn = c;
	}
	while (o->inflight < OUTBOX_WINDOW && i < o->n) {
		cJSON *rec = NULL, *msg;
		int r;

		if (o->e[i].inflight) {
			i++;
			continue;
		}
		r = load(o, i, &rec);
		if (r == -EINVAL)
			continue; /* set aside; entry i is now the next one */
		if (r < 0)
			return r;
		msg = proto_new(PROTO_USAGE_RECORD);
		if (!msg || canon_add_u64(msg, "seq", o->e[i].seq) < 0 ||
		    !cJSON_AddItemToObject(msg, "record", rec)) {
			cJSON_Delete(rec);
			cJSON_Delete(msg);
			return -ENOMEM;
		}
		r = net_conn_send(c, msg, &o->e[i].ref);
		cJSON_Delete(msg);
		if (r < 0)
			return r;
		o->e[i].inflight = true;
		o->inflight++;
		sent++;
		i++;
	}
	return sent;
}

void outbox_on_ready(struct outbox *o, struct net_conn *c)
{
	o->conn = NULL; /* forces a full resend on c */
	outbox_pump(o, c);
}

static int on_ack(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct outbox *o = ud;
	uint64_t seq;
	int64_t ref;
	long i;
	int r;

	/*
	 * Ours only when it refers to the USAGE_RECORD in flight with that seq: other
	 * ACKs carry a "seq" too (a blob the coordinator already has: its size).
	 */
	if (canon_get_u64(m->root, "seq", &seq) < 0 || (i = find(o, seq)) < 0 || c != o->conn ||
	    !o->e[i].inflight || canon_get_i64(m->root, "ref", &ref) < 0 || ref != o->e[i].ref)
		return o->next ? o->next(c, m, o->next_ud) : 0;
	r = outbox_ack(o, seq);
	if (r < 0)
		return r;
	if (o->acked)
		o->acked(seq, o->acked_ud);
	r = outbox_pump(o, c);
	return r < 0 && r != -ENOTCONN ? r : 0;
}

int outbox_bind(struct outbox *o, struct net_client *cl, net_handler_fn next, void *next_ud)
{
	o->next = next;
	o->next_ud = next_ud;
	return net_client_handle(cl, PROTO_ACK, on_ack, o);
}

int outbox_has(const struct outbox *o, uint64_t seq)
{
	return find(o, seq) >= 0;
}

void outbox_on_acked(struct outbox *o, void (*fn)(uint64_t seq, void *ud), void *ud)
{
	o->acked = fn;
	o->acked_ud = ud;
}
