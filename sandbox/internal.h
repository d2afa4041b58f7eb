/* internal.h -- declarations shared by the files of libaicn-sandbox (not a public API). */
#ifndef AICN_SANDBOX_INTERNAL_H
#define AICN_SANDBOX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/sandbox.h>

/* Record a reason (printf style) unless err is NULL; returns code for `return sbx_fail(...)`. */
int sbx_fail(struct sbx_err *err, int code, const char *fmt, ...) _printf_(3, 4);

#define OCI_JSON_MAX (4u << 20) /* index, manifest and config blobs */
#define OCI_MAX_MANIFESTS 1024	/* descriptors in one index */
#define OCI_MAX_LAYERS 256	/* layers in one manifest */
#define OCI_MAX_INDEX_DEPTH 8	/* nested indexes followed */
#define OCI_MAX_STRV 8192	/* Env / Cmd / Entrypoint entries */

enum oci_kind {
	OCI_KIND_OTHER,
	OCI_KIND_INDEX,
	OCI_KIND_MANIFEST,
	OCI_KIND_CONFIG,
	OCI_KIND_LAYER_TAR,
	OCI_KIND_LAYER_GZIP,
	OCI_KIND_LAYER_ZSTD,
};

/* One content descriptor (index entry, manifest config or layer). */
struct oci_desc {
	enum oci_kind kind;		     /* from mediaType */
	char media_type[128];		     /* as written */
	uint8_t digest[SHA256_LEN];	     /* sha256 */
	char digest_str[8 + SHA256_HEX_LEN]; /* "sha256:<hex>" */
	int64_t size;			     /* bytes */
	int has_platform;		     /* platform object present */
	char os[32];			     /* platform.os */
	char arch[32];			     /* platform.architecture */
	char variant[32];		     /* platform.variant */
	char ref_name[128];		     /* annotations org.opencontainers.image.ref.name */
};

struct oci_index {
	struct oci_desc *manifests; /* descriptors in order */
	size_t n;		    /* how many */
};

struct oci_manifest {
	struct oci_desc config;	 /* the config blob */
	struct oci_desc *layers; /* in application order */
	size_t n_layers;
};

struct oci_config {
	char **entrypoint; /* NULL-terminated or NULL */
	char **cmd;
	char **env;
	char *workdir;
	char *user;
	char os[32];
	char arch[32];
};

/* Strict parsers of outside bytes (fuzzed); buf need not be NUL-terminated. */
int oci_index_parse(const char *buf, size_t len, struct oci_index **ret_idx, struct sbx_err *err);
struct oci_index *oci_index_free(struct oci_index *idx);
int oci_manifest_parse(const char *buf, size_t len, struct oci_manifest **ret_m,
		       struct sbx_err *err);
struct oci_manifest *oci_manifest_free(struct oci_manifest *m);
int oci_config_parse(const char *buf, size_t len, struct oci_config **ret_c, struct sbx_err *err);
struct oci_config *oci_config_free(struct oci_config *c);
/* The platform this build runs: "amd64", "arm64", ... */
const char *oci_host_arch(void);
/* 1 if the descriptor names our platform (or names none), else 0. */
int oci_platform_matches(const struct oci_desc *d);

char **strv_free(char **v);
size_t strv_len(char *const *v);

/*
 * libarchive (archive_dl.c), loaded with dlopen on first use so that running a cached
 * image maps neither it nor its dependencies (libxml2, ICU, libstdc++, ...).  Call
 * sbx_archive_load() first; then sbx_la.archive_read_new() etc.
 */
#include <archive.h>
#include <archive_entry.h>

#define SBX_ARCHIVE_FUNCS(X)                                                                       \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_size)                                                                      \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_uid)                                                                       \
	X(archive_error_string)                                                                    \
	X(archive_read_data_block)                                                                 \
	X(archive_read_free)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_next_header)                                                                \
	X(archive_read_open)                                                                       \
	X(archive_read_open_filename)                                                              \
	X(archive_read_support_filter_gzip)                                                        \
	X(archive_read_support_filter_none)                                                        \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_tar)

