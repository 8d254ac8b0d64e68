package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/memlimit"
	"github.com/keyferry/keyferry/internal/operator"
)

const managedLabel = "reconcile.external-secrets.io/managed"

// backend is the HTTP JSON secret service: GET /v1/secrets/<key> answers
// {"value": "..."} and counts the request.
type backend struct {
	calls  atomic.Int64
	mu     sync.RWMutex
	values map[string]string
	srv    *http.Server
	addr   string
}

func newBackend(k int) (*backend, error) {
	b := &backend{values: map[string]string{}}
	for i := 0; i < k; i++ {
		b.values[keyName(i)] = "value-" + strconv.Itoa(i) + "-v1"
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.addr = l.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(l) }()
	return b, nil
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	key := strings.TrimPrefix(r.URL.Path, "/v1/secrets/")
	b.mu.RLock()
	v, ok := b.values[key]
	b.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"value": v})
}

func (b *backend) value(key string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.values[key]
}

func (b *backend) set(key, v string) {
	b.mu.Lock()
	b.values[key] = v
	b.mu.Unlock()
}

func keyName(i int) string { return fmt.Sprintf("key-%04d", i) }

func (c config) key(es, j int) string { return keyName((es*c.D + j) % c.K) }
func (c config) ns(es int) string     { return fmt.Sprintf("bench-%03d", es%c.NS) }
func esName(i int) string             { return fmt.Sprintf("es-%05d", i) }

// controllerProc is the controller under test, run as a child process.
type controllerProc struct {
	cmd  *exec.Cmd
	done chan error
	// exited is closed once the process has exited.
	exited chan struct{}
	// cgroup holds the process under -memory-limit (nil without one).
	cgroup *memoryCgroup

	mu          sync.Mutex
	peakAnonMiB float64 // the largest RssAnon sampled
}

// startController starts the controller with its executable evicted from
// the page cache first, as on a node that starts the pod: how many of the
// binary's pages the kernel maps on each fault (and so the file-backed
// RSS) depends on how the file got into the page cache, which after a
// fresh link differs from run to run by up to 16 MiB.
//
// With memoryLimit > 0 the controller runs in a cgroup of its own with that
// memory limit, and with the GOMEMLIMIT internal/memlimit would set in such
// a container.
func startController(cmdline, kubeconfig, logFile string, memoryLimit int64) (*controllerProc, error) {
	args := strings.Fields(cmdline)
	if err := evictFromPageCache(args[0]); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var g *memoryCgroup
	if memoryLimit > 0 {
		var err error
		name := fmt.Sprintf("keyferry-bench-%d-%s", os.Getpid(), strings.TrimSuffix(filepath.Base(logFile), ".log"))
		if g, err = newMemoryCgroup(name, memoryLimit); err != nil {
			return nil, err
		}
		args = g.command(args)
		if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
			// internal/memlimit reads the container's own cgroup files,
			// which on this machine are the host's: set what it would.
			env = append(env, "GOMEMLIMIT="+strconv.FormatInt(memlimit.SoftLimit(memoryLimit), 10))
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		if g != nil {
			_ = g.remove()
		}
		return nil, fmt.Errorf("starting %q: %w", cmdline, err)
	}
	exited := make(chan struct{})
	p := &controllerProc{cmd: cmd, done: make(chan error, 1), exited: exited, cgroup: g}
	go func() { p.done <- cmd.Wait(); f.Close(); close(exited) }()
	go p.sampleAnon(exited)
	return p, nil
}

// evictFromPageCache drops the pages of the executable at path (looked up
// in PATH) from the page cache.
func evictFromPageCache(path string) error {
	path, err := exec.LookPath(path)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s from the page cache: %w", path, err)
	}
	return nil
}

// sampleAnon records the largest anonymous RSS (the process's private
// memory: heap, stacks, runtime) every 20 ms until the process exits.
func (p *controllerProc) sampleAnon(exited <-chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if anon, ok := p.memory()["RssAnon"]; ok {
			p.mu.Lock()
			p.peakAnonMiB = max(p.peakAnonMiB, anon)
			p.mu.Unlock()
		}
		select {
		case <-exited:
			return
		case <-t.C:
		}
	}
}

