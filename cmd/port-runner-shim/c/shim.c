/*
 * port-runner-shim in C: the exec shim every command of the agent runs under, with the
 * protocol of the Go shim (package internal/shim; README "Isolation"):
 *
 *   port-runner-shim [OPTION...] -- PATH ARGV0 [ARG...]      fd 3: the executor's control socket
 *   port-runner-shim --version
 *
 * 'T' on fd 3: SIGTERM to the command's process group; 'K': SIGKILL to the group and its leader;
 * 'R': renew the fence (only 'R' and 'L' do: a 'T' sent late must not give the command more
 * time); "L<N>;" (decimal N): the agent holds the run's lease for N ms whatever becomes of it,
 * so the fence's deadline is N ms from now (an 'L' message another byte breaks is ignored,
 * and that byte read as itself); end of file: the agent died: SIGTERM, then SIGKILL after 5 s
 * (or at the fence, if that comes first). --fence MS: the fence's deadline is MS milliseconds
 * (CLOCK_BOOTTIME) after the start, then after each 'R' (or N after each 'L' message); when it
 * passes, the command's tree is killed. --renewals FD (4, or 5 after a ruleset): a pipe the
 * executor writes its 'R's to instead; the shim reads it only when it looks at the fence (at
 * least every MS/8), so a renewal wakes nobody: an 'R' there renews the fence to MS after the
 * previous look (it was written after it), never moving the deadline earlier. --gate 3: the
 * command starts only once the executor writes 'G' on fd 3: the child does everything up to its
 * exec (below), then reads one byte of fd 3; end of file (the agent died) or any other byte: it
 * never execs, and the shim says why ("not started: ...") and exits 127. If the command cannot start, the
 * reason (errno text, lower case like Go's) goes to fd 3 and the shim exits 127. Otherwise it
 * exits as the command did: the same code, or by the same signal. The shim is non-dumpable and a
 * child subreaper; the command runs in its own process group with PDEATHSIG=SIGKILL; when the
 * command's leader exits, everything left (in the group or reparented to the shim) is killed
 * and reaped.
 *
 * Options, applied in the child between fork and exec, in this order (the shim itself stays
 * outside all of them, so it can always end the command's tree):
 *   --cgroup FILE      write the child into this cgroup.procs file (repeatable)
 *   --oom N            write N to /proc/self/oom_score_adj (raising needs no privilege)
 *   --rlimit R:S:H     setrlimit(R, S, H), R a number (RLIMIT_*) (repeatable)
 *   --ids UID:GID      setgroups(0), setgid, setuid, then drop every capability (ambient
 *                      ones too: they would survive the setuid and the exec) and check
 *                      that none is left; UID and GID are never 0 nor the shim's own
 *   --landlock FD:FL   landlock_restrict_self(FD, FL): the ruleset the agent built (go-landlock)
 * With --ids or --landlock the child also sets no_new_privs.
 *
 * Build (static, musl: its start-up is a fraction of glibc's; BENCHMARKS.md):
 *   musl-gcc -static -O2 -s -o port-runner-shim cmd/port-runner-shim/c/shim.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"

#define CONTROL_FD 3
/* What the shim tells the executor after the command's end, before exiting like it: a NUL
 * byte first, which no start error (errno text) has. */
#define NOTE_PROCESSES "\0limit processes"
#define DEATH_GRACE_MS 5000
#define MAX_RLIMITS 16
#define MAX_CGROUPS 4

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446 /* the same number on every architecture */
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

extern char **environ;

static void say(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* A decimal in [min, max], the whole of s up to the stop byte; 0 on success. */
static int parse_num(const char *s, char stop, long long min, long long max, long long *out, const char **end) {
	long long v = 0;
	int neg = 0, digits = 0;
	if (*s == '-') neg = 1, s++;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (++digits > 19 || v > (INT64_MAX - (*s - '0')) / 10) return -1;
		v = v * 10 + (*s - '0');
	}
	if (!digits || *s != stop) return -1;
	if (neg) v = -v;
	if (v < min || v > max) return -1;
	*out = v;
	if (end) *end = s + (stop ? 1 : 0);
	return 0;
}

