/* netns.c -- a task's network namespace made on a thread of its own, while the caller does the rest of its start work. */
#include "internal.h"

#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct sbx_netns {
	pthread_t thread; /* the thread making it, until joined */
	int joined;	  /* 1 once the thread is joined */
	int fd;		  /* nsfs fd of the namespace; -1 if none */
	int err;	  /* negative errno of the failed step, 0 if none */
	const char *what; /* the failed step */
};

int sbx_loopback_up(void)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

/*
 * A namespace belongs to threads, not processes: this thread alone moves into the new
 * one, which outlives it through the fd it opens.  Owned by our user namespace (host
 * root's), as one made by clone3 would be: the task, in a user namespace of its own,
 * holds no capability over it.
 */
static void *netns_thread(void *arg)
{
	struct sbx_netns *ns = arg;
	int r;

	if (unshare(CLONE_NEWNET) < 0) {
		ns->err = -errno;
		ns->what = "create the task's network namespace";
		return NULL;
	}
	r = sbx_loopback_up();
	if (r < 0) {
		ns->err = r;
		ns->what = "bring loopback up";
		return NULL;
	}
	ns->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->fd < 0) {
		ns->err = -errno;
		ns->what = "open the task's network namespace";
	}
	return NULL;
}

int sbx_netns_start(struct sbx_netns **ret_ns)
{
	struct sbx_netns *ns = calloc(1, sizeof(*ns));
	int r;

	if (!ns)
		return -ENOMEM;
	ns->fd = -1;
	r = pthread_create(&ns->thread, NULL, netns_thread, ns);
	if (r != 0) {
		free(ns);
		return -r;
	}
	*ret_ns = ns;
	return 0;
}

int sbx_netns_fd(struct sbx_netns *ns, struct sbx_err *err)
{
	if (!ns->joined) {
		pthread_join(ns->thread, NULL);
		ns->joined = 1;
	}
	if (ns->err < 0)
		return sbx_fail(err, ns->err, "cannot %s: %s", ns->what, strerror(-ns->err));
	return ns->fd;
}

struct sbx_netns *sbx_netns_free(struct sbx_netns *ns)
{
	if (!ns)
		return NULL;
	if (!ns->joined)
		pthread_join(ns->thread, NULL);
	if (ns->fd >= 0)
		close(ns->fd);
	free(ns);
	return NULL;
}
