// Package operator assembles keyferry's controller manager: the cache (which
// holds only the Secrets keyferry manages), the fetch layer, the engine and
// every front-end controller. `keyferry controller`, `keyferry dev` and the
// integration tests all build the operator here.
package operator

import (
	"context"
	"crypto/tls"
	"fmt"
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
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	secretsstorev1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	secretsyncv1alpha1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/clusterexternalsecret"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/controller/restart"
	"github.com/keyferry/keyferry/internal/controller/secretstore"
	"github.com/keyferry/keyferry/internal/controller/secretsync"
	"github.com/keyferry/keyferry/internal/controller/unsupported"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/eventbudget"
	"github.com/keyferry/keyferry/internal/exepages"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/metricsauth"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
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
	// StoreProbeInterval caps the wait between calls to a failing store
	// that objects wait on (--store-probe-interval; default 30s); see
	// docs/reliability.md.
	StoreProbeInterval time.Duration
	// TemplateLimits bound template rendering (zero fields: defaults,
	// docs/templates.md).
	TemplateLimits render.Limits
	// Registry overrides the providers (tests); nil means all.Registry.
	Registry *provider.Registry
	// StartupSpread bounds how a restart spreads first refreshes.
	StartupSpread time.Duration
	// HeadStart is how many ExternalSecrets are synced from one page read
	// at start-up, before the cache holds them all (0: 100, negative:
	// none; externalsecret.Reconciler.HeadStart).
	HeadStart int
	// SecretSyncRotationPollInterval is how often SecretSyncs re-check their
	// vault (default 1h).
	SecretSyncRotationPollInterval time.Duration
	Log                            logr.Logger

	// StorePolicy relaxes keyferry's rules for stores: which of the
	// operator's own identities namespaced stores may use
	// (--allow-ambient-identity) and whether credentials may go over plain
	// http:// (--allow-insecure-http). The zero value relaxes nothing; see
	// docs/security.md.
	StorePolicy provider.Policy
	// WebhookAllowLinkLocal lets webhook stores reach link-local and cloud
	// metadata addresses (--webhook-allow-link-local); see docs/security.md.
	WebhookAllowLinkLocal bool
	// CSIPlugins configures the CSI provider plugins that serve the
	// SecretProviderClasses of every provider keyferry has no native
	// provider for (--csi-provider-dir, --csi-token-audiences,
	// --csi-mount-timeout); an empty Dir leaves them off. See
	// docs/secretsync.md.
	CSIPlugins csiplugin.Options
	// VaultClassAddress is the Vault address of SecretProviderClasses with
	// provider vault that set no vaultAddress (--secretsync-vault-address).
	VaultClassAddress string

	// ControllerClass is ESO's --controller-class: stores whose
	// spec.controller is set and differs are left alone, and so are the
	// ExternalSecrets that use them (engine.HandlesStore).
	ControllerClass string
	// Namespace, when set, serves that namespace only: the cache watches it
	// alone and the ClusterExternalSecret controller, which writes into
	// every namespace, is off.
	Namespace string
	// DisableClusterStores, DisableClusterExternalSecrets and
	// DisableSecretSync switch a kind off entirely: it is not watched, needs
	// no RBAC, and (for ClusterSecretStores) an ExternalSecret that uses
	// one gets Ready=False ClusterSecretStoreDisabled.
	DisableClusterStores          bool
	DisableClusterExternalSecrets bool
	DisableSecretSync             bool

	// DisableClusterPushSecrets switches the ClusterPushSecret controller
	// off (--enable-cluster-push-secret-reconciler=false, ESO's flag).
	DisableClusterPushSecrets bool
	// MetricsSecure serves metrics over HTTPS behind authentication and
	// authorisation by the API server (internal/metricsauth: TokenReview +
	// SubjectAccessReview; the caller needs `get` on the non-resource URL
	// /metrics). MetricsCertDir holds tls.crt and tls.key; without them a
	// self-signed certificate is used.
	MetricsSecure  bool
	MetricsCertDir string
	// SkipControllerNameValidation lets one process build several operators
	// (tests).
	SkipControllerNameValidation bool

	// RestartWorkloads runs the controller that restarts Deployments,
	// StatefulSets, DaemonSets and Argo Rollouts carrying Reloader's
	// annotations when a Secret keyferry manages changed content
	// (--restart-workloads; off by default so it never doubles up with a
	// Reloader already running). It needs get, list and patch on those
	// kinds; see docs/restarts.md.
	RestartWorkloads bool
	// RestartDebounce is how long a workload waits after the last change
	// of a Secret it restarts for (--restart-debounce; 0: 2s).
	RestartDebounce time.Duration
	// NormalEventsPerSecond and NormalEventBurst bound the Normal Events
	// ExternalSecrets and SecretSyncs emit (internal/eventbudget); zero
	// values take the defaults, a negative rate lifts the bound. Warning
	// Events are never bounded.
	NormalEventsPerSecond float64
	NormalEventBurst      int
	// AllowGenericTargets lets ExternalSecrets write targets other than
	// Secrets through spec.target.manifest (ConfigMaps and other namespaced
	// kinds; --unsafe-allow-generic-targets, ESO's flag;
	// docs/manifest-targets.md). It adds a metadata-only watch of ConfigMaps
	// and of each other target kind once used.
	AllowGenericTargets bool
	// PprofAddr serves net/http/pprof (--pprof-bind-address); "" or "0"
	// disables it.
	PprofAddr string
	// ProcessStart is when the process started, for the start-up trace;
	// zero reads it from /proc.
	ProcessStart time.Time
	// ReleaseStartupPages hands the pages of the executable that start-up
	// mapped back to the kernel at the end of the start-up steps "packages
	// initialised", "operator built" and "caches synced"
	// (--release-startup-pages; internal/exepages). It is for the operator's own process, not for
	// tests that build an operator inside theirs.
	ReleaseStartupPages bool
}

