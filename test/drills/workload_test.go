//go:build linux

package drills

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// workload is N ExternalSecrets in one namespace, each with D data entries
// (secretKey k0..k<D-1>) over K distinct remote keys, read through webhook
// SecretStores: one named "backend" for all, or with storePerES one per
// ExternalSecret ("backend-<i>", calling the backend under path "s<i>").
type workload struct {
	ns         string
	n, d, k    int
	refresh    time.Duration
	storePerES bool
	be         *backend
}

func (w *workload) esName(i int) string    { return fmt.Sprintf("es-%03d", i) }
func (w *workload) keyName(i int) string   { return fmt.Sprintf("key-%03d", i) }
func (w *workload) remote(i, j int) string { return w.keyName((i*w.d + j) % w.k) }

// keys lists the K remote keys.
func (w *workload) keys() []string {
	out := make([]string, w.k)
	for i := range out {
		out[i] = w.keyName(i)
	}
	return out
}

// newWorkload creates a namespace, a backend with the keys, one store and
// the ExternalSecrets (no operator runs yet).
func newWorkload(t *testing.T, n, d, k int, refresh time.Duration) *workload {
	t.Helper()
	w := &workload{n: n, d: d, k: k, refresh: refresh}
	w.create(t)
	return w
}

// create makes what w describes.
func (w *workload) create(t *testing.T) {
	t.Helper()
	w.ns = env.Namespace(t)
	w.be = newBackend(t, w.keys()...)
	ctx := context.Background()
	stores := []string{"backend"}
	if w.storePerES {
		stores = stores[:0]
		for i := 0; i < w.n; i++ {
			stores = append(stores, w.storeName(i))
		}
	}
	for i, name := range stores {
		path := "v1/secrets"
		if w.storePerES {
			path = fmt.Sprintf("s%d", i)
		}
		store := &esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name},
			Spec: esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{
				URL:     w.be.url(path),
				Timeout: &esv1.Duration{Duration: webhookTimeout},
				Result:  esv1.WebhookResult{JSONPath: "$.value"},
			}}}}
		if err := env.Client.Create(ctx, store); err != nil {
			t.Fatalf("creating the store: %v", err)
		}
	}
	errs := make(chan error, w.n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < w.n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := env.Client.Create(ctx, w.externalSecret(i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating ExternalSecrets: %v", err)
	}
}

// storeName is the store ExternalSecret i uses.
func (w *workload) storeName(i int) string {
	if w.storePerES {
		return fmt.Sprintf("backend-%d", i)
	}
	return "backend"
}

// webhookTimeout is the drills' store timeout: a hanging backend costs a
// call this long.
const webhookTimeout = 2 * time.Second

func (w *workload) externalSecret(i int) *esv1.ExternalSecret {
	es := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: w.esName(i)},
		Spec: esv1.ExternalSecretSpec{
			RefreshInterval: &esv1.Duration{Duration: w.refresh},
			SecretStoreRef:  esv1.SecretStoreRef{Name: w.storeName(i), Kind: "SecretStore"},
			Target:          esv1.ExternalSecretTarget{CreationPolicy: esv1.CreatePolicyOwner, DeletionPolicy: esv1.DeletionPolicyRetain},
		}}
	for j := 0; j < w.d; j++ {
		es.Spec.Data = append(es.Spec.Data, esv1.ExternalSecretData{
			SecretKey: fmt.Sprintf("k%d", j),
			RemoteRef: esv1.ExternalSecretDataRemoteRef{Key: w.remote(i, j)},
		})
	}
	return es
}

// index returns i for the Secret named es-<i>, or -1.
func (w *workload) index(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "es-%03d", &i); err != nil || i < 0 || i >= w.n {
		return -1
	}
	return i
}

// right says whether data is exactly what the backend holds now for the
// Secret of ExternalSecret i.
func (w *workload) right(i int, data map[string][]byte) bool {
	if len(data) != w.d {
		return false
	}
	for j := 0; j < w.d; j++ {
		if string(data[fmt.Sprintf("k%d", j)]) != w.be.value(w.remote(i, j)) {
			return false
		}
	}
	return true
}

