/* cmd_ca.c -- `aicnctl ca`: the network's certificate authority (init, issue, revoke, crl) with Ed25519. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/key.h>
#include <aicn/log.h>
#include <aicn/tls.h>

#include "client.h"
#include "cmd.h"
#include "opt.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

int cmd_ca(int argc, char **argv);

#define CA_KEY "ca.key"
#define CA_CERT "ca.pem"
#define CA_CRL "crl.pem"
#define CA_INDEX                                                                                   \
	"index.tsv" /* serial TAB name TAB role TAB not_after TAB status [TAB revoked_at] */
#define CA_CRLNUM "crlnumber"
#define LINE_MAX_LEN 512

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicnctl ca init DIR [--name CN] [--days N]\n"
		"       aicnctl ca issue --dir DIR --role ROLE --name NAME [--key KEY.pem] [--out PREFIX]\n"
		"                        [--days N] [--backdate-days N] [--dns HOST]\n"
		"       aicnctl ca revoke --dir DIR (--serial HEX | --cert CERT.pem)\n"
		"       aicnctl ca crl --dir DIR [--days N]\n"
		"       aicnctl ca list --dir DIR\n\n"
		"The aicn network's certificate authority.  Every party (agent, renter, auditor,\n"
		"coordinator) holds an Ed25519 key and a certificate from this CA whose role is a\n"
		"SAN URI \"aicn:role:ROLE\"; the coordinator accepts only TLS 1.3 peers with such\n"
		"a certificate that is neither expired nor on the CRL.\n\n"
		"  init DIR          create DIR (0700) with ca.key (0600), ca.pem (self-signed,\n"
		"                    --days, default 3650), an empty crl.pem and index.tsv.\n"
		"  issue             sign a certificate for NAME with ROLE (agent, renter, auditor,\n"
		"                    coordinator).  --key uses an existing Ed25519 key (an agent's\n"
		"                    node key, so its usage records and its connection share one\n"
		"                    identity); without it a new key is written to PREFIX.key (0600).\n"
		"                    The certificate goes to PREFIX.pem (default DIR/NAME).  --days\n"
		"                    sets the validity (default 825), --backdate-days starts it in\n"
		"                    the past, --dns adds a DNS name (repeatable).  Prints the serial\n"
		"                    and the node id (sha256 of the raw public key).\n"
		"  revoke            put a certificate on the CRL and rewrite crl.pem; send SIGHUP\n"
		"                    to the coordinator to reload it.\n"
		"  crl               rewrite crl.pem with a fresh nextUpdate (--days, default 365).\n"
		"  list              print index.tsv: serial, name, role, expiry, status.\n\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static const char *ossl_err(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Write bytes produced by fn to path atomically (tmp + fsync + rename). */
static int write_atomic(const char *path, mode_t mode, int (*fn)(BIO *b, void *ud), void *ud)
{
	_cleanup_free_ char *tmp = NULL;
	BIO *b;
	FILE *f;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r;
	}
	b = BIO_new_fp(f, BIO_NOCLOSE);
	r = b ? fn(b, ud) : -ENOMEM;
	BIO_free(b);
	if (r >= 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
		r = -errno;
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static int write_cert_cb(BIO *b, void *ud)
{
	return PEM_write_bio_X509(b, ud) == 1 ? 0 : -EIO;
}

static int write_crl_cb(BIO *b, void *ud)
{
	return PEM_write_bio_X509_CRL(b, ud) == 1 ? 0 : -EIO;
}

static X509 *read_cert(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int r;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return -EINVAL;
	r = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return r == 1 ? 0 : -EINVAL;
}

/* A random positive 127-bit serial, as a BIGNUM and uppercase hex. */
static int new_serial(X509 *cert, char **ret_hex)
{
	uint8_t raw[16];
	BIGNUM *bn;
	char *hex;
	int ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	raw[0] &= 0x7f;
	raw[0] |= 0x01; /* never a short or zero serial */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (!bn)
		return -ENOMEM;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (!ok || !hex) {
		OPENSSL_free(hex);
		return -ENOMEM;
	}
	*ret_hex = strdup(hex);
	OPENSSL_free(hex);
	return *ret_hex ? 0 : -ENOMEM;
}

static int set_name(X509 *cert, const char *cn, int issuer_too)
{
	X509_NAME *n = X509_NAME_new();
	int ok;

	if (!n)
		return -ENOMEM;
	ok = X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"aicn", -1,
					-1, 0) == 1 &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
					0) == 1 &&
	     X509_set_subject_name(cert, n) == 1 && (!issuer_too || X509_set_issuer_name(cert, n));
	X509_NAME_free(n);
	return ok ? 0 : -EINVAL;
}