// Operator is a configured manager plus the pieces tests inspect.
type Operator struct {
	Manager manager.Manager
	Fetch   *fetch.Layer
	Engine  *engine.Engine
	// Restart is the workload restart controller (nil unless
	// RestartWorkloads).
	Restart *restart.Reconciler
	// headStart, when set, runs beside the manager from the start (Start).
	headStart func(context.Context)
	// SecretMetadata is the cache of every Secret's metadata (served
	// namespace only, with Namespace), whose watch starts when an
	// ExternalSecret waits or a PushSecret is reconciled.
	SecretMetadata cache.Cache
}

// NewScheme returns the scheme with every type keyferry reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = esv1.AddToScheme(s)
	_ = secretsstorev1.AddToScheme(s)
	_ = secretsyncv1alpha1.AddToScheme(s)
	_ = esv1alpha1.AddToScheme(s)
	_ = genv1alpha1.AddToScheme(s)
	return s
}

// ManagedSecrets selects the Secrets keyferry caches: only those it manages.
var managedSecrets = labels.SelectorFromSet(labels.Set{engine.LabelManaged: engine.LabelManagedValue})

// New builds the operator. ctx bounds the fetch layer's clients and watchers.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Operator, error) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 16
	}
	trace := newStartupTrace(opts.ProcessStart, opts.Log)
	if opts.ReleaseStartupPages {
		trace.stepEnded = releaseStartupPages(opts.Log)
	}
	trace.mark(stepInitialised)
	scheme := NewScheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		PprofBindAddress:        orDisabled(opts.PprofAddr),
		Scheme:                  scheme,
		Logger:                  opts.Log,
		Metrics:                 metricsOptions(opts),
		HealthProbeBindAddress:  orDisabled(opts.HealthAddr),
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "keyferry.io",
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// The process exits once the manager stops, so on SIGTERM the
		// lease is handed over at once instead of expiring.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{UsePriorityQueue: ptr(true), SkipNameValidation: ptr(opts.SkipControllerNameValidation)},
		// Controllers start as soon as the informers they watch have synced
		// (kube.SyncPromptly).
		NewCache: func(cfg *rest.Config, o cache.Options) (cache.Cache, error) {
			c, err := cache.New(cfg, o)
			if err != nil {
				return nil, err
			}
			return kube.SyncPromptly(c), nil
		},
		Cache: cache.Options{
			DefaultNamespaces: servedNamespaces(opts.Namespace),
			// managedFields are a large share of every cached object and
			// keyferry never reads them; the strings that repeat across
			// cached Secrets and ExternalSecrets are kept once (intern.go).
			DefaultTransform: compactedAfter(cache.TransformStripManagedFields()),
			NewInformer:      newInformer,
			// A watch that ends because the operator stops is not an error.
			DefaultWatchErrorHandler: watchErrorUnlessStopping,
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
		reg = all.Registry(all.Options{Config: cfg, WebhookAllowLinkLocal: opts.WebhookAllowLinkLocal, CSIPlugins: opts.CSIPlugins,
			VaultClassAddress: opts.VaultClassAddress})
	}
	m := metrics.New(crmetrics.Registry)
	// Change notifications go to the controller of the subscriber's kind
	// (notify); only controllers that run are listed. The map is complete
	// before the manager starts, and the fetch layer reports changes only to
	// subscribers, which reconciles add once it runs.
	notifiers := map[string]changeNotifier{}
	layer := fetch.New(ctx, fetch.Options{
		Registry: reg,
		Kube:     mgr.GetAPIReader(),
		Tokens:   &kube.TokenRequester{Client: cs},
		Policy:   opts.StorePolicy,
		Log:      opts.Log.WithName("fetch"),
		QPS:      opts.StoreQPS,
		Burst:    opts.StoreBurst,
		OnChange: func(subs []string) { notify(ctx, notifiers, subs) },
		Metrics:  m,

		// A failing store is called at least this often while objects wait
		// for it; they re-sync the moment it answers.
		ProbeInterval: opts.StoreProbeInterval,
	})
	eng := &engine.Engine{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Fetch: layer, Registry: reg, Metrics: m,
		Templates:            render.NewSandbox(opts.TemplateLimits),
		ControllerClass:      opts.ControllerClass,
		DisableClusterStores: opts.DisableClusterStores,
		OnSecretWritten:      func() { trace.mark(stepFirstSecret) },
	}

	// One budget for the Normal Events of every sync, whatever its kind.
	syncEvents := eventRecorder(mgr, opts, m)
	// One cache of every Secret's metadata for the controllers that watch
	// Secrets they do not write (ExternalSecrets waiting for a change,
	// PushSecret sources). Its watch starts when the first of them needs it
	// (kube.DeferredSource).
	secretMetadata, err := kube.NewSecretMetadataCache(mgr, opts.Namespace, engine.AnnotationAdopt)
	if err != nil {
		return nil, err
	}
	esr := &externalsecret.Reconciler{
		Client: mgr.GetClient(), Engine: eng, Recorder: syncEvents, SecretMetadata: secretMetadata,
		Concurrency: opts.Concurrency, StartupSpread: opts.StartupSpread, HeadStart: opts.HeadStart, Metrics: m,
		Namespace: opts.Namespace, ProbeInterval: opts.StoreProbeInterval,
		AllowGenericTargets: opts.AllowGenericTargets,
	}
	notifiers[externalsecret.Kind] = esr
	if err := esr.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	if opts.Namespace != "" && !opts.DisableClusterExternalSecrets {
		opts.Log.Info("ClusterExternalSecret controller is off: --namespace serves one namespace and a ClusterExternalSecret writes into many", "namespace", opts.Namespace)
	}
	if !opts.DisableClusterExternalSecrets && opts.Namespace == "" {
		cesr := &clusterexternalsecret.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("keyferry"), Concurrency: opts.Concurrency, Metrics: m}
		if err := cesr.SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
	}
	if !opts.DisableSecretSync {
		ssr := &secretsync.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Engine: eng,
			Recorder:    syncEvents,
			Concurrency: opts.Concurrency, StartupSpread: opts.StartupSpread,
			RotationPollInterval: opts.SecretSyncRotationPollInterval,
			ProbeInterval:        opts.StoreProbeInterval,
		}
		notifiers[secretsync.Kind] = ssr
		if err := ssr.SetupWithManager(ctx, mgr); err != nil {
			return nil, err
		}
	}
	for _, cluster := range []bool{false, true} {
		if cluster && opts.DisableClusterStores {
			continue
		}
		sr := &secretstore.Reconciler{Client: mgr.GetClient(), Fetch: layer, Registry: reg, Recorder: mgr.GetEventRecorder("keyferry"), Cluster: cluster,
			ControllerClass: opts.ControllerClass, Metrics: m}
		if err := sr.SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	var rr *restart.Reconciler
	if opts.RestartWorkloads {
		rr = &restart.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("keyferry"),
			Metrics: m, Window: opts.RestartDebounce, Concurrency: opts.Concurrency}
		if err := rr.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up the restart controller: %w", err)
		}
	}
	// PushSecrets are served only when the operator may watch them: RBAC
	// written before keyferry served them (a hand-written Role for
	// --namespace) must not stall every other kind.
	mayPush, err := kube.MayListWatch(ctx, mgr.GetClient(), esv1alpha1.GroupVersion.Group, "pushsecrets", opts.Namespace)
	if err != nil {
		return nil, err
	}
	if !mayPush {
		opts.Log.Info("PushSecret controller is off: the operator may not list and watch pushsecrets", "namespace", opts.Namespace)
	} else {
		psr := &pushsecret.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Engine: eng, Recorder: syncEvents,
			Namespace: opts.Namespace, Concurrency: opts.Concurrency, SecretMetadata: secretMetadata}
		notifiers[pushsecret.Kind] = psr
		if err := psr.SetupWithManager(ctx, mgr); err != nil {
			return nil, fmt.Errorf("setting up the PushSecret controller: %w", err)
		}
	}
	if err := setupClusterPushSecrets(ctx, mgr, opts, mayPush); err != nil {
		return nil, err
	}
	// The ESO kinds keyferry serves but does not implement yet get
	// Ready=False Unsupported (the list is unsupported.Kinds).
	if err := unsupported.Setup(mgr, unsupported.Options{
		Client: mgr.GetClient(), Access: mgr.GetClient(), Recorder: mgr.GetEventRecorder("keyferry"), Log: opts.Log,
		Namespace: opts.Namespace, ControllerClass: opts.ControllerClass, DisableClusterStores: opts.DisableClusterStores,
	}); err != nil {
		return nil, fmt.Errorf("setting up the controllers of unsupported kinds: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(trace.cachesSynced(mgr.GetCache().WaitForCacheSync))); err != nil {
		return nil, err
	}
	trace.mark(stepBuilt)
	op := &Operator{Manager: mgr, Fetch: layer, Engine: eng, Restart: rr, SecretMetadata: secretMetadata}
	if !opts.LeaderElection {
		// Free to write at once: the first ExternalSecrets sync while the
		// caches fill (externalsecret's head start).
		op.headStart = esr.StartHeadStart
	}
	return op, nil
}

