/* result.h -- the result blob of a task: a deterministic POSIX tar of exit_code, stdout, stderr and out/. */
#ifndef AICN_AGENT_RESULT_H
#define AICN_AGENT_RESULT_H

#include <aicn/hash.h>

#include <stddef.h>
#include <stdint.h>

#define RESULT_STREAM_MAX (1024 * 1024) /* last bytes of stdout and of stderr kept */
#define RESULT_OUT_MAX (256ULL << 20)	/* bytes of out/ files kept; later files are left out */
#define RESULT_OUT_ENTRIES_MAX 100000	/* entries of out/ kept */
#define RESULT_OUT_DEPTH_MAX 32		/* directory depth below out/ */
#define RESULT_WHY_MAX 256

struct result_info {
	uint8_t digest[SHA256_LEN]; /* SHA-256 of the archive: the record's "result" */
	uint64_t size;		    /* bytes of the archive */
	uint64_t out_files;	    /* files and links of out/ in it */
	uint64_t out_bytes;	    /* their bytes */
	uint64_t out_skipped;	    /* entries left out (limits, sockets, devices, fifos) */
};

/*
 * Build the result archive of a task into OUT_PATH (replaced atomically):
 * "exit_code" (decimal and a newline), "stdout" and "stderr" (the last
 * RESULT_STREAM_MAX bytes of the files of those names in TASK_DIRFD), and
 * "out/..." (everything the task wrote under WORK_REL/out: regular files,
 * directories and symbolic links as links — nothing is ever followed).  Entries
 * are sorted, owned by 0:0 with mtime 0 and modes 0644/0755, so the same output
 * gives the same digest.  WORK_REL may be NULL (no out/).
 */
int result_build(int task_dirfd, const char *work_rel, int exit_code, const char *out_path,
		 struct result_info *ret_info, char *why, size_t whylen);

#endif /* AICN_AGENT_RESULT_H */
