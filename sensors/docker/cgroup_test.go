package docker

import (
	"os"
	"path/filepath"
	"testing"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// writeTree writes files (path relative to root → content) under a fresh root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// v1Files is a cgroup v1 container at rel (relative to each controller's root).
func v1Files(rel, cpuCtl, usage, limit string) map[string]string {
	return map[string]string{
		filepath.Join(cpuCtl, rel, "cpuacct.usage"):           "123456789\n",
		filepath.Join("memory", rel, "memory.usage_in_bytes"): usage + "\n",
		filepath.Join("memory", rel, "memory.limit_in_bytes"): limit + "\n",
		filepath.Join("memory", rel, "memory.stat"): "cache 4096\nrss 1000\ninactive_file 100\n" +
			"total_cache 4096\ntotal_rss 1000\ntotal_inactive_file 1048576\n",
	}
}

// v2Files is a cgroup v2 container at rel.
func v2Files(rel, usage, max string) map[string]string {
	return map[string]string{
		"cgroup.controllers":                 "cpu memory io\n",
		filepath.Join(rel, "cpu.stat"):       "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
		filepath.Join(rel, "memory.current"): usage + "\n",
		filepath.Join(rel, "memory.max"):     max + "\n",
		filepath.Join(rel, "memory.stat"):    "anon 1000\nfile 4096\ninactive_anon 0\nactive_file 0\ninactive_file 2097152\n",
	}
}

func TestCgroupResolveAndRead(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name   string
		files  map[string]string
		parent string
		want   cgroupReading
	}{
		{
			name:  "v1 cgroupfs default",
			files: v1Files("docker/"+testID, "cpuacct", "10485760", "67108864"),
			want:  cgroupReading{cpuNs: 123456789, memBytes: 9 * mib, limit: 64 * mib},
		},
		{
			name:  "v1 cpu,cpuacct and unlimited",
			files: v1Files("docker/"+testID, "cpu,cpuacct", "10485760", "9223372036854771712"),
			want:  cgroupReading{cpuNs: 123456789, memBytes: 9 * mib},
		},
		{
			name:  "v1 systemd driver",
			files: v1Files("system.slice/docker-"+testID+".scope", "cpuacct", "10485760", "67108864"),
			want:  cgroupReading{cpuNs: 123456789, memBytes: 9 * mib, limit: 64 * mib},
		},
		{
			name:   "v1 cgroupfs parent",
			files:  v1Files("ares/"+testID, "cpuacct", "10485760", "67108864"),
			parent: "/ares",
			want:   cgroupReading{cpuNs: 123456789, memBytes: 9 * mib, limit: 64 * mib},
		},
		{
			name:   "v1 systemd slice parent",
			files:  v1Files("ares.slice/ares-web.slice/docker-"+testID+".scope", "cpuacct", "10485760", "67108864"),
			parent: "ares-web.slice",
			want:   cgroupReading{cpuNs: 123456789, memBytes: 9 * mib, limit: 64 * mib},
		},
		{
			name:  "v1 inactive larger than usage",
			files: v1Files("docker/"+testID, "cpuacct", "1000", "67108864"),
			want:  cgroupReading{cpuNs: 123456789, memBytes: 1000, limit: 64 * mib},
		},
		{
			name:  "v2 systemd driver max",
			files: v2Files("system.slice/docker-"+testID+".scope", "10485760", "max"),
			want:  cgroupReading{cpuNs: 2500000, memBytes: 8 * mib},
		},
		{
			name:  "v2 cgroupfs default with limit",
			files: v2Files("docker/"+testID, "10485760", "33554432"),
			want:  cgroupReading{cpuNs: 2500000, memBytes: 8 * mib, limit: 32 * mib},
		},
		{
			name:  "v2 huge limit",
			files: v2Files("docker/"+testID, "10485760", "9223372036854775807"),
			want:  cgroupReading{cpuNs: 2500000, memBytes: 8 * mib},
		},
		{
			name:   "v2 slice parent",
			files:  v2Files("ares.slice/docker-"+testID+".scope", "10485760", "33554432"),
			parent: "ares.slice",
			want:   cgroupReading{cpuNs: 2500000, memBytes: 8 * mib, limit: 32 * mib},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			buf := make([]byte, readBufSize)
			cg := resolveCgroup(root, testID, tc.parent, buf)
			if cg == nil {
				t.Fatal("cgroup not resolved")
			}
			h, err := openCgroup(cg)
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			got, err := h.read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("read = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCgroupNotFound(t *testing.T) {
	buf := make([]byte, readBufSize)
	for name, files := range map[string]map[string]string{
		"v1 other container": v1Files("docker/ffff", "cpuacct", "1", "1"),
		"v2 other container": v2Files("docker/ffff", "1", "max"),
		"v1 no memory":       {filepath.Join("cpuacct/docker", testID, "cpuacct.usage"): "1\n"},
		"v2 garbage":         v2Files("docker/"+testID, "lots", "max"),
	} {
		t.Run(name, func(t *testing.T) {
			if cg := resolveCgroup(writeTree(t, files), testID, "", buf); cg != nil {
				t.Errorf("resolved %+v, want nil", cg)
			}
		})
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"system.slice":       "system.slice",
		"ares-web.slice":     "ares.slice/ares-web.slice",
		"a-b-c.slice":        "a.slice/a-b.slice/a-b-c.slice",
		"/custom/path.slice": "/custom/path.slice",
	} {
		if got := expandSlice(in); got != want {
			t.Errorf("expandSlice(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]uint64{"0\n": 0, "42": 42, " 67108864 \n": 67108864, "max\n": 1<<63 - 1} {
		got, err := parseUint([]byte(in))
		if err != nil || got != want {
			t.Errorf("parseUint(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "12a", "99999999999999999999"} {
		if _, err := parseUint([]byte(in)); err == nil {
			t.Errorf("parseUint(%q): no error", in)
		}
	}
	stat := []byte("inactive_file 7\ntotal_inactive_file 9\ninactive_filex 3")
	if v, ok := field(stat, "inactive_file"); !ok || v != 7 {
		t.Errorf("field inactive_file = %d, %v", v, ok)
	}
	if v, ok := field(stat, "total_inactive_file"); !ok || v != 9 {
		t.Errorf("field total_inactive_file = %d, %v", v, ok)
	}
	if _, ok := field(stat, "active_file"); ok {
		t.Error("field active_file found in a file without it")
	}
}
