// Command bench is keyferry's scale benchmark. It starts the real control
// plane, an HTTP JSON backend on loopback that counts its requests (reached
// through the ESO-compatible `webhook` provider, so any ESO-compatible
// controller can be measured on the same workload), runs the controller
// under test as a separate process, and reports:
//
//   - the floor: the time the API server takes to create N Secrets directly;
//   - time until every target Secret holds the expected data, and backend
//     calls until then; the first Secret written; every ExternalSecret
//     Ready; the API server's CPU seconds and requests by verb and resource
//     for the floor and the first sync (its /metrics), and optionally a CPU
//     profile of it (-profile);
//   - steady state over a few refresh windows: backend calls, Secret writes
//     and ExternalSecret status writes;
//   - rotation latency: one value changes at a random point of the refresh
//     window, several times (-rotations), time until every Secret using it
//     has it, as min / median / max;
//   - restart: backend calls in the first minute after a restart;
//   - peak RSS and CPU seconds of the controller, optionally with many
//     unrelated Secrets in the cluster.
//
// Usage: go run ./bench [flags]; `make bench` runs the 1,000-object scenarios.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyferry/keyferry/internal/memlimit"
)

type config struct {
	N, NS, D, K int
	Unrelated   int
	// UnrelatedWatched adds, to the unrelated-Secrets scenario, an
	// ExternalSecret that waits for a Secret it may not write, so that
	// keyferry's watch of every Secret's metadata runs (as it does once a
	// PushSecret exists or an ExternalSecret waits).
	UnrelatedWatched bool
	Refresh          time.Duration
	SteadyWindows    int
	RestartWindow    time.Duration
	Controller       string
	Out              string
	Writers          int
	SkipRestart      bool
	Rotations        int
	Profile          time.Duration
	// ControllerPprof is the controller's pprof address (host:port of
	// its --pprof-bind-address, which -controller must set): the memory
	// scenario then saves its heap profiles and reports its live heap.
	ControllerPprof string
	// MemoryLimit (bytes; 0: none) runs the controller in a cgroup with
	// this memory limit, as a container with resources.limits.memory.
	MemoryLimit int64
}

func main() {
	var c config
	flag.IntVar(&c.N, "n", 1000, "ExternalSecrets")
	flag.IntVar(&c.NS, "namespaces", 10, "namespaces (one SecretStore each)")
	flag.IntVar(&c.D, "data", 3, "data entries per ExternalSecret")
	flag.IntVar(&c.K, "keys", 100, "distinct remote keys")
	flag.IntVar(&c.Unrelated, "unrelated", 20000, "unrelated 1 KiB Secrets for the memory scenario (0 skips it)")
	flag.BoolVar(&c.UnrelatedWatched, "unrelated-watched", false, "in the memory scenario, also create an ExternalSecret that waits for a Secret it may not write (keyferry then watches every Secret's metadata, as with PushSecrets)")
	flag.DurationVar(&c.Refresh, "refresh", 30*time.Second, "refreshInterval of every ExternalSecret")
	flag.IntVar(&c.SteadyWindows, "steady-windows", 2, "refresh windows to observe in steady state")
	flag.DurationVar(&c.RestartWindow, "restart-window", time.Minute, "how long to count calls after a restart")
	flag.BoolVar(&c.SkipRestart, "skip-restart", false, "skip the restart scenario")
	flag.StringVar(&c.Controller, "controller", "bin/keyferry controller --metrics-bind-address=0 --health-probe-bind-address=0", "command line of the controller under test; KUBECONFIG is set for it")
	flag.StringVar(&c.Out, "out", "bin/bench", "directory for results (JSON)")
	flag.IntVar(&c.Writers, "writers", 16, "parallel writers for the floor")
	flag.IntVar(&c.Rotations, "rotations", 5, "value changes at random points of the refresh window")
	flag.DurationVar(&c.Profile, "profile", 0, "record a CPU profile of the API server for this long from the controller's start (bin/bench/apiserver-cpu.pprof)")
	flag.StringVar(&c.ControllerPprof, "controller-pprof", "", "host:port of the controller's pprof endpoint (its --pprof-bind-address, set in -controller): the memory scenario saves heap profiles (bin/bench/controller-heap{,-unrelated}.pprof) and reports the live heap")
	memoryLimit := flag.String("memory-limit", "", "run the controller in a cgroup with this memory limit (a Kubernetes quantity such as 64Mi), with the GOMEMLIMIT keyferry sets in such a container")
	flag.Parse()
	log.SetLogger(logr.Discard())
	if *memoryLimit != "" {
		q, err := resource.ParseQuantity(*memoryLimit)
		if err != nil || q.Value() <= 0 {
			fmt.Fprintf(os.Stderr, "-memory-limit %q is not a positive quantity such as 64Mi\n", *memoryLimit)
			os.Exit(2)
		}
		c.MemoryLimit = q.Value()
	}

	// SIGINT or SIGTERM (timeout(1), a CI runner) ends the run the same way
	// as an error: the controller, the API server and etcd are stopped and
	// the cgroup removed, instead of being left running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Minute)
	defer cancel()
	res, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	printTable(res)
	if err := os.MkdirAll(c.Out, 0o755); err == nil {
		name := filepath.Join(c.Out, fmt.Sprintf("bench-n%d.json", c.N))
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(name, b, 0o644)
		fmt.Println("results written to", name)
	}
}

