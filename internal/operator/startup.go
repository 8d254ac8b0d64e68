package operator

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// startupTrace logs how long after the process started each step of the
// start-up took, once per step: the manager built, the caches synced, the
// first Secret written (the step constants). It is what docs/performance.md's start-up breakdown
// is read from.
type startupTrace struct {
	start time.Time
	log   logr.Logger
	once  sync.Map // step → *sync.Once
	// stepEnded, when set, runs after a step is logged, once per step.
	stepEnded func(step string)
}

// The steps of the start-up trace.
const (
	stepInitialised  = "packages initialised"
	stepBuilt        = "operator built"
	stepCachesSynced = "caches synced"
	stepFirstSecret  = "first Secret written"
)

func newStartupTrace(start time.Time, log logr.Logger) *startupTrace {
	if start.IsZero() {
		start = processStart()
	}
	return &startupTrace{start: start, log: log.WithName("startup")}
}

// mark logs step the first time it is reached.
func (t *startupTrace) mark(step string) {
	o, _ := t.once.LoadOrStore(step, &sync.Once{})
	o.(*sync.Once).Do(func() {
		t.log.Info("start-up step reached", "step", step, "sinceProcessStart", time.Since(t.start).Round(time.Millisecond).String())
		if t.stepEnded != nil {
			t.stepEnded(step)
		}
	})
}

// cachesSynced is a runnable that marks the moment the informers synced.
func (t *startupTrace) cachesSynced(wait func(context.Context) bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if wait(ctx) {
			t.mark(stepCachesSynced)
		}
		return nil
	}
}

// processStart reads how long ago this process started from /proc (its
// start in clock ticks since boot, USER_HZ = 100, against the uptime), so
// package initialisation is counted too; it falls back to now.
func processStart() time.Time {
	now := time.Now()
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return now
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 20 {
		return now
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return now
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return now
	}
	f := strings.Fields(string(up))
	if len(f) == 0 {
		return now
	}
	uptime, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return now
	}
	age := time.Duration(uptime*float64(time.Second)) - time.Duration(ticks)*10*time.Millisecond
	if age < 0 {
		return now
	}
	return now.Add(-age)
}
