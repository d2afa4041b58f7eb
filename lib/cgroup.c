/* cgroup.c -- create, limit, attach, measure, kill and remove task cgroups under our own cgroup (v2, or v1+v2 hybrid). */
#include <aicn/cgroup.h>
#include <aicn/compiler.h>
#include <aicn/fileio.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const v1_names[CG_V1_N] = {
	[CG_V1_CPU] = "cpu",   [CG_V1_CPUACCT] = "cpuacct", [CG_V1_MEMORY] = "memory",
	[CG_V1_PIDS] = "pids", [CG_V1_FREEZER] = "freezer",
};

#define CG_KILL_TIMEOUT_MS 10000

/* ---- small file helpers ------------------------------------------------ */

static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Read a small file into buf (NUL-terminated). */
static int read_file(const char *dir, const char *file, char *buf, size_t size)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	if (size == 0)
		return -EINVAL;
	memset(buf, 0, size);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return read_fd_into(fd, buf, size);
}

/* Find "key value" in a flat-keyed file such as cpu.stat or memory.events. */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret)
{
	char buf[4096];
	size_t klen = strlen(key);
	int r = read_file(dir, file, buf, sizeof(buf));

	if (r < 0)
		return r;
	for (char *line = buf; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(line + klen + 1, &end, 10);
			if (errno || end == line + klen + 1)
				return -EINVAL;
			*ret = v;
			return 0;
		}
	}
	return -ENOENT;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret)
{
	char buf[64], *end;
	unsigned long long v;
	int r = read_file(dir, file, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int file_exists(const char *dir, const char *file)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return 0;
	return access(path, F_OK) == 0;
}

/* ---- host detection ---------------------------------------------------- */

/* Unescape mountinfo's octal escapes (\040 for space) in place. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

static int has_option(const char *opts, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Is word one of the space-separated words of list (cgroup.controllers format)? */
static int has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, " \n");

		if (len == n && strncmp(p, word, n) == 0)
			return 1;
		p += len;
		p += strspn(p, " \n");
	}
	return 0;
}

