package clusterexternalsecret

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/fanout"
	"github.com/keyferry/keyferry/internal/controller/refresh"
	"github.com/keyferry/keyferry/internal/metrics"
)

// IndexOwner indexes ExternalSecrets by the name of the
// ClusterExternalSecret that controls them.
const IndexOwner = "keyferry.io/clusterexternalsecret"

// Refresh fallback. Namespace and ExternalSecret changes are watched, so
// the periodic re-check only repairs what a missed event would leave.
const (
	// DefaultRefreshTime is the re-check period when spec.refreshTime is
	// not set.
	DefaultRefreshTime = time.Hour
	// MinRefreshTime is the shortest re-check period; a smaller
	// spec.refreshTime (ESO examples use 1m) is raised to it.
	MinRefreshTime = time.Minute
)

// Event reasons. Warning events accompany every namespace that newly fails;
// a Normal event marks the transition to Ready.
const (
	// EventConflict: an ExternalSecret of the same name exists in a
	// selected namespace and is not this ClusterExternalSecret's.
	EventConflict = "ExternalSecretConflict"
	// EventApplyFailed: creating, updating or deleting an ExternalSecret
	// failed; it is retried with backoff.
	EventApplyFailed = "ApplyFailed"
	// EventInvalidSpec: a spec field holds an unusable value (such as a
	// spec.refreshTime that is not a duration) or the namespace selection
	// cannot be evaluated; nothing is created or deleted until it is fixed.
	EventInvalidSpec = "InvalidSpec"
	// EventProvisioned: every selected namespace has its ExternalSecret.
	EventProvisioned = "Provisioned"
)

// staleRetry is when a reconcile that found the cache behind is retried if
// no watch event comes first.
const staleRetry = time.Second

// DefaultWriters is how many ExternalSecrets one reconcile writes in
// parallel.
const DefaultWriters = 8

// Reconciler fans ClusterExternalSecrets out to ExternalSecrets.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Concurrency is the number of ClusterExternalSecrets reconciled in
	// parallel (default 1).
	Concurrency int
	// Writers is how many ExternalSecrets one reconcile writes in parallel
	// (default DefaultWriters).
	Writers int
	// Metrics receives ESO's clusterexternalsecret_status_condition and
	// clusterexternalsecret_reconcile_duration; nil records nothing.
	Metrics *metrics.Metrics

	// reported is the last status each ClusterExternalSecret was given,
	// by name, so an Event is not repeated when the cache has not yet
	// caught up with a status write.
	mu       sync.Mutex
	reported map[string]reported
}

type reported struct {
	uid    types.UID
	status esv1.ClusterExternalSecretStatus
}

// SetupWithManager registers the controller, its index of ExternalSecrets
// by owner, and its watches: ClusterExternalSecrets, the ExternalSecrets
// they own (and any ExternalSecret of a name one of them uses, so a
// conflicting one that is deleted frees its namespace), and Namespaces
// (created, relabelled, deleted).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Writers <= 0 {
		r.Writers = DefaultWriters
	}
	if r.Metrics == nil {
		r.Metrics = metrics.New(nil)
	}
	r.reported = map[string]reported{}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &esv1.ExternalSecret{}, IndexOwner, func(o client.Object) []string {
		if name, ok := fanout.ControllerName(o, esv1.GroupVersion.Group, Kind); ok {
			return []string{name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing ExternalSecrets by ClusterExternalSecret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterexternalsecret").
		For(&esv1.ClusterExternalSecret{}, builder.WithPredicates(clusterExternalSecretChanged())).
		Watches(&esv1.ExternalSecret{}, handler.EnqueueRequestsFromMapFunc(r.forExternalSecret), builder.WithPredicates(fanout.ChildChanged())).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all), builder.WithPredicates(fanout.NamespaceChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Complete(r)
}

// forExternalSecret maps an ExternalSecret to its controlling
// ClusterExternalSecret, or, when it has none, to the ClusterExternalSecrets
// that create ExternalSecrets of its name (one may be blocked by it).
func (r *Reconciler) forExternalSecret(ctx context.Context, o client.Object) []reconcile.Request {
	if name, ok := fanout.ControllerName(o, esv1.GroupVersion.Group, Kind); ok {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	var list esv1.ClusterExternalSecretList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing ClusterExternalSecrets")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if ExternalSecretName(&list.Items[i]) == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return out
}

// all maps a namespace change to every ClusterExternalSecret: any of them
// may start or stop selecting it. Namespace changes are rare and a
// reconcile that changes nothing only reads the cache.
func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list esv1.ClusterExternalSecretList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing ClusterExternalSecrets")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return out
}

// clusterExternalSecretChanged passes spec changes, annotation changes
// (force-sync is passed on to the ExternalSecrets) and the start of a
// deletion; status writes are ignored.
func clusterExternalSecretChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				!equality.Semantic.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
				o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero()
		},
	}
}

