/* test_sbx_oci.c -- the OCI index, manifest and config parsers accept real documents and refuse malformed ones. */
#include "harness.h"

#include "../../sandbox/internal.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MT_M "application/vnd.oci.image.manifest.v1+json"
#define MT_I "application/vnd.oci.image.index.v1+json"

static int parse_index(const char *s, struct sbx_err *err)
{
	struct oci_index *idx = NULL;
	int r = oci_index_parse(s, strlen(s), &idx, err);

	oci_index_free(idx);
	return r;
}

static void test_index(void)
{
	const char *ok =
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"sha256:" D64 "\",\"size\":12,\"platform\":{\"os\":\"linux\","
		"\"architecture\":\"arm64\",\"variant\":\"v8\"}},{\"mediaType\":\"" MT_I
		"\",\"digest\":\"sha256:" D64 "\",\"size\":3}]}";
	struct oci_index *idx = NULL;
	struct sbx_err err;

	CHECK_EQ(oci_index_parse(ok, strlen(ok), &idx, &err), 0);
	CHECK_EQ(idx->n, 2);
	CHECK_EQ(idx->manifests[0].kind, OCI_KIND_MANIFEST);
	CHECK_STREQ(idx->manifests[0].arch, "arm64");
	CHECK_EQ(idx->manifests[0].size, 12);
	CHECK_EQ(idx->manifests[1].kind, OCI_KIND_INDEX);
	CHECK(!idx->manifests[1].has_platform);
	CHECK(oci_platform_matches(&idx->manifests[1]));
	oci_index_free(idx);
}

static void test_index_bad(void)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"schemaVersion\":1,\"manifests\":[]}",
		"{\"schemaVersion\":2}",
		"{\"schemaVersion\":2,\"manifests\":{}}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"sha256:abc\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"md5:" D64 "\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"sha256:" D64 "\",\"size\":-1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"sha256:" D64 "\",\"size\":1.5}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" D64 "\",\"size\":1}]}",
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_M
		"\",\"digest\":\"sha256:" D64 "\",\"size\":1,\"platform\":\"linux\"}]}",
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"manifests\":[]}",
		"{\"schemaVersion\":2,\"manifests\":[]",
	};
	struct sbx_err err;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err.msg[0] = '\0';
		if (parse_index(bad[i], &err) >= 0) {
			fprintf(stderr, "accepted bad index #%zu\n", i);
			CHECK(0);
		}
		CHECK(err.msg[0]); /* always a reason */
	}
}

static void test_manifest(void)
{
	const char *ok =
		"{\"schemaVersion\":2,\"mediaType\":\"" MT_M "\",\"config\":{\"mediaType\":"
		"\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" D64
		"\",\"size\":7},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer."
		"v1.tar+zstd\",\"digest\":\"sha256:" D64 "\",\"size\":9},{\"mediaType\":"
		"\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"sha256:" D64
		"\",\"size\":10}]}";
	const char *foreign =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci."
		"image.config.v1+json\",\"digest\":\"sha256:" D64 "\",\"size\":7},"
		"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+enc"
		"\",\"digest\":\"sha256:" D64 "\",\"size\":9}]}";
	struct oci_manifest *m = NULL;
	struct sbx_err err;

	CHECK_EQ(oci_manifest_parse(ok, strlen(ok), &m, &err), 0);
	CHECK_EQ(m->n_layers, 2);
	CHECK_EQ(m->layers[0].kind, OCI_KIND_LAYER_ZSTD);
	CHECK_EQ(m->layers[1].kind, OCI_KIND_LAYER_GZIP);
	CHECK_EQ(m->config.size, 7);
	oci_manifest_free(m);
	m = NULL;
	CHECK(oci_manifest_parse(foreign, strlen(foreign), &m, &err) < 0);
	CHECK(strstr(err.msg, "unsupported mediaType"));
}

static void test_config(void)
{
	const char *ok =
		"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"app\","
		"\"Env\":[\"A=1\",\"PATH=/bin\"],\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":null,"
		"\"WorkingDir\":\"/srv\"}}";
	const char *bad_env = "{\"config\":{\"Env\":[\"NOEQUALS\"]}}";
	const char *bad_cmd = "{\"config\":{\"Cmd\":[\"ok\",3]}}";
	struct oci_config *c = NULL;
	struct sbx_err err;

	CHECK_EQ(oci_config_parse(ok, strlen(ok), &c, &err), 0);
	CHECK_STREQ(c->user, "app");
	CHECK_STREQ(c->workdir, "/srv");
	CHECK_EQ(strv_len(c->env), 2);
	CHECK_EQ(strv_len(c->entrypoint), 2);
	CHECK(c->cmd == NULL);
	oci_config_free(c);
	c = NULL;
	CHECK(oci_config_parse(bad_env, strlen(bad_env), &c, &err) < 0);
	CHECK(oci_config_parse(bad_cmd, strlen(bad_cmd), &c, &err) < 0);
	/* not NUL-terminated input is bounded by len */
	CHECK(oci_config_parse("{}xxxx", 2, &c, &err) == 0);
	oci_config_free(c);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_index), TEST(test_index_bad), TEST(test_manifest), TEST(test_config), {0},
	};

	return harness_run(cases);
}
