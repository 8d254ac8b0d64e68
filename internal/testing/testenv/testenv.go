// Package testenv starts what keyferry's integration tests run against: the
// real control plane (devcluster) with keyferry's CRDs installed, and the
// operator itself with its logs captured at debug level so tests can assert
// that no secret value is ever logged.
package testenv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/poll"
)

// Options configure an Env.
type Options struct {
	// Registry overrides the providers; nil means every provider.
	Registry *provider.Registry
	// ControllerManager also runs kube-controller-manager (garbage
	// collection, namespace deletion).
	ControllerManager bool
	// ExtraControllers are further kube-controller-manager controllers
	// (devcluster.Options.ExtraControllers).
	ExtraControllers []string
	// Operator tweaks the operator's options before it starts.
	Operator func(*operator.Options)
	// NoOperator starts only the control plane.
	NoOperator bool
	// Setup, when set, is called with the operator's manager before it
	// starts, to register controllers the operator does not (yet) wire.
	Setup func(ctx context.Context, mgr manager.Manager) error
}

// Env is a running control plane and operator.
type Env struct {
	Cluster *devcluster.Cluster
	// Client is an admin client (uncached).
	Client client.Client
	Op     *operator.Operator
	Root   string
	logs   *LogBuffer
	cancel context.CancelFunc
	done   chan error
}

// Start starts the control plane with the CRDs and, unless NoOperator, the
// operator. Call Stop when done (TestMain).
func Start(opts Options) (*Env, error) {
	root, err := devcluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := devcluster.Start(ctx, devcluster.Options{
		CRDDirs:           []string{filepath.Join(root, "config", "crd")},
		ControllerManager: opts.ControllerManager,
		ExtraControllers:  opts.ExtraControllers,
	})
	if err != nil {
		cancel()
		return nil, err
	}
	c, err := client.New(cl.Config, client.Options{Scheme: operator.NewScheme()})
	if err != nil {
		cancel()
		_ = cl.Stop()
		return nil, err
	}
	e := &Env{Cluster: cl, Client: c, Root: root, logs: &LogBuffer{}, cancel: cancel, done: make(chan error, 1)}
	if opts.NoOperator {
		return e, nil
	}
	logger := DebugLogger(e.logs)
	log.SetLogger(logger) // client-go's informers log through the global logger
	oo := operator.Options{Registry: opts.Registry, Log: logger, StartupSpread: time.Second}
	if opts.Operator != nil {
		opts.Operator(&oo)
	}
	op, err := operator.New(ctx, cl.Config, oo)
	if err != nil {
		e.Stop()
		return nil, err
	}
	if opts.Setup != nil {
		if err := opts.Setup(ctx, op.Manager); err != nil {
			e.Stop()
			return nil, err
		}
	}
	e.Op = op
	go func() { e.done <- op.Start(ctx) }()
	return e, nil
}

// Stop stops the operator and the control plane.
func (e *Env) Stop() {
	e.cancel()
	if e.Op != nil {
		select {
		case <-e.done:
		case <-time.After(30 * time.Second):
		}
	}
	_ = e.Cluster.Stop()
}

// Logs returns everything the operator logged so far.
func (e *Env) Logs() string { return e.logs.String() }

// Namespace creates a fresh namespace for one test.
func (e *Env) Namespace(t testing.TB, labels ...string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-", Labels: map[string]string{}}}
	for i := 0; i+1 < len(labels); i += 2 {
		ns.Labels[labels[i]] = labels[i+1]
	}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// Apply applies a manifest file or directory (relative to the repository
// root) or inline YAML into ns.
func (e *Env) Apply(t testing.TB, ns, pathOrYAML string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	var err error
	if strings.Contains(pathOrYAML, "\n") {
		objs, err = manifest.Parse([]byte(pathOrYAML))
	} else {
		objs, err = manifest.Read(filepath.Join(e.Root, pathOrYAML))
	}
	if err != nil {
		t.Fatalf("reading manifests: %v", err)
	}
	if err := manifest.Apply(context.Background(), e.Client, ns, objs); err != nil {
		t.Fatalf("applying manifests: %v", err)
	}
	return objs
}

// EventuallyTimeout bounds Eventually. It only decides how long a failing
// test takes to fail; it is generous so a loaded CI machine (two cores, an
// API server per test package) never fails a test that would pass.
const EventuallyTimeout = poll.Timeout

// Eventually polls cond every 50ms until it returns true or
// EventuallyTimeout passes, then fails with the last message cond gave.
func Eventually(t testing.TB, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	poll.Until(t, what, cond)
}

// Events lists the events.k8s.io Events about an object.
func (e *Env) Events(ctx context.Context, ns, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := e.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Name == name {
			out = append(out, ev)
		}
	}
	return out, nil
}

// AssertNoLeak fails when canary appears in the operator's logs.
func (e *Env) AssertNoLeak(t testing.TB, canary string) {
	t.Helper()
	if strings.Contains(e.Logs(), canary) {
		t.Fatalf("secret value %q appeared in the operator's logs", canary)
	}
}
