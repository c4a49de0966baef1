/*
 * uevent-dump: print every message on NETLINK_KOBJECT_UEVENT, one per line.
 *
 *   uevent-dump [-x] [-g GROUPS]
 *
 * Each line is "sender=<port id> len=<bytes> <payload>". The payload is
 * escaped text by default: printable ASCII as is, '\' as "\\", NUL as "\0",
 * any other byte as "\xNN", so the exact bytes (including the kernel's final
 * NUL) can be recovered from the line. With -x the payload is plain hex.
 * The sender port id is 0 for the kernel and the sending socket's port id for
 * anything sent from userspace, which is what a daemon must tell apart.
 *
 * GROUPS is the multicast group mask: 1 (default) is the kernel's group,
 * 2 is where udev re-broadcasts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

static void usage(void)
{
	fprintf(stderr, "usage: uevent-dump [-x] [-g GROUPS]\n");
	exit(2);
}

static void print_escaped(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == 0)
			fputs("\\0", stdout);
		else if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] < 0x20 || p[i] > 0x7e)
			printf("\\x%02x", p[i]);
		else
			putchar(p[i]);
	}
}

static void print_hex(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
	int hex = 0, opt;
	unsigned long groups = 1;

	while ((opt = getopt(argc, argv, "xg:")) != -1) {
		switch (opt) {
		case 'x': hex = 1; break;
		case 'g': groups = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (optind != argc || groups == 0)
		usage();

	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (fd < 0) {
		perror("uevent-dump: socket");
		return 1;
	}
	/* Bursts (a controller add brings half a dozen events) must not overflow. */
	int rcvbuf = 4 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct sockaddr_nl local = { .nl_family = AF_NETLINK, .nl_groups = groups };
	if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
		perror("uevent-dump: bind");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# listening groups=%lu\n", groups);

	/* A uevent is at most UEVENT_BUFFER_SIZE (2048) bytes; leave room to see longer ones. */
	static unsigned char buf[65536];
	for (;;) {
		struct sockaddr_nl sender;
		socklen_t len = sizeof sender;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&sender, &len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS: we lost events; say so in the stream and go on. */
			printf("# recv error: %s\n", strerror(errno));
			continue;
		}
		printf("sender=%u len=%zd ", sender.nl_pid, n);
		if (hex)
			print_hex(buf, (size_t)n);
		else
			print_escaped(buf, (size_t)n);
		putchar('\n');
	}
}