// outcome is what happened in one namespace.
type outcome struct {
	namespace   string
	provisioned bool
	// reason is the failedNamespaces reason; eventReason its Event reason.
	reason, eventReason string
	// err is a failure worth retrying with backoff.
	err error
	// stale: the cache is behind what the API server has (a create found
	// the object, an update hit a newer version); the reconcile is retried
	// once the cache catches up, without reporting a failure.
	stale bool
}

// Reconcile provisions one ClusterExternalSecret.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var ces esv1.ClusterExternalSecret
	if err := r.Client.Get(ctx, req.NamespacedName, &ces); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !ces.DeletionTimestamp.IsZero() {
		// The garbage collector removes its ExternalSecrets through their
		// ownerReferences.
		r.forget(req.Name)
		return reconcile.Result{}, r.release(ctx, &ces)
	}
	defer r.Metrics.ESO.ObserveReconcile(metrics.KindClusterExternalSecret, "", ces.Name, time.Now())
	prev := r.previous(&ces)
	name := ExternalSecretName(&ces)
	var namespaces corev1.NamespaceList
	if err := r.Client.List(ctx, &namespaces); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing namespaces: %w", err)
	}
	var errs []error
	if err := r.releaseNamespaces(ctx, &ces, namespaces.Items); err != nil {
		errs = append(errs, err)
	}
	selected, err := SelectNamespaces(&ces, namespaces.Items)
	if msg := invalidSpec(&ces, err); msg != "" {
		// Nothing is created or deleted until the spec is fixed.
		next := ces.Status.DeepCopy()
		next.ExternalSecretName = name
		next.FailedNamespaces = nil
		setReady(next, metav1.ConditionFalse, msg)
		if !readyIs(&prev, metav1.ConditionFalse, msg) {
			r.Recorder.Eventf(&ces, nil, corev1.EventTypeWarning, EventInvalidSpec, "Provision", "%s", msg)
		}
		if err := r.writeStatus(ctx, &ces, next); err != nil {
			errs = append(errs, err)
		}
		return reconcile.Result{}, errors.Join(errs...)
	}

	var owned esv1.ExternalSecretList
	if err := r.Client.List(ctx, &owned, client.MatchingFields{IndexOwner: ces.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing ExternalSecrets of ClusterExternalSecret %s: %w", ces.Name, err)
	}

	outcomes := fanout.Parallel(len(selected), r.Writers, func(i int) outcome { return r.provision(ctx, &ces, selected[i]) })
	stale := staleExternalSecrets(&ces, selected, owned.Items)
	outcomes = append(outcomes, fanout.Parallel(len(stale), r.Writers, func(i int) outcome { return r.remove(ctx, stale[i]) })...)

	for _, o := range outcomes {
		if o.stale {
			// The watch event that brings the cache up to date requeues
			// this object; the delay is only a safety net.
			logger.V(1).Info("cache is behind the API server; retrying", "namespace", o.namespace)
			return reconcile.Result{RequeueAfter: staleRetry}, nil
		}
	}
	next := ces.Status.DeepCopy()
	next.ExternalSecretName = name
	next.ProvisionedNamespaces, next.FailedNamespaces = nil, nil
	for _, o := range outcomes {
		if o.provisioned {
			next.ProvisionedNamespaces = append(next.ProvisionedNamespaces, o.namespace)
		}
		if o.reason != "" {
			next.FailedNamespaces = append(next.FailedNamespaces, esv1.ClusterExternalSecretNamespaceFailure{Namespace: o.namespace, Reason: o.reason})
		}
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	sort.Strings(next.ProvisionedNamespaces)
	sort.Slice(next.FailedNamespaces, func(i, j int) bool {
		return next.FailedNamespaces[i].Namespace < next.FailedNamespaces[j].Namespace
	})
	status, msg := ReadyCondition(name, len(selected), next.FailedNamespaces)
	setReady(next, status, msg)

	r.emitEvents(&ces, &prev, outcomes, status, msg)
	if err := r.writeStatus(ctx, &ces, next); err != nil {
		errs = append(errs, err)
	}
	logger.V(1).Info("provisioned", "externalSecret", name, "selected", len(selected),
		"provisioned", len(next.ProvisionedNamespaces), "failed", len(next.FailedNamespaces), "removed", len(stale))
	if len(errs) > 0 {
		return reconcile.Result{}, errors.Join(errs...)
	}
	return fallback(&ces), nil
}

// invalidSpec returns the Ready message of a ClusterExternalSecret whose
// spec cannot be used: a field that decoded but holds no usable value (such
// as a spec.refreshTime that is not a duration, which would otherwise fall
// back to the default silently), or a namespace selection that cannot be
// evaluated (selErr). "" means the spec is valid.
func invalidSpec(ces *esv1.ClusterExternalSecret, selErr error) string {
	if err := ces.Spec.FieldErrors(); err != nil {
		return fmt.Sprintf("Invalid spec: %v.", err)
	}
	if selErr != nil {
		return fmt.Sprintf("Invalid namespace selection: %v.", selErr)
	}
	return ""
}

// provision makes sure namespace has ces's ExternalSecret.
func (r *Reconciler) provision(ctx context.Context, ces *esv1.ClusterExternalSecret, namespace string) outcome {
	desired := DesiredExternalSecret(ces, namespace)
	o := outcome{namespace: namespace}
	failed := func(format string, err error) outcome {
		o.reason = fmt.Sprintf(format, desired.Name, err)
		o.eventReason = EventApplyFailed
		o.err = fmt.Errorf("namespace %s: %s", namespace, o.reason)
		return o
	}
	var existing esv1.ExternalSecret
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), &existing)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				o.stale = true
				return o
			}
			return failed("creating ExternalSecret %s: %v", err)
		}
		o.provisioned = true
		return o
	case err != nil:
		return failed("reading ExternalSecret %s: %v", err)
	}
	if OwnershipOf(ces, &existing) != Owned {
		o.reason = ConflictReason(ces, &existing)
		o.eventReason = EventConflict
		return o
	}
	if !existing.DeletionTimestamp.IsZero() {
		o.reason = fmt.Sprintf("ExternalSecret %s is being deleted; it is created again once it is gone", desired.Name)
		o.eventReason = EventApplyFailed
		return o // its deletion is watched
	}
	updated, changed := Update(&existing, desired)
	if changed {
		if err := r.Client.Update(ctx, updated); err != nil {
			if apierrors.IsConflict(err) {
				o.stale = true
				return o
			}
			return failed("updating ExternalSecret %s: %v", err)
		}
	}
	o.provisioned = true
	return o
}

