/* meterlog_proof.c -- inclusion and consistency proof files for the meter log, and their offline check. */
#include <aicn/canon.h>
#include <aicn/compiler.h>

#include "meterlog_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PROOF_FILE_MAX (64 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

static int add_proof_array(cJSON *o, uint8_t proof[][MERKLE_HASH_LEN], size_t n)
{
	cJSON *a = cJSON_AddArrayToObject(o, "proof");

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *b64 = NULL;
		cJSON *s;
		int r = base64_encode(proof[i], MERKLE_HASH_LEN, &b64);

		if (r < 0)
			return r;
		s = cJSON_CreateString(b64);
		if (!s || !cJSON_AddItemToArray(a, s)) {
			cJSON_Delete(s);
			return -ENOMEM;
		}
	}
	return 0;
}

static int inclusion_json(const struct merkle_tree *t, const char *note, uint64_t cp_size,
			  uint64_t seq, const char *line, size_t len, char **ret_json)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
	_cleanup_free_ char *rec = strndup(line, len);
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	size_t n, jl;
	int r;

	if (!o || !rec)
		return -ENOMEM;
	r = merkle_inclusion_proof(t, seq, cp_size, proof, &n);
	if (r < 0)
		return r;
	if (!cJSON_AddStringToObject(o, "type", "inclusion") ||
	    !cJSON_AddStringToObject(o, "checkpoint", note) ||
	    !cJSON_AddStringToObject(o, "record", rec) || canon_add_u64(o, "index", seq) < 0)
		return -ENOMEM;
	r = add_proof_array(o, proof, n);
	if (r < 0)
		return r;
	return canon_print(o, ret_json, &jl);
}

static int consistency_json(const struct merkle_tree *t, const char *old_note, uint64_t old_size,
			    const char *new_note, uint64_t new_size, char **ret_json)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	size_t n, jl;
	int r;

	if (!o)
		return -ENOMEM;
	r = merkle_consistency_proof(t, old_size, new_size, proof, &n);
	if (r < 0)
		return r;
	if (!cJSON_AddStringToObject(o, "type", "consistency") ||
	    !cJSON_AddStringToObject(o, "old", old_note) ||
	    !cJSON_AddStringToObject(o, "new", new_note))
		return -ENOMEM;
	r = add_proof_array(o, proof, n);
	if (r < 0)
		return r;
	return canon_print(o, ret_json, &jl);
}

/* ---- from a log file (no key: the checker verifies) ---------------------------- */

struct scan_cp {
	uint64_t size;
	const char *line; /* the checkpoint line in the map */
	size_t len;
};

struct scan {
	struct merkle_tree *tree;
	struct scan_cp *cps;
	size_t ncps, cap;
	const char *rec_line; /* the wanted record's line */
	size_t rec_len;
};

static int scan_file(const char *map, size_t size, uint64_t want_seq, struct scan *sc,
		     const char **ret_err)
{
	size_t pos = 0;
	int r;

	r = merkle_new(&sc->tree);
	if (r < 0)
		return r;
	while (pos < size) {
		const char *line = map + pos, *nl = memchr(line, '\n', size - pos);
		size_t len;

		if (!nl)
			break; /* torn tail: not part of the log */
		len = (size_t)(nl - line);
		if (ml_is_checkpoint_line(line, len)) {
			_cleanup_free_ char *note = NULL;
			struct checkpoint c;
			size_t notelen;

			if (ml_parse_checkpoint_line(line, len, &note, &notelen, ret_err) < 0 ||
			    checkpoint_parse(note, notelen, &c, ret_err) < 0)
				return -EBADMSG;
			if (sc->ncps == sc->cap) {
				size_t cap = sc->cap ? sc->cap * 2 : 64;
				struct scan_cp *n = realloc(sc->cps, cap * sizeof(*n));

				if (!n)
					return -ENOMEM;
				sc->cps = n;
				sc->cap = cap;
			}
			sc->cps[sc->ncps++] = (struct scan_cp){c.size, line, len};
		} else {
			if (merkle_size(sc->tree) == want_seq) {
				sc->rec_line = line;
				sc->rec_len = len;
			}
			r = merkle_append(sc->tree, line, len);
			if (r < 0)
				return r;
		}
		pos += len + 1;
	}
	return 0;
}

static void scan_done(struct scan *sc)
{
	merkle_free(sc->tree);
	free(sc->cps);
}

