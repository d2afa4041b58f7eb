/* tls.c -- TLS 1.3 mutual authentication on a memory BIO the event loop feeds and drains. */
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/tls.h>

#include "tls_int.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

static const char *const role_names[] = {"agent", "renter", "auditor", "coordinator"};

const char *role_name(enum aicn_role role)
{
	for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
		if (role == (enum aicn_role)(1u << i))
			return role_names[i];
	return "none";
}

int role_parse(const char *s, enum aicn_role *ret)
{
	for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
		if (s && strcmp(s, role_names[i]) == 0) {
			*ret = (enum aicn_role)(1u << i);
			return 0;
		}
	return -EINVAL;
}

static void set_err(char *err, const char *fmt, ...) _printf_(2, 3);
static void set_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, TLS_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* The reason of the most recent OpenSSL error, or "unknown error". */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

/* ---- the BIO: reads from the bytes being fed, writes straight to the socket queue ---- */

static BIO_METHOD *bio_method;
static int conn_idx = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
	struct tls_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (c->ops->send(c->ud, (const uint8_t *)data, (size_t)len) < 0)
		return -1;
	return len;
}

static int bio_read(BIO *b, char *out, int len)
{
	struct tls_conn *c = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (c->in_len == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	n = MIN((size_t)len, c->in_len);
	memcpy(out, c->in, n);
	c->in += n;
	c->in_len -= n;
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num _unused_, void *ptr _unused_)
{
	struct tls_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return c ? (long)c->in_len : 0;
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void init_once(void)
{
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "aicn-loop");
	if (bio_method) {
		BIO_meth_set_write(bio_method, bio_write);
		BIO_meth_set_read(bio_method, bio_read);
		BIO_meth_set_ctrl(bio_method, bio_ctrl);
		BIO_meth_set_create(bio_method, bio_create);
	}
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- certificate identity ---- */

static void cert_label(X509 *cert, char *name, size_t namelen, char *serial, size_t seriallen)
{
	const ASN1_INTEGER *sn;
	BIGNUM *bn;
	char *hex = NULL;

	snprintf(name, namelen, "?");
	snprintf(serial, seriallen, "?");
	if (!cert)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
				      (int)namelen) < 0)
		snprintf(name, namelen, "?");
	sn = X509_get0_serialNumber(cert);
	bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	if (bn)
		hex = BN_bn2hex(bn);
	if (hex)
		snprintf(serial, seriallen, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

int tls_cert_identity(X509 *cert, struct tls_peer *ret, char *err)
{
	struct tls_peer p = {0};
	GENERAL_NAMES *sans;
	EVP_PKEY *pk;
	struct tm tm;
	int nroles = 0, r;

	cert_label(cert, p.name, sizeof(p.name), p.serial, sizeof(p.serial));
	pk = X509_get0_pubkey(cert);
	if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		set_err(err, "certificate of %s (serial %s) does not hold an Ed25519 key", p.name,
			p.serial);
		return -EINVAL;
	}
	r = key_raw_public(pk, p.pubkey);
	if (r >= 0)
		r = key_node_id(pk, p.node_id);
	if (r < 0) {
		set_err(err, "cannot read the key of %s", p.name);
		return -EINVAL;
	}
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		char buf[64];
		int len;
		enum aicn_role role;

		if (gn->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len <= (int)strlen(ROLE_URI_PREFIX) || len >= (int)sizeof(buf) ||
		    memcmp(s, ROLE_URI_PREFIX, strlen(ROLE_URI_PREFIX)) != 0)
			continue;
		memcpy(buf, s, (size_t)len);
		buf[len] = '\0';
		if (memchr(buf, '\0', (size_t)len) ||
		    role_parse(buf + strlen(ROLE_URI_PREFIX), &role) < 0) {
			GENERAL_NAMES_free(sans);
			set_err(err, "certificate of %s (serial %s) names an unknown role", p.name,
				p.serial);
			return -EINVAL;
		}
		p.role = role;
		nroles++;
	}
	GENERAL_NAMES_free(sans);
	if (nroles != 1) {
		set_err(err, "certificate of %s (serial %s) must carry exactly one %s<role> URI",
			p.name, p.serial, ROLE_URI_PREFIX);
		return -EINVAL;
	}
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		p.not_after = (int64_t)timegm(&tm);
	*ret = p;
	return 0;
}