struct options {
	int ll_fd;
	unsigned ll_flags;
	long long fence_ms; /* 0: no fence */
	int renewals_fd;    /* -1: renewals come on fd 3 only */
	int gate;           /* --gate 3: the exec waits for the executor's 'G' */
	int oom_set;
	long long oom;
	long long uid, gid; /* -1: keep the agent's */
	int nrl;
	struct { int res; struct rlimit lim; } rl[MAX_RLIMITS];
	int ncg;
	const char *cg[MAX_CGROUPS];
};

/* parse_options reads the options before "--"; it returns the index of "--", or -1. */
static int parse_options(int argc, char **argv, struct options *o) {
	memset(o, 0, sizeof *o);
	o->ll_fd = -1;
	o->renewals_fd = -1;
	o->uid = o->gid = -1;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (i + 1 >= argc) return -1;
		const char *v = argv[i + 1], *p;
		long long a, b, c;
		if (!strcmp(argv[i], "--fence")) {
			if (parse_num(v, 0, 1, 86400000LL, &o->fence_ms, NULL)) return -1;
		} else if (!strcmp(argv[i], "--renewals")) {
			if (parse_num(v, 0, CONTROL_FD + 1, 5, &a, NULL)) return -1;
			o->renewals_fd = (int)a;
		} else if (!strcmp(argv[i], "--landlock")) {
			if (parse_num(v, ':', 3, 1 << 20, &a, &p) || parse_num(p, 0, 0, UINT32_MAX, &b, NULL)) return -1;
			o->ll_fd = (int)a, o->ll_flags = (unsigned)b;
		} else if (!strcmp(argv[i], "--oom")) {
			if (parse_num(v, 0, -1000, 1000, &o->oom, NULL)) return -1;
			o->oom_set = 1;
		} else if (!strcmp(argv[i], "--ids")) {
			if (parse_num(v, ':', 1, UINT32_MAX - 1, &a, &p) || parse_num(p, 0, 1, UINT32_MAX - 1, &b, NULL)) return -1;
			o->uid = a, o->gid = b;
		} else if (!strcmp(argv[i], "--rlimit")) {
			if (o->nrl == MAX_RLIMITS || parse_num(v, ':', 0, 63, &a, &p) ||
			    parse_num(p, ':', -1, INT64_MAX, &b, &p) || parse_num(p, 0, -1, INT64_MAX, &c, NULL)) return -1;
			o->rl[o->nrl].res = (int)a;
			o->rl[o->nrl].lim.rlim_cur = b < 0 ? RLIM_INFINITY : (rlim_t)b;
			o->rl[o->nrl].lim.rlim_max = c < 0 ? RLIM_INFINITY : (rlim_t)c;
			o->nrl++;
		} else if (!strcmp(argv[i], "--gate")) {
			if (strcmp(v, "3")) return -1; /* CONTROL_FD, the only value */
			o->gate = 1;
		} else if (!strcmp(argv[i], "--cgroup")) {
			if (o->ncg == MAX_CGROUPS || v[0] != '/') return -1;
			o->cg[o->ncg++] = v;
		} else {
			return -1;
		}
	}
	if (o->ll_fd >= 0 && o->ll_fd == o->renewals_fd) return -1;
	return i < argc ? i : -1;
}

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

/* now_ms is CLOCK_BOOTTIME in milliseconds: monotonic, and it goes on while the machine is
 * suspended (a suspended machine's pause counts against the fence); CLOCK_MONOTONIC where
 * the kernel lacks it. */
static long long now_ms(void) {
	struct timespec ts;
	if (clock_gettime(CLOCK_BOOTTIME, &ts)) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SIGKILL every process whose parent is the shim, found in /proc; how many. */
static int kill_children(void) {
	pid_t self = getpid();
	int killed = 0;
	DIR *d = opendir("/proc");
	if (!d) return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long long pid;
		if (parse_num(e->d_name, 0, 1, INT32_MAX, &pid, NULL)) continue;
		char path[64], buf[512];
		memcpy(path, "/proc/", 6);
		strcpy(path + 6, e->d_name);
		strcat(path, "/stat");
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t n = read(fd, buf, sizeof buf);
		close(fd);
		if (n > 0 && stat_ppid(buf, (size_t)n) == self) {
			kill((pid_t)pid, SIGKILL);
			killed++;
		}
	}
	closedir(d);
	return killed;
}

