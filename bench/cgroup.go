package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyferry/keyferry/internal/memlimit"
)

// memoryCgroup is a cgroup with a memory limit, for -memory-limit: the
// controller runs in it as in a container with resources.limits.memory.
// The kernel charges it for the controller's anonymous memory and for the
// page cache the controller reads (its binary's pages), and reclaims or
// kills the process at the limit. Each controller start gets a cgroup of
// its own, so its peak is its own.
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
	file := "memory.limit_in_bytes"
	if g.v2 {
		file = "memory.max"
	}
	if err := g.write(file, strconv.FormatInt(limit, 10)); err != nil {
		_ = g.remove()
		return nil, err
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

// goMemLimit is the GOMEMLIMIT internal/memlimit would set in a container
// with this limit; the bench sets it because internal/memlimit reads the
// container's own cgroup files, which on this machine are the host's.
func goMemLimit(limit int64) string {
	return strconv.FormatInt(int64(float64(limit)*memlimit.Share), 10)
}

// peakMiB is the largest memory charge the cgroup has seen: anonymous
// memory and page cache.
func (g *memoryCgroup) peakMiB() float64 {
	file := "memory.max_usage_in_bytes"
	if g.v2 {
		file = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v / (1 << 20)
}

// oomKills counts the processes the kernel killed at the limit.
func (g *memoryCgroup) oomKills() int {
	file := "memory.oom_control"
	if g.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// remove deletes the cgroup once its processes have exited.
func (g *memoryCgroup) remove() error { return os.Remove(g.dir) }

func (g *memoryCgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(g.dir, file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("-memory-limit: setting %s: %w", file, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
