// Package memlimit sizes the Go runtime's soft memory limit from the
// container's memory limit, as GOMEMLIMIT would, so the garbage collector
// works harder before the kernel's OOM killer would act instead of letting
// the heap double (GOGC=100) into the limit. GOMEMLIMIT, when set, wins.
package memlimit

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the container's limit given to the Go runtime: the
// rest is for memory it does not manage (stacks in flight, the binary's
// mapped pages).
const Share = 0.9

// cgroupFiles hold the memory limit under cgroup v2 and v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// errNoLimit says the cgroup sets no memory limit.
var errNoLimit = errors.New("no memory limit")

// Apply sets the runtime's memory limit to Share of the container's limit
// unless GOMEMLIMIT is set. It returns the limit set, or 0 when it set none.
func Apply() (int64, error) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return 0, nil
	}
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		limit, err := Parse(string(b))
		if errors.Is(err, errNoLimit) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("reading the memory limit from %s: %w", f, err)
		}
		soft := int64(float64(limit) * Share)
		debug.SetMemoryLimit(soft)
		return soft, nil
	}
	return 0, nil
}

// Parse reads a cgroup memory limit file's content: bytes, or "max" (v2)
// or a value near MaxInt64 (v1) for no limit.
func Parse(content string) (int64, error) {
	s := strings.TrimSpace(content)
	if s == "max" {
		return 0, errNoLimit
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of bytes", truncate(s, 32))
	}
	// cgroup v1 reports "no limit" as the largest page-aligned int64.
	if v == 0 || v >= math.MaxInt64-(1<<20) {
		return 0, errNoLimit
	}
	return int64(v), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