/* reap_all kills and reaps every child until none is left: orphans of the command are the
 * shim's (a subreaper), so killing level by level ends the whole tree. */
static void reap_all(void) {
	int misses = 0;
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0 || (pid < 0 && errno == EINTR)) continue;
		if (pid < 0) return; /* ECHILD */
		if (kill_children() > 0) {
			misses = 0;
			waitpid(-1, NULL, 0);
			continue;
		}
		/* None found (one just exited, or /proc is another pid namespace's): look again
		 * briefly, then give up rather than hold the run open for what we cannot see. */
		if (++misses > 20) return;
		sleep_ms(1);
	}
}

static void terminate(pid_t leader) {
	if (leader > 1) kill(-leader, SIGTERM);
}

static void kill_leader(pid_t leader) {
	if (leader <= 1) return; /* never kill(-1) nor kill(0): only a group the shim made */
	kill(-leader, SIGKILL);
	kill(leader, SIGKILL);
}

/* set_ids becomes uid:gid and keeps no capability: a non-root agent holds CAP_SETUID/SETGID
 * as ambient capabilities, and a change between two non-zero uids keeps them all, so without
 * the drop the command could setuid back to the agent. It then checks that none is left:
 * a command of another uid holding CAP_KILL could signal anything. Raw syscalls: libc's
 * setuid would try to reach other threads. */
static const char *set_ids(long long uid, long long gid) {
	if (syscall(SYS_setgroups, 0, NULL)) return "setgroups: ";
	if (syscall(SYS_setgid, (gid_t)gid)) return "setgid: ";
	if (syscall(SYS_setuid, (uid_t)uid)) return "setuid: ";
	struct { uint32_t version; int pid; } h = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
	struct { uint32_t effective, permitted, inheritable; } d[2];
	memset(d, 0, sizeof d);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) || syscall(SYS_capset, &h, d)) return "drop capabilities: ";
	memset(d, 0xff, sizeof d);
	if (syscall(SYS_capget, &h, d)) return "check capabilities: ";
	for (int k = 0; k < 2; k++)
		if (d[k].effective || d[k].permitted || d[k].inheritable) { errno = EPERM; return "capabilities left after the drop: "; }
	if (getuid() != (uid_t)uid || geteuid() != (uid_t)uid || getgid() != (gid_t)gid) { errno = EPERM; return "ids not taken: "; }
	return NULL;
}