static const char *verify_hint(int e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate not yet valid";
	case X509_V_ERR_CERT_REVOKED:
		return "certificate revoked";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "not issued by this network's CA";
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return "no CRL for the issuer";
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return "CRL expired (reissue it with 'aicnctl ca crl')";
	default:
		return NULL;
	}
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	char name[128], serial[48];

	if (!c)
		return 0;
	if (!ok) {
		int e = X509_STORE_CTX_get_error(xs);
		const char *hint = verify_hint(e);

		if (!c->err[0]) {
			const char *what = X509_verify_cert_error_string(e);

			cert_label(cert, name, sizeof(name), serial, sizeof(serial));
			if (hint && strcmp(hint, what) != 0)
				set_err(c->err, "refused certificate CN=%s serial=%s: %s (%s)",
					name, serial, hint, what);
			else
				set_err(c->err, "refused certificate CN=%s serial=%s: %s", name,
					serial, what);
		}
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) == 0) {
		struct tls_peer p;
		char err[TLS_ERR_LEN];

		if (tls_cert_identity(cert, &p, err) < 0) {
			set_err(c->err, "refused %s", err);
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		if (!(p.role & c->ctx->cfg.peer_roles)) {
			set_err(c->err,
				"refused certificate CN=%s serial=%s: role %s not accepted here",
				p.name, p.serial, role_name(p.role));
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		c->peer = p;
		c->have_peer = true;
	}
	return 1;
}

/* ---- our own TLS 1.3 records once the handshake is done (server side) ---- */

/* OpenSSL's key log: "LABEL <client random> <secret>", hex; we keep the two application secrets. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	struct tls_conn *c = SSL_get_ex_data(ssl, conn_idx);
	static const char cts[] = "CLIENT_TRAFFIC_SECRET_0 ", sts[] = "SERVER_TRAFFIC_SECRET_0 ";
	struct rec_dir *d;
	const char *hex;
	size_t n;

	if (!c)
		return;
	if (strncmp(line, cts, sizeof(cts) - 1) == 0)
		d = &c->rd; /* a server reads what the client sends */
	else if (strncmp(line, sts, sizeof(sts) - 1) == 0)
		d = &c->wr;
	else
		return;
	hex = strrchr(line, ' ');
	if (!hex)
		return;
	hex++;
	n = strlen(hex);
	if (n % 2 || n / 2 > sizeof(d->secret) || n == 0)
		return;
	if (hex_decode(hex, n, d->secret, n / 2) < 0)
		return;
	if (c->secret_len && c->secret_len != n / 2)
		return;
	c->secret_len = (uint8_t)(n / 2);
	d->have_secret = true;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 section 7.1. */
static int expand_label(const struct tls_conn *c, const uint8_t *secret, const char *label,
			uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 16 + 1];
	size_t ll = strlen(label), n = 0;
	OSSL_PARAM params[5];
	EVP_KDF_CTX *kc;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, r;

	if (ll > 16)
		return -EINVAL;
	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0; /* empty context */
	kc = EVP_KDF_CTX_new(c->ctx->hkdf);
	if (!kc)
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)c->md, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
						      c->secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	r = EVP_KDF_derive(kc, out, len, params);
	EVP_KDF_CTX_free(kc);
	return r == 1 ? 0 : -EINVAL;
}

/* Traffic key and IV of one direction from its current secret; sequence back to 0. */
static int dir_keys(struct tls_conn *c, struct rec_dir *d, int enc)
{
	uint8_t key[EVP_MAX_KEY_LENGTH];
	int klen = EVP_CIPHER_get_key_length(c->cipher), r;

	if (klen <= 0 || klen > (int)sizeof(key))
		return -EINVAL;
	r = expand_label(c, d->secret, "key", key, (size_t)klen);
	if (r >= 0)
		r = expand_label(c, d->secret, "iv", d->iv, REC_IV);
	if (r >= 0 && EVP_CipherInit_ex2(d->aead, c->cipher, key, NULL, enc, NULL) != 1)
		r = -EINVAL;
	OPENSSL_cleanse(key, sizeof(key));
	d->seq = 0;
	return r;
}

/* application_traffic_secret_N+1 (RFC 8446 7.2) and its keys. */
static int dir_update(struct tls_conn *c, struct rec_dir *d, int enc)
{
	uint8_t next[EVP_MAX_MD_SIZE];
	int r = expand_label(c, d->secret, "traffic upd", next, c->secret_len);

	if (r >= 0) {
		memcpy(d->secret, next, c->secret_len);
		r = dir_keys(c, d, enc);
	}
	OPENSSL_cleanse(next, sizeof(next));
	return r;
}