struct sbx_archive_api {
#define SBX_LA_FIELD(f) __typeof__(&f) f;
	SBX_ARCHIVE_FUNCS(SBX_LA_FIELD)
#undef SBX_LA_FIELD
};
/* Filled once by sbx_archive_load(), read-only afterwards. */
extern struct sbx_archive_api sbx_la;
/* Load libarchive once per process; 0, or an error saying it is missing. */
int sbx_archive_load(struct sbx_err *err);

/*
 * dlopen soname (never closed: its functions stay valid for the life of the process)
 * and resolve names[i] into *slots[i]; 0, or -ELIBACC (not loadable) or -ELIBBAD (a
 * function missing) with why saying what went wrong.
 */
int sbx_dl_load(const char *soname, const char *const *names, void **const *slots, size_t n,
		char *why, size_t why_len);

/*
 * SHA-256 of blobs (sha_dl.c) through libcrypto loaded with dlopen on first use, so that
 * running a cached image does not map libcrypto (lib/hash.c links it).  Destructors
 * accept NULL.
 */
struct sbx_sha256;
int sbx_sha256_new(struct sbx_sha256 **ret_ctx, struct sbx_err *err);
void sbx_sha256_update(struct sbx_sha256 *ctx, const void *data, size_t len);
void sbx_sha256_final(struct sbx_sha256 *ctx, uint8_t out[SHA256_LEN]);
struct sbx_sha256 *sbx_sha256_free(struct sbx_sha256 *ctx);
int sbx_sha256_buf(const void *data, size_t len, uint8_t out[SHA256_LEN], struct sbx_err *err);

/* Layer application (unpack.c): apply one tar stream read from fd onto rootfs_fd. */
int unpack_layer(int rootfs_fd, int blob_fd, const struct oci_desc *d, struct sbx_err *err);

/* Remove NAME under dirfd recursively, never following symlinks; missing is fine. */
int sbx_rm_rf_at(int dirfd, const char *name);
/* openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (| RESOLVE_NO_XDEV); negative errno. */
int sbx_open_beneath(int dirfd, const char *path, int flags);
/* The same with RESOLVE_IN_ROOT: absolute symlinks resolve inside dirfd (a rootfs). */
int sbx_open_in_root(int dirfd, const char *path, int flags);
/* Ensure the directories the sandbox mounts on exist in a rootfs (proc, dev, tmp, work). */
int sbx_rootfs_mountpoints(int rootfs_fd, uid_t owner, struct sbx_err *err);

/*
 * Namespaces made ahead (prens.c): bring lo up in ours.  sbx_ns_channel gives the
 * socket the set-up child inherits (or -errno); there sbx_ns_recv waits for the
 * thread's message: 0 and the namespaces' fds (close-on-exec), or the thread's
 * negative errno with ret_msg->what naming the failed step (-EPROTO: no message, or
 * not the fds expected; any that came are closed).  sbx_ns_recv makes system calls
 * only: it runs in the set-up child.
 */
enum sbx_ns_kind {
	SBX_NS_NET,
	SBX_NS_IPC,
	SBX_NS_USER,
	SBX_NS_N
};
struct sbx_ns_msg {
	int err;	/* 0, or negative errno of the failed step */
	char what[120]; /* the failed step */
};
int sbx_loopback_up(void);
int sbx_ns_channel(const struct sbx_ns *ns, uint32_t id_base, struct sbx_err *err);
int sbx_ns_recv(int sock, int ret_fds[SBX_NS_N], struct sbx_ns_msg *ret_msg);

/* Seccomp (seccomp.c): the compiled filter, valid after sbx_seccomp_prepare(). */
struct sock_fprog;
const struct sock_fprog *sbx_seccomp_prog(void);

#endif /* AICN_SANDBOX_INTERNAL_H */