// ReleasedStartupPagesLog is the message logged each time the operator
// hands back the executable's start-up pages (Options.ReleaseStartupPages).
const ReleasedStartupPagesLog = "released the executable's start-up pages"

// releaseStartupPages returns the start-up trace's stepEnded hook that
// drops the executable's pages at the end of the steps that run code once:
// package initialisation ("packages initialised"), the operator's
// construction ("operator built"), the informers' first lists ("caches
// synced").
func releaseStartupPages(log logr.Logger) func(step string) {
	log = log.WithName("startup")
	return func(step string) {
		if step == stepFirstSecret {
			return
		}
		got, err := exepages.Release()
		if err != nil {
			log.Error(err, "could not release the executable's start-up pages", "step", step)
			return
		}
		log.Info(ReleasedStartupPagesLog, "step", step, "mappings", got.Mappings, "residentBytes", got.Resident)
	}
}

// Start runs the operator until ctx is done: the manager and, without
// leader election, the ExternalSecret head start beside it from the start,
// as it need not wait for the manager's caches.
func (o *Operator) Start(ctx context.Context) error {
	if o.headStart != nil {
		go o.headStart(ctx)
	}
	return o.Manager.Start(ctx)
}

// eventRecorder is the recorder of the sync controllers: Warning Events
// always, Normal Events within the budget.
func eventRecorder(mgr manager.Manager, opts Options, m *metrics.Metrics) *eventbudget.Recorder {
	perSecond, burst := opts.NormalEventsPerSecond, opts.NormalEventBurst
	if perSecond == 0 {
		perSecond = eventbudget.DefaultPerSecond
	}
	if burst == 0 {
		burst = eventbudget.DefaultBurst
	}
	return eventbudget.New(mgr.GetEventRecorder("keyferry"), perSecond, burst, m.EventsSuppressed.Inc)
}

