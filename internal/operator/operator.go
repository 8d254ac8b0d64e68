// Package operator assembles keyferry's controller manager: the cache (which
// holds only the Secrets keyferry manages), the fetch layer, the engine and
// every front-end controller. `keyferry controller`, `keyferry dev` and the
// integration tests all build the operator here.
package operator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	secretsstorev1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	secretsyncv1alpha1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/clusterexternalsecret"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/controller/secretstore"
	"github.com/keyferry/keyferry/internal/controller/secretsync"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
)

// Options configure the operator.
type Options struct {
	// MetricsAddr and HealthAddr are listen addresses; "0" disables.
	MetricsAddr, HealthAddr string
	LeaderElection          bool
	LeaderElectionNamespace string
	// Concurrency is the number of parallel reconciles per controller.
	Concurrency int
	// StoreQPS and StoreBurst limit calls to one store.
	StoreQPS   float64
	StoreBurst int
	// Registry overrides the providers (tests); nil means all.Registry.
	Registry *provider.Registry
	// StartupSpread bounds how a restart spreads first refreshes.
	StartupSpread time.Duration
	// SecretSyncRotationPollInterval is how often SecretSyncs re-check their
	// vault (default 1h).
	SecretSyncRotationPollInterval time.Duration
	Log                            logr.Logger
}

// Operator is a configured manager plus the pieces tests inspect.
type Operator struct {
	Manager manager.Manager
	Fetch   *fetch.Layer
	Engine  *engine.Engine
}

// NewScheme returns the scheme with every type keyferry reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = esv1.AddToScheme(s)
	_ = secretsstorev1.AddToScheme(s)
	_ = secretsyncv1alpha1.AddToScheme(s)
	return s
}

// ManagedSecrets selects the Secrets keyferry caches: only those it manages.
var managedSecrets = labels.SelectorFromSet(labels.Set{engine.LabelManaged: engine.LabelManagedValue})

// New builds the operator. ctx bounds the fetch layer's clients and watchers.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Operator, error) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 16
	}
	scheme := NewScheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  opts.Log,
		Metrics:                 metricsserver.Options{BindAddress: orDisabled(opts.MetricsAddr)},
		HealthProbeBindAddress:  orDisabled(opts.HealthAddr),
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "keyferry.io",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		Controller:              config.Controller{UsePriorityQueue: ptr(true)},
		Cache: cache.Options{
			// managedFields are a large share of every cached object and
			// keyferry never reads them.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {Label: managedSecrets},
			},
		},
		Client: client.Options{Cache: &client.CacheOptions{
			// Credentials and templateFrom sources are read with the API
			// reader; ConfigMaps are never cached.
			DisableFor: []client.Object{&corev1.ConfigMap{}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating clientset: %w", err)
	}
	reg := opts.Registry
	if reg == nil {
		reg = all.Registry(all.Options{Config: cfg})
	}
	if err := secretsync.WrapAzureProvider(reg); err != nil {
		return nil, err
	}
	m := metrics.New(crmetrics.Registry)
	changes := map[string]chan event.GenericEvent{
		"ExternalSecret": make(chan event.GenericEvent, 1024),
		"SecretSync":     make(chan event.GenericEvent, 1024),
	}
	layer := fetch.New(ctx, fetch.Options{
		Registry: reg,
		Kube:     mgr.GetAPIReader(),
		Tokens:   &kube.TokenRequester{Client: cs},
		Log:      opts.Log.WithName("fetch"),
		QPS:      opts.StoreQPS,
		Burst:    opts.StoreBurst,
		OnChange: func(subs []string) { notify(ctx, changes, subs) },
		Metrics:  m,
	})
	eng := &engine.Engine{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Fetch: layer, Registry: reg, Metrics: m,
		Resolvers: map[string]engine.StoreResolver{
			secretsync.StoreKind: secretsync.NewResolver(mgr.GetClient(), secretsync.ResolverOptions{}),
		},
	}

	esr := &externalsecret.Reconciler{
		Client: mgr.GetClient(), Engine: eng, Recorder: mgr.GetEventRecorder("keyferry"),
		Changes: changes["ExternalSecret"], Concurrency: opts.Concurrency, StartupSpread: opts.StartupSpread, Metrics: m,
	}
	if err := esr.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	cesr := &clusterexternalsecret.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("keyferry"), Concurrency: opts.Concurrency}
	if err := cesr.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	ssr := &secretsync.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Engine: eng,
		Recorder: mgr.GetEventRecorder("keyferry"), Changes: changes["SecretSync"],
		Concurrency: opts.Concurrency, StartupSpread: opts.StartupSpread,
		RotationPollInterval: opts.SecretSyncRotationPollInterval,
	}
	if err := ssr.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	for _, cluster := range []bool{false, true} {
		sr := &secretstore.Reconciler{Client: mgr.GetClient(), Fetch: layer, Registry: reg, Recorder: mgr.GetEventRecorder("keyferry"), Cluster: cluster}
		if err := sr.SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	return &Operator{Manager: mgr, Fetch: layer, Engine: eng}, nil
}

// notify turns fetch-layer change notifications into reconcile events for
// the controller of each subscriber's kind. A subscriber is
// "Kind/namespace/name".
func notify(ctx context.Context, chans map[string]chan event.GenericEvent, subs []string) {
	for _, s := range subs {
		parts := strings.SplitN(s, "/", 3)
		if len(parts) != 3 {
			continue
		}
		kind, ns, name := parts[0], parts[1], parts[2]
		ch, ok := chans[kind]
		if !ok {
			continue
		}
		var obj client.Object
		switch kind {
		case "ExternalSecret":
			obj = &esv1.ExternalSecret{}
		case "SecretSync":
			obj = &secretsyncv1alpha1.SecretSync{}
		}
		obj.SetNamespace(ns)
		obj.SetName(name)
		select {
		case ch <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

func ptr[T any](v T) *T { return &v }