// staleExternalSecrets returns the ExternalSecrets ces owns that it no
// longer wants: in namespaces it stopped selecting, or under a name it no
// longer uses.
func staleExternalSecrets(ces *esv1.ClusterExternalSecret, selected []string, owned []esv1.ExternalSecret) []*esv1.ExternalSecret {
	want := make(map[string]struct{}, len(selected))
	for _, ns := range selected {
		want[ns] = struct{}{}
	}
	name := ExternalSecretName(ces)
	var out []*esv1.ExternalSecret
	for i := range owned {
		es := &owned[i]
		if OwnershipOf(ces, es) != Owned || !es.DeletionTimestamp.IsZero() {
			continue
		}
		if _, ok := want[es.Namespace]; ok && es.Name == name {
			continue
		}
		out = append(out, es)
	}
	return out
}

// remove deletes an ExternalSecret ces no longer wants; only that exact
// object (by UID) is deleted.
func (r *Reconciler) remove(ctx context.Context, es *esv1.ExternalSecret) outcome {
	err := r.Client.Delete(ctx, es, client.Preconditions{UID: &es.UID})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return outcome{namespace: es.Namespace}
	}
	reason := fmt.Sprintf("deleting ExternalSecret %s from a namespace that is no longer selected: %v", es.Name, err)
	return outcome{namespace: es.Namespace, reason: reason, eventReason: EventApplyFailed, err: fmt.Errorf("namespace %s: %s", es.Namespace, reason)}
}

// ReadyCondition returns the Ready condition's status and message for a
// ClusterExternalSecret that selected n namespaces and failed in failed.
func ReadyCondition(name string, n int, failed []esv1.ClusterExternalSecretNamespaceFailure) (metav1.ConditionStatus, string) {
	switch {
	case len(failed) > 0:
		f := failed[0]
		more := ""
		if len(failed) > 1 {
			more = fmt.Sprintf(" (and %d more, see status.failedNamespaces)", len(failed)-1)
		}
		return metav1.ConditionFalse, fmt.Sprintf("ExternalSecret %s could not be provisioned in %d of %d selected namespaces: %s: %s%s.",
			name, len(failed), n, f.Namespace, f.Reason, more)
	case n == 0:
		return metav1.ConditionTrue, "No namespace is selected."
	case n == 1:
		return metav1.ConditionTrue, fmt.Sprintf("ExternalSecret %s is provisioned in the 1 selected namespace.", name)
	default:
		return metav1.ConditionTrue, fmt.Sprintf("ExternalSecret %s is provisioned in all %d selected namespaces.", name, n)
	}
}

