/* cmd_image.c -- `aicnctl image build-from-rootfs`: an OCI image archive from a plain directory, no container tooling needed. */
#include "client.h"
#include "cmd.h"
#include "opt.h"
#include "tarball.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <string.h>

int cmd_image(int argc, char **argv);

static const char image_desc[] =
	"Commands:\n"
	"  build-from-rootfs DIR -o FILE.tar   make an OCI image archive from the directory DIR\n"
	"\n"
	"Run 'aicnctl image build-from-rootfs --help' for its options.";

static const struct opt_cmd image_cmd = {
	"aicnctl image",
	"build-from-rootfs DIR -o FILE.tar [OPTIONS] [-- CMD [ARG...]]",
	"Build container images for aicn tasks without Docker, Podman or umoci.",
	NULL,
	NULL,
	0,
	-1,
	0,
	"Exit status: 0 success, 1 failure, 2 usage error."};

static int build(int argc, char **argv)
{
	const char *out = NULL, *workdir = NULL, *tag = NULL;
	struct opt_list cmdw = {0}, env = {0};
	int keep = 0, json = 0, rc = EXIT_FAIL;
	const struct opt opts[] = {
		{"output", 'o', OPT_STR, &out, "FILE.tar", "write the archive here (required)", 0,
		 0},
		{"cmd", 0, OPT_LIST, &cmdw, "WORD",
		 "one word of the default command (repeat for each\nword); or give the command after "
		 "'--'",
		 0, 0},
		{"env", 'e', OPT_LIST, &env, "K=V",
		 "an environment variable of the image (repeatable);\nPATH defaults to the usual "
		 "/usr/local/sbin:...:/bin",
		 0, 0},
		{"workdir", 'w', OPT_STR, &workdir, "DIR", "the working directory of the command",
		 0, 0},
		{"tag", 't', OPT_STR, &tag, "NAME",
		 "the reference name in index.json (default latest)", 0, 0},
		{"keep-owners", 0, OPT_FLAG, &keep, NULL,
		 "keep the files' numeric owners (default: all root)", 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL, "print the result as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl image build-from-rootfs",
		"DIR -o FILE.tar [--cmd WORD]... [--env K=V]... [--workdir DIR] [-- CMD [ARG...]]",
		"Pack the directory DIR (a root filesystem: for example busybox-static copied into\n"
		"DIR/bin with its applet links) into an OCI image archive that aicnctl submit can\n"
		"upload and every aicn agent can run.  The archive is an OCI image layout in a tar:\n"
		"oci-layout, index.json, and under blobs/sha256/ the manifest, the config and one\n"
		"tar+gzip layer, each named by its SHA-256.  Skopeo reads it as oci-archive:FILE.tar;\n"
		"unpacked with tar, umoci reads it as an OCI layout.\n"
		"\n"
		"The output is reproducible: entries are sorted, every timestamp is\n"
		"SOURCE_DATE_EPOCH (or 0), owners are 0:0 unless --keep-owners, the gzip header has\n"
		"no time, so the same tree always gives the same manifest digest.  Symbolic and hard\n"
		"links are kept; devices, fifos and sockets are left out with a warning.",
		opts,
		NULL,
		1,
		1,
		1,
		"Exit status: 0 success, 1 failure, 2 usage error."};
	struct opt_args a = {0};
	struct image_config cfg = {0};
	struct image_stats st;
	_cleanup_free_ const char **words = NULL, **envv = NULL;
	char err[IMAGE_ERR_LEN];
	int r, nw;

	r = opt_parse(&cmd, argc, argv, &a);
	if (r)
		goto out_parse;
	if (!out) {
		rc = opt_fail(&cmd, "-o FILE.tar is required");
		goto out;
	}
	if (cmdw.n && a.nrest) {
		rc = opt_fail(&cmd, "give the command either with --cmd or after '--', not both");
		goto out;
	}
	for (int i = 0; i < env.n; i++)
		if (!strchr(env.v[i], '=') || env.v[i][0] == '=') {
			rc = opt_fail(&cmd, "--env: '%s' is not K=V", env.v[i]);
			goto out;
		}
	nw = cmdw.n ? cmdw.n : a.nrest;
	words = calloc((size_t)nw + 1, sizeof(*words));
	envv = calloc((size_t)env.n + 1, sizeof(*envv));
	if (!words || !envv)
		goto out;
	for (int i = 0; i < nw; i++)
		words[i] = cmdw.n ? cmdw.v[i] : a.rest[i];
	for (int i = 0; i < env.n; i++)
		envv[i] = env.v[i];
	cfg.cmd = nw ? words : NULL;
	cfg.env = envv;
	cfg.workdir = workdir;
	cfg.tag = tag;
	cfg.keep_owners = keep;
	r = image_build_rootfs(a.pos[0], &cfg, out, &st, err);
	if (r < 0) {
		fprintf(stderr, "aicnctl image build-from-rootfs: %s\n",
			err[0] ? err : strerror(-r));
		goto out;
	}
	if (st.skipped)
		fprintf(stderr,
			"aicnctl image build-from-rootfs: warning: left out %llu device, fifo or "
			"socket file(s), e.g. %s\n",
			st.skipped, st.first_skipped);
	if (json) {
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddStringToObject(o, "archive", out) ||
		    canon_add_u64(o, "archive_bytes", st.archive_bytes) < 0 ||
		    canon_add_u64(o, "dirs", st.dirs) < 0 ||
		    canon_add_u64(o, "files", st.files) < 0 ||
		    canon_add_u64(o, "hardlinks", st.hardlinks) < 0 ||
		    !cJSON_AddStringToObject(o, "layer", st.layer_digest) ||
		    canon_add_u64(o, "layer_bytes", st.layer_bytes) < 0 ||
		    !cJSON_AddStringToObject(o, "manifest", st.manifest_digest) ||
		    canon_add_u64(o, "skipped", st.skipped) < 0 ||
		    canon_add_u64(o, "symlinks", st.symlinks) < 0) {
			cJSON_Delete(o);
			goto out;
		}
		rc = client_print_json(o);
		cJSON_Delete(o);
		goto out;
	}
	printf("%s: OCI image %s\n  %llu files, %llu directories, %llu symlinks, %llu hard "
	       "links; layer %llu bytes gzip, archive %llu bytes\n",
	       out, st.manifest_digest, st.files, st.dirs, st.symlinks, st.hardlinks,
	       st.layer_bytes, st.archive_bytes);
	rc = EXIT_OK;
	goto out;
out_parse:
	rc = r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
out:
	opt_args_done(&a);
	opt_list_free(&cmdw);
	opt_list_free(&env);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2) {
		opt_usage(&image_cmd, stderr);
		fprintf(stderr, "\n%s\n", image_desc);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		opt_usage(&image_cmd, stdout);
		printf("\n%s\n", image_desc);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "build-from-rootfs") == 0)
		return build(argc - 1, argv + 1);
	fprintf(stderr, "aicnctl image: unknown subcommand '%s' (build-from-rootfs)\n", argv[1]);
	return EXIT_USAGE;
}
