/* meter.c -- loader of bpf/meter.bpf.c: pins its state, tracks task cgroups and reads their figures. */
#include <aicn/bpf/meter.h>
#include <aicn/cgroup.h>
#include <aicn/compiler.h>
#include <aicn/meter.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "meter.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

#define BPFFS_ROOT "/sys/fs/bpf"
#define READ_RETRIES 16

struct meter {
	char *pin_dir;
	int dir_fd;	  /* the pin directory, flock()ed shared while we hold it */
	int tracked_fd;	  /* "tracked" hash map */
	int globals_fd;	  /* "globals" array map, mmapped at g */
	int netattach_fd; /* per-attachment cgroup storage of the network programs */
	int prog_in_fd;	  /* cgroup_skb ingress program */
	int prog_out_fd;  /* cgroup_skb egress program */
	struct meter_globals *g;
	unsigned flags;
};

/* Maps pinned by name in the pin directory (libbpf re-uses them on a reload). */
static const char *const map_pins[] = {"tracked",   "tasks",	"cgcache", "globals",
				       "netattach", "cpuclock", "dying",   "dying_order"};
/* Everything else pinned at the top of the pin directory. */
static const char *const other_pins[] = {"link_free",	 "link_tick",	"link_fork", "link_exec",
					 "link_exit",	 "link_attach", "live",	     "sync",
					 "prog_ingress", "prog_egress"};
/* Pins of earlier builds, removed on a reload and by cleanup. */
static const char *const old_pins[] = {"link_switch", "oncpu"};

static void set_reason(char *reason, size_t size, const char *fmt, ...) _printf_(3, 4);
static void set_reason(char *reason, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!reason || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, size, fmt, ap);
	va_end(ap);
}

const char *meter_default_pin_dir(void)
{
	const char *e = getenv(METER_PIN_DIR_ENV);

	return e && *e ? e : METER_PIN_DIR_DEFAULT;
}

const char *meter_pin_dir(const struct meter *m)
{
	return m->pin_dir;
}

int meter_crosscheck(uint64_t meter_ns, uint64_t kernel_ns, int64_t *ret_diff)
{
	uint64_t diff = meter_ns > kernel_ns ? meter_ns - kernel_ns : kernel_ns - meter_ns;

	if (ret_diff)
		*ret_diff = (int64_t)(meter_ns - kernel_ns);
	return diff <= kernel_ns / 10000 + 2000;
}

static int is_bpffs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st) < 0)
		return -errno;
	return (unsigned long)st.f_type == (unsigned long)BPF_FS_MAGIC;
}

