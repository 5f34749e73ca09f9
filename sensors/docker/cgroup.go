package docker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// unlimited is the smallest memory limit treated as "no limit": cgroup v1 reports an unlimited
// group as 9223372036854771712 (math.MaxInt64 rounded down to a page), v2 as "max".
const unlimited = 1 << 62

// cgroupFiles are the files one running container's CPU and memory are read from, resolved
// once per container start.
type cgroupFiles struct {
	v2       bool
	cpu      string // v1 cpuacct.usage (ns); v2 cpu.stat (usage_usec)
	memUsage string // v1 memory.usage_in_bytes; v2 memory.current
	memLimit string // v1 memory.limit_in_bytes; v2 memory.max
	memStat  string // memory.stat
}

// cgroupReading is one read of a container's cgroup files.
type cgroupReading struct {
	cpuNs    uint64 // cumulative CPU time
	memBytes int64  // usage minus inactive file cache, like docker stats
	limit    int64  // 0 when unlimited
}

// resolveCgroup probes the places Docker puts a container's cgroup under root and returns the
// first whose files are readable, or nil. parent is HostConfig.CgroupParent ("" for the
// default): a cgroupfs path such as "/ares", or a systemd slice such as "ares-web.slice".
func resolveCgroup(root, id, parent string, buf []byte) *cgroupFiles {
	for _, cg := range cgroupCandidates(root, id, parent) {
		o, err := openCgroup(cg)
		if err != nil {
			continue
		}
		_, err = o.read(buf)
		o.close()
		if err == nil {
			return cg
		}
	}
	return nil
}

// cgroupCandidates lists, most likely first, where the container's cgroup may be.
func cgroupCandidates(root, id, parent string) []*cgroupFiles {
	var rels []string // container directory relative to a hierarchy root
	if parent != "" {
		if strings.HasSuffix(parent, ".slice") {
			rels = append(rels, filepath.Join(expandSlice(parent), "docker-"+id+".scope"))
		}
		rels = append(rels, filepath.Join(parent, id))
	}
	rels = append(rels, filepath.Join("docker", id), filepath.Join("system.slice", "docker-"+id+".scope"))

	var out []*cgroupFiles
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		for _, rel := range rels {
			dir := filepath.Join(root, rel)
			out = append(out, &cgroupFiles{
				v2:       true,
				cpu:      filepath.Join(dir, "cpu.stat"),
				memUsage: filepath.Join(dir, "memory.current"),
				memLimit: filepath.Join(dir, "memory.max"),
				memStat:  filepath.Join(dir, "memory.stat"),
			})
		}
		return out
	}
	for _, rel := range rels {
		mem := filepath.Join(root, "memory", rel)
		for _, ctl := range []string{"cpuacct", "cpu,cpuacct"} {
			out = append(out, &cgroupFiles{
				cpu:      filepath.Join(root, ctl, rel, "cpuacct.usage"),
				memUsage: filepath.Join(mem, "memory.usage_in_bytes"),
				memLimit: filepath.Join(mem, "memory.limit_in_bytes"),
				memStat:  filepath.Join(mem, "memory.stat"),
			})
		}
	}
	return out
}

// expandSlice turns a systemd slice name into its path: "a-b.slice" → "a.slice/a-b.slice".
func expandSlice(slice string) string {
	name := strings.TrimSuffix(strings.TrimPrefix(slice, "/"), ".slice")
	if name == "" || name == "-" || strings.Contains(name, "/") {
		return slice // not a plain slice name: use as a path
	}
	var path []string
	prefix := ""
	for part := range strings.SplitSeq(name, "-") {
		prefix += part
		path = append(path, prefix+".slice")
		prefix += "-"
	}
	return filepath.Join(path...)
}

// cgroupHandle holds a container's cgroup files open: cgroup files regenerate their content on
// every read from offset 0, so a collect costs one pread per file instead of an open, a read
// and a close (open is by far the most expensive of the three).
type cgroupHandle struct {
	cg                               *cgroupFiles
	cpu, memUsage, memLimit, memStat file
	used                             int // the collect that last read it
}

func openCgroup(cg *cgroupFiles) (*cgroupHandle, error) {
	o := &cgroupHandle{cg: cg, cpu: noFile, memUsage: noFile, memLimit: noFile, memStat: noFile}
	for _, f := range []struct {
		fd   *file
		path string
	}{{&o.cpu, cg.cpu}, {&o.memUsage, cg.memUsage}, {&o.memLimit, cg.memLimit}, {&o.memStat, cg.memStat}} {
		fd, err := openFile(f.path)
		if err != nil {
			o.close()
			return nil, err
		}
		*f.fd = fd
	}
	return o, nil
}

func (o *cgroupHandle) close() {
	for _, f := range []*file{&o.cpu, &o.memUsage, &o.memLimit, &o.memStat} {
		if *f != noFile {
			f.close()
			*f = noFile
		}
	}
}

// read reads the container's CPU and memory. buf is scratch space (readBufSize).
func (o *cgroupHandle) read(buf []byte) (cgroupReading, error) {
	var r cgroupReading
	b, err := o.cpu.read(buf)
	if err != nil {
		return r, err
	}
	if o.cg.v2 {
		usec, ok := field(b, "usage_usec")
		if !ok {
			return r, errors.New("cpu.stat: no usage_usec")
		}
		r.cpuNs = usec * 1000
	} else if r.cpuNs, err = parseUint(b); err != nil {
		return r, err
	}

	if b, err = o.memUsage.read(buf); err != nil {
		return r, err
	}
	usage, err := parseUint(b)
	if err != nil {
		return r, err
	}
	if b, err = o.memLimit.read(buf); err != nil {
		return r, err
	}
	limit, err := parseUint(b)
	if err != nil {
		return r, err
	}
	if b, err = o.memStat.read(buf); err != nil {
		return r, err
	}
	key := "total_inactive_file"
	if o.cg.v2 {
		key = "inactive_file"
	}
	if inactive, ok := field(b, key); ok && inactive < usage {
		usage -= inactive
	}
	r.memBytes = int64(min(usage, unlimited))
	if limit < unlimited {
		r.limit = int64(limit)
	}
	return r, nil
}

// parseUint parses a cgroup single-value file; "max" is unlimited.
func parseUint(b []byte) (uint64, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return 1<<63 - 1, nil
	}
	v, ok := parseDec(b)
	if !ok {
		return 0, fmt.Errorf("not a number: %q", b)
	}
	return v, nil
}

// parseDec parses an unsigned decimal without allocating.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// field finds "key value" in a flat-keyed cgroup file such as memory.stat or cpu.stat.
func field(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(key) && line[len(key)] == ' ' && string(line[:len(key)]) == key {
			return parseDec(bytes.TrimSpace(line[len(key)+1:]))
		}
	}
	return 0, false
}
