/* meterlog.c -- the agent's meter log writer: sign, chain, Merkle tree, batched fsync, checkpoints, heartbeats, torn-tail recovery. */
#include <aicn/canon.h>
#include <aicn/compiler.h>

#include "meterlog_int.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#define NSEC_PER_SEC UINT64_C(1000000000)

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

/* ---- shared line helpers ----------------------------------------------- */

int ml_is_checkpoint_line(const char *line, size_t len)
{
	return len >= sizeof(ML_CP_PREFIX) - 1 &&
	       memcmp(line, ML_CP_PREFIX, sizeof(ML_CP_PREFIX) - 1) == 0;
}

int ml_format_checkpoint_line(const char *note, char **ret_line, size_t *ret_len)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "note", note) ||
	    !cJSON_AddStringToObject(o, "type", "checkpoint"))
		return -ENOMEM;
	return canon_print(o, ret_line, ret_len);
}

int ml_parse_checkpoint_line(const char *line, size_t len, char **ret_note, size_t *ret_note_len,
			     const char **ret_err)
{
	_cleanup_(cJSON_Deletep) cJSON *o = NULL;
	_cleanup_free_ char *again = NULL;
	const char *note, *type;
	size_t alen;
	int r;

	if (len > NOTE_MAX * 2) {
		if (ret_err)
			*ret_err = "checkpoint line too long";
		return -EINVAL;
	}
	r = canon_parse(line, len, 2, &o, ret_err);
	if (r < 0)
		return r;
	if (!cJSON_IsObject(o) || cJSON_GetArraySize(o) != 2 ||
	    canon_get_str(o, "note", &note) < 0 || canon_get_str(o, "type", &type) < 0 ||
	    strcmp(type, "checkpoint") != 0 || strlen(note) > NOTE_MAX) {
		if (ret_err)
			*ret_err = "not a checkpoint line";
		return -EINVAL;
	}
	r = canon_print(o, &again, &alen);
	if (r < 0)
		return r;
	if (alen != len || memcmp(again, line, len) != 0) {
		if (ret_err)
			*ret_err = "checkpoint line not in canonical form";
		return -EINVAL;
	}
	*ret_note_len = strlen(note);
	*ret_note = strdup(note);
	return *ret_note ? 0 : -ENOMEM;
}

void ml_chain_next(const uint8_t prev[SHA256_LEN], const char *line, size_t len,
		   uint8_t ret[SHA256_LEN])
{
	uint8_t buf[SHA256_LEN + RECORD_LINE_MAX];

	if (len <= RECORD_LINE_MAX) {
		memcpy(buf, prev, SHA256_LEN);
		memcpy(buf + SHA256_LEN, line, len);
		sha256(buf, SHA256_LEN + len, ret);
	} else {
		struct sha256_ctx *ctx = NULL;

		if (sha256_new(&ctx) < 0)
			abort();
		sha256_update(ctx, prev, SHA256_LEN);
		sha256_update(ctx, line, len);
		sha256_final(ctx, ret);
		sha256_free(ctx);
	}
}

void ml_origin(const char *node_id, char ret[CHECKPOINT_ORIGIN_MAX + 1])
{
	snprintf(ret, CHECKPOINT_ORIGIN_MAX + 1, "%s%s", METERLOG_ORIGIN_PREFIX, node_id);
}

/* ---- the writer ---------------------------------------------------------- */

struct ml_cp {
	uint64_t size; /* records it covers */
	char *note;    /* signed note */
};

struct ml_loc {
	uint64_t off; /* byte offset of the record's line in the file */
	uint32_t len; /* line length without newline */
};