/* mkdir -p of pin_dir on a BPF filesystem, mounting one at /sys/fs/bpf when that is needed. */
static int make_pin_dir(const char *pin_dir, char *reason, size_t rsize)
{
	char path[PATH_MAX];
	size_t len = strlen(pin_dir);
	int parent_bpf = 0, r;

	if (pin_dir[0] != '/' || len >= sizeof(path) || len < 2) {
		set_reason(reason, rsize, "pin directory %s: must be an absolute path", pin_dir);
		return -EINVAL;
	}
	memcpy(path, pin_dir, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (char *p = path + 1;;) {
		char *slash = strchr(p, '/');

		if (slash)
			*slash = '\0';
		if (strcmp(path, BPFFS_ROOT) == 0 && is_bpffs(path) == 0 &&
		    mount("bpf", BPFFS_ROOT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") <
			    0 &&
		    is_bpffs(BPFFS_ROOT) != 1) {
			r = -errno;
			set_reason(
				reason, rsize,
				"cannot mount the BPF filesystem at %s: %s (the meter needs root)",
				BPFFS_ROOT, strerror(-r));
			return r;
		}
		if (access(path, F_OK) < 0) {
			if (errno != ENOENT || !parent_bpf) {
				r = errno == ENOENT ? -ENOTDIR : -errno;
				set_reason(reason, rsize,
					   "pin directory %s is not on a BPF filesystem", pin_dir);
				return r;
			}
			if (mkdir(path, 0700) < 0 && errno != EEXIST) {
				r = -errno;
				set_reason(reason, rsize, "cannot create %s: %s%s", path,
					   strerror(-r),
					   r == -EACCES || r == -EPERM ? " (the meter needs root)"
								       : "");
				return r;
			}
		}
		parent_bpf = is_bpffs(path) == 1;
		if (!slash)
			break;
		*slash = '/';
		p = slash + 1;
	}
	if (!parent_bpf) {
		set_reason(reason, rsize, "pin directory %s is not on a BPF filesystem", pin_dir);
		return -ENOTDIR;
	}
	return 0;
}

static int pinned(int dir_fd, const char *name)
{
	return faccessat(dir_fd, name, F_OK, 0) == 0;
}

static int all_pinned(int dir_fd)
{
	for (size_t i = 0; i < ARRAY_SIZE(map_pins); i++)
		if (!pinned(dir_fd, map_pins[i]))
			return 0;
	for (size_t i = 0; i < ARRAY_SIZE(other_pins); i++)
		if (!pinned(dir_fd, other_pins[i]))
			return 0;
	return 1;
}

/* Say which kernel feature is missing when the programs do not load. */
static void explain_load_failure(int err, char *reason, size_t rsize)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0) {
		set_reason(
			reason, rsize,
			"kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF) is missing");
		return;
	}
	if (err == -EPERM || err == -EACCES) {
		set_reason(reason, rsize,
			   "loading eBPF was refused: the meter needs root (CAP_BPF, CAP_PERFMON, "
			   "CAP_SYS_ADMIN)");
		return;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) != 1) {
		set_reason(reason, rsize, "the kernel lacks task local storage maps (Linux 5.11+)");
		return;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACING, NULL) != 1) {
		set_reason(reason, rsize, "the kernel lacks BTF-enabled tracepoints (tp_btf)");
		return;
	}
	set_reason(reason, rsize,
		   "the kernel refused the meter's programs (they need Linux 6.2+: cgroup local "
		   "storage, task iterators, BTF tracepoints): %s",
		   strerror(-err));
}

static int pin_at(int dir_fd, const char *pin_dir, const char *name, int fd)
{
	char path[PATH_MAX];

	(void)dir_fd;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", pin_dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	return bpf_obj_pin(fd, path) < 0 ? -errno : 0;
}

static int attach_and_pin(struct bpf_program *prog, int dir_fd, const char *pin_dir,
			  const char *name, char *reason, size_t rsize)
{
	struct bpf_link *link;
	int r;

	link = bpf_program__attach(prog);
	if (!link) {
		r = -errno;
		set_reason(reason, rsize, "cannot attach %s: %s", bpf_program__name(prog),
			   strerror(-r));
		return r;
	}
	r = pin_at(dir_fd, pin_dir, name, bpf_link__fd(link));
	if (r < 0)
		set_reason(reason, rsize, "cannot pin %s/%s: %s", pin_dir, name, strerror(-r));
	bpf_link__destroy(link); /* the pin keeps it attached */
	return r;
}