// changeNotifier is a controller that reconciles an object when a value it
// reads changes in a store (externalsecret.Reconciler.Notify,
// secretsync.Reconciler.Notify).
type changeNotifier interface {
	Notify(ctx context.Context, ref engine.ObjectRef)
}

// notify hands fetch-layer change notifications to the controller of each
// subscriber's kind. A subscriber is an engine.ObjectRef in its String form;
// one that does not parse, or whose kind no running controller serves, is
// dropped.
func notify(ctx context.Context, notifiers map[string]changeNotifier, subs []string) {
	for _, s := range subs {
		ref, err := engine.ParseObjectRef(s)
		if err != nil {
			continue
		}
		n, ok := notifiers[ref.Kind]
		if !ok {
			continue
		}
		n.Notify(ctx, ref)
		if ctx.Err() != nil {
			return
		}
	}
}

// metricsOptions configures the metrics endpoint: plain HTTP, or HTTPS
// behind TokenReview authentication and SubjectAccessReview authorisation
// (internal/metricsauth).
// HTTP/2 is off (CVE-2023-44487, CVE-2023-39325), as in ESO and kubebuilder.
func metricsOptions(opts Options) metricsserver.Options {
	o := metricsserver.Options{BindAddress: orDisabled(opts.MetricsAddr)}
	if opts.MetricsSecure {
		o.SecureServing = true
		o.FilterProvider = metricsauth.Filter
		o.CertDir = opts.MetricsCertDir
		o.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return o
}

// servedNamespaces restricts the cache to namespace; "" watches all.
func servedNamespaces(namespace string) map[string]cache.Config {
	if namespace == "" {
		return nil
	}
	return map[string]cache.Config{namespace: {}}
}

func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

func ptr[T any](v T) *T { return &v }