// whileRunning runs wait with a context that ends when the process exits,
// and then reports that it exited (and how many processes the kernel killed
// at the memory limit) rather than a timeout.
func (p *controllerProc) whileRunning(ctx context.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := wait(ctx)
	if err == nil {
		return nil
	}
	select {
	case <-p.exited:
		_, kills := p.cgroupUsage()
		return fmt.Errorf("the controller exited (OOM kills under -memory-limit: %d)", kills)
	default:
		return err
	}
}

// cgroupUsage reads the peak memory charge of the process's cgroup (MiB)
// and how many processes the kernel killed in it; zero without
// -memory-limit.
func (p *controllerProc) cgroupUsage() (peakMiB float64, oomKills int) {
	if p.cgroup == nil {
		return 0, 0
	}
	return p.cgroup.peakMiB(), p.cgroup.oomKills()
}

// usage reads the process's peak RSS (MiB) and CPU seconds from /proc.
func (p *controllerProc) usage() (rssMiB, cpu float64) {
	rss := p.memory()
	return rss["VmHWM"], p.cpu()
}

// peakAnon is the largest anonymous RSS sampled so far (MiB).
func (p *controllerProc) peakAnon() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakAnonMiB
}

// memory reads the process's memory figures (MiB) from /proc: VmHWM (peak
// RSS), and RssAnon and RssFile (now).
func (p *controllerProc) memory() map[string]float64 {
	out := map[string]float64{}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			name, rest, ok := strings.Cut(line, ":")
			if f := strings.Fields(rest); ok && len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseFloat(f[0], 64)
				out[name] = kb / 1024
			}
		}
	}
	return out
}

// cpu reads the process's CPU seconds from /proc.
func (p *controllerProc) cpu() (cpu float64) {
	pid := p.cmd.Process.Pid
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		cpu = (ut + st) / 100 // USER_HZ
	}
	return cpu
}

func (p *controllerProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if p.cgroup != nil {
		_ = p.cgroup.remove()
	}
}

