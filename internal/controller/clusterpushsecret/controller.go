package clusterpushsecret

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
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/fanout"
	"github.com/keyferry/keyferry/internal/controller/refresh"
)

// IndexOwner indexes PushSecrets by the name of the ClusterPushSecret that
// controls them.
const IndexOwner = "keyferry.io/clusterpushsecret"

// Refresh fallback. Namespace and PushSecret changes are watched, so the
// periodic re-check only repairs what a missed event would leave.
const (
	// DefaultRefreshTime is the re-check period when spec.refreshTime is
	// not set.
	DefaultRefreshTime = time.Hour
	// MinRefreshTime is the shortest re-check period; a smaller
	// spec.refreshTime (ESO's example uses 1m) is raised to it.
	MinRefreshTime = time.Minute
)

// staleRetry is when a reconcile that found the cache behind is retried if
// no watch event comes first.
const staleRetry = time.Second

// DefaultWriters is how many PushSecrets one reconcile writes in parallel.
const DefaultWriters = 8

// Reconciler fans ClusterPushSecrets out to PushSecrets.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// ControllerClass is ESO's --controller-class: a ClusterPushSecret
	// whose stores are all ClusterSecretStores of another class is left
	// alone (StoresOfAnotherClass).
	ControllerClass string
	// DisableClusterStores: ClusterSecretStores are not watched, so their
	// class is not read and every ClusterPushSecret is served.
	DisableClusterStores bool
	// Concurrency is the number of ClusterPushSecrets reconciled in
	// parallel (default 1).
	Concurrency int
	// Writers is how many PushSecrets one reconcile writes in parallel
	// (default DefaultWriters).
	Writers int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	// reported is the last status each ClusterPushSecret was given, by
	// name, so an Event is not repeated when the cache has not yet caught
	// up with a status write.
	mu       sync.Mutex
	reported map[string]reported
}

type reported struct {
	uid    types.UID
	status esv1alpha1.ClusterPushSecretStatus
}

// SetupWithManager registers the controller, its index of PushSecrets by
// owner, and its watches: ClusterPushSecrets, the PushSecrets they own (and
// any PushSecret of a name one of them uses, so a conflicting one that is
// deleted frees its namespace), and Namespaces (created, relabelled,
// deleted).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Writers <= 0 {
		r.Writers = DefaultWriters
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	r.reported = map[string]reported{}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &esv1alpha1.PushSecret{}, IndexOwner, func(o client.Object) []string {
		if name, ok := fanout.ControllerName(o, esv1alpha1.GroupVersion.Group, Kind); ok {
			return []string{name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing PushSecrets by ClusterPushSecret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterpushsecret").
		For(&esv1alpha1.ClusterPushSecret{}, builder.WithPredicates(clusterPushSecretChanged())).
		Watches(&esv1alpha1.PushSecret{}, handler.EnqueueRequestsFromMapFunc(r.forPushSecret), builder.WithPredicates(fanout.ChildChanged())).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.all), builder.WithPredicates(fanout.NamespaceChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Complete(r)
}

// forPushSecret maps a PushSecret to its controlling ClusterPushSecret, or,
// when it has none, to the ClusterPushSecrets that create PushSecrets of
// its name (one may be blocked by it).
func (r *Reconciler) forPushSecret(ctx context.Context, o client.Object) []reconcile.Request {
	if name, ok := fanout.ControllerName(o, esv1alpha1.GroupVersion.Group, Kind); ok {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
	var list esv1alpha1.ClusterPushSecretList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing ClusterPushSecrets")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if PushSecretName(&list.Items[i]) == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return out
}

// all maps a namespace change to every ClusterPushSecret: any of them may
// start or stop selecting it.
func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list esv1alpha1.ClusterPushSecretList
	if err := r.Client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "listing ClusterPushSecrets")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
	}
	return out
}

// clusterPushSecretChanged passes spec changes and the start of a deletion;
// status writes are ignored.
func clusterPushSecretChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
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
	// stale: the cache is behind the API server (a create found the
	// object, an update hit a newer version); retried once it catches up,
	// without reporting a failure.
	stale bool
}