/* Path of our cgroup inside a mount: strip the mount's own root from the /proc/self/cgroup path. */
static int rel_to_mount(const char *root, const char *cgpath, char *out, size_t size)
{
	const char *rel = cgpath;
	size_t rl = strlen(root);

	if (strcmp(root, "/") != 0) {
		if (strncmp(cgpath, root, rl) != 0 || (cgpath[rl] != '/' && cgpath[rl] != '\0'))
			return -ENOENT; /* our cgroup is outside what is mounted */
		rel = cgpath + rl;
	}
	if (!*rel)
		rel = "/";
	if ((size_t)snprintf(out, size, "%s", rel) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int cg_host_detect(struct cg_host *ret_host)
{
	_cleanup_fclose_ FILE *mi = NULL, *pc = NULL;
	_cleanup_free_ char *line = NULL;
	char v1_root[CG_V1_N][512] = {{0}}, v2_root[512] = "", v2_path[512] = "";
	char v1_path[CG_V1_N][512] = {{0}};
	struct cg_host h = {0};
	size_t cap = 0;
	int have_v1 = 0, r;

	mi = fopen("/proc/self/mountinfo", "re");
	if (!mi)
		return -errno;
	while (getline(&line, &cap, mi) > 0) {
		char *f[10] = {0}, *save = NULL, *sep, *fstype, *super;
		int nf = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (char *tok = strtok_r(line, " ", &save); tok && nf < 10;
		     tok = strtok_r(NULL, " ", &save))
			f[nf++] = tok;
		if (nf < 5)
			continue;
		fstype = strtok_r(sep + 3, " ", &save);
		strtok_r(NULL, " ", &save); /* source */
		super = strtok_r(NULL, " \n", &save);
		if (!fstype)
			continue;
		unescape_octal(f[3]);
		unescape_octal(f[4]);
		if (strcmp(fstype, "cgroup2") == 0 && !h.v2_mount[0]) {
			snprintf(h.v2_mount, sizeof(h.v2_mount), "%s", f[4]);
			snprintf(v2_root, sizeof(v2_root), "%s", f[3]);
		} else if (strcmp(fstype, "cgroup") == 0 && super) {
			for (int c = 0; c < CG_V1_N; c++) {
				if (!h.v1_mount[c][0] && has_option(super, v1_names[c])) {
					snprintf(h.v1_mount[c], sizeof(h.v1_mount[c]), "%s", f[4]);
					snprintf(v1_root[c], sizeof(v1_root[c]), "%s", f[3]);
					if (c != CG_V1_FREEZER)
						have_v1 = 1;
				}
			}
		}
	}
	if (!h.v2_mount[0])
		return -ENOMEDIUM; /* no cgroup v2 at all: the meter cannot key tasks */

	pc = fopen("/proc/self/cgroup", "re");
	if (!pc)
		return -errno;
	while (getline(&line, &cap, pc) > 0) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *nl;

		if (!c2)
			continue;
		nl = strchr(c2, '\n');
		if (nl)
			*nl = '\0';
		*c2 = '\0';
		if (c1[1] == '\0') {
			snprintf(v2_path, sizeof(v2_path), "%s", c2 + 1);
			continue;
		}
		for (int c = 0; c < CG_V1_N; c++)
			if (has_option(c1 + 1, v1_names[c]))
				snprintf(v1_path[c], sizeof(v1_path[c]), "%s", c2 + 1);
	}
	if (!v2_path[0])
		return -ENOENT;
	r = rel_to_mount(v2_root, v2_path, h.v2_self, sizeof(h.v2_self));
	if (r < 0)
		return r;
	for (int c = 0; c < CG_V1_N; c++) {
		if (!h.v1_mount[c][0])
			continue;
		if (!v1_path[c][0] ||
		    rel_to_mount(v1_root[c], v1_path[c], h.v1_self[c], sizeof(h.v1_self[c])) < 0)
			h.v1_mount[c][0] = '\0'; /* mounted, but we cannot find ourselves in it */
	}
	h.layout = have_v1 ? CG_LAYOUT_HYBRID : CG_LAYOUT_UNIFIED;
	*ret_host = h;
	return 0;
}

/* ---- paths ------------------------------------------------------------- */

/* A parent is "a/b/c" of plain names; a name is one plain component. */
static int valid_component(const char *s, size_t n)
{
	if (n == 0 || n > 200 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

static int valid_parent(const char *p)
{
	if (!p || !*p)
		return 1;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (!valid_component(p, n))
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

static char *join(const char *mount, const char *self, const char *parent, const char *name)
{
	char *s = NULL;
	int hp = parent && *parent;

	if (asprintf(&s, "%s%s%s%s%s/%s", mount, strcmp(self, "/") == 0 ? "" : self, hp ? "/" : "",
		     hp ? parent : "", "", name) < 0)
		return NULL;
	return s;
}

struct cg *cg_free(struct cg *cg)
{
	if (!cg)
		return NULL;
	free(cg->v2_path);
	for (int c = 0; c < CG_V1_N; c++)
		free(cg->v1_path[c]);
	free(cg);
	return NULL;
}

int cg_id_of_path(const char *path, uint64_t *ret_id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = {.fh.handle_bytes = sizeof(uint64_t)};
	int mnt;
	struct stat st;

	/* the kernfs file handle of a cgroup directory is its 64-bit id */
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0) == 0 && h.fh.handle_bytes == 8) {
		memcpy(ret_id, h.fh.f_handle, sizeof(uint64_t));
		return 0;
	}
	if (stat(path, &st) < 0)
		return -errno;
	*ret_id = (uint64_t)st.st_ino;
	return 0;
}

/* Enable the v2 controllers we limit with in dir's subtree_control (pure v2 hosts). */
static int enable_v2_controllers(const char *dir)
{
	static const char *const want[] = {"cpu", "memory", "pids"};
	char avail[512], on[512];
	int r = read_file(dir, "cgroup.controllers", avail, sizeof(avail));

	if (r < 0)
		return r;
	r = read_file(dir, "cgroup.subtree_control", on, sizeof(on));
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		char word[16];

		if (!has_word(avail, want[i]) || has_word(on, want[i]))
			continue;
		snprintf(word, sizeof(word), "+%s", want[i]);
		r = write_file(dir, "cgroup.subtree_control", word);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dirname_of(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash || (size_t)(slash - path) >= size)
		return -EINVAL;
	memcpy(out, path, (size_t)(slash - path));
	out[slash - path] = '\0';
	return 0;
}

/* Does an earlier controller share controller c's directory (co-mounted, e.g. cpu,cpuacct)? */
static int v1_shared(const struct cg *cg, int c)
{
	for (int d = 0; d < c; d++)
		if (cg->v1_path[d] && strcmp(cg->v1_path[d], cg->v1_path[c]) == 0)
			return 1;
	return 0;
}

static void remove_created(struct cg *cg, int created_v2, const int created_v1[CG_V1_N])
{
	for (int c = CG_V1_N - 1; c >= 0; c--)
		if (created_v1[c] && cg->v1_path[c])
			rmdir(cg->v1_path[c]);
	if (created_v2)
		rmdir(cg->v2_path);
}

static int cg_make(const struct cg_host *host, const char *parent, const char *name,
		   unsigned v1_mask, int create, struct cg **ret_cg)
{
	struct cg *cg;
	int created_v2 = 0, created_v1[CG_V1_N] = {0};
	int r;

	if (!name || !valid_component(name, strlen(name)) || !valid_parent(parent))
		return -EINVAL;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	cg->v2_path = join(host->v2_mount, host->v2_self, parent, name);
	if (!cg->v2_path) {
		r = -ENOMEM;
		goto fail;
	}
	if (create) {
		char pdir[PATH_MAX];

		if (host->layout == CG_LAYOUT_UNIFIED &&
		    dirname_of(cg->v2_path, pdir, sizeof(pdir)) == 0) {
			r = enable_v2_controllers(pdir);
			if (r < 0 && r != -ENOENT)
				goto fail;
		}
		if (mkdir(cg->v2_path, 0755) < 0) {
			r = -errno;
			goto fail;
		}
		created_v2 = 1;
	} else if (access(cg->v2_path, F_OK) < 0) {
		r = -errno;
		goto fail;
	}
	r = cg_id_of_path(cg->v2_path, &cg->id);
	if (r < 0)
		goto fail;
	if (v1_mask && host->layout == CG_LAYOUT_HYBRID) {
		/*
		 * v1 cpuacct and freezer only where the v2 cgroup cannot stand in for them
		 * (cpu.stat, cgroup.kill): every v1 cgroup costs a mkdir and an rmdir per task.
		 */
		int v2_cpu_stat = file_exists(cg->v2_path, "cpu.stat");
		int v2_kill = file_exists(cg->v2_path, "cgroup.kill");

		for (int c = 0; c < CG_V1_N; c++) {
			if (!(v1_mask & (1u << c)) || !host->v1_mount[c][0] ||
			    (c == CG_V1_CPUACCT && v2_cpu_stat) || (c == CG_V1_FREEZER && v2_kill))
				continue;
			cg->v1_path[c] = join(host->v1_mount[c], host->v1_self[c], parent, name);
			if (!cg->v1_path[c]) {
				r = -ENOMEM;
				goto fail;
			}
			if (v1_shared(cg, c))
				continue;
			if (create) {
				if (mkdir(cg->v1_path[c], 0755) < 0) {
					r = -errno;
					goto fail;
				}
				created_v1[c] = 1;
			} else if (access(cg->v1_path[c], F_OK) < 0) {
				r = -errno;
				goto fail;
			}
		}
	}
	*ret_cg = cg;
	return 0;
fail:
	remove_created(cg, created_v2, created_v1);
	cg_free(cg);
	return r;
}

int cg_create(const struct cg_host *host, const char *parent, const char *name, int want_v1,
	      struct cg **ret_cg)
{
	return cg_make(host, parent, name, want_v1 ? CG_V1_ALL : 0, 1, ret_cg);
}

int cg_create_v1(const struct cg_host *host, const char *parent, const char *name, unsigned v1_mask,
		 struct cg **ret_cg)
{
	return cg_make(host, parent, name, v1_mask & CG_V1_ALL, 1, ret_cg);
}

int cg_open(const struct cg_host *host, const char *parent, const char *name, int want_v1,
	    struct cg **ret_cg)
{
	return cg_make(host, parent, name, want_v1 ? CG_V1_ALL : 0, 0, ret_cg);
}

int cg_host_make_room(const struct cg_host *host, const char *leaf)
{
	char self[PATH_MAX], dst[PATH_MAX];
	_cleanup_free_ char *procs = NULL;
	int r;

	if (!leaf || !valid_component(leaf, strlen(leaf)))
		return -EINVAL;
	if (host->layout != CG_LAYOUT_UNIFIED || strcmp(host->v2_self, "/") == 0)
		return 0; /* v1 has no such rule; the root cgroup is exempt from it */
	if ((size_t)snprintf(self, sizeof(self), "%s%s", host->v2_mount, host->v2_self) >=
		    sizeof(self) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", self, leaf) >= sizeof(dst))
		return -ENAMETOOLONG;
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		return -errno;
	procs = malloc(1 << 16);
	if (!procs)
		return -ENOMEM;
	/* processes may fork while we move them: repeat until the cgroup is empty */
	for (int round = 0; round < 16; round++) {
		int moved = 0;

		r = read_file(self, "cgroup.procs", procs, 1 << 16);
		if (r < 0)
			return r;
		for (char *p = procs; *p;) {
			char *end;
			long pid = strtol(p, &end, 10);
			char num[24];

			if (end == p || pid <= 0)
				break;
			snprintf(num, sizeof(num), "%ld", pid);
			r = write_file(dst, "cgroup.procs", num);
			/* a process that exited meanwhile is gone, not an error */
			if (r < 0 && r != -ESRCH)
				return r;
			moved++;
			p = *end ? end + 1 : end;
		}
		if (!moved)
			return 0;
	}
	return -EBUSY;
}

int cg_attach(const struct cg *cg, pid_t pid)
{
	char buf[24];
	int r;

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int c = 0; c < CG_V1_N; c++) {
		if (!cg->v1_path[c])
			continue;
		r = write_file(cg->v1_path[c], "cgroup.procs", buf);
		if (r < 0)
			return r;
	}
	return write_file(cg->v2_path, "cgroup.procs", buf);
}

int cg_join_v1_self(const struct cg *cg)
{
	for (int c = 0; c < CG_V1_N; c++) {
		int r;

		if (!cg->v1_path[c] || v1_shared(cg, c))
			continue;
		r = write_file(cg->v1_path[c], "tasks", "0");
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- limits ------------------------------------------------------------ */

static int swap_active(void)
{
	char buf[256];
	int r = read_file("/proc", "swaps", buf, sizeof(buf));

	/* the header line only means no swap */
	return r > 0 && strchr(buf, '\n') && strchr(buf, '\n')[1] != '\0';
}

static int set_u64(const char *dir, const char *file, uint64_t v)
{
	char buf[24];

	if (!dir)
		return -EOPNOTSUPP;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return write_file(dir, file, buf);
}

static int missing_to_unsupported(int r)
{
	return r == -ENOENT ? -EOPNOTSUPP : r;
}

int cg_set_limits(const struct cg *cg, const struct cg_limits *lim)
{
	uint64_t period = lim->cpu_period_us ? lim->cpu_period_us : 100000;
	int v1 = cg->v1_path[CG_V1_CPU] || cg->v1_path[CG_V1_MEMORY] || cg->v1_path[CG_V1_PIDS];
	int r;

	if (lim->cpu_quota_us) {
		if (v1) {
			r = set_u64(cg->v1_path[CG_V1_CPU], "cpu.cfs_period_us", period);
			if (r == 0)
				r = set_u64(cg->v1_path[CG_V1_CPU], "cpu.cfs_quota_us",
					    lim->cpu_quota_us);
		} else {
			char buf[48];

			snprintf(buf, sizeof(buf), "%llu %llu",
				 (unsigned long long)lim->cpu_quota_us, (unsigned long long)period);
			r = write_file(cg->v2_path, "cpu.max", buf);
		}
		if (r < 0)
			return missing_to_unsupported(r);
	}
	if (lim->memory_bytes) {
		if (v1) {
			const char *m = cg->v1_path[CG_V1_MEMORY];

			r = set_u64(m, "memory.limit_in_bytes", lim->memory_bytes);
			if (r == 0 && m && file_exists(m, "memory.memsw.limit_in_bytes"))
				r = set_u64(m, "memory.memsw.limit_in_bytes", lim->memory_bytes);
			else if (r == 0 && swap_active())
				r = set_u64(m, "memory.swappiness", 0);
		} else {
			r = set_u64(cg->v2_path, "memory.max", lim->memory_bytes);
			if (r == 0 && file_exists(cg->v2_path, "memory.swap.max"))
				r = write_file(cg->v2_path, "memory.swap.max", "0");
			else if (r == 0 && swap_active())
				r = -EOPNOTSUPP; /* swap on, but no way to cap it */
		}
		if (r < 0)
			return missing_to_unsupported(r);
	}
	if (lim->pids) {
		r = set_u64(v1 ? cg->v1_path[CG_V1_PIDS] : cg->v2_path, "pids.max", lim->pids);
		if (r < 0)
			return missing_to_unsupported(r);
	}
	return 0;
}

/* ---- figures ------------------------------------------------------------ */

int cg_cpu_usage_ns(const struct cg *cg, uint64_t *ret_ns)
{
	uint64_t usec;
	int r = read_keyed(cg->v2_path, "cpu.stat", "usage_usec", &usec);

	if (r == 0) {
		*ret_ns = usec * 1000;
		return 0;
	}
	if (cg->v1_path[CG_V1_CPUACCT])
		return read_u64(cg->v1_path[CG_V1_CPUACCT], "cpuacct.usage", ret_ns);
	return r;
}

int cg_memory_peak(const struct cg *cg, uint64_t *ret_bytes)
{
	if (cg->v1_path[CG_V1_MEMORY])
		return read_u64(cg->v1_path[CG_V1_MEMORY], "memory.max_usage_in_bytes", ret_bytes);
	return read_u64(cg->v2_path, "memory.peak", ret_bytes);
}

int cg_oom_kills(const struct cg *cg, uint64_t *ret_count)
{
	if (cg->v1_path[CG_V1_MEMORY])
		return read_keyed(cg->v1_path[CG_V1_MEMORY], "memory.oom_control", "oom_kill",
				  ret_count);
	return read_keyed(cg->v2_path, "memory.events", "oom_kill", ret_count);
}

/* Call fn(pid) for every process in the v2 subtree at dir; returns how many were seen. */
static int for_each_pid(const char *dir, int (*fn)(pid_t pid), uint64_t *count, unsigned depth)
{
	_cleanup_free_ char *procs = NULL;
	DIR *d;
	struct dirent *de;
	int r;

	if (depth > 64)
		return -ELOOP;
	procs = malloc(1 << 16);
	if (!procs)
		return -ENOMEM;
	r = read_file(dir, "cgroup.procs", procs, 1 << 16);
	if (r < 0)
		return r;
	for (char *p = procs; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		(*count)++;
		if (fn)
			fn((pid_t)pid);
		p = *end ? end + 1 : end;
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= sizeof(sub))
			continue;
		r = for_each_pid(sub, fn, count, depth + 1);
		if (r < 0 && r != -ENOENT) {
			closedir(d);
			return r;
		}
	}
	closedir(d);
	return 0;
}

int cg_nprocs(const struct cg *cg, uint64_t *ret_count)
{
	uint64_t n = 0;
	int r = for_each_pid(cg->v2_path, NULL, &n, 0);

	if (r < 0)
		return r;
	*ret_count = n;
	return 0;
}

static int kill_pid(pid_t pid)
{
	return kill(pid, SIGKILL) < 0 ? -errno : 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int populated(const struct cg *cg)
{
	uint64_t v = 0;

	if (read_keyed(cg->v2_path, "cgroup.events", "populated", &v) == 0)
		return v != 0;
	return cg_nprocs(cg, &v) == 0 ? v != 0 : 0;
}

int cg_kill(const struct cg *cg)
{
	const char *frz = cg->v1_path[CG_V1_FREEZER];
	int use_kill_file = file_exists(cg->v2_path, "cgroup.kill");
	long waited = 0;

	if (use_kill_file) {
		int r = write_file(cg->v2_path, "cgroup.kill", "1");

		if (r < 0)
			return r;
	} else if (frz) {
		/* freeze so nothing forks while we kill, then thaw so the kills land */
		write_file(frz, "freezer.state", "FROZEN");
		for (int i = 0; i < 1000; i++) {
			char st[32];

			if (read_file(frz, "freezer.state", st, sizeof(st)) > 0 &&
			    strncmp(st, "FROZEN", 6) == 0)
				break;
			sleep_ms(1);
		}
	}
	while (populated(cg)) {
		uint64_t n = 0;

		if (!use_kill_file) {
			for_each_pid(cg->v2_path, kill_pid, &n, 0);
			if (frz)
				write_file(frz, "freezer.state", "THAWED");
		}
		if (waited >= CG_KILL_TIMEOUT_MS)
			return -ETIMEDOUT;
		sleep_ms(waited < 20 ? 1 : 10);
		waited += waited < 20 ? 1 : 10;
	}
	if (frz && !use_kill_file)
		write_file(frz, "freezer.state", "THAWED");
	return 0;
}

/* Remove dir and every sub-cgroup below it, deepest first; retries briefly while busy. */
static int rmdir_tree(const char *dir, unsigned depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 64)
		return -ELOOP;
	/* the common case, an empty leaf: one rmdir, no directory listing */
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	if (errno != EBUSY && errno != ENOTEMPTY)
		return -errno;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) < sizeof(sub))
			rmdir_tree(sub, depth + 1);
	}
	closedir(d);
	for (int i = 0; i < 500; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		sleep_ms(2);
	}
	return -EBUSY;
}