// observer watches every version of the workload's managed Secrets that
// the API server reports, from the moment it starts, and checks each: all
// D keys present, each holding a value its remote key really had, never an
// older value than one already seen. A deleted Secret is a violation too.
type observer struct {
	w *workload

	mu       sync.Mutex
	versions int
	// lists counts the lists (1 + relists after an expired watch).
	lists int
	// violations describe wrong observations (names and keys, no values).
	violations []string
	// updates counts versions per Secret after the first one seen.
	updates map[string]int
	data    map[string]map[string][]byte
	// gen is the newest generation seen per Secret and key.
	gen map[string]int
	// rv is the last resourceVersion seen per Secret.
	rv      map[string]string
	changed chan struct{}
}

// observe starts an observer; it stops when the test ends. Like an
// informer it lists, then watches from the list's resourceVersion, and
// lists again when the API server no longer has that version (410 Gone,
// as after an API server restart); each listed object is checked too.
func (w *workload) observe(t *testing.T) *observer {
	t.Helper()
	o := &observer{w: w, updates: map[string]int{}, data: map[string]map[string][]byte{}, gen: map[string]int{}, rv: map[string]string{}, changed: make(chan struct{}, 1)}
	cs, err := kubernetes.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rv, err := o.list(ctx, cs)
	if err != nil {
		cancel()
		t.Fatalf("listing Secrets: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := o.watch(ctx, cs, rv); err != nil && ctx.Err() == nil {
				o.violate("the watch of Secrets failed: %v", err)
				return
			}
			// The watch expired: list again, as an informer does.
			for ctx.Err() == nil {
				if rv, err = o.list(ctx, cs); err == nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second): // retry pacing while the API server is away
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return o
}

// selector selects the Secrets keyferry manages.
const selector = engine.LabelManaged + "=" + engine.LabelManagedValue

// list records every managed Secret and returns the list's resourceVersion.
func (o *observer) list(ctx context.Context, cs kubernetes.Interface) (string, error) {
	list, err := cs.CoreV1().Secrets(o.w.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "", err
	}
	o.mu.Lock()
	o.lists++
	o.mu.Unlock()
	for i := range list.Items {
		o.record(watch.Modified, &list.Items[i])
	}
	return list.ResourceVersion, nil
}

// watch records every event from rv on, through API server outages, until
// ctx ends (nil) or the version expired (nil, to list again); other
// failures are returned.
func (o *observer) watch(ctx context.Context, cs kubernetes.Interface, rv string) error {
	secrets := cs.CoreV1().Secrets(o.w.ns)
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			return secrets.Watch(ctx, opts)
		},
	})
	if err != nil {
		return err
	}
	defer rw.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-rw.ResultChan():
			if !ok {
				return nil
			}
			if s, isSecret := ev.Object.(*corev1.Secret); isSecret {
				o.record(ev.Type, s)
				continue
			}
			if ev.Type == watch.Error {
				if status := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(status) || apierrors.IsGone(status) {
					return nil
				}
				return fmt.Errorf("%v", ev.Object)
			}
		}
	}
}

func (o *observer) violate(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.violations) < 50 {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
	}
}

