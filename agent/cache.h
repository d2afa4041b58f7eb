/* cache.h -- image cache accounting: sizes by digest, LRU eviction within image_cache_size, index on disk. */
#ifndef AICN_AGENT_CACHE_H
#define AICN_AGENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_INDEX_FILE "image-cache.index"
#define CACHE_MAX_ENTRIES 4096
#define CACHE_DIGEST_LEN 71 /* "sha256:" + 64 hex */

struct cache;

/*
 * Called for each image the cache evicts, before it leaves the index: delete the
 * unpacked image.  A negative return stops the eviction; the entry stays.
 */
typedef int (*cache_evict_fn)(const char *digest, void *userdata);

/* Open (or start) the index in directory DIR with CAPACITY bytes; a damaged index is -EBADMSG. */
int cache_open(const char *dir, uint64_t capacity, struct cache **ret_cache);
struct cache *cache_free(struct cache *cache);
/* Check an index's text without opening a cache: how many images, how many bytes. */
int cache_index_check(const char *text, size_t len, size_t *ret_count, uint64_t *ret_used);

/* A hit: returns 0, the size, and marks the image most recently used; -ENOENT otherwise. */
int cache_lookup(struct cache *cache, const char *digest, uint64_t *ret_size);
/*
 * Account a new image of SIZE bytes (before unpacking it, so the space is there):
 * evicts least recently used, unpinned images through FN until it fits.  Nothing
 * is evicted unless that makes room: -ENOSPC when pinned images leave too little,
 * -EFBIG when SIZE exceeds the whole capacity, -EEXIST if already there.
 */
int cache_insert(struct cache *cache, const char *digest, uint64_t size, cache_evict_fn fn,
		 void *userdata);
/* Forget an image (its unpacking failed, or it was deleted by hand); -EBUSY while pinned. */
int cache_remove(struct cache *cache, const char *digest);
/* A running task uses the image: never evicted while pinned (pins are counted, not persisted). */
int cache_pin(struct cache *cache, const char *digest);
int cache_unpin(struct cache *cache, const char *digest);
/* Change the capacity (config reload); evicts down to it, -ENOSPC if pins prevent it. */
int cache_set_capacity(struct cache *cache, uint64_t capacity, cache_evict_fn fn, void *userdata);

uint64_t cache_used(const struct cache *cache);
uint64_t cache_capacity(const struct cache *cache);
size_t cache_count(const struct cache *cache);
/* The Nth image from least to most recently used, NULL past the end. */
const char *cache_nth(const struct cache *cache, size_t n);

#endif /* AICN_AGENT_CACHE_H */