func run(ctx context.Context, c config) (Result, error) {
	res := Result{Config: c}
	root, err := devcluster.RepoRoot()
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return res, err
	}
	fmt.Println("starting control plane...")
	cluster, err := devcluster.Start(ctx, devcluster.Options{CRDDirs: []string{filepath.Join(root, "config", "crd")}})
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	kubeconfig := filepath.Join(c.Out, "kubeconfig")
	if err := cluster.WriteKubeConfig(kubeconfig); err != nil {
		return res, err
	}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	cl, err := client.New(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return res, err
	}
	be, err := newBackend(c.K)
	if err != nil {
		return res, err
	}

	// The floor: the API server creating N Secrets directly.
	fmt.Printf("floor: creating %d Secrets directly with %d writers...\n", c.N, c.Writers)
	if err := createNamespace(ctx, cl, "floor"); err != nil {
		return res, err
	}
	floorBefore, err := sampleAPIServer(ctx, cfg)
	if err != nil {
		return res, err
	}
	start := time.Now()
	err = parallel(c.N, c.Writers, func(i int) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "floor", Name: esName(i)}, Data: map[string][]byte{}}
		for j := 0; j < c.D; j++ {
			s.Data[fmt.Sprintf("k%d", j)] = []byte(be.value(c.key(i, j)))
		}
		return cl.Create(ctx, s)
	})
	if err != nil {
		return res, fmt.Errorf("floor: %w", err)
	}
	res.FloorSeconds = time.Since(start).Seconds()
	floorAfter, err := sampleAPIServer(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.FloorAPIServer = floorBefore.until(floorAfter)
	if err := cl.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace("floor")); err != nil {
		return res, err
	}

	// The workload, created before the controller starts.
	fmt.Printf("workload: %d namespaces, %d ExternalSecrets...\n", c.NS, c.N)
	for n := 0; n < c.NS; n++ {
		ns := c.ns(n)
		if err := createNamespace(ctx, cl, ns); err != nil {
			return res, err
		}
		st := &esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend"},
			Spec: esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{
				URL:    "http://" + be.addr + "/v1/secrets/{{ .remoteRef.key }}",
				Result: esv1.WebhookResult{JSONPath: "$.value"},
			}}}}
		if err := cl.Create(ctx, st); err != nil {
			return res, err
		}
	}
	err = parallel(c.N, c.Writers, func(i int) error {
		es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: c.ns(i), Name: esName(i)},
			Spec: esv1.ExternalSecretSpec{
				RefreshInterval: &esv1.Duration{Duration: c.Refresh},
				SecretStoreRef:  esv1.SecretStoreRef{Name: "backend", Kind: "SecretStore"},
				Target:          esv1.ExternalSecretTarget{CreationPolicy: esv1.CreatePolicyOwner, DeletionPolicy: esv1.DeletionPolicyRetain},
			}}
		for j := 0; j < c.D; j++ {
			es.Spec.Data = append(es.Spec.Data, esv1.ExternalSecretData{SecretKey: fmt.Sprintf("k%d", j), RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: c.key(i, j)}})
		}
		return cl.Create(ctx, es)
	})
	if err != nil {
		return res, fmt.Errorf("creating ExternalSecrets: %w", err)
	}

	tr, err := track(ctx, cfg)
	if err != nil {
		return res, err
	}
	fmt.Println("sync: starting the controller...")
	be.calls.Store(0)
	syncBefore, err := sampleAPIServer(ctx, cfg)
	if err != nil {
		return res, err
	}
	if c.Profile > 0 {
		go func() {
			file := filepath.Join(c.Out, "apiserver-cpu.pprof")
			if err := profileAPIServer(ctx, cfg, c.Profile, file); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}
	start = time.Now()
	tr.resetFirst()
	proc, err := startController(c.Controller, kubeconfig, filepath.Join(c.Out, "controller.log"), c.MemoryLimit)
	if err != nil {
		return res, err
	}
	defer func() {
		if proc != nil {
			proc.stop()
		}
	}()
	if err := proc.whileRunning(ctx, func(ctx context.Context) error { return waitSynced(ctx, tr, c, be, nil, 10*time.Minute) }); err != nil {
		return res, fmt.Errorf("sync: %w", err)
	}
	res.SyncSeconds = time.Since(start).Seconds()
	res.FirstSecretSeconds = tr.firstSince(start)
	res.SyncOverFloor = res.SyncSeconds / res.FloorSeconds
	res.CallsUntilSynced = be.calls.Load()
	fmt.Printf("synced in %.2fs with %d backend calls\n", res.SyncSeconds, res.CallsUntilSynced)

	// Steady state: once every ExternalSecret reports Ready (the first
	// status writes are done), count what the controller still writes.
	if err := waitReady(ctx, cl, c.N, 5*time.Minute); err != nil {
		return res, err
	}
	res.ReadySeconds = time.Since(start).Seconds()
	syncAfter, err := sampleAPIServer(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.SyncAPIServer = syncBefore.until(syncAfter)
	fmt.Printf("steady state: observing %d refresh windows of %s...\n", c.SteadyWindows, c.Refresh)
	secretWrites, statusWrites, stopWatch, err := countWrites(ctx, cfg)
	if err != nil {
		return res, err
	}
	be.calls.Store(0)
	select {
	case <-time.After(time.Duration(c.SteadyWindows) * c.Refresh):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.SteadyCallsPerWindow = float64(be.calls.Load()) / float64(c.SteadyWindows)
	res.SteadySecretWrites, res.SteadyStatusWrites = secretWrites.Load(), statusWrites.Load()
	stopWatch()

	// Rotation: one value changes.
	rotated := keyName(0)
	var targets []int
	for i := 0; i < c.N; i++ {
		for j := 0; j < c.D; j++ {
			if c.key(i, j) == rotated {
				targets = append(targets, i)
				break
			}
		}
	}
	res.RotationTargets = len(targets)
	// A polled source is seen at the next refresh of any object that reads
	// it, so the latency depends on where in the refresh window the value
	// changes: change it at random points of the window, several times.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for r := 0; r < c.Rotations; r++ {
		wait := time.Duration(rng.Int64N(int64(c.Refresh)))
		fmt.Printf("rotation %d/%d: changing %s (used by %d ExternalSecrets) in %s...\n", r+1, c.Rotations, rotated, len(targets), wait.Round(time.Millisecond))
		select {
		case <-time.After(wait): // a random point of the window, not synchronisation
		case <-ctx.Done():
			return res, ctx.Err()
		}
		be.set(rotated, fmt.Sprintf("value-0-v%d", r+2))
		start = time.Now()
		if err := waitSynced(ctx, tr, c, be, targets, 2*c.Refresh+time.Minute); err != nil {
			return res, fmt.Errorf("rotation: %w", err)
		}
		res.RotationSeconds = append(res.RotationSeconds, time.Since(start).Seconds())
	}
	res.PeakRSSMiB, res.CPUSeconds = proc.usage()
	res.PeakRSSAnonMiB = proc.peakAnon()
	res.CgroupPeakMiB, res.OOMKills = proc.cgroupUsage()
	mem := proc.memory()
	res.EndRSSAnonMiB, res.EndRSSFileMiB = mem["RssAnon"], mem["RssFile"]
	if c.ControllerPprof != "" {
		if res.LiveHeapMiB, err = controllerHeap(ctx, c.ControllerPprof, filepath.Join(c.Out, "controller-heap.pprof")); err != nil {
			fmt.Println("memory:", err)
		}
	}

	if !c.SkipRestart {
		fmt.Printf("restart: counting backend calls in the first %s...\n", c.RestartWindow)
		proc.stop()
		be.calls.Store(0)
		if proc, err = startController(c.Controller, kubeconfig, filepath.Join(c.Out, "controller-restart.log"), c.MemoryLimit); err != nil {
			return res, err
		}
		if err := measure(ctx, c.RestartWindow); err != nil {
			return res, err
		}
		res.RestartCalls = be.calls.Load()
	}

	if c.Unrelated > 0 {
		baseline, _ := proc.usage()
		baselineAnon := proc.peakAnon()
		proc.stop()
		proc = nil
		fmt.Printf("memory: creating %d unrelated 1 KiB Secrets...\n", c.Unrelated)
		if err := createNamespace(ctx, cl, "unrelated"); err != nil {
			return res, err
		}
		blob := make([]byte, 1024)
		for i := range blob {
			blob[i] = byte('a' + i%26)
		}
		err := parallel(c.Unrelated, c.Writers, func(i int) error {
			return cl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "unrelated", Name: fmt.Sprintf("u-%06d", i)}, Data: map[string][]byte{"blob": blob}})
		})
		if err != nil {
			return res, err
		}
		if c.UnrelatedWatched {
			if err := createWaiting(ctx, cl, c); err != nil {
				return res, err
			}
		}
		p2, err := startController(c.Controller, kubeconfig, filepath.Join(c.Out, "controller-unrelated.log"), c.MemoryLimit)
		if err != nil {
			return res, err
		}
		proc = p2 // stopped by the deferred stop if the run ends early
		window := c.RestartWindow
		if c.SkipRestart {
			window = 30 * time.Second
		}
		if err := measure(ctx, window); err != nil { // same window as the restart run
			return res, err
		}
		res.PeakRSSUnrelatedMiB, _ = p2.usage()
		if c.ControllerPprof != "" {
			if res.LiveHeapUnrelatedMiB, err = controllerHeap(ctx, c.ControllerPprof, filepath.Join(c.Out, "controller-heap-unrelated.pprof")); err != nil {
				fmt.Println("memory:", err)
			}
		}
		if baseline == 0 {
			baseline = res.PeakRSSMiB
		}
		res.UnrelatedGrowthMiB = res.PeakRSSUnrelatedMiB - baseline
		if baselineAnon == 0 {
			baselineAnon = res.PeakRSSAnonMiB
		}
		res.PeakRSSAnonUnrelatedMiB = p2.peakAnon()
		res.UnrelatedAnonGrowthMiB = res.PeakRSSAnonUnrelatedMiB - baselineAnon
		p2.stop()
		proc = nil
	}
	return res, nil
}