/*
 * Remove an empty leaf cgroup in every hierarchy; 0 if all of it is gone.  The kernel
 * refuses to remove a cgroup that still has processes or children (EBUSY), so
 * nothing is lost by trying: v1 first, where a leftover process would be seen.
 */
static int rmdir_empty(const struct cg *cg)
{
	for (int c = 0; c < CG_V1_N; c++) {
		if (!cg->v1_path[c] || v1_shared(cg, c))
			continue;
		if (rmdir(cg->v1_path[c]) < 0 && errno != ENOENT)
			return -errno;
	}
	return rmdir(cg->v2_path) == 0 || errno == ENOENT ? 0 : -errno;
}

int cg_destroy(struct cg *cg)
{
	int r, first = 0;

	if (!cg)
		return 0;
	/* the common case, a task that has ended: no kill, no waiting */
	if (rmdir_empty(cg) == 0) {
		cg_free(cg);
		return 0;
	}
	r = cg_kill(cg);
	if (r < 0)
		first = r;
	for (int c = 0; c < CG_V1_N; c++) {
		if (!cg->v1_path[c] || v1_shared(cg, c))
			continue;
		r = rmdir_tree(cg->v1_path[c], 0);
		if (r < 0 && !first)
			first = r;
	}
	r = rmdir_tree(cg->v2_path, 0);
	if (r < 0 && !first)
		first = r;
	cg_free(cg);
	return first;
}
