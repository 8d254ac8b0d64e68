package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// memoryCgroup is a cgroup with a memory limit, for -memory-limit: the
// controller runs in it as in a container with resources.limits.memory.
// The kernel charges it for the controller's anonymous memory and for the
// page cache the controller reads (its binary's pages), and reclaims or
// kills the process at the limit. Each controller start gets a cgroup of
// its own, so its peak is its own; stop removes it.
type memoryCgroup struct {
	dir string
	// v2 is a cgroup v2 (unified) hierarchy; otherwise v1's memory
	// controller.
	v2 bool
}

// newMemoryCgroup creates a cgroup limited to limit bytes under the
// machine's cgroup v2 hierarchy, or under cgroup v1's memory controller.
func newMemoryCgroup(name string, limit int64) (*memoryCgroup, error) {
	g := &memoryCgroup{}
	switch {
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		g.v2, g.dir = true, filepath.Join("/sys/fs/cgroup", name)
	case fileExists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
		g.dir = filepath.Join("/sys/fs/cgroup/memory", name)
	default:
		return nil, fmt.Errorf("-memory-limit: no cgroup v2 hierarchy or v1 memory controller is mounted under /sys/fs/cgroup")
	}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, fmt.Errorf("-memory-limit: %w", err)
	}
	if err := os.WriteFile(g.path("memory.limit_in_bytes", "memory.max"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		_ = g.remove()
		return nil, fmt.Errorf("-memory-limit: %w", err)
	}
	return g, nil
}

// command returns args run inside the cgroup: a shell that moves itself
// into it and then executes args, so that everything the controller
// allocates or reads is charged to the cgroup from its first instruction.
func (g *memoryCgroup) command(args []string) []string {
	script := fmt.Sprintf(`echo $$ > %s && exec "$@"`, filepath.Join(g.dir, "cgroup.procs"))
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

// peakMiB is the largest memory charge the cgroup has seen: anonymous
// memory and page cache.
func (g *memoryCgroup) peakMiB() float64 {
	v, _ := strconv.ParseFloat(g.read("memory.max_usage_in_bytes", "memory.peak"), 64)
	return v / (1 << 20)
}

// oomKills counts the processes the kernel killed at the limit.
func (g *memoryCgroup) oomKills() int {
	for _, line := range strings.Split(g.read("memory.oom_control", "memory.events"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// read returns the content of the cgroup's file (path), trimmed; "" when
// it cannot be read.
func (g *memoryCgroup) read(v1, v2 string) string {
	b, err := os.ReadFile(g.path(v1, v2))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// path is the cgroup's file named v1 under cgroup v1, v2 under v2.
func (g *memoryCgroup) path(v1, v2 string) string {
	if g.v2 {
		return filepath.Join(g.dir, v2)
	}
	return filepath.Join(g.dir, v1)
}

// remove deletes the cgroup once its processes have exited.
func (g *memoryCgroup) remove() error { return os.Remove(g.dir) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
