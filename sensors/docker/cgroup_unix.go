//go:build unix

package docker

import "syscall"

// file is an open cgroup file.
type file int

const noFile file = -1

func openFile(path string) (file, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return noFile, err
	}
	return file(fd), nil
}

// read reads the whole file from offset 0 into buf. One pread suffices: cgroup files are
// generated in one go and are far smaller than buf.
func (f file) read(buf []byte) ([]byte, error) {
	for {
		n, err := syscall.Pread(int(f), buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func (f file) close() { _ = syscall.Close(int(f)) }
