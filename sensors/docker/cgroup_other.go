//go:build !unix

package docker

import (
	"errors"
	"io"
	"os"
)

// file is a cgroup file; without pread it is reopened for every read.
type file string

const noFile file = ""

func openFile(path string) (file, error) {
	if _, err := os.Stat(path); err != nil {
		return noFile, err
	}
	return file(path), nil
}

func (f file) read(buf []byte) ([]byte, error) {
	h, err := os.Open(string(f))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	n, err := io.ReadFull(h, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

func (f file) close() {}