static int map_file(const char *path, void **ret_map, size_t *ret_size)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	void *map;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return -EINVAL;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	*ret_map = map;
	*ret_size = (size_t)st.st_size;
	return 0;
}

static int note_of(const struct scan_cp *cp, char **ret_note, const char **ret_err)
{
	size_t nl;

	return ml_parse_checkpoint_line(cp->line, cp->len, ret_note, &nl, ret_err);
}

int meterlog_prove_file(const char *path, uint64_t seq, char **ret_json, const char **ret_err)
{
	struct scan sc = {0};
	_cleanup_free_ char *note = NULL;
	void *map = NULL;
	size_t size = 0;
	int r;

	r = map_file(path, &map, &size);
	if (r < 0)
		return r;
	r = scan_file(map, size, seq, &sc, ret_err);
	if (r < 0)
		goto out;
	if (!sc.rec_line) {
		if (ret_err)
			*ret_err = "no record with that sequence number";
		r = -ENOENT;
		goto out;
	}
	/* the latest checkpoint, if it covers the record */
	if (sc.ncps == 0 || sc.cps[sc.ncps - 1].size <= seq ||
	    sc.cps[sc.ncps - 1].size > merkle_size(sc.tree)) {
		if (ret_err)
			*ret_err =
				"the record is not covered by the log's latest checkpoint (unsealed)";
		r = -ENOENT;
		goto out;
	}
	r = note_of(&sc.cps[sc.ncps - 1], &note, ret_err);
	if (r < 0)
		goto out;
	r = inclusion_json(sc.tree, note, sc.cps[sc.ncps - 1].size, seq, sc.rec_line, sc.rec_len,
			   ret_json);
out:
	scan_done(&sc);
	munmap(map, size);
	return r;
}

int meterlog_prove_consistency_file(const char *path, uint64_t old_size, uint64_t new_size,
				    char **ret_json, const char **ret_err)
{
	struct scan sc = {0};
	_cleanup_free_ char *old_note = NULL, *new_note = NULL;
	const struct scan_cp *o = NULL, *n = NULL;
	void *map = NULL;
	size_t size = 0;
	int r;

	r = map_file(path, &map, &size);
	if (r < 0)
		return r;
	r = scan_file(map, size, UINT64_MAX, &sc, ret_err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < sc.ncps; i++) {
		if (sc.cps[i].size == old_size && !o)
			o = &sc.cps[i];
		if (sc.cps[i].size == new_size)
			n = &sc.cps[i];
	}
	if (!o || !n || old_size > new_size || new_size > merkle_size(sc.tree)) {
		if (ret_err)
			*ret_err = "the log has no checkpoints of those sizes";
		r = -ENOENT;
		goto out;
	}
	r = note_of(o, &old_note, ret_err);
	if (r == 0)
		r = note_of(n, &new_note, ret_err);
	if (r == 0)
		r = consistency_json(sc.tree, old_note, old_size, new_note, new_size, ret_json);
out:
	scan_done(&sc);
	munmap(map, size);
	return r;
}

/* ---- from the running agent ---------------------------------------------------- */

int meterlog_prove(const struct meterlog *ml, uint64_t seq, char **ret_json)
{
	/* the agent proves from what is on disk: the same bytes an auditor gets */
	const char *path = meterlog_path(ml);
	const char *why;

	if (seq >= meterlog_sealed(ml))
		return -ENOENT;
	return meterlog_prove_file(path, seq, ret_json, &why);
}

/* ---- checking ------------------------------------------------------------------- */

#define FAIL(code, why)                                                                            \
	do {                                                                                       \
		if (ret_err)                                                                       \
			*ret_err = (why);                                                          \
		return (code);                                                                     \
	} while (0)

static int get_proof(const cJSON *o, uint8_t proof[][MERKLE_HASH_LEN], size_t *ret_n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "proof"), *e;
	size_t n = 0;

	if (!cJSON_IsArray(a))
		return -EINVAL;
	cJSON_ArrayForEach (e, a) {
		uint8_t *h = NULL;
		size_t hl = 0;

		if (n >= MERKLE_MAX_PROOF || !cJSON_IsString(e) ||
		    base64_decode(e->valuestring, strlen(e->valuestring), &h, &hl) < 0)
			return -EINVAL;
		if (hl != MERKLE_HASH_LEN) {
			free(h);
			return -EINVAL;
		}
		memcpy(proof[n++], h, MERKLE_HASH_LEN);
		free(h);
	}
	*ret_n = n;
	return 0;
}