// Result is the benchmark's output.
type Result struct {
	Config               config        `json:"config"`
	FloorSeconds         float64       `json:"floorSeconds"`
	SyncSeconds          float64       `json:"syncSeconds"`
	SyncOverFloor        float64       `json:"syncOverFloor"`
	FirstSecretSeconds   float64       `json:"firstSecretSeconds"`
	ReadySeconds         float64       `json:"readySeconds"`
	FloorAPIServer       apiServerCost `json:"floorAPIServer"`
	SyncAPIServer        apiServerCost `json:"syncAPIServer"`
	CallsUntilSynced     int64         `json:"callsUntilSynced"`
	SteadyCallsPerWindow float64       `json:"steadyCallsPerWindow"`
	SteadySecretWrites   int64         `json:"steadySecretWrites"`
	SteadyStatusWrites   int64         `json:"steadyStatusWrites"`
	RotationSeconds      []float64     `json:"rotationSeconds"`
	RotationTargets      int           `json:"rotationTargets"`
	RestartCalls         int64         `json:"restartCalls"`
	PeakRSSMiB           float64       `json:"peakRSSMiB"`
	PeakRSSAnonMiB       float64       `json:"peakRSSAnonMiB"`
	EndRSSAnonMiB        float64       `json:"endRSSAnonMiB"`
	EndRSSFileMiB        float64       `json:"endRSSFileMiB"`
	CPUSeconds           float64       `json:"cpuSeconds"`
	PeakRSSUnrelatedMiB  float64       `json:"peakRSSWithUnrelatedMiB,omitempty"`
	UnrelatedGrowthMiB   float64       `json:"unrelatedGrowthMiB,omitempty"`
	// PeakRSSAnonUnrelatedMiB and UnrelatedAnonGrowthMiB leave out the
	// binary's mapped pages, which vary by several MiB between two starts
	// of the same binary and do not depend on the Secrets.
	PeakRSSAnonUnrelatedMiB float64 `json:"peakRSSAnonWithUnrelatedMiB,omitempty"`
	UnrelatedAnonGrowthMiB  float64 `json:"unrelatedAnonGrowthMiB,omitempty"`
	LiveHeapMiB             float64 `json:"liveHeapMiB,omitempty"`
	LiveHeapUnrelatedMiB    float64 `json:"liveHeapWithUnrelatedMiB,omitempty"`
	// CgroupPeakMiB and OOMKills are the sync run's under -memory-limit:
	// the largest charge of its cgroup (anonymous memory and the page cache
	// it read) and the processes the kernel killed at the limit.
	CgroupPeakMiB float64 `json:"cgroupPeakMiB,omitempty"`
	OOMKills      int     `json:"oomKills,omitempty"`
}

