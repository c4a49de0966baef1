/*
 * bench-floor: the kernel's own floor for connecting controllers. Each line of FILE is one
 * option string (as nvme-monitor --dry-run prints what it would write); they are written to
 * /dev/nvme-fabrics one after another, each on its own open file as a connect is, with
 * nothing else done between them: no discovery, no sysfs read, no registry, no state file.
 *
 *   bench-floor FILE
 *
 * Exit 0 when every write created a controller, 1 otherwise (each failure is on stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char line[4096], reply[256];
	int failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: bench-floor FILE\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\n");
		line[n] = 0;
		if (n == 0)
			continue;
		int fd = open("/dev/nvme-fabrics", O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			perror("/dev/nvme-fabrics");
			return 1;
		}
		if (write(fd, line, n) != (ssize_t)n) {
			fprintf(stderr, "bench-floor: %s: %s\n", line, strerror(errno));
			failed = 1;
		} else if (read(fd, reply, sizeof(reply) - 1) < 0) {
			fprintf(stderr, "bench-floor: reading the reply: %s\n", strerror(errno));
			failed = 1;
		}
		close(fd);
	}
	fclose(f);
	return failed;
}