// Reconcile provisions one ClusterPushSecret.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var cps esv1alpha1.ClusterPushSecret
	if err := r.Client.Get(ctx, req.NamespacedName, &cps); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !cps.DeletionTimestamp.IsZero() {
		// The garbage collector deletes its PushSecrets through their
		// ownerReferences; each then runs its own deletionPolicy.
		r.forget(req.Name)
		return reconcile.Result{}, nil
	}
	if why, err := r.anotherClass(ctx, &cps); err != nil {
		return reconcile.Result{}, err
	} else if why != "" {
		logger.V(1).Info("leaving a ClusterPushSecret of another controller class alone", "why", why)
		return reconcile.Result{}, nil
	}
	prev := r.previous(&cps)
	name := PushSecretName(&cps)

	var owned esv1alpha1.PushSecretList
	if err := r.Client.List(ctx, &owned, client.MatchingFields{IndexOwner: cps.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing PushSecrets of ClusterPushSecret %s: %w", cps.Name, err)
	}
	if refusal := CheckSpec(&cps); refusal != nil {
		return r.refuse(ctx, &cps, &prev, refusal, owned.Items)
	}
	var namespaces corev1.NamespaceList
	if err := r.Client.List(ctx, &namespaces); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing namespaces: %w", err)
	}
	sel, err := NewSelector(&cps)
	if err != nil { // CheckSpec refused it already
		return reconcile.Result{}, err
	}
	selected := SelectNamespaces(sel, namespaces.Items)

	outcomes := fanout.Parallel(len(selected), r.Writers, func(i int) outcome { return r.provision(ctx, &cps, selected[i]) })
	stale := StalePushSecrets(&cps, selected, owned.Items)
	outcomes = append(outcomes, fanout.Parallel(len(stale), r.Writers, func(i int) outcome { return r.remove(ctx, stale[i]) })...)
	for _, o := range outcomes {
		if o.stale {
			// The watch event that brings the cache up to date requeues
			// this object; the delay is only a safety net.
			logger.V(1).Info("cache is behind the API server; retrying", "namespace", o.namespace)
			return reconcile.Result{RequeueAfter: staleRetry}, nil
		}
	}

	next := cps.Status.DeepCopy()
	next.PushSecretName = name
	next.ProvisionedNamespaces, next.FailedNamespaces = nil, nil
	var errs []error
	for _, o := range outcomes {
		if o.provisioned {
			next.ProvisionedNamespaces = append(next.ProvisionedNamespaces, o.namespace)
		}
		if o.reason != "" {
			next.FailedNamespaces = append(next.FailedNamespaces, esv1alpha1.ClusterPushSecretNamespaceFailure{Namespace: o.namespace, Reason: o.reason})
		}
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	sort.Strings(next.ProvisionedNamespaces)
	sort.Slice(next.FailedNamespaces, func(i, j int) bool {
		return next.FailedNamespaces[i].Namespace < next.FailedNamespaces[j].Namespace
	})
	status, reason, msg := ReadyCondition(name, len(selected), next.FailedNamespaces)
	r.setReady(next, &prev, status, reason, msg)

	r.emitEvents(&cps, &prev, outcomes, status, reason, msg)
	if err := r.writeStatus(ctx, &cps, next); err != nil {
		errs = append(errs, err)
	}
	logger.V(1).Info("provisioned", "pushSecret", name, "selected", len(selected),
		"provisioned", len(next.ProvisionedNamespaces), "failed", len(next.FailedNamespaces), "removed", len(stale))
	if len(errs) > 0 {
		return reconcile.Result{}, errors.Join(errs...)
	}
	return fallback(&cps), nil
}

// refuse reports a spec refusal. An invalid spec changes nothing; a
// ClusterPushSecret that selects no namespace (NoNamespaceSelector) also
// deletes the PushSecrets it had, as any namespace that stops matching.
func (r *Reconciler) refuse(ctx context.Context, cps *esv1alpha1.ClusterPushSecret, prev *esv1alpha1.ClusterPushSecretStatus, refusal *Refusal, owned []esv1alpha1.PushSecret) (reconcile.Result, error) {
	next := cps.Status.DeepCopy()
	next.PushSecretName = PushSecretName(cps)
	next.FailedNamespaces = nil
	var errs []error
	if refusal.Reason == ReasonNoNamespaceSelector {
		next.ProvisionedNamespaces = nil
		stale := StalePushSecrets(cps, nil, owned)
		for _, o := range fanout.Parallel(len(stale), r.Writers, func(i int) outcome { return r.remove(ctx, stale[i]) }) {
			if o.reason != "" {
				next.FailedNamespaces = append(next.FailedNamespaces, esv1alpha1.ClusterPushSecretNamespaceFailure{Namespace: o.namespace, Reason: o.reason})
			}
			if o.err != nil {
				errs = append(errs, o.err)
			}
		}
		sort.Slice(next.FailedNamespaces, func(i, j int) bool {
			return next.FailedNamespaces[i].Namespace < next.FailedNamespaces[j].Namespace
		})
	}
	r.setReady(next, prev, corev1.ConditionFalse, refusal.Reason, refusal.Message)
	if !readyIs(prev, corev1.ConditionFalse, refusal.Reason, refusal.Message) {
		r.Recorder.Eventf(cps, nil, corev1.EventTypeWarning, refusal.Reason, "Provision", "%s", refusal.Message)
	}
	if err := r.writeStatus(ctx, cps, next); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return reconcile.Result{}, errors.Join(errs...)
	}
	// Only a spec change (watched) can lift the refusal.
	return reconcile.Result{}, nil
}