/* Take the CA directory's lock for the whole command (concurrent issues must not race). */
static int lock_dir(const char *dir)
{
	_cleanup_free_ char *p = path_in(dir, ".lock");
	int fd;

	if (!p)
		return -ENOMEM;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static int load_ca(const char *dir, EVP_PKEY **ret_key, X509 **ret_cert)
{
	_cleanup_free_ char *kp = path_in(dir, CA_KEY);
	_cleanup_free_ char *cp = path_in(dir, CA_CERT);
	EVP_PKEY *k = NULL;
	X509 *c;
	int r;

	if (!kp || !cp)
		return -ENOMEM;
	r = key_load_private(kp, &k);
	if (r < 0) {
		fprintf(stderr, "aicnctl ca: cannot load %s: %s\n", kp, strerror(-r));
		return r;
	}
	c = read_cert(cp);
	if (!c) {
		fprintf(stderr, "aicnctl ca: cannot read %s: %s\n", cp, ossl_err());
		EVP_PKEY_free(k);
		return -EINVAL;
	}
	*ret_key = k;
	*ret_cert = c;
	return 0;
}

struct index_line {
	char serial[48], name[128], role[16], status[16];
	long long not_after, revoked_at;
};

/* Read index.tsv line by line; fn returns <0 to stop. */
static int index_each(const char *dir, int (*fn)(const struct index_line *l, void *ud), void *ud)
{
	_cleanup_free_ char *p = path_in(dir, CA_INDEX);
	_cleanup_fclose_ FILE *f = NULL;
	char buf[LINE_MAX_LEN];

	if (!p)
		return -ENOMEM;
	f = fopen(p, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(buf, sizeof(buf), f)) {
		struct index_line l = {0};
		char *fields[6] = {0}, *save = NULL, *end;
		int nf = 0, r;

		buf[strcspn(buf, "\n")] = '\0';
		for (char *t = strtok_r(buf, "\t", &save); t && nf < 6;
		     t = strtok_r(NULL, "\t", &save))
			fields[nf++] = t;
		if (nf < 5 || strlen(fields[0]) >= sizeof(l.serial) ||
		    strlen(fields[1]) >= sizeof(l.name) || strlen(fields[2]) >= sizeof(l.role) ||
		    strlen(fields[4]) >= sizeof(l.status))
			continue;
		strcpy(l.serial, fields[0]);
		strcpy(l.name, fields[1]);
		strcpy(l.role, fields[2]);
		strcpy(l.status, fields[4]);
		l.not_after = strtoll(fields[3], &end, 10);
		if (*end)
			continue;
		if (nf == 6) {
			l.revoked_at = strtoll(fields[5], &end, 10);
			if (*end)
				continue;
		}
		r = fn(&l, ud);
		if (r < 0)
			return r;
	}
	return 0;
}

struct crl_build {
	X509_CRL *crl;
	int err;
};

static int crl_add(const struct index_line *l, void *ud)
{
	struct crl_build *cb = ud;
	X509_REVOKED *rv;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn;
	ASN1_TIME *t;

	if (strcmp(l->status, "revoked") != 0)
		return 0;
	if (!BN_hex2bn(&bn, l->serial)) {
		cb->err = -EINVAL;
		return -EINVAL;
	}
	rv = X509_REVOKED_new();
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	t = ASN1_TIME_set(NULL, (time_t)l->revoked_at);
	BN_free(bn);
	if (!rv || !sn || !t || X509_REVOKED_set_serialNumber(rv, sn) != 1 ||
	    X509_REVOKED_set_revocationDate(rv, t) != 1 ||
	    X509_CRL_add0_revoked(cb->crl, rv) != 1) {
		X509_REVOKED_free(rv);
		ASN1_INTEGER_free(sn);
		ASN1_TIME_free(t);
		cb->err = -ENOMEM;
		return -ENOMEM;
	}
	ASN1_INTEGER_free(sn);
	ASN1_TIME_free(t);
	return 0;
}

static long next_crl_number(const char *dir)
{
	_cleanup_free_ char *p = path_in(dir, CA_CRLNUM);
	long n = 0;
	FILE *f;

	if (!p)
		return -ENOMEM;
	f = fopen(p, "re");
	if (f) {
		char line[32];

		if (fgets(line, sizeof(line), f))
			n = strtol(line, NULL, 10);
		fclose(f);
	}
	if (n < 0)
		n = 0;
	n++;
	f = fopen(p, "we");
	if (!f)
		return -errno;
	fprintf(f, "%ld\n", n);
	if (fclose(f) != 0)
		return -errno;
	return n;
}

/* Rewrite DIR/crl.pem from index.tsv, signed by the CA key. */
static int write_crl(const char *dir, EVP_PKEY *cakey, X509 *cacert, int days)
{
	_cleanup_free_ char *p = path_in(dir, CA_CRL);
	struct crl_build cb = {.crl = X509_CRL_new()};
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	long n;
	int r = -ENOMEM;

	if (!p || !cb.crl)
		goto out;
	n = next_crl_number(dir);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	last = X509_gmtime_adj(NULL, 0);
	next = X509_gmtime_adj(NULL, (long)days * 86400);
	num = ASN1_INTEGER_new();
	if (!last || !next || !num || ASN1_INTEGER_set(num, n) != 1 ||
	    X509_CRL_set_version(cb.crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(cb.crl, X509_get_subject_name(cacert)) != 1 ||
	    X509_CRL_set1_lastUpdate(cb.crl, last) != 1 ||
	    X509_CRL_set1_nextUpdate(cb.crl, next) != 1 ||
	    X509_CRL_add1_ext_i2d(cb.crl, NID_crl_number, num, 0, 0) != 1)
		goto out;
	r = index_each(dir, crl_add, &cb);
	if (r < 0 || cb.err < 0) {
		r = r < 0 ? r : cb.err;
		goto out;
	}
	X509_CRL_sort(cb.crl);
	if (X509_CRL_sign(cb.crl, cakey, NULL) <= 0) {
		r = -EINVAL;
		goto out;
	}
	r = write_atomic(p, 0644, write_crl_cb, cb.crl);
out:
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	X509_CRL_free(cb.crl);
	return r;
}

#define CA_DAYS_MAX 36500

static const char ca_exit[] = "Exit status: 0 success, 1 failure, 2 usage error.";

static int ca_init(int argc, char **argv)
{
	const char *name = "aicn network CA", *dir;
	int64_t days = 3650;
	const struct opt opts[] = {
		{"name", 'n', OPT_STR, &name, "CN",
		 "the CA's common name (default \"aicn network CA\")", 0, 0},
		{"days", 'd', OPT_INT, &days, "N", "validity in days (default 3650)", 1,
		 CA_DAYS_MAX},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl ca init",
		"DIR [--name CN] [--days N]",
		"Create DIR (0700) with ca.key (Ed25519, 0600), ca.pem (self-signed), an empty\n"
		"crl.pem and index.tsv.  Refuses a directory that already holds a CA.",
		opts,
		NULL,
		1,
		1,
		0,
		ca_exit};
	_cleanup_free_ char *kp = NULL, *cp = NULL, *serial = NULL;
	struct opt_args a = {0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r, lockfd;

	r = opt_parse(&cmd, argc, argv, &a);
	if (r)
		return r == OPT_HELP ? 0 : 2;
	dir = a.pos[0];
	opt_args_done(&a);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "aicnctl ca init: cannot create %s: %m\n", dir);
		return 1;
	}
	kp = path_in(dir, CA_KEY);
	cp = path_in(dir, CA_CERT);
	if (!kp || !cp)
		return 1;
	lockfd = lock_dir(dir);
	if (lockfd < 0) {
		fprintf(stderr, "aicnctl ca init: cannot lock %s: %s\n", dir, strerror(-lockfd));
		return 1;
	}
	if (access(kp, F_OK) == 0 || access(cp, F_OK) == 0) {
		fprintf(stderr, "aicnctl ca init: %s already holds a CA; refusing to replace it\n",
			dir);
		close(lockfd);
		return 1;
	}
	r = key_generate(&key);
	if (r >= 0)
		r = key_save_private(key, kp);
	if (r < 0) {
		fprintf(stderr, "aicnctl ca init: cannot write %s: %s\n", kp, strerror(-r));
		goto out;
	}
	cert = X509_new();
	r = -ENOMEM;
	if (!cert || X509_set_version(cert, 2) != 1 || new_serial(cert, &serial) < 0 ||
	    set_name(cert, name, 1) < 0 || !X509_gmtime_adj(X509_getm_notBefore(cert), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) ||
	    X509_set_pubkey(cert, key) != 1 ||
	    add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(cert, key, NULL) <= 0) {
		fprintf(stderr, "aicnctl ca init: cannot build the CA certificate: %s\n",
			ossl_err());
		goto out;
	}
	r = write_atomic(cp, 0644, write_cert_cb, cert);
	if (r >= 0)
		r = write_crl(dir, key, cert, 365);
	if (r < 0) {
		fprintf(stderr, "aicnctl ca init: cannot write into %s: %s\n", dir, strerror(-r));
		goto out;
	}
	printf("CA \"%s\" created in %s (certificate %s, serial %s)\n", name, dir, cp, serial);
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	close(lockfd);
	return r < 0 ? 1 : 0;
}

static int ca_issue(int argc, char **argv)
{
	const char *dir = NULL, *rolestr = NULL, *name = NULL, *keyfile = NULL, *out = NULL;
	int64_t days = 825, back = 0;
	struct opt_list dns = {0};
	const struct opt opts[] = {
		{"dir", 'D', OPT_STR, &dir, "DIR", "the CA directory (required)", 0, 0},
		{"role", 'r', OPT_STR, &rolestr, "ROLE",
		 "agent, renter, auditor or coordinator (required)", 0, 0},
		{"name", 'n', OPT_STR, &name, "NAME",
		 "the subject CN, also the account name (required)", 0, 0},
		{"key", 'k', OPT_STR, &keyfile, "KEY.pem",
		 "certify this existing Ed25519 key (an agent's node\nkey) instead of a new one", 0,
		 0},
		{"out", 'o', OPT_STR, &out, "PREFIX",
		 "write PREFIX.pem and PREFIX.key (default DIR/NAME)", 0, 0},
		{"days", 'd', OPT_INT, &days, "N", "validity in days (default 825)", 1,
		 CA_DAYS_MAX},
		{"backdate-days", 'b', OPT_INT, &back, "N", "start the validity N days ago", 0,
		 CA_DAYS_MAX},
		{"dns", 's', OPT_LIST, &dns, "HOST", "add a DNS name (repeatable)", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl ca issue",
		"--dir DIR --role ROLE --name NAME [OPTIONS]",
		"Sign a certificate for NAME whose role is the SAN URI \"aicn:role:ROLE\".  Without\n"
		"--key a new Ed25519 key is written to PREFIX.key (0600).  Prints the certificate\n"
		"path, the serial and the node id (sha256 of the raw public key).",
		opts,
		NULL,
		0,
		0,
		0,
		ca_exit};
	_cleanup_free_ char *san = NULL, *prefix = NULL, *certp = NULL, *keyp = NULL;
	_cleanup_free_ char *serial = NULL, *idxp = NULL;
	char node_id[NODE_ID_HEX_LEN + 1];
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *cacert = NULL, *cert = NULL;
	struct opt_args a = {0};
	enum aicn_role role;
	size_t sanlen;
	int r = -EINVAL, lockfd = -1;
	FILE *f;

	r = opt_parse(&cmd, argc, argv, &a);
	if (r) {
		opt_list_free(&dns);
		return r == OPT_HELP ? 0 : 2;
	}
	opt_args_done(&a);
	san = strdup("");
	for (int i = 0; san && i < dns.n; i++) {
		char *n = NULL;

		if (strlen(dns.v[i]) > 253 || strpbrk(dns.v[i], ", \t\n") ||
		    asprintf(&n, "%s,DNS:%s", san, dns.v[i]) < 0) {
			opt_fail(&cmd, "bad --dns '%s'", dns.v[i]);
			opt_list_free(&dns);
			return 2;
		}
		free(san);
		san = n;
	}
	opt_list_free(&dns);
	if (!san)
		return 1;
	if (!dir || !rolestr || !name)
		return opt_fail(&cmd, "--dir, --role and --name are required");
	if (role_parse(rolestr, &role) < 0) {
		fprintf(stderr,
			"aicnctl ca issue: unknown role '%s' (agent, renter, auditor, coordinator)\n",
			rolestr);
		return 2;
	}
	sanlen = strlen(name);
	if (sanlen == 0 || sanlen > 64 || strpbrk(name, "/\t\n,")) {
		fprintf(stderr,
			"aicnctl ca issue: --name must be 1-64 characters without '/', ','\n");
		return 2;
	}
	if (asprintf(&prefix, "%s/%s", dir, name) < 0)
		return 1;
	if (out) {
		free(prefix);
		prefix = strdup(out);
		if (!prefix)
			return 1;
	}
	if (asprintf(&certp, "%s.pem", prefix) < 0 || asprintf(&keyp, "%s.key", prefix) < 0)
		return 1;
	lockfd = lock_dir(dir);
	if (lockfd < 0) {
		fprintf(stderr, "aicnctl ca issue: cannot lock %s: %s\n", dir, strerror(-lockfd));
		return 1;
	}
	if (load_ca(dir, &cakey, &cacert) < 0)
		goto out;
	if (keyfile) {
		r = key_load_private(keyfile, &key);
		if (r < 0) {
			fprintf(stderr,
				"aicnctl ca issue: cannot load Ed25519 key %s: %s (PEM, mode 0600)\n",
				keyfile, strerror(-r));
			goto out;
		}
	} else {
		r = key_generate(&key);
		if (r >= 0)
			r = key_save_private(key, keyp);
		if (r < 0) {
			fprintf(stderr, "aicnctl ca issue: cannot write %s: %s\n", keyp,
				strerror(-r));
			goto out;
		}
	}
	r = key_node_id(key, node_id);
	if (r < 0)
		goto out;
	{
		_cleanup_free_ char *sanval = NULL;

		if (asprintf(&sanval, "URI:%s%s%s", ROLE_URI_PREFIX, role_name(role), san) < 0) {
			r = -ENOMEM;
			goto out;
		}
		cert = X509_new();
		r = -EINVAL;
		if (!cert || X509_set_version(cert, 2) != 1 || new_serial(cert, &serial) < 0 ||
		    set_name(cert, name, 0) < 0 ||
		    X509_set_issuer_name(cert, X509_get_subject_name(cacert)) != 1 ||
		    !X509_gmtime_adj(X509_getm_notBefore(cert), -(long)back * 86400 - 300) ||
		    !X509_gmtime_adj(X509_getm_notAfter(cert), ((long)days - back) * 86400) ||
		    X509_set_pubkey(cert, key) != 1 ||
		    add_ext(cert, cacert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		    add_ext(cert, cacert, NID_key_usage, "critical,digitalSignature") < 0 ||
		    add_ext(cert, cacert, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
		    add_ext(cert, cacert, NID_subject_alt_name, sanval) < 0 ||
		    add_ext(cert, cacert, NID_subject_key_identifier, "hash") < 0 ||
		    add_ext(cert, cacert, NID_authority_key_identifier, "keyid:always") < 0 ||
		    X509_sign(cert, cakey, NULL) <= 0) {
			fprintf(stderr, "aicnctl ca issue: cannot build the certificate: %s\n",
				ossl_err());
			goto out;
		}
	}
	r = write_atomic(certp, 0644, write_cert_cb, cert);
	if (r < 0) {
		fprintf(stderr, "aicnctl ca issue: cannot write %s: %s\n", certp, strerror(-r));
		goto out;
	}
	idxp = path_in(dir, CA_INDEX);
	f = idxp ? fopen(idxp, "ae") : NULL;
	if (!f) {
		r = -errno;
		fprintf(stderr, "aicnctl ca issue: cannot append to the index: %m\n");
		goto out;
	}
	fprintf(f, "%s\t%s\t%s\t%lld\tvalid\n", serial, name, role_name(role),
		(long long)time(NULL) + ((long long)days - back) * 86400);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -errno;
	fclose(f);
	if (r < 0)
		goto out;
	printf("certificate %s\nserial %s\nrole %s\nnode_id %s\n", certp, serial, role_name(role),
	       node_id);
	if (!keyfile)
		printf("key %s\n", keyp);
	r = 0;
out:
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	X509_free(cacert);
	X509_free(cert);
	close(lockfd);
	return r < 0 ? 1 : 0;
}

struct revoke_ctx {
	const char *serial;
	FILE *out;
	int found;
};

static int revoke_line(const struct index_line *l, void *ud)
{
	struct revoke_ctx *rc = ud;
	long long at = l->revoked_at;
	const char *status = l->status;

	if (strcasecmp(l->serial, rc->serial) == 0) {
		rc->found = 1;
		if (strcmp(status, "revoked") != 0) {
			status = "revoked";
			at = (long long)time(NULL);
		}
	}
	fprintf(rc->out, "%s\t%s\t%s\t%lld\t%s", l->serial, l->name, l->role, l->not_after, status);
	if (strcmp(status, "revoked") == 0)
		fprintf(rc->out, "\t%lld", at);
	fputc('\n', rc->out);
	return 0;
}

static int ca_revoke_or_crl(int argc, char **argv, int revoke)
{
	const char *dir = NULL, *certfile = NULL, *serial_arg = NULL;
	int64_t days = 365;
	const struct opt opts_revoke[] = {
		{"dir", 'D', OPT_STR, &dir, "DIR", "the CA directory (required)", 0, 0},
		{"serial", 's', OPT_STR, &serial_arg, "HEX", "the serial to revoke", 0, 0},
		{"cert", 'c', OPT_STR, &certfile, "CERT.pem", "or the certificate to revoke", 0, 0},
		{"days", 'd', OPT_INT, &days, "N", "validity of the new CRL (default 365)", 1,
		 CA_DAYS_MAX},
		{0},
	};
	const struct opt_cmd cmd_revoke = {
		"aicnctl ca revoke",
		"--dir DIR (--serial HEX | --cert CERT.pem)",
		"Put a certificate on the CRL and rewrite crl.pem; send SIGHUP to the coordinator\n"
		"so it reloads the CRL.",
		opts_revoke,
		NULL,
		0,
		0,
		0,
		ca_exit};
	const struct opt_cmd cmd_crl = {"aicnctl ca crl",
					"--dir DIR [--days N]",
					"Rewrite crl.pem from index.tsv with a fresh nextUpdate.",
					opts_revoke,
					NULL,
					0,
					0,
					0,
					ca_exit};
	const struct opt_cmd *cmd = revoke ? &cmd_revoke : &cmd_crl;
	_cleanup_free_ char *serial = NULL, *idxp = NULL, *tmp = NULL;
	struct opt_args a = {0};
	EVP_PKEY *cakey = NULL;
	X509 *cacert = NULL;
	int r = -EINVAL, lockfd;

	r = opt_parse(cmd, argc, argv, &a);
	if (r)
		return r == OPT_HELP ? 0 : 2;
	opt_args_done(&a);
	if (serial_arg) {
		serial = strdup(serial_arg);
		if (!serial)
			return 1;
	}
	if (!dir || (revoke && !!serial == !!certfile) || (!revoke && (serial || certfile)))
		return opt_fail(cmd, revoke ? "--dir and one of --serial or --cert"
					    : "--dir is required (and only --days)");
	if (revoke && certfile) {
		X509 *x = read_cert(certfile);
		struct tls_peer p;

		if (!x || tls_cert_identity(x, &p, NULL) < 0) {
			/* still revocable by serial even without a role: read it directly */
			BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
			char *h = bn ? BN_bn2hex(bn) : NULL;

			snprintf(p.serial, sizeof(p.serial), "%s", h ? h : "");
			OPENSSL_free(h);
			BN_free(bn);
			if (!x) {
				fprintf(stderr, "aicnctl ca revoke: cannot read %s: %s\n", certfile,
					ossl_err());
				return 1;
			}
		}
		X509_free(x);
		serial = strdup(p.serial);
	}
	if (revoke &&
	    (!serial || !*serial || strspn(serial, "0123456789abcdefABCDEF") != strlen(serial))) {
		fprintf(stderr, "aicnctl ca revoke: bad serial\n");
		return 2;
	}
	lockfd = lock_dir(dir);
	if (lockfd < 0) {
		fprintf(stderr, "aicnctl ca: cannot lock %s: %s\n", dir, strerror(-lockfd));
		return 1;
	}
	if (load_ca(dir, &cakey, &cacert) < 0)
		goto out;
	if (revoke) {
		struct revoke_ctx rc = {.serial = serial};

		idxp = path_in(dir, CA_INDEX);
		if (!idxp || asprintf(&tmp, "%s.tmp", idxp) < 0) {
			r = -ENOMEM;
			goto out;
		}
		rc.out = fopen(tmp, "we");
		if (!rc.out) {
			r = -errno;
			goto out;
		}
		r = index_each(dir, revoke_line, &rc);
		if (fflush(rc.out) != 0 || fsync(fileno(rc.out)) != 0)
			r = -errno;
		fclose(rc.out);
		if (r >= 0 && !rc.found) {
			fprintf(stderr, "aicnctl ca revoke: serial %s was not issued by this CA\n",
				serial);
			unlink(tmp);
			r = -ENOENT;
			goto out;
		}
		if (r < 0 || rename(tmp, idxp) < 0) {
			r = r < 0 ? r : -errno;
			unlink(tmp);
			fprintf(stderr, "aicnctl ca revoke: cannot update the index: %s\n",
				strerror(-r));
			goto out;
		}
	}
	r = write_crl(dir, cakey, cacert, (int)days);
	if (r < 0) {
		fprintf(stderr, "aicnctl ca: cannot write the CRL: %s\n", strerror(-r));
		goto out;
	}
	if (revoke)
		printf("revoked %s; %s/%s rewritten (send SIGHUP to the coordinator)\n", serial,
		       dir, CA_CRL);
	else
		printf("%s/%s rewritten, valid for %lld days\n", dir, CA_CRL, (long long)days);
out:
	EVP_PKEY_free(cakey);
	X509_free(cacert);
	close(lockfd);
	return r < 0 ? 1 : 0;
}

static int list_line(const struct index_line *l, void *ud)
{
	cJSON *arr = ud, *o;

	if (!arr) {
		printf("%-34s %-24s %-12s %-12lld %s\n", l->serial, l->name, l->role, l->not_after,
		       l->status);
		return 0;
	}
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(arr, o) ||
	    !cJSON_AddStringToObject(o, "serial", l->serial) ||
	    !cJSON_AddStringToObject(o, "name", l->name) ||
	    !cJSON_AddStringToObject(o, "role", l->role) ||
	    canon_add_i64(o, "not_after", l->not_after) < 0 ||
	    !cJSON_AddStringToObject(o, "status", l->status) ||
	    (strcmp(l->status, "revoked") == 0 &&
	     canon_add_i64(o, "revoked_at", l->revoked_at) < 0))
		return -ENOMEM;
	return 0;
}

static int ca_list(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0;
	const struct opt opts[] = {
		{"dir", 'D', OPT_STR, &dir, "DIR", "the CA directory (required)", 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL,
		 "print {certificates: [{serial, name, role, not_after,\nstatus, revoked_at}]}", 0,
		 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl ca list",
		"--dir DIR [--json]",
		"Print index.tsv: serial, name, role, expiry (unix seconds), status.",
		opts,
		NULL,
		0,
		0,
		0,
		ca_exit};
	struct opt_args a = {0};
	cJSON *out, *arr;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? 0 : 2;
	opt_args_done(&a);
	if (!dir)
		return opt_fail(&cmd, "--dir DIR is required");
	if (!json) {
		printf("%-34s %-24s %-12s %-12s %s\n", "SERIAL", "NAME", "ROLE", "NOT_AFTER",
		       "STATUS");
		return index_each(dir, list_line, NULL) < 0 ? 1 : 0;
	}
	out = cJSON_CreateObject();
	arr = out ? cJSON_AddArrayToObject(out, "certificates") : NULL;
	r = arr ? index_each(dir, list_line, arr) : -ENOMEM;
	if (r >= 0)
		r = client_print_json(out) == EXIT_OK ? 0 : -EIO;
	cJSON_Delete(out);
	return r < 0 ? 1 : 0;
}

int cmd_ca(int argc, char **argv)
{
	const char *sub;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(sub, "init") == 0)
		return ca_init(argc - 1, argv + 1);
	if (strcmp(sub, "issue") == 0)
		return ca_issue(argc - 1, argv + 1);
	if (strcmp(sub, "revoke") == 0)
		return ca_revoke_or_crl(argc - 1, argv + 1, 1);
	if (strcmp(sub, "crl") == 0)
		return ca_revoke_or_crl(argc - 1, argv + 1, 0);
	if (strcmp(sub, "list") == 0)
		return ca_list(argc - 1, argv + 1);
	fprintf(stderr, "aicnctl ca: unknown subcommand '%s' (init, issue, revoke, crl, list)\n",
		sub);
	return 2;
}