static int write_all(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* child runs between fork and exec; on failure it writes "step: errno text" to errfd. */
static void child(const struct options *o, const char *path, char **argv, const sigset_t *mask, pid_t shim, int errfd) {
	const char *step = "";
	/* A pipe, unlike a socket, can be opened again through /proc/PID/fd by its uid while
	 * the process is dumpable: the renewals pipe goes before this one is. */
	if (o->renewals_fd >= 0) close(o->renewals_fd);
	/* Dumpable again (the exec would make it so anyway): a non-dumpable process's /proc
	 * files are root's, and this one must write its oom_score_adj. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) { step = "pdeathsig: "; goto fail; }
	if (getppid() != shim) _exit(127); /* the shim died before the line above */
	for (int k = 0; k < o->ncg; k++)
		if (write_all(o->cg[k], "0")) { step = "join cgroup: "; goto fail; }
	if (o->oom_set) {
		char b[16];
		long long v = o->oom;
		int n = 0, neg = v < 0;
		char t[16];
		int m = 0;
		if (neg) v = -v;
		do { t[m++] = (char)('0' + v % 10); v /= 10; } while (v);
		if (neg) b[n++] = '-';
		while (m) b[n++] = t[--m];
		b[n] = 0;
		if (write_all("/proc/self/oom_score_adj", b)) { step = "oom_score_adj: "; goto fail; }
	}
	for (int k = 0; k < o->nrl; k++)
		if (setrlimit(o->rl[k].res, &o->rl[k].lim)) { step = "setrlimit: "; goto fail; }
	if (o->uid >= 0 && (step = set_ids(o->uid, o->gid))) goto fail;
	step = "";
	if ((o->uid >= 0 || o->ll_fd >= 0) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { step = "no_new_privs: "; goto fail; }
	if (o->ll_fd >= 0 && syscall(SYS_landlock_restrict_self, o->ll_fd, o->ll_flags)) { step = "landlock: "; goto fail; }
	if (o->gate) {
		/* Set up: only the executor's go is missing. One byte, the shim reads the rest (it
		 * waits on errfd meanwhile, so it never reads fd 3 before this exec). */
		char b = 0;
		ssize_t r;
		while ((r = read(CONTROL_FD, &b, 1)) < 0 && errno == EINTR) {}
		if (r != 1 || b != 'G') {
			say(errfd, "not started: no go from the agent"); /* internal/shim's NotStarted */
			_exit(127);
		}
	}
	sigprocmask(SIG_SETMASK, mask, NULL);
	execve(path, argv, environ);
fail:;
	int e = errno;
	char msg[256];
	size_t n = strlen(step);
	memcpy(msg, step, n);
	const char *es = strerror(e);
	size_t m = strlen(es);
	if (n + m >= sizeof msg) m = sizeof msg - n - 1;
	memcpy(msg + n, es, m);
	n += m;
	/* Go's errno texts are lower case ("exec format error"); the agent shows either. */
	for (size_t k = 0; k < n; k++)
		if (msg[k] >= 'A' && msg[k] <= 'Z') msg[k] = (char)(msg[k] - 'A' + 'a');
	(void)!write(errfd, msg, n);
	_exit(127);
}

/* nproc_limit is the command's RLIMIT_NPROC under --ids (a uid of its own), 0 without one. */
static long long nproc_limit(const struct options *o) {
	long long n = 0;
	if (o->uid < 0) return 0;
	for (int k = 0; k < o->nrl; k++)
		if (o->rl[k].res == RLIMIT_NPROC && o->rl[k].lim.rlim_cur != RLIM_INFINITY) n = (long long)o->rl[k].lim.rlim_cur;
	return n;
}

/* uid_processes counts the processes of uid: /proc/PID belongs to the process's uid (the
 * command and its children are dumpable). */
static long long uid_processes(uid_t uid) {
	long long n = 0;
	DIR *d = opendir("/proc");
	if (!d) return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat sb;
		if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
		if (!fstatat(dirfd(d), e->d_name, &sb, 0) && sb.st_uid == uid) n++;
	}
	closedir(d);
	return n;
}

/* exit_like ends the shim as the command ended: its code, or by its signal. */
static int exit_like(int st) {
	if (!WIFSIGNALED(st)) return WEXITSTATUS(st);
	int sig = WTERMSIG(st);
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none); /* the command's crash, not the shim's: no core */
	signal(sig, SIG_DFL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	kill(getpid(), sig);
	sleep_ms(1000);
	return 128 + sig;
}

/* supervise passes the executor's control bytes on until the command's leader exits, reaping
 * orphans as they die (they would pile up as zombies); the leader stays unreaped, so its pid
 * (the group's id) is not reused before the shim is done with it. With a fence (fence_ms >
 * 0), the command's tree is killed at the fence's deadline: fence_ms after the start or the
 * last 'R', or N ms after the last "L<N>;" message; nothing else renews it.
 * poll's clock stops while the machine is suspended, so the shim wakes at least every
 * fence_ms/8 to look at CLOCK_BOOTTIME: the fence fires that late at most, never early. */
/* read_renewals empties the renewals pipe (non-blocking); whether it held an 'R'. */
static int read_renewals(int fd) {
	char b[64];
	int renewed = 0;
	for (;;) {
		ssize_t n = read(fd, b, sizeof b);
		if (n < 0 && errno == EINTR) continue;
		for (ssize_t i = 0; i < n; i++) renewed |= b[i] == 'R';
		if (n < (ssize_t)sizeof b) return renewed; /* empty, closed (the agent is gone), or drained */
	}
}

#define MAX_LASTING_MS (365LL * 24 * 3600 * 1000) /* an 'L' message's bound (a year), as the Go shim's */

static void supervise(pid_t leader, int sfd, long long fence_ms, int renewals_fd) {
	struct pollfd pfd[2] = {{CONTROL_FD, POLLIN, 0}, {sfd, POLLIN, 0}};
	long long looked = now_ms(); /* the last look at the renewals pipe */
	long long kill_at = -1, fence_at = fence_ms > 0 ? looked + fence_ms : -1;
	long long lasting = -1; /* the digits of an 'L' message so far; -1: none under way */
	for (;;) {
		long long now = now_ms(), timeout = -1;
		if (renewals_fd >= 0 && fence_at >= 0) {
			if (read_renewals(renewals_fd) && looked + fence_ms > fence_at) fence_at = looked + fence_ms;
			looked = now;
		}
		if (fence_at >= 0 && now >= fence_at) {
			kill_leader(leader); /* the leader's exit ends the loop below */
			fence_at = -1;
		}
		if (kill_at >= 0 && now >= kill_at) {
			kill_leader(leader);
			kill_at = -1;
		}
		if (kill_at >= 0) timeout = kill_at - now;
		if (fence_at >= 0) {
			long long f = fence_at - now, step = fence_ms / 8 > 0 ? fence_ms / 8 : 1;
			if (f > step) f = step;
			if (timeout < 0 || f < timeout) timeout = f;
		}
		if (poll(pfd, 2, (int)timeout) < 0) continue; /* EINTR */
		if (pfd[1].revents) {
			struct signalfd_siginfo ssi;
			while (read(sfd, &ssi, sizeof ssi) > 0) {}
			for (;;) {
				siginfo_t si;
				si.si_pid = 0;
				if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid == 0) break;
				if (si.si_pid == leader) return;
				waitpid(si.si_pid, NULL, WNOHANG);
			}
			siginfo_t si;
			si.si_pid = 0;
			if (!waitid(P_PID, leader, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == leader) return;
		}
		if (pfd[0].revents) {
			char b;
			ssize_t r = read(CONTROL_FD, &b, 1);
			if (r < 0 && errno == EINTR) continue;
			if (r == 1 && lasting >= 0) {
				if (b >= '0' && b <= '9') {
					if (lasting < MAX_LASTING_MS) lasting = lasting * 10 + (b - '0');
					if (lasting > MAX_LASTING_MS) lasting = MAX_LASTING_MS;
					continue;
				}
				if (b == ';') {
					if (fence_at >= 0) fence_at = now_ms() + lasting;
					lasting = -1;
					continue;
				}
				lasting = -1; /* a broken message: ignored, and b is read as itself */
			}
			if (r == 1 && b == 'L') {
				lasting = 0;
				continue;
			}
			if (r == 1 && b == 'R' && fence_at >= 0) fence_at = now_ms() + fence_ms; /* only 'R' and 'L' renew */
			if (r == 1 && b == 'T') terminate(leader);
			else if (r == 1 && b == 'K') kill_leader(leader);
			else if (r != 1) { /* end of file: the agent is gone; no renewal can come */
				terminate(leader);
				kill_at = now_ms() + DEATH_GRACE_MS;
				pfd[0].fd = -1;
			}
		}
	}
}

/* await_exec waits, under --gate, until the fork has exec'd or could not (errfd readable). The
 * fork waits for its go in a process group of its own, which no SIGCONT of the executor's
 * reaches: stopped by a process of its uid meanwhile (a command of the agent's, without runAs),
 * it would read no go and this shim no byte of the executor's, and the run would never end,
 * its timeout included. A stopped fork is resumed (SIGCONT: same session). */
static void await_exec(pid_t leader, int errfd) {
	struct pollfd pf = {errfd, POLLIN, 0};
	while (poll(&pf, 1, 100) <= 0) {
		siginfo_t si;
		si.si_pid = 0;
		if (!waitid(P_PID, leader, &si, WSTOPPED | WNOHANG) && si.si_pid == leader) kill(leader, SIGCONT);
	}
}

int main(int argc, char **argv) {
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		say(1, "port-runner-shim (C) protocol 3\n"); /* internal/shim's Protocol */
		return 0;
	}
	/* Non-dumpable: /proc/PID/environ, mem, maps then need CAP_SYS_PTRACE. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		say(2, "port-runner-shim: PR_SET_CHILD_SUBREAPER failed\n");
		return 127;
	}
	struct options o;
	int dd = parse_options(argc, argv, &o);
	if (dd < 0 || argc - dd < 3) {
		say(2, "port-runner-shim: usage: [--fence MS] [--renewals FD] [--cgroup FILE] [--oom N] [--rlimit R:S:H] [--ids UID:GID] [--landlock FD:FLAGS] [--gate 3] -- PATH ARGV0 [ARG...]\n");
		return 127;
	}
	/* A run's uid is never the agent's (nor root: the parser refuses 0): the command would
	 * reach the agent and every run of it. */
	if (o.uid >= 0 && ((uid_t)o.uid == getuid() || (uid_t)o.uid == geteuid() || (gid_t)o.gid == getgid() || (gid_t)o.gid == getegid())) {
		say(CONTROL_FD, "--ids: the run's uid or gid is the agent's own");
		return 127;
	}
	const char *path = argv[dd + 1];
	char **cargv = &argv[dd + 2];
	/* The command must not inherit the control socket, nor the ruleset. */
	fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC);
	if (o.renewals_fd >= 0) { /* a pipe, and open: else no renewal would ever come; say so now */
		struct stat rst;
		int bad = fstat(o.renewals_fd, &rst) ? errno : !S_ISFIFO(rst.st_mode) ? EBADF : 0;
		if (!bad && (fcntl(o.renewals_fd, F_SETFD, FD_CLOEXEC) || fcntl(o.renewals_fd, F_SETFL, O_NONBLOCK))) bad = errno;
		if (bad) {
			char m[128] = "--renewals: ";
			strncat(m, strerror(bad), sizeof m - strlen(m) - 1);
			say(CONTROL_FD, m);
			return 127;
		}
	}
	if (o.ll_fd >= 0) fcntl(o.ll_fd, F_SETFD, FD_CLOEXEC);

	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	int errp[2];
	if (sfd < 0 || pipe2(errp, O_CLOEXEC)) {
		say(CONTROL_FD, strerror(errno));
		return 127;
	}
	pid_t shim = getpid();
	pid_t leader = fork();
	if (leader == 0) child(&o, path, cargv, &old, shim, errp[1]);
	close(errp[1]);
	if (o.ll_fd >= 0) close(o.ll_fd);
	if (leader < 0) {
		say(CONTROL_FD, strerror(errno));
		return 127;
	}
	char msg[256];
	ssize_t m;
	if (o.gate) await_exec(leader, errp[0]);
	while ((m = read(errp[0], msg, sizeof msg)) < 0 && errno == EINTR) {}
	close(errp[0]);
	if (m > 0) { /* the child could not exec: it said why and exits 127 */
		while (waitpid(leader, NULL, 0) < 0 && errno == EINTR) {}
		if (write(CONTROL_FD, msg, (size_t)m) < 0) {
			say(2, "could not start: ");
			(void)!write(2, msg, (size_t)m);
			say(2, "\n");
		}
		return 127;
	}
	supervise(leader, sfd, o.fence_ms, o.renewals_fd);
	/* RLIMIT_NPROC refuses a fork silently: if the run's uid (its own) holds as many
	 * processes as the limit as its command ends, the limit is why it ended, and the
	 * executor is told (its label says so). */
	long long nproc = nproc_limit(&o);
	int hit = nproc > 0 && uid_processes((uid_t)o.uid) >= nproc;
	/* The run is over when its command is: nothing of it may go on unobserved. */
	kill_leader(leader);
	int st = 0;
	while (waitpid(leader, &st, 0) < 0 && errno == EINTR) {}
	reap_all();
	if (hit) (void)!write(CONTROL_FD, NOTE_PROCESSES, sizeof NOTE_PROCESSES - 1);
	return exit_like(st);
}