// anotherClass returns why cps belongs to another controller class, or "".
func (r *Reconciler) anotherClass(ctx context.Context, cps *esv1alpha1.ClusterPushSecret) (string, error) {
	names, ok := ClusterStoresNamed(cps)
	if !ok || r.DisableClusterStores {
		return "", nil
	}
	stores := make([]StoreClass, 0, len(names))
	for _, n := range names {
		var css esv1.ClusterSecretStore
		err := r.Client.Get(ctx, client.ObjectKey{Name: n}, &css)
		switch {
		case apierrors.IsNotFound(err):
			stores = append(stores, StoreClass{Name: n})
		case err != nil:
			return "", fmt.Errorf("reading ClusterSecretStore %q: %w", n, err)
		default:
			stores = append(stores, StoreClass{Name: n, Class: css.Spec.Controller, Found: true})
		}
	}
	return StoresOfAnotherClass(stores, r.ControllerClass), nil
}

// provision makes sure namespace has cps's PushSecret.
func (r *Reconciler) provision(ctx context.Context, cps *esv1alpha1.ClusterPushSecret, namespace string) outcome {
	desired := DesiredPushSecret(cps, namespace)
	o := outcome{namespace: namespace}
	failed := func(format string, err error) outcome {
		o.reason = fmt.Sprintf(format, desired.Name, err)
		o.eventReason = EventApplyFailed
		o.err = fmt.Errorf("namespace %s: %s", namespace, o.reason)
		return o
	}
	var existing esv1alpha1.PushSecret
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), &existing)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				o.stale = true
				return o
			}
			return failed("creating PushSecret %s: %v", err)
		}
		o.provisioned = true
		return o
	case err != nil:
		return failed("reading PushSecret %s: %v", err)
	}
	if OwnershipOf(cps, &existing) != Owned {
		o.reason = ConflictReason(cps, &existing)
		o.eventReason = EventConflict
		return o
	}
	if !existing.DeletionTimestamp.IsZero() {
		// Its deletionPolicy may still be deleting what it pushed; the
		// deletion is watched.
		o.reason = fmt.Sprintf("PushSecret %s is being deleted; it is created again once it is gone", desired.Name)
		o.eventReason = EventApplyFailed
		return o
	}
	updated, changed := Update(&existing, desired)
	if changed {
		if err := r.Client.Update(ctx, updated); err != nil {
			if apierrors.IsConflict(err) {
				o.stale = true
				return o
			}
			return failed("updating PushSecret %s: %v", err)
		}
	}
	o.provisioned = true
	return o
}

// StalePushSecrets returns the PushSecrets cps controls that it no longer
// wants: in namespaces it stopped selecting, or under a name it no longer
// uses. Only PushSecrets it controls (by UID) are ever returned.
func StalePushSecrets(cps *esv1alpha1.ClusterPushSecret, selected []string, owned []esv1alpha1.PushSecret) []*esv1alpha1.PushSecret {
	want := make(map[string]struct{}, len(selected))
	for _, ns := range selected {
		want[ns] = struct{}{}
	}
	name := PushSecretName(cps)
	var out []*esv1alpha1.PushSecret
	for i := range owned {
		ps := &owned[i]
		if OwnershipOf(cps, ps) != Owned || !ps.DeletionTimestamp.IsZero() {
			continue
		}
		if _, ok := want[ps.Namespace]; ok && ps.Name == name {
			continue
		}
		out = append(out, ps)
	}
	return out
}

// remove deletes a PushSecret cps no longer wants; only that exact object
// (by UID) is deleted. Its own deletionPolicy then decides what happens to
// what it pushed.
func (r *Reconciler) remove(ctx context.Context, ps *esv1alpha1.PushSecret) outcome {
	err := r.Client.Delete(ctx, ps, client.Preconditions{UID: &ps.UID})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return outcome{namespace: ps.Namespace}
	}
	reason := fmt.Sprintf("deleting PushSecret %s from a namespace that is no longer selected: %v", ps.Name, err)
	return outcome{namespace: ps.Namespace, reason: reason, eventReason: EventApplyFailed, err: fmt.Errorf("namespace %s: %s", ps.Namespace, reason)}
}

