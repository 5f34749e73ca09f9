package policy

import "syscall"

// readOnlyMount reports whether path is on a read-only mount (statfs ST_RDONLY), where
// nobody can write whatever the mode bits say. A variable for the tests.
var readOnlyMount = func(path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return false
	}
	return st.Flags&stRdonly != 0
}

const stRdonly = 0x1 // ST_RDONLY in statfs(2)'s f_flags
