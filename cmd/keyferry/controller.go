package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/keyferry/keyferry/internal/memlimit"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
)

// identityNames lists the values --allow-ambient-identity accepts.
func identityNames() []string {
	ids := provider.Identities()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func runController(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	opts := operator.Options{}
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `metrics listen address ("0" disables)`)
	fs.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", `health probe listen address ("0" disables)`)
	fs.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader so that only one replica reconciles")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	fs.IntVar(&opts.Concurrency, "concurrent", 16, "parallel reconciles per controller")
	fs.Float64Var(&opts.StoreQPS, "store-qps", 100, "calls per second to one store")
	fs.IntVar(&opts.StoreBurst, "store-burst", 200, "burst of calls to one store")
	fs.DurationVar(&opts.StoreProbeInterval, "store-probe-interval", 30*time.Second, "longest wait between calls to a failing store that objects wait on; the first call that succeeds re-syncs them all")
	fs.DurationVar(&opts.SecretSyncRotationPollInterval, "secretsync-rotation-poll-interval", time.Hour, "how often SecretSyncs re-check their vault")
	fs.StringVar(&opts.ControllerClass, "controller-class", "", "serve only stores whose spec.controller is this class or empty (ESO's --controller-class)")
	fs.StringVar(&opts.Namespace, "namespace", "", "serve this namespace only; turns the ClusterExternalSecret and ClusterPushSecret controllers off")
	clusterStores := fs.Bool("enable-cluster-store-reconciler", true, "serve ClusterSecretStores (false: not watched; ExternalSecrets using one get Ready=False ClusterSecretStoreDisabled)")
	clusterExternalSecrets := fs.Bool("enable-cluster-external-secret-reconciler", true, "serve ClusterExternalSecrets")
	clusterPushSecrets := fs.Bool("enable-cluster-push-secret-reconciler", true, "serve ClusterPushSecrets (off with --namespace)")
	secretSyncs := fs.Bool("enable-secretsync-reconciler", true, "serve SecretSyncs")
	fs.BoolVar(&opts.RestartWorkloads, "restart-workloads", false, "restart Deployments, StatefulSets and DaemonSets that carry Reloader's annotations when a Secret keyferry manages changed content (docs/restarts.md)")
	fs.BoolVar(&opts.AllowGenericTargets, "unsafe-allow-generic-targets", false, "let ExternalSecrets write ConfigMaps and custom resources through spec.target.manifest (ESO's flag); they are not encrypted at rest like Secrets (docs/manifest-targets.md)")
	fs.DurationVar(&opts.RestartDebounce, "restart-debounce", 2*time.Second, "with --restart-workloads: how long a workload waits after the last change of a Secret it restarts for, so one rotation restarts it once")
	fs.BoolVar(&opts.MetricsSecure, "metrics-secure", true, "serve metrics over HTTPS to callers allowed to get the non-resource URL /metrics (TokenReview + SubjectAccessReview); false serves plain HTTP")
	fs.StringVar(&opts.MetricsCertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for the metrics endpoint (default: a self-signed certificate)")
	ambient := fs.String("allow-ambient-identity", "", "comma-separated identities of the operator that namespaced SecretStores may use, each IDENTITY (every namespace) or NAMESPACE/IDENTITY; identities: "+strings.Join(identityNames(), ", ")+" (see docs/security.md)")
	fs.BoolVar(&opts.StorePolicy.AllowInsecureHTTP, "allow-insecure-http", false, "let stores send credentials to plain http:// servers that are not loopback addresses")
	fs.BoolVar(&opts.WebhookAllowLinkLocal, "webhook-allow-link-local", false, "let webhook stores connect to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254)")
	fs.StringVar(&opts.VaultClassAddress, "secretsync-vault-address", "", "Vault address of SecretProviderClasses with provider vault that set no vaultAddress (the Vault CSI provider's -vault-addr); empty: vaultAddress is required")
	fs.StringVar(&opts.CSIPlugins.Dir, "csi-provider-dir", "", "directory of the Secrets Store CSI provider plugins' sockets (<dir>/<provider>.sock); SecretProviderClasses of providers keyferry does not serve natively are read through them (empty: off; docs/secretsync.md)")
	csiAudiences := fs.String("csi-token-audiences", "", "with --csi-provider-dir: comma-separated audiences of the SecretSync ServiceAccount tokens sent to the plugins, one token each (the Sync Controller's --token-request-audience)")
	fs.DurationVar(&opts.CSIPlugins.Timeout, "csi-mount-timeout", 30*time.Second, "with --csi-provider-dir: how long one Mount call to a plugin may take")
	fs.Float64Var(&opts.NormalEventsPerSecond, "normal-events-per-second", 10, "Normal Events (Created, Updated) per second across all ExternalSecrets and SecretSyncs once the burst is spent; Warning Events are never limited; a negative value lifts the limit")
	fs.IntVar(&opts.NormalEventBurst, "normal-event-burst", 100, "Normal Events emitted before --normal-events-per-second applies")
	fs.BoolVar(&opts.ReleaseStartupPages, "release-startup-pages", true, "when its packages are initialised, when the operator is built and when its caches have synced, hand back to the kernel the pages of the executable that start-up mapped; code still in use maps back in from the page cache; not done under a container memory limit (docs/performance.md)")
	fs.StringVar(&opts.PprofAddr, "pprof-bind-address", "0", `net/http/pprof listen address ("0" disables)`)
	qps := fs.Float64("client-qps", 1000, "Kubernetes API client queries per second")
	burst := fs.Int("client-burst", 2000, "Kubernetes API client burst")
	newLog := logFlags(fs)
	_ = fs.Parse(args)
	opts.Log = newLog()
	if limits, err := memlimit.Apply(); err != nil {
		opts.Log.Error(err, "leaving the Go memory limit unset")
	} else {
		if limits.Soft > 0 {
			opts.Log.Info("Go memory limit set from the container's limit", "bytes", limits.Soft, "share", memlimit.Share)
		}
		if limits.GCPercent > 0 {
			opts.Log.V(1).Info("Go garbage collection target set (GOGC overrides it)", "percent", limits.GCPercent)
		}
		if opts.ReleaseStartupPages && !limits.ReleasesStartupPages(true) {
			opts.Log.Info("keeping the executable's start-up pages mapped: the container has a memory limit, and the kernel takes back what is not in use", "limitBytes", limits.Container)
		}
		opts.ReleaseStartupPages = limits.ReleasesStartupPages(opts.ReleaseStartupPages)
		if limits.BelowMinimum() {
			opts.Log.Error(nil, "the container's memory limit is below what keyferry needed for 1,000 ExternalSecrets; the limit counts the binary's pages, and short of room the operator slows to a crawl instead of being killed (docs/performance.md, \"Under a memory limit\")",
				"limitBytes", limits.Container, "advisedBytes", memlimit.MinimumContainerLimit)
		}
	}
	opts.DisableClusterStores = !*clusterStores
	opts.DisableClusterExternalSecrets = !*clusterExternalSecrets
	opts.DisableClusterPushSecrets = !*clusterPushSecrets
	opts.DisableSecretSync = !*secretSyncs
	grants, err := provider.ParseIdentityGrants(*ambient)
	if err != nil {
		return fmt.Errorf("--allow-ambient-identity: %w", err)
	}
	opts.StorePolicy.AmbientIdentities = grants
	opts.CSIPlugins.Audiences = splitList(*csiAudiences)
	// The pod's identity, sent to the plugins as the CSI driver sends the
	// mounting pod's (the chart sets them from the downward API).
	opts.CSIPlugins.PodName, opts.CSIPlugins.PodUID = os.Getenv("POD_NAME"), os.Getenv("POD_UID")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading Kubernetes configuration: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	op, err := operator.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return op.Start(ctx)
}

// splitList splits a comma-separated flag value, dropping blank entries.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