// createWaiting creates, in the first namespace, a Secret nobody gave the
// controller and an ExternalSecret that targets it: keyferry refuses the
// sync and waits for a person's change, which starts its watch of every
// Secret's metadata.
func createWaiting(ctx context.Context, cl client.Client, c config) error {
	ns := c.ns(0)
	taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "someone-elses"}, Data: map[string][]byte{"k0": []byte("theirs")}}
	if err := cl.Create(ctx, taken); err != nil {
		return fmt.Errorf("creating the Secret an ExternalSecret will wait for: %w", err)
	}
	es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waits"},
		Spec: esv1.ExternalSecretSpec{
			RefreshInterval: &esv1.Duration{Duration: c.Refresh},
			SecretStoreRef:  esv1.SecretStoreRef{Name: "backend", Kind: "SecretStore"},
			Target:          esv1.ExternalSecretTarget{Name: taken.Name, CreationPolicy: esv1.CreatePolicyOwner, DeletionPolicy: esv1.DeletionPolicyRetain},
			Data:            []esv1.ExternalSecretData{{SecretKey: "k0", RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: c.key(0, 0)}}},
		}}
	if err := cl.Create(ctx, es); err != nil {
		return fmt.Errorf("creating the ExternalSecret that waits: %w", err)
	}
	return nil
}

