/* oci.c -- strict parsers for OCI image index, manifest and config JSON (outside bytes). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/utsname.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

int sbx_fail(struct sbx_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

char **strv_free(char **v)
{
	if (v) {
		for (char **p = v; *p; p++)
			free(*p);
		free(v);
	}
	return NULL;
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static const struct {
	const char *type;
	enum oci_kind kind;
} media_types[] = {
	{"application/vnd.oci.image.index.v1+json", OCI_KIND_INDEX},
	{"application/vnd.docker.distribution.manifest.list.v2+json", OCI_KIND_INDEX},
	{"application/vnd.oci.image.manifest.v1+json", OCI_KIND_MANIFEST},
	{"application/vnd.docker.distribution.manifest.v2+json", OCI_KIND_MANIFEST},
	{"application/vnd.oci.image.config.v1+json", OCI_KIND_CONFIG},
	{"application/vnd.docker.container.image.v1+json", OCI_KIND_CONFIG},
	{"application/vnd.oci.image.layer.v1.tar", OCI_KIND_LAYER_TAR},
	{"application/vnd.oci.image.layer.v1.tar+gzip", OCI_KIND_LAYER_GZIP},
	{"application/vnd.oci.image.layer.v1.tar+zstd", OCI_KIND_LAYER_ZSTD},
	{"application/vnd.oci.image.layer.nondistributable.v1.tar", OCI_KIND_LAYER_TAR},
	{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", OCI_KIND_LAYER_GZIP},
	{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", OCI_KIND_LAYER_ZSTD},
	{"application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_KIND_LAYER_GZIP},
	{"application/vnd.docker.image.rootfs.diff.tar", OCI_KIND_LAYER_TAR},
};

static enum oci_kind media_kind(const char *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (strcmp(t, media_types[i].type) == 0)
			return media_types[i].kind;
	return OCI_KIND_OTHER;
}

/* Copy a JSON string member into a fixed buffer; absent is "" , wrong type or too long -EINVAL. */
static int get_str(const cJSON *obj, const char *key, char *buf, size_t size, int required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	buf[0] = '\0';
	if (!v)
		return required ? -ENOENT : 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
		return -EINVAL;
	strcpy(buf, v->valuestring);
	return 0;
}

static int parse_desc(const cJSON *j, struct oci_desc *d, struct sbx_err *err)
{
	const cJSON *size, *plat, *ann;
	int r;

	memset(d, 0, sizeof(*d));
	if (!cJSON_IsObject(j))
		return sbx_fail(err, -EINVAL, "descriptor is not an object");
	r = get_str(j, "mediaType", d->media_type, sizeof(d->media_type), 1);
	if (r < 0)
		return sbx_fail(err, -EINVAL, "descriptor without a valid mediaType");
	d->kind = media_kind(d->media_type);
	r = get_str(j, "digest", d->digest_str, sizeof(d->digest_str), 1);
	if (r < 0 || digest_parse(d->digest_str, d->digest) < 0)
		return sbx_fail(err, -EINVAL, "descriptor digest is not sha256:<64 hex>");
	size = cJSON_GetObjectItemCaseSensitive(j, "size");
	if (!cJSON_IsNumber(size) || size->valuedouble < 0 ||
	    size->valuedouble > (double)(1LL << 50) ||
	    size->valuedouble != (double)(int64_t)size->valuedouble)
		return sbx_fail(err, -EINVAL, "descriptor %s has no valid size", d->digest_str);
	d->size = (int64_t)size->valuedouble;
	plat = cJSON_GetObjectItemCaseSensitive(j, "platform");
	if (plat) {
		if (!cJSON_IsObject(plat) || get_str(plat, "os", d->os, sizeof(d->os), 1) < 0 ||
		    get_str(plat, "architecture", d->arch, sizeof(d->arch), 1) < 0 ||
		    get_str(plat, "variant", d->variant, sizeof(d->variant), 0) < 0)
			return sbx_fail(err, -EINVAL, "descriptor %s has a malformed platform",
					d->digest_str);
		d->has_platform = 1;
	}
	ann = cJSON_GetObjectItemCaseSensitive(j, "annotations");
	if (ann) {
		if (!cJSON_IsObject(ann))
			return sbx_fail(err, -EINVAL, "descriptor annotations are not an object");
		/* an overlong name is ignored rather than fatal: it cannot be selected anyway */
		if (get_str(ann, "org.opencontainers.image.ref.name", d->ref_name,
			    sizeof(d->ref_name), 0) < 0)
			d->ref_name[0] = '\0';
	}
	return 0;
}