// emitEvents records a Warning Event per kind of failure for namespaces
// that were not already failing for the same reason, and a Normal Event
// when the ClusterPushSecret becomes Ready.
func (r *Reconciler) emitEvents(cps *esv1alpha1.ClusterPushSecret, prev *esv1alpha1.ClusterPushSecretStatus, outcomes []outcome, status corev1.ConditionStatus, reason, msg string) {
	known := map[esv1alpha1.ClusterPushSecretNamespaceFailure]struct{}{}
	for _, f := range prev.FailedNamespaces {
		known[f] = struct{}{}
	}
	byReason := map[string][]outcome{}
	for _, o := range outcomes {
		if o.reason == "" {
			continue
		}
		if _, ok := known[esv1alpha1.ClusterPushSecretNamespaceFailure{Namespace: o.namespace, Reason: o.reason}]; ok && o.err == nil {
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
	for _, er := range reasons {
		group := byReason[er]
		parts := make([]string, 0, shown)
		for _, o := range group[:min(len(group), shown)] {
			parts = append(parts, o.namespace+": "+o.reason)
		}
		note := strings.Join(parts, "; ")
		if len(group) > shown {
			note += fmt.Sprintf("; and %d more namespaces", len(group)-shown)
		}
		r.Recorder.Eventf(cps, nil, corev1.EventTypeWarning, er, "Provision", "%s", note)
	}
	if status == corev1.ConditionTrue && !readyIs(prev, corev1.ConditionTrue, "", "") {
		r.Recorder.Eventf(cps, nil, corev1.EventTypeNormal, reason, "Provision", "%s", msg)
	}
}

// writeStatus writes next when it differs from the stored status, and
// remembers it as reported.
func (r *Reconciler) writeStatus(ctx context.Context, cps *esv1alpha1.ClusterPushSecret, next *esv1alpha1.ClusterPushSecretStatus) error {
	if !equality.Semantic.DeepEqual(&cps.Status, next) {
		patched := cps.DeepCopy()
		patched.Status = *next
		if err := r.Client.Status().Patch(ctx, patched, client.MergeFrom(cps)); err != nil {
			return fmt.Errorf("updating ClusterPushSecret status: %w", err)
		}
	}
	r.mu.Lock()
	r.reported[cps.Name] = reported{uid: cps.UID, status: *next.DeepCopy()}
	r.mu.Unlock()
	return nil
}

// previous returns the status last reported for cps: the one this process
// wrote, which the cache may not show yet, or else the stored one.
func (r *Reconciler) previous(cps *esv1alpha1.ClusterPushSecret) esv1alpha1.ClusterPushSecretStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep, ok := r.reported[cps.Name]; ok && rep.uid == cps.UID {
		return rep.status
	}
	return *cps.Status.DeepCopy()
}

// forget drops what is remembered of the ClusterPushSecret name.
func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reported, name)
}

// setReady makes Ready the only condition (an Unsupported condition an
// earlier keyferry wrote is dropped); lastTransitionTime moves only when the
// status changes.
func (r *Reconciler) setReady(st, prev *esv1alpha1.ClusterPushSecretStatus, status corev1.ConditionStatus, reason, msg string) {
	c := esv1alpha1.PushSecretStatusCondition{Type: esv1alpha1.PushSecretReady, Status: status, Reason: reason, Message: msg}
	for _, old := range prev.Conditions {
		if old.Type == esv1alpha1.PushSecretReady && old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	if c.LastTransitionTime.IsZero() {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		c.LastTransitionTime = esv1.NewTime(now().Truncate(time.Second))
	}
	st.Conditions = []esv1alpha1.PushSecretStatusCondition{c}
}

// readyIs reports whether st's Ready condition has status and, when not
// empty, reason and message.
func readyIs(st *esv1alpha1.ClusterPushSecretStatus, status corev1.ConditionStatus, reason, msg string) bool {
	for _, c := range st.Conditions {
		if c.Type == esv1alpha1.PushSecretReady {
			return c.Status == status && (reason == "" || c.Reason == reason) && (msg == "" || c.Message == msg)
		}
	}
	return false
}

// fallback schedules the periodic re-check (refresh.Periodic: at low
// priority and spread so ClusterPushSecrets created together do not fire
// together).
func fallback(cps *esv1alpha1.ClusterPushSecret) reconcile.Result {
	d := DefaultRefreshTime
	if cps.Spec.RefreshInterval != nil && cps.Spec.RefreshInterval.Duration > 0 {
		d = max(cps.Spec.RefreshInterval.Duration, MinRefreshTime)
	}
	return refresh.Periodic(d)
}