func (o *observer) record(typ watch.EventType, s *corev1.Secret) {
	w := o.w
	defer func() {
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}()
	i := w.index(s.Name)
	if i < 0 {
		return
	}
	if typ == watch.Deleted {
		o.violate("Secret %s was deleted", s.Name)
		o.mu.Lock()
		delete(o.data, s.Name)
		o.mu.Unlock()
		return
	}
	var problems []string
	gens := map[string]int{}
	for j := 0; j < w.d; j++ {
		k := fmt.Sprintf("k%d", j)
		v, ok := s.Data[k]
		switch g := w.be.generation(w.remote(i, j), string(v)); {
		case !ok:
			problems = append(problems, fmt.Sprintf("key %s missing", k))
		case len(v) == 0:
			problems = append(problems, fmt.Sprintf("key %s empty", k))
		case g < 0:
			problems = append(problems, fmt.Sprintf("key %s holds %d bytes its remote key never had", k, len(v)))
		default:
			gens[k] = g
		}
	}
	if len(s.Data) != w.d {
		problems = append(problems, fmt.Sprintf("%d keys, want %d", len(s.Data), w.d))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rv[s.Name] == s.ResourceVersion {
		return // a relist found what the watch already reported
	}
	o.rv[s.Name] = s.ResourceVersion
	o.versions++
	if _, seen := o.data[s.Name]; seen {
		o.updates[s.Name]++
	}
	o.data[s.Name] = s.Data
	for k, g := range gens {
		if prev, ok := o.gen[s.Name+"/"+k]; ok && g < prev {
			problems = append(problems, fmt.Sprintf("key %s went back to an older value", k))
		}
		o.gen[s.Name+"/"+k] = g
	}
	if len(problems) > 0 && len(o.violations) < 50 {
		o.violations = append(o.violations, fmt.Sprintf("Secret %s (resourceVersion %s): %v", s.Name, s.ResourceVersion, problems))
	}
}

// counts returns the versions seen, the violations and the total updates.
func (o *observer) counts() (versions int, violations []string, updates int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.updates {
		updates += n
	}
	return o.versions, append([]string(nil), o.violations...), updates
}

// rightCount returns how many Secrets hold exactly the backend's values.
func (o *observer) rightCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for name, data := range o.data {
		if o.w.right(o.w.index(name), data) {
			n++
		}
	}
	return n
}

// waitRight waits until at least n Secrets hold the backend's values, or
// fails after timeout.
func (o *observer) waitRight(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		got := o.rightCount()
		if got >= n {
			return
		}
		select {
		case <-o.changed:
		case <-deadline.C:
			t.Fatalf("after %s only %d of %d Secrets hold the backend's values", timeout, got, n)
		}
	}
}

// assertClean fails the test when the observer saw a wrong version, and
// logs how many versions it checked.
func (o *observer) assertClean(t *testing.T) {
	t.Helper()
	versions, violations, updates := o.counts()
	o.mu.Lock()
	lists := o.lists
	o.mu.Unlock()
	t.Logf("observed %d Secret versions (%d updates, %d lists), %d wrong", versions, updates, lists, len(violations))
	for _, v := range violations {
		t.Errorf("wrong observation: %s", v)
	}
}

// readyCount returns how many ExternalSecrets are Ready=True SecretSynced.
func (w *workload) readyCount(ctx context.Context) (int, error) {
	var list esv1.ExternalSecretList
	if err := env.Client.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		if c := testenv.ReadyCondition(&list.Items[i]); c != nil && c.Status == metav1.ConditionTrue && c.Reason == "SecretSynced" {
			n++
		}
	}
	return n, nil
}

// reasons counts the ExternalSecrets by Ready status and reason.
func (w *workload) reasons(ctx context.Context) map[string]int {
	var list esv1.ExternalSecretList
	out := map[string]int{}
	if err := env.Client.List(ctx, &list, client.InNamespace(w.ns)); err != nil {
		out["(list failed)"]++
		return out
	}
	for i := range list.Items {
		if c := testenv.ReadyCondition(&list.Items[i]); c != nil {
			out[string(c.Status)+"/"+c.Reason]++
		} else {
			out["none"]++
		}
	}
	return out
}

// waitAllReady waits until every ExternalSecret is Ready=True.
func (w *workload) waitAllReady(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "every ExternalSecret Ready", func(ctx context.Context) (bool, string) {
		n, err := w.readyCount(ctx)
		if err != nil {
			return false, err.Error()
		}
		return n == w.n, fmt.Sprintf("%d of %d Ready", n, w.n)
	})
}
