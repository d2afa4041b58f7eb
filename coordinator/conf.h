/* conf.h -- /etc/aicn/coordinator.conf: INI keys of aicn-coordinator, defaults, checks with file:line. */
#ifndef AICN_COORD_CONF_H
#define AICN_COORD_CONF_H

#include <aicn/log.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define COORD_CONF_DEFAULT "/etc/aicn/coordinator.conf"
#define COORD_STATE_DEFAULT "/var/lib/aicn-coordinator"

struct coord_conf {
	char *listen;	      /* listen: "host:port" as written (0.0.0.0:7443) */
	char listen_host[64]; /* parsed host (IPv4 or IPv6 literal) */
	uint16_t listen_port; /* parsed port; 0 = any free port (tests) */
	char *cert;	      /* cert: our coordinator certificate (PEM) */
	char *key;	 /* key: its Ed25519 private key (PEM); also signs ledger checkpoints */
	char *ca;	 /* ca: the network CA certificate (PEM) */
	char *crl;	 /* crl: revocation list (PEM), NULL = none; SIGHUP re-reads it */
	char *state_dir; /* state_dir: coordinator.db, blobs/, checkpoints/ */
	char *network;	 /* network: name in the ledger checkpoint origin */
	char *params;	 /* params: genesis economic parameters file, NULL = defaults */
	char *port_file; /* port_file: write the bound port here (tests), NULL = none */
	int64_t heartbeat_timeout; /* heartbeat_timeout: s before a silent node is lost (30) */
	uint32_t retry_cap;	   /* retry_cap: requeues before a task fails (3) */
	int64_t blob_retention;	   /* blob_retention: s an uploaded blob is kept (7 d) */
	int64_t result_grace;	   /* result_grace: s a result is kept after its fetch (0) */
	uint64_t max_active;	   /* max_active: unfinished tasks before SUBMIT is refused */
	unsigned tick_ms;	   /* tick_ms: periodic scheduling and housekeeping (1000) */
	unsigned max_conns;	   /* max_connections: open connections (100000) */
	enum log_level log_level;  /* log_level: err, warn, info, debug (info) */
	bool settlement;	   /* settlement: escrow, Proof of Compute, ledger (on) */
};

/* Defaults for every key (strings allocated). */
int coord_conf_init(struct coord_conf *c);
void coord_conf_done(struct coord_conf *c);
/*
 * Read PATH over the defaults.  An unknown key or section, a bad value or a
 * repeated key is -EINVAL with "PATH:LINE: reason" in err; a missing file
 * -ENOENT.  Paths must be absolute.
 */
int coord_conf_load(struct coord_conf *c, const char *path, char *err, size_t errlen);
/* The same over text already in memory (NAME for messages); text need not be NUL-terminated. */
int coord_conf_parse(struct coord_conf *c, const char *name, const char *text, size_t len,
		     char *err, size_t errlen);
/* Checks that need the file system: cert, key, ca (and crl) readable, state_dir usable. */
int coord_conf_check_files(const struct coord_conf *c, char *err, size_t errlen);
/* The effective configuration in the file's own syntax. */
void coord_conf_print(const struct coord_conf *c, FILE *f);

#endif /* AICN_COORD_CONF_H */
