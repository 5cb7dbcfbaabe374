package executor

import "golang.org/x/sys/unix"

// emptyDir reports whether dir holds no entry (false when it cannot tell). It reads the
// directory itself rather than through os.File, which would register it with the poller.
func emptyDir(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var buf [512]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil {
			return false
		}
		if n == 0 {
			return true
		}
		if _, _, names := unix.ParseDirent(buf[:n], -1, nil); len(names) > 0 {
			return false // ParseDirent leaves out "." and ".."
		}
	}
}
