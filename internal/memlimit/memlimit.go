// Package memlimit sets the Go runtime's memory settings for an operator:
// the soft memory limit from the container's memory limit, as GOMEMLIMIT
// would, so the garbage collector works harder before the kernel's OOM
// killer would act instead of letting the heap double into the limit; and
// a garbage collection target of GCPercent instead of Go's 100. GOMEMLIMIT
// and GOGC, when set, win.
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

// GCPercent is the garbage collector's target (GOGC) keyferry runs with
// unless GOGC is set: the heap may grow by half of what was live after the
// last collection, not by all of it. The operator's CPU is spent in bursts
// (first syncs, rotations) and its memory is held all the time; measured
// in docs/performance.md ("GOGC=50 by default"), 50 instead of 100 lowers
// the peak RSS by a tenth to a seventh for a fifth or more CPU during a
// first sync.
const GCPercent = 50

// cgroupFiles hold the memory limit under cgroup v2 and v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// errNoLimit says the cgroup sets no memory limit.
var errNoLimit = errors.New("no memory limit")

// MinimumContainerLimit is the smallest container memory limit in which
// keyferry synced 1,000 ExternalSecrets in the project's benchmark
// (docs/performance.md, "Under a memory limit"). The limit counts the
// binary's pages as well as the heap; at 72 MiB the kernel evicted the
// code as fast as it ran, and the operator crawled instead of being
// killed.
const MinimumContainerLimit = 80 << 20

// Applied is what Apply found and did.
type Applied struct {
	// Container is the container's memory limit (0: none).
	Container int64
	// Soft is the Go runtime's memory limit Apply set (0: none set, or
	// GOMEMLIMIT set it).
	Soft int64
	// GCPercent is the garbage collector's target Apply set (0: GOGC set
	// it).
	GCPercent int
}

// BelowMinimum reports whether the container's limit is below
// MinimumContainerLimit: the operator should say so at start-up, since
// what follows is not an OOM kill anyone would notice but a slow crawl.
func (a Applied) BelowMinimum() bool {
	return a.Container > 0 && a.Container < MinimumContainerLimit
}

// ReleasesStartupPages reports whether the operator should hand back its
// executable's start-up pages when asked to (--release-startup-pages):
// only without a container limit. Under one, the kernel already takes
// back the pages not in use, and it shields the executable's mapped code
// from reclaim; unmapped, the pages start-up left behind and the code
// about to run again are reclaimed alike. In the benchmark under an 80 MiB
// limit one run of five with the release crawled and none of three
// without (docs/performance.md, "Under a memory limit").
func (a Applied) ReleasesStartupPages(asked bool) bool {
	return asked && a.Container == 0
}

// Apply sets the garbage collector's target to GCPercent unless GOGC is
// set, and the runtime's memory limit to Share of the container's limit
// unless GOMEMLIMIT is set. It reports the container's limit either way.
func Apply() (Applied, error) {
	var a Applied
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
		a.GCPercent = GCPercent
	}
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		limit, err := Parse(string(b))
		if errors.Is(err, errNoLimit) {
			return a, nil
		}
		if err != nil {
			return a, fmt.Errorf("reading the memory limit from %s: %w", f, err)
		}
		a.Container = limit
		if _, set := os.LookupEnv("GOMEMLIMIT"); set {
			return a, nil
		}
		a.Soft = SoftLimit(limit)
		debug.SetMemoryLimit(a.Soft)
		return a, nil
	}
	return a, nil
}

// SoftLimit is the Go runtime's memory limit Apply sets for a container
// limit of container bytes: Share of it.
func SoftLimit(container int64) int64 {
	return int64(float64(container) * Share)
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