struct meterlog {
	int fd;
	char *path;
	EVP_PKEY *key;			/* our reference */
	struct key_signer *signer;	/* signs every record */
	char node[NODE_ID_HEX_LEN + 1]; /* our node id */
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	struct meterlog_opts opts;
	struct merkle_tree *tree;
	uint8_t chain[SHA256_LEN]; /* c of the last record appended */
	uint64_t size;		   /* records appended */
	uint64_t durable;	   /* records on disk */
	uint64_t last_time;	   /* "time" of the last record */
	uint64_t last_append;	   /* clock at the last append (heartbeat idleness) */
	uint64_t first_unsealed;   /* clock when the first record after the last checkpoint came */
	uint64_t sealed;   /* records covered by the latest checkpoint (queued or written) */
	struct ml_cp *cps; /* every checkpoint, oldest first */
	size_t ncps, cps_cap;
	uint64_t durable_cps; /* checkpoints on disk */
	struct ml_loc *locs;  /* where each record's line is */
	size_t locs_cap;
	char *buf; /* lines waiting for write + fdatasync */
	size_t buf_len, buf_cap;
	uint32_t pending_lines;
	uint64_t durable_off; /* file size known written and synced */
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t ml_now(const struct meterlog *ml)
{
	return ml->opts.clock_ns ? ml->opts.clock_ns() : realtime_ns();
}

uint64_t meterlog_size(const struct meterlog *ml)
{
	return ml->size;
}

uint64_t meterlog_durable(const struct meterlog *ml)
{
	return ml->durable;
}

uint64_t meterlog_sealed(const struct meterlog *ml)
{
	return ml->ncps ? ml->cps[ml->ncps - 1].size : 0;
}

const char *meterlog_latest_checkpoint(const struct meterlog *ml)
{
	return ml->ncps ? ml->cps[ml->ncps - 1].note : NULL;
}

const char *meterlog_path(const struct meterlog *ml)
{
	return ml->path;
}

const struct merkle_tree *meterlog_tree(const struct meterlog *ml)
{
	return ml->tree;
}

static int buf_reserve(struct meterlog *ml, size_t extra)
{
	size_t cap;
	char *nb;

	if (ml->buf_len + extra <= ml->buf_cap)
		return 0;
	cap = ml->buf_cap ? ml->buf_cap : 65536;
	while (cap < ml->buf_len + extra)
		cap *= 2;
	nb = realloc(ml->buf, cap);
	if (!nb)
		return -ENOMEM;
	ml->buf = nb;
	ml->buf_cap = cap;
	return 0;
}

static int locs_reserve(struct meterlog *ml)
{
	struct ml_loc *nl;
	size_t cap;

	if (ml->size < ml->locs_cap)
		return 0;
	cap = ml->locs_cap ? ml->locs_cap * 2 : 1024;
	nl = realloc(ml->locs, cap * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	ml->locs = nl;
	ml->locs_cap = cap;
	return 0;
}

static int cps_push(struct meterlog *ml, uint64_t size, char *note)
{
	if (ml->ncps == ml->cps_cap) {
		size_t cap = ml->cps_cap ? ml->cps_cap * 2 : 16;
		struct ml_cp *nc = realloc(ml->cps, cap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		ml->cps = nc;
		ml->cps_cap = cap;
	}
	ml->cps[ml->ncps].size = size;
	ml->cps[ml->ncps].note = note;
	ml->ncps++;
	return 0;
}

int meterlog_flush(struct meterlog *ml)
{
	size_t off = 0;
	int r;

	if (ml->buf_len == 0)
		return 0;
	/* positional writes from the durable end: a retry after a failure rewrites the same bytes */
	while (off < ml->buf_len) {
		ssize_t n = pwrite(ml->fd, ml->buf + off, ml->buf_len - off,
				   (off_t)(ml->durable_off + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			(void)!ftruncate(ml->fd, (off_t)ml->durable_off);
			return r;
		}
		off += (size_t)n;
	}
	if (fdatasync(ml->fd) < 0)
		return -errno;
	ml->durable_off += ml->buf_len;
	ml->buf_len = 0;
	ml->pending_lines = 0;
	ml->durable = ml->size;
	ml->durable_cps = ml->ncps;
	return 0;
}

/* Queue a line (newline added). */
static void queue_line(struct meterlog *ml, const char *line, size_t len)
{
	memcpy(ml->buf + ml->buf_len, line, len);
	ml->buf[ml->buf_len + len] = '\n';
	ml->buf_len += len + 1;
	ml->pending_lines++;
}

static int queue_checkpoint(struct meterlog *ml)
{
	struct checkpoint c = {0};
	_cleanup_free_ char *note = NULL, *line = NULL;
	size_t len;
	int r;

	if (ml->size == ml->sealed)
		return 0;
	memcpy(c.origin, ml->origin, sizeof(c.origin));
	c.size = ml->size;
	/* names the checkpoint before it, so a deleted checkpoint line shows */
	snprintf(c.ext, sizeof(c.ext), "prev %llu", (unsigned long long)ml->sealed);
	r = merkle_root(ml->tree, ml->size, c.root);
	if (r < 0)
		return r;
	r = checkpoint_sign(&c, ml->key, &note);
	if (r < 0)
		return r;
	r = ml_format_checkpoint_line(note, &line, &len);
	if (r < 0)
		return r;
	r = buf_reserve(ml, len + 1);
	if (r < 0)
		return r;
	r = cps_push(ml, ml->size, note);
	if (r < 0)
		return r;
	TAKE_PTR(note);
	queue_line(ml, line, len);
	ml->sealed = ml->size;
	return 0;
}

int meterlog_checkpoint(struct meterlog *ml)
{
	int r = queue_checkpoint(ml);

	if (r < 0)
		return r;
	return meterlog_flush(ml);
}

int meterlog_append(struct meterlog *ml, struct usage_record *rec)
{
	_cleanup_free_ char *line = NULL;
	uint64_t now = ml_now(ml);
	size_t len;
	int r;

	rec->version = RECORD_VERSION;
	memcpy(rec->node, ml->node, sizeof(rec->node));
	rec->seq = ml->size;
	memcpy(rec->prev, ml->chain, SHA256_LEN);
	rec->time_ns = MAX(now, ml->last_time);
	r = locs_reserve(ml);
	if (r < 0)
		return r;
	r = record_sign(rec, ml->signer, &line, &len);
	if (r < 0)
		return r;
	r = buf_reserve(ml, len + 1);
	if (r < 0)
		return r;
	r = merkle_append(ml->tree, line, len);
	if (r < 0)
		return r;
	/* nothing below fails: the record is now part of the log */
	ml->locs[ml->size].off = ml->durable_off + ml->buf_len;
	ml->locs[ml->size].len = (uint32_t)len;
	ml_chain_next(ml->chain, line, len, ml->chain);
	queue_line(ml, line, len);
	if (ml->size == ml->sealed)
		ml->first_unsealed = now;
	ml->size++;
	ml->last_time = rec->time_ns;
	ml->last_append = now;
	if (ml->size - ml->sealed >= ml->opts.checkpoint_every) {
		r = queue_checkpoint(ml);
		if (r < 0)
			return r;
	}
	if (ml->pending_lines >= ml->opts.sync_batch)
		return meterlog_flush(ml);
	return 0;
}

int meterlog_tick(struct meterlog *ml)
{
	uint64_t now = ml_now(ml);
	int r;

	if (now - ml->last_append >= ml->opts.heartbeat_interval_ns && now >= ml->last_append) {
		struct usage_record hb = {.type = RECORD_HEARTBEAT};

		r = meterlog_append(ml, &hb);
		if (r < 0)
			return r;
		/* a heartbeat exists to seal the quiet period: seal it at once */
		r = queue_checkpoint(ml);
		if (r < 0)
			return r;
	} else if (ml->size > ml->sealed &&
		   now - ml->first_unsealed >= ml->opts.checkpoint_interval_ns &&
		   now >= ml->first_unsealed) {
		r = queue_checkpoint(ml);
		if (r < 0)
			return r;
	}
	return meterlog_flush(ml);
}

struct meterlog *meterlog_free(struct meterlog *ml)
{
	if (!ml)
		return NULL;
	if (ml->fd >= 0)
		close(ml->fd);
	free(ml->path);
	EVP_PKEY_free(ml->key);
	key_signer_free(ml->signer);
	merkle_free(ml->tree);
	for (size_t i = 0; i < ml->ncps; i++)
		free(ml->cps[i].note);
	free(ml->cps);
	free(ml->locs);
	free(ml->buf);
	free(ml);
	return NULL;
}

int meterlog_close(struct meterlog *ml)
{
	int r;

	if (!ml)
		return 0;
	r = meterlog_checkpoint(ml);
	if (r == 0 && fsync(ml->fd) < 0)
		r = -errno;
	meterlog_free(ml);
	return r;
}

/* ---- opening and recovery -------------------------------------------------- */

static int save_torn(const char *path, const char *data, size_t len)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_close_ int fd = -1;
	size_t off = 0;

	if (asprintf(&p, "%s.torn", path) < 0)
		return -ENOMEM;
	fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (size_t)n;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

#define BAD(why)                                                                                   \
	do {                                                                                       \
		if (ret_err)                                                                       \
			*ret_err = (why);                                                          \
		r = -EBADMSG;                                                                      \
		goto out;                                                                          \
	} while (0)

/* Replay the file's complete lines into ml; *ret_end = end of the last complete line. */
static int replay(struct meterlog *ml, const char *map, size_t size, size_t *ret_end,
		  struct meterlog_recovery *rec, const char **ret_err)
{
	size_t pos = 0;
	int have_last = 0;
	struct usage_record last;
	size_t last_off = 0, last_len = 0;
	int r = 0;

	while (pos < size) {
		const char *line = map + pos;
		const char *nl = memchr(line, '\n', size - pos);
		size_t len;

		if (!nl)
			break; /* torn tail */
		len = (size_t)(nl - line);
		if (ml_is_checkpoint_line(line, len)) {
			_cleanup_free_ char *note = NULL;
			struct checkpoint c;
			uint8_t root[SHA256_LEN];
			size_t nl2;

			/* the parsers' own reasons are the clearest */
			r = ml_parse_checkpoint_line(line, len, &note, &nl2, ret_err);
			if (r == 0)
				r = checkpoint_verify(note, nl2, ml->key, ml->origin, &c, ret_err);
			if (r < 0) {
				r = r == -ENOMEM ? r : -EBADMSG;
				goto out;
			}
			if (c.size != ml->size)
				BAD("checkpoint size differs from the records before it");
			{
				char want[CHECKPOINT_EXT_MAX + 1];

				snprintf(want, sizeof(want), "prev %llu",
					 (unsigned long long)ml->sealed);
				if (strcmp(c.ext, want) != 0)
					BAD("a checkpoint line before this one is missing");
			}
			r = merkle_root(ml->tree, c.size, root);
			if (r < 0)
				goto out;
			if (memcmp(root, c.root, SHA256_LEN) != 0)
				BAD("checkpoint root differs from the records before it");
			r = cps_push(ml, c.size, note);
			if (r < 0)
				goto out;
			TAKE_PTR(note);
			ml->sealed = c.size;
			rec->checkpoints++;
		} else {
			struct usage_record u;

			r = record_parse(line, len, &u, ret_err);
			if (r < 0) {
				r = r == -ENOMEM ? r : -EBADMSG;
				goto out;
			}
			if (strcmp(u.node, ml->node) != 0)
				BAD("record of another node");
			if (u.seq != ml->size)
				BAD("sequence number out of order");
			if (memcmp(u.prev, ml->chain, SHA256_LEN) != 0)
				BAD("broken chain");
			if (u.time_ns < ml->last_time)
				BAD("time went backwards");
			r = locs_reserve(ml);
			if (r < 0)
				goto out;
			r = merkle_append(ml->tree, line, len);
			if (r < 0)
				goto out;
			ml->locs[ml->size].off = pos;
			ml->locs[ml->size].len = (uint32_t)len;
			ml_chain_next(ml->chain, line, len, ml->chain);
			ml->size++;
			ml->last_time = u.time_ns;
			last = u;
			last_off = pos;
			last_len = len;
			have_last = 1;
		}
		pos += len + 1;
	}
	/* the newest record must carry our signature: a forged tail is not continued */
	if (have_last) {
		struct key_verifier *v = NULL;

		r = key_verifier_new(ml->key, &v);
		if (r < 0)
			goto out;
		r = record_verify_line(map + last_off, last_len, &last, v);
		key_verifier_free(v);
		if (r < 0)
			BAD("the last record's signature does not verify with this node's key");
	}
	*ret_end = pos;
	rec->records = ml->size;
out:
	return r;
}

int meterlog_open(const char *path, EVP_PKEY *key, const struct meterlog_opts *opts,
		  struct meterlog **ret_ml, struct meterlog_recovery *ret_rec, const char **ret_err)
{
	struct meterlog *ml;
	struct meterlog_recovery rec = {0};
	struct stat st;
	void *map = NULL;
	size_t end = 0;
	int r;

	ml = calloc(1, sizeof(*ml));
	if (!ml)
		return -ENOMEM;
	ml->fd = -1;
	if (opts)
		ml->opts = *opts;
	if (!ml->opts.checkpoint_every)
		ml->opts.checkpoint_every = 1000;
	if (!ml->opts.checkpoint_interval_ns)
		ml->opts.checkpoint_interval_ns = 60 * NSEC_PER_SEC;
	if (!ml->opts.heartbeat_interval_ns)
		ml->opts.heartbeat_interval_ns = 60 * NSEC_PER_SEC;
	if (!ml->opts.sync_batch)
		ml->opts.sync_batch = 64;
	ml->path = strdup(path);
	if (!ml->path) {
		r = -ENOMEM;
		goto fail;
	}
	ml->key = key;
	EVP_PKEY_up_ref(key);
	r = key_node_id(key, ml->node);
	if (r < 0)
		goto fail;
	ml_origin(ml->node, ml->origin);
	r = key_signer_new(key, &ml->signer);
	if (r < 0)
		goto fail;
	r = merkle_new(&ml->tree);
	if (r < 0)
		goto fail;
	ml->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (ml->fd < 0) {
		r = -errno;
		goto fail;
	}
	if (flock(ml->fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	if (fstat(ml->fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto fail;
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, ml->fd, 0);
		if (map == MAP_FAILED) {
			r = -errno;
			goto fail;
		}
		r = replay(ml, map, (size_t)st.st_size, &end, &rec, ret_err);
		if (r == 0 && end < (size_t)st.st_size) {
			/* a torn last line: never acknowledged; keep the bytes aside, then cut */
			rec.torn_bytes = (size_t)st.st_size - end;
			r = save_torn(path, (const char *)map + end, rec.torn_bytes);
			if (r == 0 && ftruncate(ml->fd, (off_t)end) < 0)
				r = -errno;
			if (r == 0 && fsync(ml->fd) < 0)
				r = -errno;
		}
		munmap(map, (size_t)st.st_size);
		if (r < 0)
			goto fail;
	}
	ml->durable_off = end;
	ml->durable = ml->size;
	ml->durable_cps = ml->ncps;
	ml->last_append = ml_now(ml);
	ml->first_unsealed = ml->last_append;
	if (ml->size > ml->sealed) {
		rec.sealed_on_open = ml->size - ml->sealed;
		r = meterlog_checkpoint(ml);
		if (r < 0)
			goto fail;
	}
	if (ret_rec)
		*ret_rec = rec;
	*ret_ml = ml;
	return 0;
fail:
	meterlog_free(ml);
	return r;
}