int meterlog_check_proof(const char *json, size_t len, EVP_PKEY *pub, char **ret_summary,
			 const char **ret_err)
{
	_cleanup_(cJSON_Deletep) cJSON *o = NULL;
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	char node[NODE_ID_HEX_LEN + 1], origin[CHECKPOINT_ORIGIN_MAX + 1];
	const char *type;
	size_t n;
	int r;

	if (len > PROOF_FILE_MAX)
		FAIL(-EINVAL, "proof file too large");
	r = canon_parse(json, len, 4, &o, ret_err);
	if (r < 0)
		return r;
	if (canon_get_str(o, "type", &type) < 0)
		FAIL(-EINVAL, "not a proof file (no \"type\")");
	if (get_proof(o, proof, &n) < 0)
		FAIL(-EINVAL, "bad \"proof\" array");
	r = key_node_id(pub, node);
	if (r < 0)
		return r;
	ml_origin(node, origin);
	if (strcmp(type, "inclusion") == 0) {
		const char *note, *line;
		struct checkpoint cp;
		struct usage_record rec;
		struct key_verifier *kv = NULL;
		uint8_t leaf[MERKLE_HASH_LEN];
		uint64_t index;

		if (canon_get_str(o, "checkpoint", &note) < 0 ||
		    canon_get_str(o, "record", &line) < 0 || canon_get_u64(o, "index", &index) < 0)
			FAIL(-EINVAL, "inclusion proof lacks checkpoint, record or index");
		if (checkpoint_verify(note, strlen(note), pub, origin, &cp, ret_err) < 0)
			return -EBADMSG;
		if (record_parse(line, strlen(line), &rec, ret_err) < 0)
			return -EBADMSG;
		if (strcmp(rec.node, node) != 0)
			FAIL(-EBADMSG, "the record is another node's");
		if (rec.seq != index)
			FAIL(-EBADMSG, "the record's sequence number is not the proven index");
		r = key_verifier_new(pub, &kv);
		if (r < 0)
			return r;
		r = record_verify_line(line, strlen(line), &rec, kv);
		key_verifier_free(kv);
		if (r < 0)
			FAIL(-EBADMSG, "the record's signature does not verify with the node key");
		merkle_hash_leaf(line, strlen(line), leaf);
		if (merkle_verify_inclusion(leaf, index, cp.size, proof, n, cp.root) < 0)
			FAIL(-EBADMSG,
			     "the inclusion proof does not lead to the checkpoint's root");
		if (asprintf(
			    ret_summary,
			    "record %llu (%s%s%s, cpu_ns %llu) is entry %llu of the %llu-record log of node %s, sealed by its signed checkpoint",
			    (unsigned long long)rec.seq, record_type_name(rec.type),
			    rec.type == RECORD_HEARTBEAT ? "" : " of task ",
			    rec.type == RECORD_HEARTBEAT ? "" : rec.task,
			    (unsigned long long)rec.cpu_ns, (unsigned long long)index,
			    (unsigned long long)cp.size, node) < 0)
			return -ENOMEM;
		return 0;
	}
	if (strcmp(type, "consistency") == 0) {
		const char *on, *nn;
		struct checkpoint oc, nc;

		if (canon_get_str(o, "old", &on) < 0 || canon_get_str(o, "new", &nn) < 0)
			FAIL(-EINVAL, "consistency proof lacks old or new checkpoint");
		if (checkpoint_verify(on, strlen(on), pub, origin, &oc, ret_err) < 0 ||
		    checkpoint_verify(nn, strlen(nn), pub, origin, &nc, ret_err) < 0)
			return -EBADMSG;
		if (oc.size == nc.size && memcmp(oc.root, nc.root, SHA256_LEN) != 0)
			FAIL(-EBADMSG,
			     "two checkpoints of one size with different roots, both signed by the node key: proof of a lying log");
		if (merkle_verify_consistency(oc.size, nc.size, oc.root, nc.root, proof, n) < 0)
			FAIL(-EBADMSG,
			     "the consistency proof does not hold between the two checkpoints");
		if (asprintf(
			    ret_summary,
			    "the log of node %s at size %llu extends its log at size %llu (append-only)",
			    node, (unsigned long long)nc.size, (unsigned long long)oc.size) < 0)
			return -ENOMEM;
		return 0;
	}
	FAIL(-EINVAL, "unknown proof type");
}
