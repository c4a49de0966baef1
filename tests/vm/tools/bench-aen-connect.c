/*
 * bench-aen-connect: nvme-cli's udev autoconnect rule without udev and systemd.
 *
 *   bench-aen-connect [NVME]
 *
 * For each kernel uevent of a discovery log change AEN (SUBSYSTEM=nvme, NVME_AEN=0x70f002) it
 * starts, without waiting for it, what 70-nvmf-autoconnect.rules has nvmf-connect@.service run:
 * "nvme connect-all --quiet --device=nvmeX --transport=.. --traddr=.. --trsvcid=..
 * --host-traddr=.. --host-iface=..". NVME defaults to nvme. One line per AEN goes to stdout.
 * The reference is thereby faster than the real chain: no udev worker, no systemctl, no unit start.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

/* field BUF LEN KEY: the value of KEY=VALUE in a uevent payload, or NULL. */
static const char *field(const char *buf, size_t len, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		if (strncmp(buf + i, key, klen) == 0 && buf[i + klen] == '=')
			return buf + i + klen + 1;
	}
	return NULL;
}

static const char *or_none(const char *s)
{
	return s && *s ? s : "none";
}

int main(int argc, char **argv)
{
	const char *nvme = argc > 1 ? argv[1] : "nvme";
	static char buf[16384];
	char opt[6][320];

	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (fd < 0) {
		perror("bench-aen-connect: socket");
		return 1;
	}
	int rcvbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
	struct sockaddr_nl local = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
		perror("bench-aen-connect: bind");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# listening\n");
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		const char *sub = field(buf, n, "SUBSYSTEM"), *aen = field(buf, n, "NVME_AEN");
		const char *dev = field(buf, n, "DEVNAME");
		if (!sub || strcmp(sub, "nvme") || !aen || strcmp(aen, "0x70f002") || !dev)
			continue;
		snprintf(opt[0], sizeof opt[0], "--device=%s", dev);
		snprintf(opt[1], sizeof opt[1], "--transport=%s", or_none(field(buf, n, "NVME_TRTYPE")));
		snprintf(opt[2], sizeof opt[2], "--traddr=%s", or_none(field(buf, n, "NVME_TRADDR")));
		snprintf(opt[3], sizeof opt[3], "--trsvcid=%s", or_none(field(buf, n, "NVME_TRSVCID")));
		snprintf(opt[4], sizeof opt[4], "--host-traddr=%s", or_none(field(buf, n, "NVME_HOST_TRADDR")));
		snprintf(opt[5], sizeof opt[5], "--host-iface=%s", or_none(field(buf, n, "NVME_HOST_IFACE")));
		printf("aen %s: %s connect-all --quiet %s %s %s %s %s %s\n", dev, nvme,
		       opt[0], opt[1], opt[2], opt[3], opt[4], opt[5]);
		if (fork() == 0) {
			execlp(nvme, nvme, "connect-all", "--quiet", opt[0], opt[1], opt[2], opt[3],
			       opt[4], opt[5], (char *)NULL);
			_exit(127);
		}
	}
}