static void rec_nonce(const struct rec_dir *d, uint8_t nonce[REC_IV])
{
	memcpy(nonce, d->iv, REC_IV);
	for (int i = 0; i < 8; i++)
		nonce[REC_IV - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Protect one record of content type `type` and hand it to the socket. */
static int rec_seal(struct tls_conn *c, uint8_t type, const void *data, size_t len)
{
	uint8_t rec[REC_HDR + REC_MAX_SEAL], nonce[REC_IV];
	size_t body = len + 1 + REC_TAG;
	int n, f;

	if (len > REC_MAX_PLAIN || c->wr.seq == UINT64_MAX)
		return -EOVERFLOW;
	rec[0] = CT_APP; /* the outer type of every protected record */
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)(body >> 8);
	rec[4] = (uint8_t)body;
	if (len)
		memcpy(rec + REC_HDR, data, len);
	rec[REC_HDR + len] = type;
	rec_nonce(&c->wr, nonce);
	if (EVP_EncryptInit_ex2(c->wr.aead, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(c->wr.aead, NULL, &n, rec, REC_HDR) != 1 ||
	    EVP_EncryptUpdate(c->wr.aead, rec + REC_HDR, &n, rec + REC_HDR, (int)len + 1) != 1 ||
	    EVP_EncryptFinal_ex(c->wr.aead, rec + REC_HDR + n, &f) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->wr.aead, EVP_CTRL_AEAD_GET_TAG, REC_TAG,
				rec + REC_HDR + len + 1) != 1)
		return -EIO;
	c->wr.seq++;
	return c->ops->send(c->ud, rec, REC_HDR + body);
}

/* Our KeyUpdate(update_not_requested), then our new write keys. */
static int rec_key_update(struct tls_conn *c)
{
	static const uint8_t ku[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
	int r = rec_seal(c, CT_HANDSHAKE, ku, sizeof(ku));

	return r < 0 ? r : dir_update(c, &c->wr, 1);
}

/* Refuse the connection: a fatal alert to the peer if we still can, and why. */
static int rec_fail(struct tls_conn *c, uint8_t alert, int err, const char *fmt, ...)
	_printf_(4, 5);
static int rec_fail(struct tls_conn *c, uint8_t alert, int err, const char *fmt, ...)
{
	uint8_t al[2] = {2, alert};
	va_list ap;

	if (!c->failed && alert != AL_CLOSE_NOTIFY)
		(void)rec_seal(c, CT_ALERT, al, sizeof(al));
	c->failed = true;
	if (!c->err[0]) {
		va_start(ap, fmt);
		vsnprintf(c->err, TLS_ERR_LEN, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Post-handshake handshake messages: only whole KeyUpdates, each ending its record. */
static int rec_handshake(struct tls_conn *c, const uint8_t *p, size_t n)
{
	while (n) {
		size_t ml;

		if (n < 4 || (ml = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) > n - 4)
			return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
					"TLS read failed: fragmented post-handshake message");
		if (p[0] != HS_KEY_UPDATE)
			return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
					"TLS read failed: unexpected post-handshake message %u",
					p[0]);
		if (ml != 1 || p[4] > 1)
			return rec_fail(c, ml != 1 ? AL_DECODE_ERROR : AL_ILLEGAL_PARAMETER,
					-EPROTO, "TLS read failed: bad KeyUpdate");
		if (n != 5) /* keys change here: the record must end with it */
			return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
					"TLS read failed: data after KeyUpdate in its record");
		if (!c->key_updates--)
			return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
					"TLS read failed: too many KeyUpdates without data");
		if (dir_update(c, &c->rd, 0) < 0 || (p[4] && rec_key_update(c) < 0))
			return rec_fail(c, AL_INTERNAL_ERROR, -EPROTO,
					"TLS read failed: cannot update traffic keys");
		n = 0;
	}
	return 0;
}

/* Check a record header: our protected records only; its whole length in *ret. */
static int rec_header(struct tls_conn *c, const uint8_t *h, size_t *ret)
{
	size_t body = (size_t)h[3] << 8 | h[4];

	if (h[0] != CT_APP || h[1] != 3 || h[2] != 3)
		return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
				"TLS read failed: unexpected record type %u version %u.%u", h[0],
				h[1], h[2]);
	if (body > REC_MAX_BODY)
		return rec_fail(c, AL_RECORD_OVERFLOW, -EPROTO,
				"TLS read failed: record of %zu bytes", body);
	if (body < 1 + REC_TAG)
		return rec_fail(c, AL_DECODE_ERROR, -EPROTO, "TLS read failed: record too short");
	*ret = REC_HDR + body;
	return 0;
}

