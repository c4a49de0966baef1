/*
 * bench-rusage: run a command, report its wall time, peak RSS and CPU time.
 *
 *   bench-rusage COMMAND [ARG...]
 *
 * Prints one line: "wall_ms=N maxrss_kb=N user_ms=N sys_ms=N rc=N". The command's own
 * output goes to /dev/null. Peak RSS is ru_maxrss from wait4(2), the kernel's own high-water
 * mark for that one process (busybox has no `time -v`).
 */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

static long ms_of(struct timeval tv)
{
	return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-rusage COMMAND [ARG...]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench-rusage: fork");
		return 1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("bench-rusage: wait4");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("wall_ms=%ld maxrss_kb=%ld user_ms=%ld sys_ms=%ld rc=%d\n",
	       (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L,
	       ru.ru_maxrss, ms_of(ru.ru_utime), ms_of(ru.ru_stime), rc);
	return 0;
}
