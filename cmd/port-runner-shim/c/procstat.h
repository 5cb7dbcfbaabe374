/* The ppid field of a /proc/PID/stat line, shared by the shim and its fuzz test
 * (internal/shim/cshimtest): the command chooses its comm, so this parses untrusted bytes.
 * The fields start after the last ')' ("pid (comm) state ppid ..."); -1 when there is none. */
#ifndef PORT_RUNNER_PROCSTAT_H
#define PORT_RUNNER_PROCSTAT_H

#include <stddef.h>

static long stat_ppid(const char *s, size_t n) {
	size_t i = n;
	while (i > 0 && s[i - 1] != ')') i--;
	if (i == 0) return -1;
	/* s[i-1] is the last ')'; ") S 1234 ...": the ppid starts 3 bytes later */
	size_t p = i + 3;
	if (p >= n) return -1;
	long v = 0;
	size_t digits = 0;
	for (; p < n && s[p] != ' '; p++) {
		if (s[p] < '0' || s[p] > '9' || ++digits > 9) return -1;
		v = v * 10 + (s[p] - '0');
	}
	return digits ? v : -1;
}

#endif