/* Decrypt and act on one whole record (header checked). */
static int rec_open(struct tls_conn *c, const uint8_t *rec, size_t len)
{
	uint8_t plain[REC_MAX_BODY], nonce[REC_IV], tag[REC_TAG];
	size_t n = len - REC_HDR - REC_TAG;
	int o, f;
	uint8_t type;

	if (c->rd.seq == UINT64_MAX)
		return rec_fail(c, AL_INTERNAL_ERROR, -EPROTO,
				"TLS read failed: sequence exhausted");
	memcpy(tag, rec + len - REC_TAG, REC_TAG);
	rec_nonce(&c->rd, nonce);
	if (EVP_DecryptInit_ex2(c->rd.aead, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(c->rd.aead, NULL, &o, rec, REC_HDR) != 1 ||
	    EVP_DecryptUpdate(c->rd.aead, plain, &o, rec + REC_HDR, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->rd.aead, EVP_CTRL_AEAD_SET_TAG, REC_TAG, tag) != 1 ||
	    EVP_DecryptFinal_ex(c->rd.aead, plain + o, &f) != 1)
		return rec_fail(c, AL_BAD_RECORD_MAC, -EPROTO,
				"TLS read failed: record does not decrypt (bad record mac)");
	c->rd.seq++;
	while (n && plain[n - 1] == 0) /* padding */
		n--;
	if (!n)
		return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
				"TLS read failed: record without a content type");
	type = plain[--n];
	if (n > REC_MAX_PLAIN)
		return rec_fail(c, AL_RECORD_OVERFLOW, -EPROTO,
				"TLS read failed: record of %zu plaintext bytes", n);
	switch (type) {
	case CT_APP:
		c->key_updates = KEY_UPDATE_BUDGET;
		if (n && c->ops->on_plain(c->ud, plain, n) < 0)
			return -ECONNABORTED;
		return 0;
	case CT_HANDSHAKE:
		if (!n)
			break;
		return rec_handshake(c, plain, n);
	case CT_ALERT:
		if (n != 2)
			return rec_fail(c, AL_DECODE_ERROR, -EPROTO, "TLS read failed: bad alert");
		if (plain[1] == AL_CLOSE_NOTIFY)
			return rec_fail(c, AL_CLOSE_NOTIFY, -ECONNRESET,
					"peer closed the TLS session");
		if (plain[1] == AL_USER_CANCELED) /* a close_notify follows */
			return 0;
		c->failed = true; /* no alert back to an alert */
		set_err(c->err, "TLS read failed: peer sent alert: %s",
			SSL_alert_desc_string_long(plain[1]));
		return -EPROTO;
	default:
		break;
	}
	return rec_fail(c, AL_UNEXPECTED_MESSAGE, -EPROTO,
			"TLS read failed: unexpected content type %u", type);
}

/* Ciphertext from the wire: whole records straight from it, pieces kept until whole. */
static int rec_feed(struct tls_conn *c, const uint8_t *data, size_t len)
{
	while (len) {
		size_t need = 0, take;
		uint8_t *rec;
		int r;

		if (!c->part_len && len >= REC_HDR) {
			r = rec_header(c, data, &need);
			if (r < 0)
				return r;
			if (len >= need) {
				r = rec_open(c, data, need);
				if (r < 0)
					return r;
				data += need;
				len -= need;
				continue;
			}
		}
		if (!c->part) {
			c->part = malloc(REC_HDR + REC_MAX_BODY);
			if (!c->part)
				return rec_fail(c, AL_INTERNAL_ERROR, -ENOMEM, "out of memory");
		}
		if (c->part_len < REC_HDR) {
			take = MIN(REC_HDR - c->part_len, len);
			memcpy(c->part + c->part_len, data, take);
			c->part_len += take;
			data += take;
			len -= take;
			if (c->part_len < REC_HDR)
				break;
			r = rec_header(c, c->part, &c->part_need);
			if (r < 0)
				return r;
		}
		take = MIN(c->part_need - c->part_len, len);
		memcpy(c->part + c->part_len, data, take);
		c->part_len += take;
		data += take;
		len -= take;
		if (c->part_len < c->part_need)
			break;
		rec = c->part; /* whole: back to no buffer while idle */
		c->part = NULL;
		c->part_len = 0;
		r = rec_open(c, rec, c->part_need);
		free(rec);
		if (r < 0)
			return r;
	}
	return 0;
}