static int parse_json(const char *buf, size_t len, cJSON **ret, const char *what,
		      struct sbx_err *err)
{
	cJSON *j;

	if (len > OCI_JSON_MAX)
		return sbx_fail(err, -EFBIG, "%s is larger than %u bytes", what, OCI_JSON_MAX);
	j = cJSON_ParseWithLength(buf, len);
	if (!j)
		return sbx_fail(err, -EINVAL, "%s is not valid JSON", what);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return sbx_fail(err, -EINVAL, "%s is not a JSON object", what);
	}
	*ret = j;
	return 0;
}

static int check_schema(const cJSON *j, const char *what, struct sbx_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "schemaVersion");

	if (!cJSON_IsNumber(v) || v->valuedouble != 2)
		return sbx_fail(err, -EINVAL, "%s has no schemaVersion 2", what);
	return 0;
}

struct oci_index *oci_index_free(struct oci_index *idx)
{
	if (idx) {
		free(idx->manifests);
		free(idx);
	}
	return NULL;
}

int oci_index_parse(const char *buf, size_t len, struct oci_index **ret_idx, struct sbx_err *err)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	struct oci_index *idx;
	const cJSON *arr, *it;
	char mt[128];
	int r, n;

	r = parse_json(buf, len, &j, "image index", err);
	if (r < 0)
		return r;
	r = check_schema(j, "image index", err);
	if (r < 0)
		return r;
	if (get_str(j, "mediaType", mt, sizeof(mt), 0) < 0 ||
	    (mt[0] && media_kind(mt) != OCI_KIND_INDEX))
		return sbx_fail(err, -EINVAL, "image index has mediaType \"%s\"", mt);
	arr = cJSON_GetObjectItemCaseSensitive(j, "manifests");
	if (!cJSON_IsArray(arr))
		return sbx_fail(err, -EINVAL, "image index has no manifests array");
	n = cJSON_GetArraySize(arr);
	if (n > OCI_MAX_MANIFESTS)
		return sbx_fail(err, -E2BIG, "image index lists more than %d manifests",
				OCI_MAX_MANIFESTS);
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->manifests = calloc(n ? n : 1, sizeof(*idx->manifests));
	if (!idx->manifests) {
		oci_index_free(idx);
		return -ENOMEM;
	}
	cJSON_ArrayForEach (it, arr) {
		r = parse_desc(it, &idx->manifests[idx->n], err);
		if (r < 0) {
			oci_index_free(idx);
			return r;
		}
		idx->n++;
	}
	*ret_idx = idx;
	return 0;
}

struct oci_manifest *oci_manifest_free(struct oci_manifest *m)
{
	if (m) {
		free(m->layers);
		free(m);
	}
	return NULL;
}

int oci_manifest_parse(const char *buf, size_t len, struct oci_manifest **ret_m,
		       struct sbx_err *err)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	struct oci_manifest *m;
	const cJSON *arr, *it;
	char mt[128];
	int r, n;

	r = parse_json(buf, len, &j, "image manifest", err);
	if (r < 0)
		return r;
	r = check_schema(j, "image manifest", err);
	if (r < 0)
		return r;
	if (get_str(j, "mediaType", mt, sizeof(mt), 0) < 0 ||
	    (mt[0] && media_kind(mt) != OCI_KIND_MANIFEST))
		return sbx_fail(err, -EINVAL, "image manifest has mediaType \"%s\"", mt);
	arr = cJSON_GetObjectItemCaseSensitive(j, "layers");
	if (!cJSON_IsArray(arr))
		return sbx_fail(err, -EINVAL, "image manifest has no layers array");
	n = cJSON_GetArraySize(arr);
	if (n > OCI_MAX_LAYERS)
		return sbx_fail(err, -E2BIG, "image manifest has more than %d layers",
				OCI_MAX_LAYERS);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->layers = calloc(n ? n : 1, sizeof(*m->layers));
	if (!m->layers) {
		oci_manifest_free(m);
		return -ENOMEM;
	}
	r = parse_desc(cJSON_GetObjectItemCaseSensitive(j, "config"), &m->config, err);
	if (r < 0)
		goto fail;
	if (m->config.kind != OCI_KIND_CONFIG) {
		r = sbx_fail(err, -EINVAL, "manifest config has mediaType \"%s\"",
			     m->config.media_type);
		goto fail;
	}
	cJSON_ArrayForEach (it, arr) {
		struct oci_desc *d = &m->layers[m->n_layers];

		r = parse_desc(it, d, err);
		if (r < 0)
			goto fail;
		if (d->kind != OCI_KIND_LAYER_TAR && d->kind != OCI_KIND_LAYER_GZIP &&
		    d->kind != OCI_KIND_LAYER_ZSTD) {
			r = sbx_fail(err, -EOPNOTSUPP, "layer %s has unsupported mediaType \"%s\"",
				     d->digest_str, d->media_type);
			goto fail;
		}
		m->n_layers++;
	}
	*ret_m = m;
	return 0;
