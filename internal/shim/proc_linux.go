//go:build linux

package shim

import "syscall"

// killChildren SIGKILLs every process whose parent is the shim, found by scanning /proc,
// and says how many it found. It only runs when the command left something behind.
func killChildren() (killed int) {
	self := syscall.Getpid()
	fd, err := syscall.Open("/proc", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err != nil || n <= 0 {
			return killed
		}
		_, _, names := syscall.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			if pid := atoi(name); pid > 0 && parentOf(pid) == self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed++
			}
		}
	}
}

// parentOf reads the ppid from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold
// spaces and parentheses, so the fields start after the last ')'). -1 when unknown.
func parentOf(pid int) int {
	var buf [512]byte
	fd, err := syscall.Open("/proc/"+itoa(pid)+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	n, _ := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if n <= 0 {
		return -1
	}
	return statPPid(buf[:n])
}

// ParentOf is parentOf for the agent's Port API proxy, which walks a run's process tree
// with the same (fuzzed) parser.
func ParentOf(pid int) int { return parentOf(pid) }

// StatPPid is statPPid, for the C shim's test (internal/shim/cshimtest), which checks that
// both shims read the same ppid from the same bytes.
func StatPPid(s []byte) int { return statPPid(s) }

// statPPid is the ppid field of a /proc/PID/stat line, -1 if there is none. The command
// chooses its comm, so this parses untrusted bytes.
func statPPid(s []byte) int {
	i := len(s) - 1
	for i >= 0 && s[i] != ')' {
		i--
	}
	// ") S 1234 ..."
	if i < 0 || i+4 >= len(s) {
		return -1
	}
	rest := s[i+4:]
	end := 0
	for end < len(rest) && rest[end] != ' ' {
		end++
	}
	return atoi(string(rest[:end]))
}

// atoi parses a non-negative decimal; -1 for anything else.
func atoi(s string) int {
	if s == "" || len(s) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func itoa(n int) string { return itoa64(int64(n)) }

// Args is the process's argv after the program name, read from /proc/self/cmdline: the
// os package (whose os.Args this is) is not imported.
func Args() ([]string, error) {
	all, err := cmdline()
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[1:], nil
}

// cmdline is the process's whole argv.
func cmdline() ([]string, error) {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var all []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		all = append(all, buf[:n]...)
	}
	var args []string
	start := 0
	for i, c := range all {
		if c == 0 {
			args = append(args, string(all[start:i]))
			start = i + 1
		}
	}
	return args, nil
}

// uidProcesses counts the processes of uid: /proc/PID belongs to the process's uid (the
// command and its children are dumpable).
func uidProcesses(uid int) int64 {
	fd, err := syscall.Open("/proc", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer syscall.Close(fd)
	var n int64
	buf := make([]byte, 8192)
	for {
		got, err := syscall.ReadDirent(fd, buf)
		if err != nil || got <= 0 {
			return n
		}
		_, _, names := syscall.ParseDirent(buf[:got], -1, nil)
		for _, name := range names {
			var st syscall.Stat_t
			if atoi(name) > 0 && syscall.Stat("/proc/"+name, &st) == nil && int(st.Uid) == uid {
				n++
			}
		}
	}
}