/* Load the programs, re-using pinned maps if any, attach them and pin everything. */
static int load_and_pin(int dir_fd, const char *pin_dir, char *reason, size_t rsize)
{
	struct meter_bpf *skel;
	struct bpf_map *map;
	struct bpf_link *iter;
	char path[PATH_MAX];
	int r;

	/* stale links or programs of an incomplete earlier load go; the maps stay */
	for (size_t i = 0; i < ARRAY_SIZE(other_pins); i++)
		unlinkat(dir_fd, other_pins[i], 0);
	for (size_t i = 0; i < ARRAY_SIZE(old_pins); i++)
		unlinkat(dir_fd, old_pins[i], 0);
	skel = meter_bpf__open();
	if (!skel) {
		r = -errno;
		set_reason(reason, rsize, "cannot open the meter's BPF object: %s", strerror(-r));
		return r;
	}
	bpf_object__for_each_map (map, skel->obj) {
		const char *name = bpf_map__name(map);

		if (name[0] == '.')
			continue; /* .rodata and friends are not state */
		snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			goto out;
	}
	r = meter_bpf__load(skel);
	if (r < 0) {
		explain_load_failure(r, reason, rsize);
		goto out;
	}
	r = attach_and_pin(skel->progs.meter_free, dir_fd, pin_dir, "link_free", reason, rsize);
	if (r == 0)
		r = attach_and_pin(skel->progs.meter_tick, dir_fd, pin_dir, "link_tick", reason,
				   rsize);
	if (r == 0)
		r = attach_and_pin(skel->progs.meter_fork, dir_fd, pin_dir, "link_fork", reason,
				   rsize);
	if (r == 0)
		r = attach_and_pin(skel->progs.meter_exec, dir_fd, pin_dir, "link_exec", reason,
				   rsize);
	if (r == 0)
		r = attach_and_pin(skel->progs.meter_exit, dir_fd, pin_dir, "link_exit", reason,
				   rsize);
	if (r == 0)
		r = attach_and_pin(skel->progs.meter_attach, dir_fd, pin_dir, "link_attach", reason,
				   rsize);
	if (r < 0)
		goto out;
	iter = bpf_program__attach_iter(skel->progs.meter_live, NULL);
	if (!iter) {
		r = -errno;
		set_reason(reason, rsize, "the kernel refused the task iterator: %s", strerror(-r));
		goto out;
	}
	r = pin_at(dir_fd, pin_dir, "live", bpf_link__fd(iter));
	bpf_link__destroy(iter);
	if (r == 0) {
		iter = bpf_program__attach_iter(skel->progs.meter_sync, NULL);
		r = iter ? pin_at(dir_fd, pin_dir, "sync", bpf_link__fd(iter)) : -errno;
		bpf_link__destroy(iter);
	}
	if (r == 0)
		r = pin_at(dir_fd, pin_dir, "prog_ingress",
			   bpf_program__fd(skel->progs.meter_ingress));
	if (r == 0)
		r = pin_at(dir_fd, pin_dir, "prog_egress",
			   bpf_program__fd(skel->progs.meter_egress));
	if (r < 0)
		set_reason(reason, rsize, "cannot pin in %s: %s", pin_dir, strerror(-r));
out:
	meter_bpf__destroy(skel);
	if (r < 0)
		for (size_t i = 0; i < ARRAY_SIZE(other_pins); i++)
			unlinkat(dir_fd, other_pins[i], 0);
	return r;
}

