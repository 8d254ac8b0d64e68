// Package secretstore validates SecretStores and ClusterSecretStores and
// reports whether each is usable in its Ready condition: which provider is
// set, whether keyferry supports it, whether its configuration is valid,
// and whether the store answers. A store of another controller class
// (spec.controller, engine.HandlesStore) is left entirely alone: no status,
// no Event, no client, no metric.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/provider"
)

// Reconciler validates one kind of store.
type Reconciler struct {
	Client   client.Client
	Fetch    *fetch.Layer
	Registry *provider.Registry
	Recorder events.EventRecorder
	// Cluster selects ClusterSecretStores instead of SecretStores.
	Cluster bool
	// ControllerClass is this keyferry's controller class
	// (--controller-class).
	ControllerClass string
	// Metrics receives ESO's <kind>_status_condition and
	// <kind>_reconcile_duration; nil records nothing.
	Metrics *metrics.Metrics
	Now     func() time.Time
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Metrics == nil {
		r.Metrics = metrics.New(nil)
	}
	var obj client.Object = &esv1.SecretStore{}
	name := "secretstore"
	if r.Cluster {
		obj, name = &esv1.ClusterSecretStore{}, "clustersecretstore"
	}
	return ctrl.NewControllerManagedBy(mgr).Named(name).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// Reconcile validates a store.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var obj client.Object
	var spec *esv1.SecretStoreSpec
	var status *esv1.SecretStoreStatus
	st := provider.Store{Name: req.Name, Namespace: req.Namespace, Kind: esv1.SecretStoreKind}
	kind := metrics.KindSecretStore
	if r.Cluster {
		kind = metrics.KindClusterSecretStore
		css := &esv1.ClusterSecretStore{}
		obj, spec, status, st.Kind = css, &css.Spec, &css.Status, esv1.ClusterSecretStoreKind
	} else {
		ss := &esv1.SecretStore{}
		obj, spec, status = ss, &ss.Spec, &ss.Status
	}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.ESO.Forget(kind, req.Namespace, req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !engine.HandlesStore(r.ControllerClass, spec) {
		// Another controller's store: not even a metric.
		log.FromContext(ctx).V(1).Info("skipping a store of another controller class", "controller", spec.Controller)
		r.Metrics.ESO.Forget(kind, req.Namespace, req.Name)
		return reconcile.Result{}, nil
	}
	defer r.Metrics.ESO.ObserveReconcile(kind, req.Namespace, req.Name, time.Now())
	st.Spec = spec
	before := status.DeepCopy()

	cond := esv1.SecretStoreStatusCondition{Type: esv1.SecretStoreReady, Status: metav1.ConditionTrue, Reason: esv1.ReasonStoreValid, Message: "store validated"}
	var requeue time.Duration
	if err := engine.CheckProvider(r.Registry, st); err != nil {
		// The spec itself is wrong: wait for the user to change it.
		cond.Status, cond.Message = metav1.ConditionFalse, err.Error()
		cond.Reason = esv1.ReasonInvalidProviderConfig
		if ee := (*engine.Error)(nil); errors.As(err, &ee) && ee.Reason == engine.ReasonUnsupportedProvider {
			cond.Reason = esv1.ReasonUnsupportedProvider
		}
	} else if err := r.validate(ctx, st); err != nil {
		// Something outside the spec is wrong (a credential Secret not
		// created yet, the store unreachable): check again later.
		cond.Status, cond.Message = metav1.ConditionFalse, err.Error()
		cond.Reason, requeue = esv1.ReasonValidationFailed, time.Minute
		switch {
		case errors.Is(err, provider.ErrOperatorIdentity):
			// Only the operator's flags or the spec can change this.
			cond.Reason, requeue = engine.ReasonOperatorIdentityNotAllowed, 0
		case errors.Is(err, provider.ErrInvalidConfig):
			cond.Reason, requeue = esv1.ReasonInvalidProviderConfig, 15*time.Second
		}
	}
	if cond.Status == metav1.ConditionTrue {
		// ESO's spec.refreshInterval (seconds or a duration, checked by
		// CheckProvider): re-validate a valid store this often; 0 or unset
		// validates only when the store changes.
		requeue, _ = spec.RefreshInterval.Duration()
	}
	setCondition(status, cond, r.Now())
	r.Metrics.ESO.SetCondition(kind, req.Namespace, req.Name, string(cond.Type), string(cond.Status))
	status.Capabilities = esv1.SecretStoreReadOnly
	if statusEqual(*before, *status) {
		return reconcile.Result{RequeueAfter: requeue}, nil
	}
	eventType := corev1.EventTypeNormal
	if cond.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(obj, nil, eventType, cond.Reason, "Validate", "%s", cond.Message)
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		return reconcile.Result{}, fmt.Errorf("updating store status: %w", err)
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// validate builds the store's client and asks it to validate itself.
func (r *Reconciler) validate(ctx context.Context, st provider.Store) error {
	if st.IsCluster() && fetch.NeedsNamespace(st.Spec) {
		// Credentials resolve in each user's namespace; nothing to try here.
		return nil
	}
	ns := st.Namespace
	req := fetch.Request{Store: st, Namespace: ns}
	if err := r.Fetch.Validate(ctx, req); err != nil {
		return fmt.Errorf("validating %s %q: %w", st.Kind, st.Name, err)
	}
	return nil
}

func setCondition(st *esv1.SecretStoreStatus, c esv1.SecretStoreStatusCondition, now time.Time) {
	for i, old := range st.Conditions {
		if old.Type != c.Type {
			continue
		}
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status {
			c.LastTransitionTime = esv1.NewTime(now)
		}
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = esv1.NewTime(now)
	st.Conditions = append(st.Conditions, c)
}

func statusEqual(a, b esv1.SecretStoreStatus) bool {
	if a.Capabilities != b.Capabilities || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}