static int rec_write(struct tls_conn *c, const uint8_t *data, size_t len)
{
	while (len) {
		size_t n = MIN(len, (size_t)REC_MAX_PLAIN);
		int r = 0;

		if (c->wr.seq >= REKEY_RECORDS)
			r = rec_key_update(c);
		if (r >= 0)
			r = rec_seal(c, CT_APP, data, n);
		if (r < 0)
			return rec_fail(c, AL_INTERNAL_ERROR, r, "TLS write failed: %s",
					strerror(-r));
		data += n;
		len -= n;
	}
	return 0;
}

static void rec_free(struct tls_conn *c)
{
	EVP_CIPHER_CTX_free(c->rd.aead);
	EVP_CIPHER_CTX_free(c->wr.aead);
	c->rd.aead = c->wr.aead = NULL;
	OPENSSL_cleanse(c->rd.secret, sizeof(c->rd.secret));
	OPENSSL_cleanse(c->wr.secret, sizeof(c->wr.secret));
	free(c->part);
	c->part = NULL;
}

int tls_rec_start(struct tls_conn *c)
{
	c->rd.aead = EVP_CIPHER_CTX_new();
	c->wr.aead = EVP_CIPHER_CTX_new();
	if (!c->cipher || !c->md || !c->rd.aead || !c->wr.aead || dir_keys(c, &c->rd, 0) < 0 ||
	    dir_keys(c, &c->wr, 1) < 0) {
		rec_free(c);
		return -EINVAL;
	}
	c->key_updates = KEY_UPDATE_BUDGET;
	return 0;
}

/*
 * Right after a server handshake: take the records over and free the SSL, unless
 * something is missing (no key log secrets, an unknown suite, bytes OpenSSL already
 * buffered) -- then OpenSSL keeps the records, as before.
 */
static bool rec_take_over(struct tls_conn *c)
{
	const SSL_CIPHER *cs = SSL_get_current_cipher(c->ssl);
	const EVP_MD *md = cs ? SSL_CIPHER_get_handshake_digest(cs) : NULL;
	struct tls_ctx *ctx = c->ctx;

	if (!ctx->cfg.server || !ctx->hkdf || !md || !c->rd.have_secret || !c->wr.have_secret ||
	    c->secret_len != EVP_MD_get_size(md) || SSL_has_pending(c->ssl))
		return false;
	switch (SSL_CIPHER_get_cipher_nid(cs)) {
	case NID_aes_128_gcm:
		c->cipher = ctx->aes128_gcm;
		break;
	case NID_aes_256_gcm:
		c->cipher = ctx->aes256_gcm;
		break;
	case NID_chacha20_poly1305:
		c->cipher = ctx->chacha20;
		break;
	default:
		return false;
	}
	c->md = EVP_MD_get0_name(md);
	if (tls_rec_start(c) < 0)
		return false;
	SSL_free(c->ssl);
	c->ssl = NULL;
	return true;
}

/* ---- context ---- */

static X509_STORE *build_store(const char *ca_file, const char *crl_file, char *err)
{
	X509_STORE *st = X509_STORE_new();
	BIO *b = NULL;
	int ncrl = 0;

	if (!st) {
		set_err(err, "out of memory");
		return NULL;
	}
	if (X509_STORE_load_file(st, ca_file) != 1) {
		set_err(err, "cannot load CA certificate %s: %s", ca_file, ossl_reason());
		goto fail;
	}
	if (crl_file) {
		X509_CRL *crl;

		b = BIO_new_file(crl_file, "r");
		if (!b) {
			set_err(err, "cannot open CRL %s: %s", crl_file, ossl_reason());
			goto fail;
		}
		while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
			int r = X509_STORE_add_crl(st, crl);

			X509_CRL_free(crl);
			if (r != 1) {
				set_err(err, "cannot use CRL %s: %s", crl_file, ossl_reason());
				goto fail;
			}
			ncrl++;
		}
		ERR_clear_error(); /* the end of the PEM file */
		if (ncrl == 0) {
			set_err(err, "%s holds no PEM CRL", crl_file);
			goto fail;
		}
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		BIO_free(b);
	}
	return st;