static int get_pinned(int dir_fd, const char *pin_dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	(void)dir_fd;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", pin_dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

struct meter *meter_free(struct meter *m)
{
	if (!m)
		return NULL;
	if (m->g)
		munmap(m->g, sizeof(*m->g));
	closep(&m->tracked_fd);
	closep(&m->globals_fd);
	closep(&m->netattach_fd);
	closep(&m->prog_in_fd);
	closep(&m->prog_out_fd);
	closep(&m->dir_fd); /* drops our shared lock */
	free(m->pin_dir);
	free(m);
	return NULL;
}

/* Lock the pin directory; retry if it was removed and re-created while we waited. */
static int lock_dir(const char *pin_dir, int how, int *ret_fd)
{
	for (int i = 0; i < 100; i++) {
		_cleanup_close_ int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat a, b;

		if (fd < 0)
			return -errno;
		if (flock(fd, how) < 0)
			return -errno;
		if (fstat(fd, &a) == 0 && stat(pin_dir, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			*ret_fd = TAKE_FD(fd);
			return 0;
		}
	}
	return -ESTALE;
}

/* Take the exclusive lock on an open pin directory, waiting at most timeout_ms. */
static int lock_exclusive(int fd, unsigned timeout_ms)
{
	for (unsigned waited = 0;; waited += 5) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (waited >= timeout_ms)
			return -EBUSY;
		nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
	}
}

int meter_open(const char *pin_dir, unsigned flags, struct meter **ret_meter, char *reason,
	       size_t reason_size)
{
	struct meter *m;
	void *g;
	int r;

	if (!pin_dir)
		pin_dir = meter_default_pin_dir();
	if (flags & METER_CREATE) {
		r = make_pin_dir(pin_dir, reason, reason_size);
		if (r < 0)
			return r;
	} else if (access(pin_dir, F_OK) < 0) {
		r = -errno;
		set_reason(reason, reason_size, "the meter is not loaded (no %s): %s", pin_dir,
			   strerror(-r));
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dir_fd = m->tracked_fd = m->globals_fd = m->netattach_fd = -1;
	m->prog_in_fd = m->prog_out_fd = -1;
	m->flags = flags;
	m->pin_dir = strdup(pin_dir);
	if (!m->pin_dir) {
		r = -ENOMEM;
		goto fail;
	}
	/*
	 * Every process holding the meter keeps a shared lock on the pin directory;
	 * loading and removing take it exclusively.
	 */
	r = lock_dir(pin_dir, LOCK_SH, &m->dir_fd);
	for (int i = 0; r == -ENOENT && (flags & METER_CREATE) && i < 3; i++) {
		/* removed by a releasing tool meanwhile: make it again */
		r = make_pin_dir(pin_dir, reason, reason_size);
		if (r == 0)
			r = lock_dir(pin_dir, LOCK_SH, &m->dir_fd);
	}
	if (r < 0) {
		set_reason(reason, reason_size, "cannot lock %s: %s", pin_dir, strerror(-r));
		goto fail;
	}
	if (!all_pinned(m->dir_fd)) {
		if (!(flags & METER_CREATE)) {
			set_reason(reason, reason_size, "the meter is not loaded in %s", pin_dir);
			r = -ENOENT;
			goto fail;
		}
		r = lock_exclusive(m->dir_fd, 10000);
		if (r < 0) {
			set_reason(reason, reason_size,
				   "%s is incomplete and in use by another process", pin_dir);
			goto fail;
		}
		if (!all_pinned(m->dir_fd)) {
			r = load_and_pin(m->dir_fd, pin_dir, reason, reason_size);
			if (r < 0)
				goto fail;
		}
	}
	m->tracked_fd = get_pinned(m->dir_fd, pin_dir, "tracked");
	m->globals_fd = get_pinned(m->dir_fd, pin_dir, "globals");
	m->netattach_fd = get_pinned(m->dir_fd, pin_dir, "netattach");
	m->prog_in_fd = get_pinned(m->dir_fd, pin_dir, "prog_ingress");
	m->prog_out_fd = get_pinned(m->dir_fd, pin_dir, "prog_egress");
	if (m->tracked_fd < 0 || m->globals_fd < 0 || m->netattach_fd < 0 || m->prog_in_fd < 0 ||
	    m->prog_out_fd < 0) {
		r = m->tracked_fd < 0	  ? m->tracked_fd
		    : m->globals_fd < 0	  ? m->globals_fd
		    : m->netattach_fd < 0 ? m->netattach_fd
		    : m->prog_in_fd < 0	  ? m->prog_in_fd
					  : m->prog_out_fd;
		set_reason(reason, reason_size, "cannot open the pins in %s: %s", pin_dir,
			   strerror(-r));
		goto fail;
	}
	g = mmap(NULL, sizeof(struct meter_globals), PROT_READ | PROT_WRITE, MAP_SHARED,
		 m->globals_fd, 0);
	if (g == MAP_FAILED) {
		r = -errno;
		set_reason(reason, reason_size, "cannot map the meter's globals: %s", strerror(-r));
		goto fail;
	}
	m->g = g;
	if (m->g->magic == 0) {
		m->g->abi = METER_ABI_VERSION;
		m->g->gen = 1;
		__atomic_store_n(&m->g->magic, METER_MAGIC, __ATOMIC_RELEASE);
	} else if (m->g->magic != METER_MAGIC || m->g->abi != METER_ABI_VERSION) {
		set_reason(reason, reason_size,
			   "%s holds a meter of another version (ABI %llu, ours %d): run "
			   "`aicn-meter cleanup` first",
			   pin_dir, (unsigned long long)m->g->abi, METER_ABI_VERSION);
		r = -EPROTO;
		goto fail;
	}
	if (flags & METER_PERSIST)
		__atomic_store_n(&m->g->persistent, 1, __ATOMIC_RELAXED);
	/* shared from now on: meter_release() of others leaves the pins while we hold them */
	if (flock(m->dir_fd, LOCK_SH) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_meter = m;
	return 0;
fail:
	meter_free(m);
	return r;
}

static int remove_pins(const char *pin_dir)
{
	char net[PATH_MAX];
	_cleanup_close_ int dfd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	snprintf(net, sizeof(net), "%s/net", pin_dir);
	d = opendir(net);
	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
		if (rmdir(net) < 0 && errno != ENOENT)
			r = -errno;
	}
	/* links first (detaching the programs), then the maps */
	for (size_t i = 0; i < ARRAY_SIZE(other_pins); i++)
		if (unlinkat(dfd, other_pins[i], 0) < 0 && errno != ENOENT && !r)
			r = -errno;
	for (size_t i = 0; i < ARRAY_SIZE(old_pins); i++)
		if (unlinkat(dfd, old_pins[i], 0) < 0 && errno != ENOENT && !r)
			r = -errno;
	for (size_t i = 0; i < ARRAY_SIZE(map_pins); i++)
		if (unlinkat(dfd, map_pins[i], 0) < 0 && errno != ENOENT && !r)
			r = -errno;
	if (rmdir(pin_dir) < 0 && errno != ENOENT && !r)
		r = -errno;
	return r;
}

int meter_cleanup(const char *pin_dir)
{
	_cleanup_close_ int fd = -1;
	int r;

	if (!pin_dir)
		pin_dir = meter_default_pin_dir();
	r = lock_dir(pin_dir, LOCK_SH, &fd);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	/* give running tools a moment to finish; uninstall removes the pins regardless */
	lock_exclusive(fd, 5000);
	return remove_pins(pin_dir);
}

int meter_release(struct meter *m)
{
	int removed = 0;

	if (!m)
		return 0;
	/* exclusive only if no other process holds the meter open */
	if (flock(m->dir_fd, LOCK_EX | LOCK_NB) == 0 && !m->g->persistent &&
	    __atomic_load_n(&m->g->ntracked, __ATOMIC_ACQUIRE) == 0 &&
	    !(m->flags & METER_PERSIST)) {
		removed = remove_pins(m->pin_dir) == 0;
	}
	meter_free(m);
	return removed;
}

static void net_pin_name(char *buf, size_t size, const char *pin_dir, uint64_t id, const char *dir)
{
	snprintf(buf, size, "%s/net/%llu-%s", pin_dir, (unsigned long long)id, dir);
}

static void unpin_net(const struct meter *m, uint64_t id)
{
	char path[PATH_MAX];

	net_pin_name(path, sizeof(path), m->pin_dir, id, "in");
	unlink(path);
	net_pin_name(path, sizeof(path), m->pin_dir, id, "out");
	unlink(path);
}

static int attach_net(const struct meter *m, int cg_fd, uint64_t id)
{
	static const struct {
		const char *dir;
		enum bpf_attach_type type;
	} hooks[] = {{"in", BPF_CGROUP_INET_INGRESS}, {"out", BPF_CGROUP_INET_EGRESS}};
	char path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/net", m->pin_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++) {
		_cleanup_close_ int link = -1;
		int prog =
			hooks[i].type == BPF_CGROUP_INET_INGRESS ? m->prog_in_fd : m->prog_out_fd;

		link = bpf_link_create(prog, cg_fd, hooks[i].type, NULL);
		if (link < 0)
			return -errno;
		net_pin_name(path, sizeof(path), m->pin_dir, id, hooks[i].dir);
		unlink(path); /* a stale pin of an earlier cgroup with this id */
		if (bpf_obj_pin(link, path) < 0)
			return -errno;
	}
	/* tell both attachments which cgroup they sit on (their shared cgroup storage) */
	r = bpf_map_update_elem(m->netattach_fd, &id, &id, BPF_ANY);
	return r < 0 ? -errno : 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Run a pinned task iterator to its end (its program does the work). */
static int run_iter(const struct meter *m, const char *name)
{
	char path[PATH_MAX], buf[256];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", m->pin_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0)
		if (n < 0 && errno != EINTR)
			return -errno;
	return 0;
}

/* Does the cgroup v2 directory (or any descendant) hold a process? */
static bool populated(int cg_fd)
{
	char buf[256];
	_cleanup_close_ int fd = openat(cg_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (n < 0)
		return true; /* cannot tell: let the threads follow */
	buf[n] = 0;
	return !strstr(buf, "populated 0");
}

int meter_track(struct meter *m, const char *cg_v2_path, uint64_t *ret_id)
{
	_cleanup_close_ int cg_fd = -1;
	struct meter_cg_stats st = {0};
	uint64_t id;
	int r;

	cg_fd = open(cg_v2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	r = cg_id_of_path(cg_v2_path, &id);
	if (r < 0)
		return r;
	st.tracked_at_ns = monotonic_ns();
	if (bpf_map_update_elem(m->tracked_fd, &id, &st, BPF_NOEXIST) < 0)
		return errno == E2BIG ? -ENOSPC : -errno;
	r = attach_net(m, cg_fd, id);
	if (r < 0) {
		unpin_net(m, id);
		bpf_map_delete_elem(m->tracked_fd, &id);
		return r;
	}
	__atomic_fetch_add(&m->g->ntracked, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&m->g->gen, 1, __ATOMIC_SEQ_CST);
	/* threads already inside (or a tracked subtree split) start counting here now */
	if (populated(cg_fd)) {
		r = run_iter(m, "sync");
		if (r < 0) {
			meter_untrack(m, id);
			return r;
		}
	}
	*ret_id = id;
	return 0;
}

int meter_untrack(struct meter *m, uint64_t cg_id)
{
	struct meter_cg_stats st;

	if (bpf_map_lookup_elem(m->tracked_fd, &cg_id, &st) < 0)
		return -errno;
	if (bpf_map_delete_elem(m->tracked_fd, &cg_id) < 0)
		return -errno;
	unpin_net(m, cg_id);
	__atomic_fetch_sub(&m->g->ntracked, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&m->g->gen, 1, __ATOMIC_SEQ_CST);
	/* threads still counting here move on to a tracked ancestor, if any (best effort) */
	if (st.threads_live > 0)
		(void)run_iter(m, "sync");
	return 0;
}

static void usage_from_stats(uint64_t id, const struct meter_cg_stats *s, struct meter_usage *u)
{
	*u = (struct meter_usage){
		.cgroup_id = id,
		.cpu_ns = s->cpu_ns,
		.rq_wait_ns = s->rq_wait_ns,
		.vol_switches = s->vol_switches,
		.invol_switches = s->invol_switches,
		.procs_forked = s->procs_forked,
		.threads_born = s->threads_born,
		.procs_execed = s->procs_execed,
		.procs_exited = s->procs_exited,
		.threads_live = s->threads_live,
		.threads_peak = s->threads_peak,
		.threads_lost = s->threads_lost,
		.net_rx_bytes = s->net_rx_bytes,
		.net_rx_packets = s->net_rx_packets,
		.net_tx_bytes = s->net_tx_bytes,
		.net_tx_packets = s->net_tx_packets,
		.tracked_at_ns = s->tracked_at_ns,
	};
}

/* Add the live threads of cgroup id, as the "live" iterator reports them. */
static int add_live(const struct meter *m, uint64_t id, struct meter_usage *u)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	struct meter_live_rec buf[256];
	size_t have = 0;

	snprintf(path, sizeof(path), "%s/live", m->pin_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, (char *)buf + have, sizeof(buf) - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		have += (size_t)n;
		for (size_t i = 0; i < have / sizeof(buf[0]); i++) {
			if (buf[i].cg != id)
				continue;
			u->cpu_ns += buf[i].cpu_ns;
			u->rq_wait_ns += buf[i].rq_wait_ns;
			u->vol_switches += buf[i].vol_switches;
			u->invol_switches += buf[i].invol_switches;
		}
		if (have % sizeof(buf[0]))
			memmove(buf, (char *)buf + have - have % sizeof(buf[0]),
				have % sizeof(buf[0]));
		have %= sizeof(buf[0]);
		if (n == 0)
			return 0;
	}
}

int meter_read(struct meter *m, uint64_t cg_id, struct meter_usage *ret_usage)
{
	struct meter_cg_stats s1, s2;
	struct meter_usage u = {0};
	int r;

	for (int i = 0; i < READ_RETRIES; i++) {
		if (bpf_map_lookup_elem(m->tracked_fd, &cg_id, &s1) < 0)
			return -errno;
		if (s1.threads_ending != s1.threads_ended) {
			sched_yield();
			continue;
		}
		usage_from_stats(cg_id, &s1, &u);
		if (s1.threads_live == 0 && s1.threads_ending == s1.threads_ended) {
			u.consistent = 1;
			*ret_usage = u;
			return 0;
		}
		r = add_live(m, cg_id, &u);
		if (r < 0)
			return r;
		if (bpf_map_lookup_elem(m->tracked_fd, &cg_id, &s2) < 0)
			return -errno;
		if (s2.threads_ending == s1.threads_ending) {
			/* no thread ended meanwhile: ended + live is one consistent total */
			u.consistent = 1;
			*ret_usage = u;
			return 0;
		}
	}
	/* threads keep ending: the last attempt's figure, marked as such */
	u.consistent = 0;
	*ret_usage = u;
	return 0;
}

int meter_settle(struct meter *m, uint64_t cg_id, unsigned timeout_ms)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct meter_cg_stats s;

		if (bpf_map_lookup_elem(m->tracked_fd, &cg_id, &s) < 0)
			return -errno;
		if (s.threads_live <= 0 && s.threads_ending == s.threads_ended)
			return 0;
		if (monotonic_ns() > deadline)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
}

int meter_list(struct meter *m, uint64_t *ids, size_t max)
{
	uint64_t key, next;
	size_t n = 0;
	int r = bpf_map_get_next_key(m->tracked_fd, NULL, &next);

	while (r == 0) {
		if (n < max)
			ids[n] = next;
		n++;
		if (n > METER_MAX_TRACKED * 2)
			break; /* the map changed under us for too long */
		key = next;
		r = bpf_map_get_next_key(m->tracked_fd, &key, &next);
	}
	if (r < 0 && errno != ENOENT)
		return -errno;
	return (int)n;
}

int meter_drops(struct meter *m, struct meter_drops *ret_drops)
{
	ret_drops->task_storage = __atomic_load_n(&m->g->drop_task_storage, __ATOMIC_RELAXED);
	ret_drops->depth = __atomic_load_n(&m->g->drop_depth, __ATOMIC_RELAXED);
	ret_drops->stats_missing = __atomic_load_n(&m->g->drop_stats_missing, __ATOMIC_RELAXED);
	ret_drops->dying_full = __atomic_load_n(&m->g->dying_full, __ATOMIC_RELAXED);
	return 0;
}