func printTable(r Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "workload\tN=%d NS=%d D=%d K=%d refresh=%s\n", r.Config.N, r.Config.NS, r.Config.D, r.Config.K, r.Config.Refresh)
	fmt.Fprintf(w, "controller\t%s\n", r.Config.Controller)
	fmt.Fprintf(w, "floor (create N Secrets directly)\t%.2f s\n", r.FloorSeconds)
	fmt.Fprintf(w, "time until every Secret is right\t%.2f s (%.2f× the floor)\n", r.SyncSeconds, r.SyncOverFloor)
	fmt.Fprintf(w, "first Secret after the controller's start\t%.2f s\n", r.FirstSecretSeconds)
	fmt.Fprintf(w, "every ExternalSecret Ready\t%.2f s\n", r.ReadySeconds)
	fmt.Fprintf(w, "API server CPU: floor / first sync\t%.1f s / %.1f s (%.2f / %.2f ms per object)\n", r.FloorAPIServer.CPUSeconds, r.SyncAPIServer.CPUSeconds,
		1000*r.FloorAPIServer.CPUSeconds/float64(r.Config.N), 1000*r.SyncAPIServer.CPUSeconds/float64(r.Config.N))
	for _, l := range r.SyncAPIServer.lines(r.Config.N) {
		fmt.Fprintf(w, "  first sync: %s\n", l)
	}
	fmt.Fprintf(w, "backend calls until synced\t%d (distinct keys: %d)\n", r.CallsUntilSynced, r.Config.K)
	fmt.Fprintf(w, "steady state: backend calls per refresh window\t%.1f\n", r.SteadyCallsPerWindow)
	fmt.Fprintf(w, "steady state: Secret writes\t%d\n", r.SteadySecretWrites)
	fmt.Fprintf(w, "steady state: ExternalSecret status writes\t%d\n", r.SteadyStatusWrites)
	fmt.Fprintf(w, "rotation: one value → %d Secrets, %d changes at random points of the %s window\t%s\n", r.RotationTargets, len(r.RotationSeconds), r.Config.Refresh, spread(r.RotationSeconds))
	if !r.Config.SkipRestart {
		fmt.Fprintf(w, "restart: backend calls in the first %s\t%d\n", r.Config.RestartWindow, r.RestartCalls)
	}
	fmt.Fprintf(w, "controller peak RSS\t%.1f MiB\n", r.PeakRSSMiB)
	fmt.Fprintf(w, "controller peak anonymous RSS (heap, stacks, runtime)\t%.1f MiB\n", r.PeakRSSAnonMiB)
	fmt.Fprintf(w, "controller RSS at the end: anonymous / file-backed\t%.1f / %.1f MiB\n", r.EndRSSAnonMiB, r.EndRSSFileMiB)
	if r.LiveHeapMiB > 0 {
		fmt.Fprintf(w, "controller live heap after the sync, after a GC\t%.1f MiB (%.1f KiB per ExternalSecret)\n", r.LiveHeapMiB, 1024*r.LiveHeapMiB/float64(r.Config.N))
	}
	if r.Config.MemoryLimit > 0 {
		fmt.Fprintf(w, "memory limit (cgroup) / GOMEMLIMIT\t%.0f MiB / %.0f MiB\n", float64(r.Config.MemoryLimit)/(1<<20), float64(memlimit.SoftLimit(r.Config.MemoryLimit))/(1<<20))
		fmt.Fprintf(w, "cgroup peak charge (anonymous + page cache) / OOM kills\t%.1f MiB / %d\n", r.CgroupPeakMiB, r.OOMKills)
	}
	fmt.Fprintf(w, "controller CPU\t%.1f s\n", r.CPUSeconds)
	if r.Config.Unrelated > 0 {
		watched := ""
		if r.Config.UnrelatedWatched {
			watched = " and a waiting ExternalSecret"
		}
		fmt.Fprintf(w, "peak RSS with %d unrelated Secrets%s\t%.1f MiB (+%.1f MiB)\n", r.Config.Unrelated, watched, r.PeakRSSUnrelatedMiB, r.UnrelatedGrowthMiB)
		fmt.Fprintf(w, "peak anonymous RSS with them\t%.1f MiB (+%.1f MiB)\n", r.PeakRSSAnonUnrelatedMiB, r.UnrelatedAnonGrowthMiB)
		if r.LiveHeapMiB > 0 && r.LiveHeapUnrelatedMiB > 0 {
			fmt.Fprintf(w, "controller live heap after a GC, without / with them\t%.1f MiB / %.1f MiB (+%.1f MiB)\n", r.LiveHeapMiB, r.LiveHeapUnrelatedMiB, r.LiveHeapUnrelatedMiB-r.LiveHeapMiB)
		}
	}
	_ = w.Flush()
}

// spread formats min / median / max and every value.
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	s := slices.Clone(v)
	slices.Sort(s)
	all := make([]string, len(v))
	for i, x := range v {
		all[i] = fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("min %.2f s / median %.2f s / max %.2f s (%s)", s[0], s[len(s)/2], s[len(s)-1], strings.Join(all, ", "))
}