fail:
	BIO_free(b);
	X509_STORE_free(st);
	return NULL;
}

int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **ret, char *err)
{
	struct tls_ctx *ctx;
	X509_STORE *st;
	EVP_PKEY *pk;
	X509 *cert;

	pthread_once(&once, init_once);
	if (!bio_method || conn_idx < 0) {
		set_err(err, "OpenSSL initialisation failed");
		return -ENOMEM;
	}
	if (!cfg->ca_file || !cfg->cert_file || !cfg->key_file) {
		set_err(err, "CA, certificate and key files are all required");
		return -EINVAL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->cfg = *cfg;
	ctx->ca_file = strdup(cfg->ca_file);
	ctx->crl_file = cfg->crl_file ? strdup(cfg->crl_file) : NULL;
	ctx->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ca_file || (cfg->crl_file && !ctx->crl_file) || !ctx->ssl) {
		set_err(err, "out of memory");
		tls_ctx_free(ctx);
		return -ENOMEM;
	}
	ctx->cfg.ca_file = ctx->ca_file;
	ctx->cfg.crl_file = ctx->crl_file;
	ctx->cfg.cert_file = ctx->cfg.key_file = NULL;

	/* TLS 1.3 only: its cipher suites are all AEAD; Ed25519 signatures only. */
	if (SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx->ssl,
				     "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
				     "TLS_AES_128_GCM_SHA256") != 1 ||
	    SSL_CTX_set1_groups_list(ctx->ssl, "X25519:P-256") != 1 ||
	    SSL_CTX_set1_sigalgs_list(ctx->ssl, "ed25519") != 1) {
		set_err(err, "cannot restrict TLS parameters: %s", ossl_reason());
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	/* No resumption: every connection is checked against the current CRL. */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
					      SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_num_tickets(ctx->ssl, 0);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
		set_err(err, "cannot load certificate %s: %s", cfg->cert_file, ossl_reason());
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	if (key_load_private(cfg->key_file, &pk) < 0) {
		set_err(err, "cannot load Ed25519 private key %s (PEM, mode 0600)", cfg->key_file);
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey(ctx->ssl, pk) != 1 || SSL_CTX_check_private_key(ctx->ssl) != 1) {
		EVP_PKEY_free(pk);
		set_err(err, "key %s does not match certificate %s", cfg->key_file, cfg->cert_file);
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	EVP_PKEY_free(pk);
	cert = SSL_CTX_get0_certificate(ctx->ssl);
	if (tls_cert_identity(cert, &ctx->self, err) < 0) {
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	st = build_store(ctx->ca_file, ctx->crl_file, err);
	if (!st) {
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	SSL_CTX_set_cert_store(ctx->ssl, st);
	if (cfg->server) { /* name the network CA in the CertificateRequest */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ctx->ca_file);

		if (names)
			SSL_CTX_set_client_CA_list(ctx->ssl, names);
	}
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx->ssl, 2);
	if (cfg->server) {
		/* our own records after the handshake; without these OpenSSL keeps them */
		ctx->hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
		ctx->aes128_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
		ctx->aes256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
		ctx->chacha20 = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
		ERR_clear_error();
		SSL_CTX_set_keylog_callback(ctx->ssl, keylog_cb);
	}
	*ret = ctx;
	return 0;
}

int tls_ctx_reload_crl(struct tls_ctx *ctx, char *err)
{
	X509_STORE *st;

	if (!ctx->crl_file) {
		set_err(err, "no CRL file configured");
		return -ENOENT;
	}
	st = build_store(ctx->ca_file, ctx->crl_file, err);
	if (!st)
		return -EINVAL;
	SSL_CTX_set_cert_store(ctx->ssl, st);
	return 0;
}

const struct tls_peer *tls_ctx_self(const struct tls_ctx *ctx)
{
	return &ctx->self;
}

struct tls_ctx *tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return NULL;
	SSL_CTX_free(ctx->ssl);
	EVP_KDF_free(ctx->hkdf);
	EVP_CIPHER_free(ctx->aes128_gcm);
	EVP_CIPHER_free(ctx->aes256_gcm);
	EVP_CIPHER_free(ctx->chacha20);
	free(ctx->ca_file);
	free(ctx->crl_file);
	free(ctx);
	return NULL;
}