fail:
	oci_manifest_free(m);
	return r;
}

/* A JSON array of strings (or null/absent -> NULL) into a NULL-terminated vector. */
static int get_strv(const cJSON *obj, const char *key, char ***ret, struct sbx_err *err)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key), *it;
	char **v;
	size_t n = 0;
	int count;

	*ret = NULL;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		return sbx_fail(err, -EINVAL, "config %s is not an array", key);
	count = cJSON_GetArraySize(arr);
	if (count > OCI_MAX_STRV)
		return sbx_fail(err, -E2BIG, "config %s has too many entries", key);
	v = calloc((size_t)count + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach (it, arr) {
		if (!cJSON_IsString(it)) {
			strv_free(v);
			return sbx_fail(err, -EINVAL, "config %s has a non-string entry", key);
		}
		v[n] = strdup(it->valuestring);
		if (!v[n++]) {
			strv_free(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	return 0;
}

static int get_strdup(const cJSON *obj, const char *key, char **ret, struct sbx_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*ret = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) > 4096)
		return sbx_fail(err, -EINVAL, "config %s is not a string", key);
	if (!v->valuestring[0])
		return 0;
	*ret = strdup(v->valuestring);
	return *ret ? 0 : -ENOMEM;
}

struct oci_config *oci_config_free(struct oci_config *c)
{
	if (c) {
		strv_free(c->entrypoint);
		strv_free(c->cmd);
		strv_free(c->env);
		free(c->workdir);
		free(c->user);
		free(c);
	}
	return NULL;
}

int oci_config_parse(const char *buf, size_t len, struct oci_config **ret_c, struct sbx_err *err)
{
	_cleanup_(cJSON_Deletep) cJSON *j = NULL;
	struct oci_config *c;
	const cJSON *cfg;
	int r;

	r = parse_json(buf, len, &j, "image config", err);
	if (r < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (get_str(j, "os", c->os, sizeof(c->os), 0) < 0 ||
	    get_str(j, "architecture", c->arch, sizeof(c->arch), 0) < 0) {
		r = sbx_fail(err, -EINVAL, "image config has a malformed os or architecture");
		goto fail;
	}
	cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
	if (cfg && !cJSON_IsNull(cfg)) {
		if (!cJSON_IsObject(cfg)) {
			r = sbx_fail(err, -EINVAL, "image config's config is not an object");
			goto fail;
		}
		if ((r = get_strv(cfg, "Entrypoint", &c->entrypoint, err)) < 0 ||
		    (r = get_strv(cfg, "Cmd", &c->cmd, err)) < 0 ||
		    (r = get_strv(cfg, "Env", &c->env, err)) < 0 ||
		    (r = get_strdup(cfg, "WorkingDir", &c->workdir, err)) < 0 ||
		    (r = get_strdup(cfg, "User", &c->user, err)) < 0)
			goto fail;
		for (size_t i = 0; c->env && c->env[i]; i++)
			if (!strchr(c->env[i], '=')) {
				r = sbx_fail(err, -EINVAL, "config Env entry without '='");
				goto fail;
			}
	}
	*ret_c = c;
	return 0;
fail:
	oci_config_free(c);
	return r;
}

const char *oci_host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#else
	return "unknown";
#endif
}

int oci_platform_matches(const struct oci_desc *d)
{
	if (!d->has_platform)
		return 1;
	return strcmp(d->os, "linux") == 0 && strcmp(d->arch, oci_host_arch()) == 0;
}
