/* blobs.h -- content-addressed blob store on disk (images, inputs, results) with retention. */
#ifndef AICN_COORD_BLOBS_H
#define AICN_COORD_BLOBS_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Files live at DIR/sha256/<hex>; uploads go to DIR/tmp and are renamed into
 * place only after their size and digest were verified and the data fsync'd.
 * Metadata (owner, kind, expiry) is in the store's blobs table.  A result blob
 * is deleted once fetched (after result_grace); every blob after its retention,
 * unless an unfinished task uses it as its image.
 */

#define BLOB_MAX_SIZE (8ULL << 30) /* largest accepted blob, bytes */

struct blobs;
struct blob_upload;

int blobs_open(const char *dir, struct store *st, struct blobs **ret);
struct blobs *blobs_free(struct blobs *b);

/* Whether DIGEST ("sha256:<hex>") is stored (row and file).  1, 0 or <0. */
int blobs_has(struct blobs *b, const char *digest);

/*
 * Chunked upload of a blob with known digest and size.  -EEXIST if already
 * stored (nothing to send), -EFBIG beyond BLOB_MAX_SIZE, -EINVAL on a bad digest.
 */
int blobs_upload_begin(struct blobs *b, const char *digest, uint64_t size,
		       struct blob_upload **ret);
/* -EFBIG if more than the announced size arrives. */
int blobs_upload_write(struct blob_upload *u, const void *data, size_t len);
/* Verify size and digest (-EBADMSG on mismatch), publish, record.  Frees u in all cases. */
int blobs_upload_finish(struct blobs *b, struct blob_upload *u, int64_t owner, enum blob_kind kind,
			int64_t now, int64_t retention);
struct blob_upload *blobs_upload_abort(struct blob_upload *u);

/* One-shot store of a buffer; ret_digest gets "sha256:<hex>". */
int blobs_put(struct blobs *b, const void *data, size_t len, int64_t owner, enum blob_kind kind,
	      int64_t now, int64_t retention, char ret_digest[80]);

/* Open for reading (O_CLOEXEC); size in ret_size. */
int blobs_open_read(struct blobs *b, const char *digest, int *ret_fd, uint64_t *ret_size);
/* The renter fetched it: a result blob then expires after grace seconds. */
int blobs_fetched(struct blobs *b, const char *digest, int64_t now, int64_t grace);
/* Delete expired blobs (files and rows); ret_deleted counts them. */
int blobs_gc(struct blobs *b, int64_t now, unsigned *ret_deleted);

#endif /* AICN_COORD_BLOBS_H */