/* ---- connections ---- */

int tls_conn_new(struct tls_ctx *ctx, const struct tls_conn_ops *ops, void *ud,
		 struct tls_conn **ret)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *b;

	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->ops = ops;
	c->ud = ud;
	c->ssl = SSL_new(ctx->ssl);
	b = c->ssl ? BIO_new(bio_method) : NULL;
	if (!b) {
		SSL_free(c->ssl);
		free(c);
		return -ENOMEM;
	}
	BIO_set_data(b, c);
	SSL_set_bio(c->ssl, b, b); /* one BIO for both directions; SSL_free frees it */
	SSL_set_ex_data(c->ssl, conn_idx, c);
	if (ctx->cfg.server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	*ret = c;
	return 0;
}

struct tls_conn *tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return NULL;
	SSL_free(c->ssl);
	rec_free(c);
	free(c);
	return NULL;
}

static int conn_fail(struct tls_conn *c, int ssl_err, const char *what)
{
	unsigned long e = ERR_peek_error();

	c->failed = true;
	if (c->err[0])
		return -EPROTO;
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		set_err(c->err, "refused: peer sent no client certificate");
	else if (ssl_err == SSL_ERROR_SYSCALL && !e)
		set_err(c->err, "%s: transport failed", what);
	else
		set_err(c->err, "%s: %s", what, ossl_reason());
	return -EPROTO;
}

int tls_conn_start(struct tls_conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r <= 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
		return conn_fail(c, SSL_get_error(c->ssl, r), "TLS handshake failed");
	return 0;
}

int tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len)
{
	uint8_t buf[16384];
	int done = 0;

	if (c->failed)
		return -EPROTO;
	if (!c->ssl)
		return rec_feed(c, data, len);
	c->in = data;
	c->in_len = len;
	if (!c->established) {
		int r, e;

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			e = SSL_get_error(c->ssl, r);
			c->in_len = 0;
			if (e == SSL_ERROR_WANT_READ)
				return 0;
			return conn_fail(c, e, "TLS handshake failed");
		}
		if (!c->have_peer) { /* cannot happen with SSL_VERIFY_PEER; never trust blindly */
			c->failed = true;
			set_err(c->err, "refused: no verified peer certificate");
			return -EPROTO;
		}
		c->established = true;
		done = 1;
		if (rec_take_over(c)) {
			const uint8_t *rest = c->in;
			size_t n = c->in_len;
			int r2;

			c->in_len = 0;
			r2 = rec_feed(c, rest, n);
			return r2 < 0 ? r2 : done;
		}
	}
	for (;;) {
		int n, e;

		ERR_clear_error();
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n > 0) {
			if (c->ops->on_plain(c->ud, buf, (size_t)n) < 0) {
				c->in_len = 0;
				return -ECONNABORTED;
			}
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		c->in_len = 0;
		if (e == SSL_ERROR_WANT_READ)
			return done;
		if (e == SSL_ERROR_ZERO_RETURN) {
			c->failed = true;
			set_err(c->err, "peer closed the TLS session");
			return -ECONNRESET;
		}
		return conn_fail(c, e, "TLS read failed");
	}
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
	int n, e;

	if (!c->established || c->failed)
		return -ENOTCONN;
	if (len == 0)
		return 0;
	if (!c->ssl)
		return rec_write(c, data, len);
	if (len > INT32_MAX)
		return -EMSGSIZE;
	ERR_clear_error();
	n = SSL_write(c->ssl, data, (int)len);
	if (n == (int)len)
		return 0;
	e = SSL_get_error(c->ssl, n);
	return conn_fail(c, e, "TLS write failed");
}

void tls_conn_shutdown(struct tls_conn *c)
{
	static const uint8_t close_notify[2] = {1, AL_CLOSE_NOTIFY};

	if (c->established && !c->failed && !c->ssl) {
		(void)rec_seal(c, CT_ALERT, close_notify, sizeof(close_notify));
	} else if (c->established && !c->failed) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
	}
}

int tls_conn_established(const struct tls_conn *c)
{
	return c->established;
}

const struct tls_peer *tls_conn_peer(const struct tls_conn *c)
{
	return c->established ? &c->peer : NULL;
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] ? c->err : "no error";
}
