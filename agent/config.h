/* config.h -- aicn-agent's configuration: /etc/aicn/agent.conf (INI) parsed, validated, defaulted. */
#ifndef AICN_AGENT_CONFIG_H
#define AICN_AGENT_CONFIG_H

#include <aicn/window.h>

#include <stdint.h>
#include <stdio.h>

#define AGENT_CONFIG_PATH "/etc/aicn/agent.conf"
#define AGENT_CONFIG_MAX_SIZE (64 * 1024) /* bigger files are refused */
#define AGENT_CONFIG_ERR_MAX 512	  /* room an error message needs */

enum agent_window_close {
	AGENT_WINDOW_FINISH, /* running tasks finish; no new tasks */
	AGENT_WINDOW_CANCEL, /* running tasks are canceled when a window closes */
};

/* The validated configuration; every field has its default when the key is absent. */
struct agent_config {
	char *coordinator;	 /* "host:port" of the coordinator (required) */
	char *cert;		 /* PEM certificate of this node */
	char *key;		 /* PEM Ed25519 private key of this node */
	char *ca;		 /* PEM CA certificate of the network */
	char *state_dir;	 /* tasks, meter log, image cache index */
	uint32_t max_millicores; /* CPU offered to all tasks together; 1000 = one core */
	uint64_t max_memory;	 /* bytes offered to all tasks together */
	char *windows;		 /* availability windows as written; "" = always available */
	struct window window;	 /* the same, parsed: the minutes of the week inside */
	enum agent_window_close on_window_close;
	uint64_t ask_price;	   /* base units per CPU-hour (required) */
	char *location;		   /* free-form region tag, "" = not stated */
	uint32_t renewable_ppm;	   /* renewable energy fraction, parts per million */
	uint32_t max_tasks;	   /* tasks running at once */
	uint64_t image_cache_size; /* bytes of unpacked images kept (LRU) */
	char *metrics_listen;	   /* "ip:port" for /metrics, "" = off */
};

/* Host facts the defaults and limits derive from (agent_host_probe fills them from this machine). */
struct agent_host_facts {
	uint32_t ncpus;	    /* online CPUs */
	uint64_t mem_bytes; /* physical memory */
};

int agent_host_probe(struct agent_host_facts *ret_facts);

/*
 * Parse LEN bytes of INI text named NAME (for messages).  On error returns
 * -EINVAL (or -ENOMEM, -EFBIG) with a message "NAME:LINE: key 'K': reason" in
 * ERR (ERRLEN bytes, AGENT_CONFIG_ERR_MAX suffices).  HOST may be NULL (probe).
 */
int agent_config_parse(const char *text, size_t len, const char *name,
		       const struct agent_host_facts *host, char *err, size_t errlen,
		       struct agent_config **ret_cfg);
/* Read and parse a file (at most AGENT_CONFIG_MAX_SIZE bytes). */
int agent_config_load(const char *path, const struct agent_host_facts *host, char *err,
		      size_t errlen, struct agent_config **ret_cfg);
/* Check that the files the configuration names are usable: cert/key/CA readable, state dir a directory. */
int agent_config_check_files(const struct agent_config *cfg, char *err, size_t errlen);
/* Write the effective configuration (every key, defaults included) as INI that parses back equal. */
int agent_config_write(const struct agent_config *cfg, FILE *out);
struct agent_config *agent_config_free(struct agent_config *cfg);

const char *agent_window_close_name(enum agent_window_close c);

#endif /* AICN_AGENT_CONFIG_H */
