/* key.c -- the node's Ed25519 key on OpenSSL 3 EVP: create-on-first-use with mode 0600, load, sign, verify. */
#include <aicn/compiler.h>
#include <aicn/fileio.h>
#include <aicn/hash.h>
#include <aicn/key.h>

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define KEY_FILE_MAX (64 * 1024) /* a PEM Ed25519 key is ~120 bytes; refuse anything huge */

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX, EVP_PKEY_CTX_free)

static int is_ed25519(const EVP_PKEY *key)
{
	return key && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
}

int key_generate(EVP_PKEY **ret_key)
{
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx)
		return -ENOMEM;
	if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &key) <= 0) {
		ERR_clear_error();
		return -EIO;
	}
	*ret_key = key;
	return 0;
}

/* Read a small file fully into a NUL-terminated buffer; optionally refuse loose modes. */
static int read_small_file(const char *path, int private, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (private && (st.st_mode & 077))
		return -EPERM;
	if (st.st_size > KEY_FILE_MAX)
		return -EFBIG;
	return read_fd_all(fd, KEY_FILE_MAX - 1, ret_buf, ret_len);
}

static void wipe_free(char *buf, size_t len)
{
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
}

int key_load_private(const char *path, EVP_PKEY **ret_key)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *buf = NULL;
	size_t len = 0;
	EVP_PKEY *key;
	int r;

	r = read_small_file(path, 1, &buf, &len);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio) {
		wipe_free(buf, len);
		return -ENOMEM;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	wipe_free(buf, len);
	if (!key) {
		ERR_clear_error();
		return -EINVAL;
	}
	if (!is_ed25519(key)) {
		EVP_PKEY_free(key);
		return -EINVAL;
	}
	*ret_key = key;
	return 0;
}

int key_load_public(const char *path, EVP_PKEY **ret_key)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *buf = NULL;
	size_t len = 0;
	EVP_PKEY *key;
	int r;

	r = read_small_file(path, 0, &buf, &len);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio) {
		wipe_free(buf, len);
		return -ENOMEM;
	}
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!key) {
		ERR_clear_error();
		/* a private key file: keep only its public half */
		if (BIO_reset(bio) == 1) {
			EVP_PKEY *priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
			uint8_t raw[KEY_PUB_LEN];

			if (is_ed25519(priv) && key_raw_public(priv, raw) == 0)
				(void)key_from_raw_public(raw, &key);
			EVP_PKEY_free(priv);
		}
	}
	wipe_free(buf, len);
	ERR_clear_error();
	if (!key)
		return -EINVAL;
	if (!is_ed25519(key)) {
		EVP_PKEY_free(key);
		return -EINVAL;
	}
	*ret_key = key;
	return 0;
}

/* Write buf to a fresh temporary file beside path (mode), fsync, then link or rename into place. */
static int write_file_atomic(const char *path, const char *buf, size_t len, mode_t mode,
			     int replace)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	size_t off = 0;
	int r;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* the umask must not widen or narrow what we asked for */
	if (fchmod(fd, mode) < 0) {
		r = -errno;
		goto out_unlink;
	}
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out_unlink;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (replace)
		r = RET_NERRNO(rename(tmp, path));
	else
		r = RET_NERRNO(link(tmp, path));
	if (r < 0)
		goto out_unlink;
	if (!replace)
		(void)unlink(tmp);
	return 0;
out_unlink:
	(void)unlink(tmp);
	return r;
}

int key_save_private(EVP_PKEY *key, const char *path)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *data;
	long len;

	if (!is_ed25519(key))
		return -EINVAL;
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	if (!PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		ERR_clear_error();
		return -EIO;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		return -EIO;
	return write_file_atomic(path, data, (size_t)len, 0600, 0);
}

int key_load_or_create(const char *path, EVP_PKEY **ret_key)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	int r;

	r = key_load_private(path, &key);
	if (r == 0) {
		*ret_key = TAKE_PTR(key);
		return 0;
	}
	if (r != -ENOENT)
		return r;
	r = key_generate(&key);
	if (r < 0)
		return r;
	r = key_save_private(key, path);
	if (r == -EEXIST) {
		/* another starter won the race: use its key */
		EVP_PKEY_free(TAKE_PTR(key));
		r = key_load_private(path, &key);
		if (r < 0)
			return r;
		*ret_key = TAKE_PTR(key);
		return 0;
	}
	if (r < 0)
		return r;
	*ret_key = TAKE_PTR(key);
	return 1;
}

int key_public_pem(EVP_PKEY *key, char **ret_pem)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *data, *out;
	long len;

	if (!is_ed25519(key))
		return -EINVAL;
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		return -ENOMEM;
	if (!PEM_write_bio_PUBKEY(bio, key)) {
		ERR_clear_error();
		return -EIO;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		return -EIO;
	out = strndup(data, (size_t)len);
	if (!out)
		return -ENOMEM;
	*ret_pem = out;
	return 0;
}

int key_write_public_pem(EVP_PKEY *key, const char *path)
{
	_cleanup_free_ char *pem = NULL;
	int r;

	r = key_public_pem(key, &pem);
	if (r < 0)
		return r;
	return write_file_atomic(path, pem, strlen(pem), 0644, 1);
}

