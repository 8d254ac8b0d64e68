// Package generators tests ExternalSecrets that use ESO's generators
// (spec.dataFrom[].sourceRef.generatorRef) against the real kube-apiserver
// and etcd: ESO's documented examples from examples/generators applied as
// they are, and the rule users rely on most: a generated password changes
// only when the refresh interval elapses, the spec or the force-sync
// annotation changes, or the Secret lost it, never because the operator
// restarted or re-synced. Each test starts its own operators in process,
// serving its own namespace, so that it can stop one and start another.
package generators

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// proc is one operator running in process, as a restart sees it: its own
// manager, caches, fetch layer and memory.
type proc struct {
	logs   *testenv.LogBuffer
	cancel context.CancelFunc
	done   chan error
}

// start starts an operator serving ns, logging at debug level.
func start(t *testing.T, ns string) *proc {
	t.Helper()
	logs := &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.New(ctx, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), Namespace: ns,
		StartupSpread: time.Second, SkipControllerNameValidation: true,
	})
	if err != nil {
		cancel()
		t.Fatalf("building the operator: %v", err)
	}
	p := &proc{logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- op.Manager.Start(ctx) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop stops the operator and waits until its manager returned; calling
// it again does nothing.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("the operator stopped with: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the operator did not stop within 30s")
	}
}

// waitLogged waits until one line of the operator's logs holds every part.
func (p *proc) waitLogged(t *testing.T, what string, parts ...string) {
	t.Helper()
	testenv.Eventually(t, what, func(context.Context) (bool, string) {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			all := true
			for _, part := range parts {
				all = all && strings.Contains(line, part)
			}
			if all {
				return true, ""
			}
		}
		return false, "no such log line yet"
	})
}

// secretValue returns key of Secret ns/name once it exists.
func secretValue(t *testing.T, ns, name, key string) string {
	t.Helper()
	s := env.WaitSecret(t, ns, name, func(s *corev1.Secret) (bool, string) {
		if _, ok := s.Data[key]; !ok {
			return false, "no key " + key
		}
		return true, ""
	})
	return string(s.Data[key])
}

// waitChanged waits until key of Secret ns/name holds a value other than
// old, and returns it.
func waitChanged(t *testing.T, ns, name, key, old string) string {
	t.Helper()
	s := env.WaitSecret(t, ns, name, func(s *corev1.Secret) (bool, string) {
		if v, ok := s.Data[key]; ok && string(v) != old {
			return true, ""
		}
		return false, key + " still holds the old value"
	})
	return string(s.Data[key])
}

// waitSyncedAt waits until the ExternalSecret reports Ready with
// status.syncedResourceVersion other than old (a sync of its current
// spec and metadata happened), and returns it.
func waitSyncedAt(t *testing.T, ns, name, old string) string {
	t.Helper()
	var got string
	testenv.Eventually(t, "ExternalSecret "+name+" synced again", func(ctx context.Context) (bool, string) {
		es := &esv1.ExternalSecret{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
			return false, err.Error()
		}
		c := testenv.ReadyCondition(es)
		if c == nil || c.Status != metav1.ConditionTrue || es.Status.SyncedResourceVersion == old {
			return false, "syncedResourceVersion " + es.Status.SyncedResourceVersion
		}
		got = es.Status.SyncedResourceVersion
		return true, ""
	})
	return got
}

// assertNoLeak fails when value appears in the operator's logs, in an
// Event of the namespace or in an ExternalSecret's status.
func assertNoLeak(t *testing.T, ns, value string, procs ...*proc) {
	t.Helper()
	if value == "" {
		t.Fatal("empty canary")
	}
	for i, p := range procs {
		if strings.Contains(p.logs.String(), value) {
			t.Fatalf("a generated value appeared in the logs of operator %d", i)
		}
	}
	var evs eventsv1.EventList
	if err := env.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if strings.Contains(ev.Note, value) {
			t.Fatalf("a generated value appeared in Event %s", ev.Reason)
		}
	}
	var list esv1.ExternalSecretList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, es := range list.Items {
		for _, c := range es.Status.Conditions {
			if strings.Contains(c.Message, value) {
				t.Fatalf("a generated value appeared in the status of %s", es.Name)
			}
		}
	}
}

// patchES applies mut to ExternalSecret ns/name.
func patchES(t *testing.T, ns, name string, mut func(*esv1.ExternalSecret)) {
	t.Helper()
	es := &esv1.ExternalSecret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
		t.Fatal(err)
	}
	before := es.DeepCopy()
	mut(es)
	if err := env.Client.Patch(context.Background(), es, client.MergeFrom(before)); err != nil {
		t.Fatalf("patching ExternalSecret %s: %v", name, err)
	}
}

// clusterGen is a ClusterGenerator to delete by name.
func clusterGen(name string) client.Object {
	o := &genv1alpha1.ClusterGenerator{}
	o.Name = name
	return o
}