// measure waits out a measurement window (not synchronisation), or less
// if the run is cancelled.
func measure(ctx context.Context, window time.Duration) error {
	select {
	case <-time.After(window):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitSynced waits until every target Secret (or the listed ones) holds
// the backend's current values.
func waitSynced(ctx context.Context, tr *tracker, c config, be *backend, only []int, timeout time.Duration) error {
	want := only
	if want == nil {
		want = make([]int, c.N)
		for i := range want {
			want[i] = i
		}
	}
	return tr.wait(ctx, timeout, func(have map[string]map[string][]byte) (bool, string) {
		missing := 0
		for _, i := range want {
			d, ok := have[c.ns(i)+"/"+esName(i)]
			if !ok {
				missing++
				continue
			}
			for j := 0; j < c.D; j++ {
				if string(d[fmt.Sprintf("k%d", j)]) != be.value(c.key(i, j)) {
					missing++
					break
				}
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d Secrets not right", missing, len(want))
	})
}

// countWrites counts modifications of managed Secrets and of
// ExternalSecrets (status writes) through watches.
func countWrites(ctx context.Context, cfg *rest.Config) (*atomic.Int64, *atomic.Int64, func(), error) {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		return nil, nil, nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	var secrets, statuses atomic.Int64
	// Watch from the current resourceVersion, so existing objects are not
	// replayed as events.
	var sl corev1.SecretList
	var el esv1.ExternalSecretList
	if err := wc.List(ctx, &sl, client.HasLabels{managedLabel}); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	if err := wc.List(ctx, &el); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	sw, err := wc.Watch(wctx, &corev1.SecretList{}, client.HasLabels{managedLabel}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: sl.ResourceVersion}})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	ew, err := wc.Watch(wctx, &esv1.ExternalSecretList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: el.ResourceVersion}})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	count := func(w watch.Interface, n *atomic.Int64) {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified || ev.Type == watch.Added || ev.Type == watch.Deleted {
				n.Add(1)
			}
		}
	}
	go count(sw, &secrets)
	go count(ew, &statuses)
	return &secrets, &statuses, func() { cancel(); sw.Stop(); ew.Stop() }, nil
}

// waitReady waits until n ExternalSecrets report Ready=True.
func waitReady(ctx context.Context, cl client.Client, n int, timeout time.Duration) error {
	ready := 0
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var list esv1.ExternalSecretList
		if err := cl.List(ctx, &list); err != nil {
			return false, nil
		}
		ready = 0
		for _, es := range list.Items {
			for _, cond := range es.Status.Conditions {
				if cond.Type == esv1.ExternalSecretReady && cond.Status == metav1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d ExternalSecrets Ready after %s", ready, n, timeout)
	}
	return nil
}

func createNamespace(ctx context.Context, cl client.Client, name string) error {
	return client.IgnoreAlreadyExists(cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
}

// parallel runs f(0..n-1) on w workers and returns the first error.
func parallel(n, w int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}