// emitEvents records a Warning Event per kind of failure for namespaces that
// were not already failing for the same reason, and a Normal Event when the
// ClusterExternalSecret becomes Ready.
func (r *Reconciler) emitEvents(ces *esv1.ClusterExternalSecret, prev *esv1.ClusterExternalSecretStatus, outcomes []outcome, status metav1.ConditionStatus, msg string) {
	known := map[esv1.ClusterExternalSecretNamespaceFailure]struct{}{}
	for _, f := range prev.FailedNamespaces {
		known[f] = struct{}{}
	}
	byReason := map[string][]outcome{}
	for _, o := range outcomes {
		if o.reason == "" {
			continue
		}
		if _, ok := known[esv1.ClusterExternalSecretNamespaceFailure{Namespace: o.namespace, Reason: o.reason}]; ok && o.err == nil {
			continue
		}
		byReason[o.eventReason] = append(byReason[o.eventReason], o)
	}
	reasons := make([]string, 0, len(byReason))
	for k := range byReason {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	const shown = 3
	for _, reason := range reasons {
		group := byReason[reason]
		parts := make([]string, 0, shown)
		for _, o := range group[:min(len(group), shown)] {
			parts = append(parts, o.namespace+": "+o.reason)
		}
		note := strings.Join(parts, "; ")
		if len(group) > shown {
			note += fmt.Sprintf("; and %d more namespaces", len(group)-shown)
		}
		r.Recorder.Eventf(ces, nil, corev1.EventTypeWarning, reason, "Provision", "%s", note)
	}
	if status == metav1.ConditionTrue && !readyIs(prev, metav1.ConditionTrue, "") {
		r.Recorder.Eventf(ces, nil, corev1.EventTypeNormal, EventProvisioned, "Provision", "%s", msg)
	}
}

// writeStatus writes next when it differs from the stored status, and
// remembers it as reported.
func (r *Reconciler) writeStatus(ctx context.Context, ces *esv1.ClusterExternalSecret, next *esv1.ClusterExternalSecretStatus) error {
	for _, c := range next.Conditions {
		r.Metrics.ESO.SetCondition(metrics.KindClusterExternalSecret, "", ces.Name, string(c.Type), string(c.Status))
	}
	if !equality.Semantic.DeepEqual(&ces.Status, next) {
		patched := ces.DeepCopy()
		patched.Status = *next
		if err := r.Client.Status().Patch(ctx, patched, client.MergeFrom(ces)); err != nil {
			return fmt.Errorf("updating ClusterExternalSecret status: %w", err)
		}
	}
	r.mu.Lock()
	r.reported[ces.Name] = reported{uid: ces.UID, status: *next.DeepCopy()}
	r.mu.Unlock()
	return nil
}

// previous returns the status last reported for ces: the one this process
// wrote, which the cache may not show yet, or else the stored one.
func (r *Reconciler) previous(ces *esv1.ClusterExternalSecret) esv1.ClusterExternalSecretStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep, ok := r.reported[ces.Name]; ok && rep.uid == ces.UID {
		return rep.status
	}
	return *ces.Status.DeepCopy()
}

// forget drops what is remembered of the ClusterExternalSecret name.
func (r *Reconciler) forget(name string) {
	r.Metrics.ESO.Forget(metrics.KindClusterExternalSecret, "", name)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reported, name)
}

// setReady makes Ready the only condition: ESO's older PartiallyReady and
// NotReady conditions are dropped.
func setReady(st *esv1.ClusterExternalSecretStatus, status metav1.ConditionStatus, msg string) {
	st.Conditions = []esv1.ClusterExternalSecretStatusCondition{{Type: esv1.ClusterExternalSecretReady, Status: status, Message: msg}}
}

// readyIs reports whether st's Ready condition has status and, when msg is
// not empty, message msg.
func readyIs(st *esv1.ClusterExternalSecretStatus, status metav1.ConditionStatus, msg string) bool {
	for _, c := range st.Conditions {
		if c.Type == esv1.ClusterExternalSecretReady {
			return c.Status == status && (msg == "" || c.Message == msg)
		}
	}
	return false
}

// fallback schedules the periodic re-check (refresh.Periodic: at low
// priority and spread by up to 10% so ClusterExternalSecrets created
// together do not fire together).
func fallback(ces *esv1.ClusterExternalSecret) reconcile.Result {
	d := DefaultRefreshTime
	if ces.Spec.RefreshInterval != nil && ces.Spec.RefreshInterval.Duration > 0 {
		d = max(ces.Spec.RefreshInterval.Duration, MinRefreshTime)
	}
	return refresh.Periodic(d)
}