int key_raw_public(const EVP_PKEY *key, uint8_t ret_raw[KEY_PUB_LEN])
{
	size_t len = KEY_PUB_LEN;

	if (!is_ed25519(key))
		return -EINVAL;
	if (EVP_PKEY_get_raw_public_key(key, ret_raw, &len) != 1 || len != KEY_PUB_LEN) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

int key_from_raw_public(const uint8_t raw[KEY_PUB_LEN], EVP_PKEY **ret_key)
{
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, KEY_PUB_LEN);

	if (!key) {
		ERR_clear_error();
		return -EINVAL;
	}
	*ret_key = key;
	return 0;
}

int key_node_id(const EVP_PKEY *key, char ret_id[NODE_ID_HEX_LEN + 1])
{
	uint8_t raw[KEY_PUB_LEN], d[SHA256_LEN];
	int r;

	r = key_raw_public(key, raw);
	if (r < 0)
		return r;
	sha256(raw, sizeof(raw), d);
	hex_encode(d, sizeof(d), ret_id);
	return 0;
}

/* ---- signing and verifying ---------------------------------------------- */

/*
 * OpenSSL 3.0 lets Ed25519 one-shot calls reuse an initialised context, which
 * saves the provider lookup per signature; where a release refuses reuse, the
 * context is initialised again and the call retried.
 */
struct key_op {
	EVP_MD_CTX *md; /* initialised once for key */
	EVP_PKEY *key;	/* our reference */
	bool sign;	/* DigestSign rather than DigestVerify */
};

struct key_signer {
	struct key_op op;
};

struct key_verifier {
	struct key_op op;
};

static int op_init(struct key_op *op)
{
	int r;

	if (!op->md)
		op->md = EVP_MD_CTX_new();
	else if (EVP_MD_CTX_reset(op->md) != 1)
		return -EIO;
	if (!op->md)
		return -ENOMEM;
	r = op->sign ? EVP_DigestSignInit(op->md, NULL, NULL, NULL, op->key)
		     : EVP_DigestVerifyInit(op->md, NULL, NULL, NULL, op->key);
	ERR_clear_error();
	return r == 1 ? 0 : -EINVAL;
}

/* Allocate the public wrapper (whose first member is the op) for an Ed25519 key. */
static int op_new(EVP_PKEY *key, bool sign, void **ret)
{
	struct key_op *op;

	if (!is_ed25519(key))
		return -EINVAL;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->key = key;
	op->sign = sign;
	EVP_PKEY_up_ref(key);
	if (op_init(op) < 0) {
		EVP_MD_CTX_free(op->md);
		EVP_PKEY_free(op->key);
		free(op);
		return -EINVAL;
	}
	*ret = op;
	return 0;
}

static void op_free(struct key_op *op)
{
	if (op) {
		EVP_MD_CTX_free(op->md);
		EVP_PKEY_free(op->key);
		free(op);
	}
}

int key_signer_new(EVP_PKEY *key, struct key_signer **ret_s)
{
	return op_new(key, true, (void **)ret_s);
}

int key_signer_sign(struct key_signer *s, const void *msg, size_t len, uint8_t ret_sig[KEY_SIG_LEN])
{
	size_t siglen = KEY_SIG_LEN;

	if (EVP_DigestSign(s->op.md, ret_sig, &siglen, msg, len) == 1 && siglen == KEY_SIG_LEN)
		return 0;
	ERR_clear_error();
	/* perhaps a release that refuses reuse of the context: initialise it again */
	siglen = KEY_SIG_LEN;
	if (op_init(&s->op) == 0 && EVP_DigestSign(s->op.md, ret_sig, &siglen, msg, len) == 1 &&
	    siglen == KEY_SIG_LEN)
		return 0;
	ERR_clear_error();
	return -EIO;
}

struct key_signer *key_signer_free(struct key_signer *s)
{
	op_free(s ? &s->op : NULL);
	return NULL;
}

int key_verifier_new(EVP_PKEY *key, struct key_verifier **ret_v)
{
	return op_new(key, false, (void **)ret_v);
}

int key_verifier_check(struct key_verifier *v, const void *msg, size_t len,
		       const uint8_t sig[KEY_SIG_LEN])
{
	int r = EVP_DigestVerify(v->op.md, sig, KEY_SIG_LEN, msg, len);

	if (r == 1)
		return 0;
	if (r == 0 && ERR_peek_error() == 0)
		return -EBADMSG;
	/* an error rather than a verdict: perhaps a release that refuses reuse */
	ERR_clear_error();
	if (op_init(&v->op) < 0)
		return -EIO;
	r = EVP_DigestVerify(v->op.md, sig, KEY_SIG_LEN, msg, len);
	ERR_clear_error();
	return r == 1 ? 0 : r == 0 ? -EBADMSG : -EIO;
}

struct key_verifier *key_verifier_free(struct key_verifier *v)
{
	op_free(v ? &v->op : NULL);
	return NULL;
}

int key_sign(EVP_PKEY *key, const void *msg, size_t len, uint8_t ret_sig[KEY_SIG_LEN])
{
	struct key_signer *s = NULL;
	int r;

	r = key_signer_new(key, &s);
	if (r < 0)
		return r;
	r = key_signer_sign(s, msg, len, ret_sig);
	key_signer_free(s);
	return r;
}

int key_verify(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[KEY_SIG_LEN])
{
	struct key_verifier *v = NULL;
	int r;

	r = key_verifier_new(key, &v);
	if (r < 0)
		return r;
	r = key_verifier_check(v, msg, len, sig);
	key_verifier_free(v);
	return r;
}
