/*
 * uevent-send: send one message to a NETLINK_KOBJECT_UEVENT multicast group from userspace.
 *
 *   uevent-send [-g GROUP] FIELD...
 *
 * The payload is the FIELDs in order, each followed by a NUL, exactly the
 * layout of a kernel uevent ("ACTION@DEVPATH\0KEY=VALUE\0...\0"). It goes to
 * GROUP (default 1, the kernel's group), so a listener receives it next to
 * real kernel events, but with this socket's port id as the sender instead of
 * 0: the test for a daemon that must only trust the kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

int main(int argc, char **argv)
{
	unsigned long group = 1;
	int opt;

	while ((opt = getopt(argc, argv, "g:")) != -1) {
		if (opt != 'g') {
			fprintf(stderr, "usage: uevent-send [-g GROUP] FIELD...\n");
			return 2;
		}
		group = strtoul(optarg, NULL, 0);
	}
	if (optind >= argc || group < 1 || group > 32) {
		fprintf(stderr, "usage: uevent-send [-g GROUP] FIELD...\n");
		return 2;
	}

	static char buf[8192];
	size_t len = 0;
	for (int i = optind; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		if (len + n > sizeof buf) {
			fprintf(stderr, "uevent-send: payload longer than %zu bytes\n", sizeof buf);
			return 2;
		}
		memcpy(buf + len, argv[i], n);
		len += n;
	}

	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (fd < 0) {
		perror("uevent-send: socket");
		return 1;
	}
	/* Bind to get a port id assigned, so we can report which one the listener sees. */
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	socklen_t llen = sizeof local;
	if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &llen) < 0) {
		perror("uevent-send: bind");
		return 1;
	}
	struct sockaddr_nl dest = { .nl_family = AF_NETLINK, .nl_groups = 1u << (group - 1) };
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&dest, sizeof dest) < 0) {
		perror("uevent-send: sendto");
		return 1;
	}
	printf("sent %zu bytes to group %lu from port %u\n", len, group, local.nl_pid);
	return 0;
}
