package operator

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/clusterpushsecret"
	"github.com/keyferry/keyferry/internal/kube"
)

// setupClusterPushSecrets registers the ClusterPushSecret controller when
// it can run: not when switched off (DisableClusterPushSecrets), not with
// --namespace (a ClusterPushSecret writes into many
// namespaces), only when PushSecrets are served (mayPush), and only when
// both CRDs are installed and the operator may list and watch
// clusterpushsecrets. Otherwise it logs why and leaves the kind alone, so
// every other kind keeps syncing.
func setupClusterPushSecrets(ctx context.Context, mgr manager.Manager, opts Options, mayPush bool) error {
	if opts.DisableClusterPushSecrets {
		return nil
	}
	if opts.Namespace != "" {
		opts.Log.Info("ClusterPushSecret controller is off: --namespace serves one namespace and a ClusterPushSecret writes into many", "namespace", opts.Namespace)
		return nil
	}
	if !mayPush {
		opts.Log.Info("ClusterPushSecret controller is off: PushSecrets are not served")
		return nil
	}
	for _, kind := range []string{esv1alpha1.ClusterPushSecretKind, "PushSecret"} {
		gvk := esv1alpha1.GroupVersion.WithKind(kind)
		if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if meta.IsNoMatchError(err) {
				opts.Log.Info("ClusterPushSecret controller is off: a CRD it needs is not installed", "kind", kind)
				return nil
			}
			return fmt.Errorf("looking up %s: %w", gvk, err)
		}
	}
	may, err := kube.MayListWatch(ctx, mgr.GetClient(), esv1alpha1.GroupVersion.Group, "clusterpushsecrets", "")
	if err != nil {
		return err
	}
	if !may {
		opts.Log.Info("ClusterPushSecret controller is off: the operator may not list and watch clusterpushsecrets")
		return nil
	}
	r := &clusterpushsecret.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("keyferry"),
		ControllerClass: opts.ControllerClass, DisableClusterStores: opts.DisableClusterStores, Concurrency: opts.Concurrency}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the ClusterPushSecret controller: %w", err)
	}
	return nil
}
