/* tarball.h -- aicnctl's tar work: deterministic OCI image archives (from a rootfs or a layout) and safe result extraction. */
#ifndef AICN_CLI_TARBALL_H
#define AICN_CLI_TARBALL_H

#include <stddef.h>

/* What goes into the image config besides the layer. */
struct image_config {
	const char *const *cmd; /* Cmd, NULL-terminated; NULL = none */
	const char *const *env; /* "K=V", NULL-terminated; PATH is added when missing */
	const char *workdir;	/* WorkingDir; NULL = none */
	const char *tag;	/* org.opencontainers.image.ref.name (default "latest") */
	int keep_owners;	/* 1: keep numeric uid/gid; 0: everything owned by 0:0 */
};

/* What a build did. */
struct image_stats {
	char manifest_digest[72]; /* "sha256:<hex>" of the manifest */
	char layer_digest[72];	  /* of the gzip layer */
	unsigned long long files, dirs, symlinks, hardlinks;
	unsigned long long skipped; /* devices, fifos and sockets left out */
	char first_skipped[256];    /* one of them, for the warning */
	unsigned long long layer_bytes, archive_bytes;
};

#define IMAGE_ERR_LEN 512

/*
 * Write an OCI image archive (a tar of an OCI image layout: oci-layout,
 * index.json, blobs/sha256/<hex> for the manifest, the config and one
 * tar+gzip layer) holding the directory ROOTFS.  The output is deterministic:
 * entries sorted by name, every time set to SOURCE_DATE_EPOCH (or 0), owners
 * 0:0 unless keep_owners, no gzip timestamp, so one tree gives one digest.
 * Written to OUT.tmp.PID first and renamed.  On error err says why.
 */
int image_build_rootfs(const char *rootfs, const struct image_config *cfg, const char *out,
		       struct image_stats *ret_stats, char *err);

/* Pack an OCI image layout directory into a deterministic tar archive at OUT. */
int image_pack_layout(const char *layout, const char *out, char *err);

/*
 * Check a result tar before extracting it and extract it into the directory
 * DIRFD: only regular files, directories and symlinks with relative names
 * without "..", at most max_entries members and max_bytes of data; symlinks are
 * created but never followed (every file is opened beneath DIRFD without
 * crossing a symlink); set-id bits are dropped.  -EPERM with err naming the
 * member for anything unsafe; nothing is extracted then.
 */
int image_extract_result(const char *tar, int dirfd, unsigned long long max_entries,
			 unsigned long long max_bytes, char *err);

/*
 * Read the regular member NAME of the tar archive TAR into buf (at most max
 * bytes; the rest is cut), NUL-terminated.  -ENOENT when there is none.
 */
int image_result_member(const char *tar, const char *name, char *buf, size_t max, size_t *ret_len);

#endif /* AICN_CLI_TARBALL_H */
