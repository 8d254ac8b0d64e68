// Package restart is the controller that restarts workloads when a Secret
// keyferry manages changed content (--restart-workloads; docs/restarts.md).
//
// It watches Secrets through the operator's cache, which holds only the
// Secrets keyferry manages, and reacts to one kind of event only: an update
// whose data-hash annotation went from one non-empty value to another and
// whose data really differ (restartpolicy.ChangeOf). Creations, no-op
// writes, edits by others and Secrets keyferry does not manage never reach
// it.
//
// Work goes through one queue in two steps:
//
//  1. A namespace item: the Secrets of one namespace that changed since it
//     was last looked at. The controller lists the namespace's Deployments,
//     StatefulSets, DaemonSets and, where their CRD is installed, Argo
//     Rollouts once (uncached: workloads are never held in memory), decides
//     for each which changed Secrets select it
//     (restartpolicy.Decide) and hands those to a per-workload debouncer.
//  2. A workload item: due once no Secret it waits for changed for the
//     debounce window. The controller reads the workload again, decides
//     again (it may have been paused or lost its annotation meanwhile) and
//     restarts it with one merge patch of the pod-template annotation
//     keyferry.io/restartedAt, then records Events on the workload and on
//     each Secret and counts keyferry_workload_restarts_total.
//
// Only workloads in the Secret's own namespace are ever looked at.
package restart

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/keyferry/keyferry/internal/metrics"
	restartpolicy "github.com/keyferry/keyferry/internal/restart"
)

// Event reasons.
const (
	// EventRestarted (workload, Normal): restarted for the named Secrets.
	EventRestarted = "Restarted"
	// EventWorkloadRestarted (Secret, Normal): a workload was restarted
	// because this Secret changed.
	EventWorkloadRestarted = "WorkloadRestarted"
	// EventRestartSkipped (workload, Normal): selected, but not restarted
	// (a paused Deployment).
	EventRestartSkipped = "RestartSkipped"
	// EventRestartFailed (workload, Warning): the patch failed; retried.
	EventRestartFailed = "RestartFailed"
	// EventInvalidAnnotation (workload, Warning): an entry of
	// secret.reloader.stakater.com/reload is not a regular expression.
	EventInvalidAnnotation = "InvalidReloadAnnotation"
)

// item is a queue entry: a namespace whose Secrets changed (Kind empty) or
// a workload due to restart.
type item struct {
	Kind      string
	Namespace string
	Name      string
}

func (i item) String() string {
	if i.Kind == "" {
		return "namespace " + i.Namespace
	}
	return i.Kind + " " + i.Namespace + "/" + i.Name
}

// Reconciler restarts workloads when Secrets they use changed content.
type Reconciler struct {
	// Client reads Secrets from the operator's cache and patches workloads.
	Client client.Client
	// APIReader reads workloads, uncached.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Metrics   *metrics.Metrics
	// Window is the debounce window (0: restartpolicy.DefaultWindow).
	Window time.Duration
	// Concurrency is the number of parallel reconciles.
	Concurrency int
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	debounce *restartpolicy.Debouncer[item]
	inflight atomic.Int64

	mu      sync.Mutex
	changed map[string]map[string]struct{} // namespace → changed Secret names
	queue   workqueue.TypedRateLimitingInterface[item]
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.debounce = restartpolicy.NewDebouncer[item](r.Window, 0)
	r.changed = map[string]map[string]struct{}{}
	secrets := source.TypedKind(mgr.GetCache(), &corev1.Secret{}, handler.TypedFuncs[*corev1.Secret, item]{
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*corev1.Secret], q workqueue.TypedRateLimitingInterface[item]) {
			n := e.ObjectNew
			if !restartpolicy.ContentChanged(e.ObjectOld, n) {
				return
			}
			r.setQueue(q)
			r.noteChanged(n.Namespace, []string{n.Name})
			q.Add(item{Namespace: n.Namespace})
		},
	})
	// The queue, so that a namespace item can schedule workload items (the
	// Secret handler hands it over too, whichever source starts first).
	queue := source.TypedFunc[item](func(_ context.Context, q workqueue.TypedRateLimitingInterface[item]) error {
		r.setQueue(q)
		return nil
	})
	return builder.TypedControllerManagedBy[item](mgr).
		Named("restart").
		WatchesRawSource(queue).
		WatchesRawSource(secrets).
		WithOptions(controller.TypedOptions[item]{MaxConcurrentReconciles: max(r.Concurrency, 1)}).
		Complete(r)
}

// Pending is the number of things the controller has yet to do: changed
// Secrets not yet looked at, workloads waiting for their debounce window
// and reconciles in progress. Tests wait for it to reach zero.
func (r *Reconciler) Pending() int {
	r.mu.Lock()
	n := 0
	for _, set := range r.changed {
		n += len(set)
	}
	r.mu.Unlock()
	return n + r.debounce.Len() + int(r.inflight.Load())
}

// Reconcile handles one item.
func (r *Reconciler) Reconcile(ctx context.Context, it item) (reconcile.Result, error) {
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	if it.Kind == "" {
		return reconcile.Result{}, r.reconcileNamespace(ctx, it.Namespace)
	}
	return r.reconcileWorkload(ctx, it)
}

func (r *Reconciler) noteChanged(ns string, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.changed[ns]
	if set == nil {
		set = map[string]struct{}{}
		r.changed[ns] = set
	}
	for _, n := range names {
		set[n] = struct{}{}
	}
}

func (r *Reconciler) takeChanged(ns string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.changed[ns]
	delete(r.changed, ns)
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	return names
}

// reconcileNamespace finds the workloads the namespace's changed Secrets
// select and hands them to the debouncer.
func (r *Reconciler) reconcileNamespace(ctx context.Context, ns string) error {
	names := r.takeChanged(ns)
	if len(names) == 0 {
		return nil
	}
	secrets, err := r.secrets(ctx, ns, names)
	if err != nil {
		r.noteChanged(ns, names)
		return err
	}
	if len(secrets) == 0 {
		return nil
	}
	workloads, err := r.listWorkloads(ctx, ns)
	if err != nil {
		r.noteChanged(ns, names)
		return err
	}
	now := r.Now()
	for _, w := range workloads {
		var selected []string
		var problems error
		for _, s := range secrets {
			d := restartpolicy.Decide(restartpolicy.Input{Workload: w, Secret: s})
			if d.Problems != nil {
				problems = d.Problems
			}
			// A paused workload goes on, so that the workload step
			// reports the skipped restart once.
			if d.Restart || d.Reason == restartpolicy.ReasonPaused {
				selected = append(selected, s.Name)
			}
		}
		if problems != nil {
			r.Recorder.Eventf(workloadRef(w), nil, corev1.EventTypeWarning, EventInvalidAnnotation, "Restart",
				"%s: %v", restartpolicy.AnnotationSecretReload, problems)
		}
		if len(selected) == 0 {
			continue
		}
		it := item{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}
		wait := r.debounce.Add(it, selected, now)
		r.enqueueAfter(it, wait)
	}
	return nil
}

func (r *Reconciler) setQueue(q workqueue.TypedRateLimitingInterface[item]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queue == nil {
		r.queue = q
	}
}

func (r *Reconciler) enqueueAfter(it item, d time.Duration) {
	r.mu.Lock()
	q := r.queue
	r.mu.Unlock()
	if q != nil {
		q.AddAfter(it, d)
	}
}

// reconcileWorkload restarts a workload that is due.
func (r *Reconciler) reconcileWorkload(ctx context.Context, it item) (reconcile.Result, error) {
	p, wait, ok := r.debounce.Take(it, r.Now())
	if !ok {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	w, err := r.getWorkload(ctx, it)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		r.debounce.Add(it, p.Secrets, r.Now())
		return reconcile.Result{}, err
	}
	secrets, err := r.secrets(ctx, it.Namespace, p.Secrets)
	if err != nil {
		r.debounce.Add(it, p.Secrets, r.Now())
		return reconcile.Result{}, err
	}
	var restartFor []restartpolicy.Secret
	var skipped []string
	var why []string
	for _, s := range secrets {
		d := restartpolicy.Decide(restartpolicy.Input{Workload: w, Secret: s})
		switch {
		case d.Restart:
			restartFor = append(restartFor, s)
			why = append(why, d.Message)
		case d.Reason == restartpolicy.ReasonPaused:
			skipped = append(skipped, s.Name)
		}
	}
	ref := workloadRef(w)
	if len(restartFor) == 0 {
		if len(skipped) > 0 {
			r.Recorder.Eventf(ref, nil, corev1.EventTypeNormal, EventRestartSkipped, "Restart",
				"%s is paused; not restarted although Secret %s changed", w, strings.Join(skipped, ", "))
		}
		return reconcile.Result{}, nil
	}
	names := make([]string, len(restartFor))
	for i, s := range restartFor {
		names[i] = s.Name
	}
	at := restartpolicy.RestartedAt(r.Now(), w.Template.Annotations[restartpolicy.AnnotationRestartedAt])
	if err := r.patch(ctx, ref, at); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		r.debounce.Add(it, p.Secrets, r.Now())
		r.Recorder.Eventf(ref, nil, corev1.EventTypeWarning, EventRestartFailed, "Restart",
			"restarting for Secret %s: %s", strings.Join(names, ", "), apiMessage(err))
		return reconcile.Result{}, fmt.Errorf("restarting %s: %w", it, err)
	}
	log.FromContext(ctx).Info("restarted workload", "kind", w.Kind, "namespace", w.Namespace, "name", w.Name, "secrets", names, "restartedAt", at)
	r.Recorder.Eventf(ref, secretRef(restartFor[0]), corev1.EventTypeNormal, EventRestarted, "Restart",
		"Restarted because Secret %s changed (%s)", strings.Join(names, ", "), strings.Join(why, "; "))
	for _, s := range restartFor {
		r.Recorder.Eventf(secretRef(s), ref, corev1.EventTypeNormal, EventWorkloadRestarted, "Restart",
			"Restarted %s because this Secret's content changed", w)
	}
	if r.Metrics != nil {
		r.Metrics.WorkloadRestarts.WithLabelValues(w.Kind, w.Namespace).Inc()
	}
	return reconcile.Result{}, nil
}

// secrets reads the named Secrets from the cache; deleted ones are left out.
func (r *Reconciler) secrets(ctx context.Context, ns string, names []string) ([]restartpolicy.Secret, error) {
	out := make([]restartpolicy.Secret, 0, len(names))
	for _, n := range names {
		var s corev1.Secret
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: n}, &s)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, n, err)
		}
		out = append(out, restartpolicy.Secret{Namespace: s.Namespace, Name: s.Name, UID: s.UID, Annotations: s.Annotations})
	}
	return out, nil
}

// listWorkloads lists the namespace's Deployments, StatefulSets,
// DaemonSets and Rollouts.
func (r *Reconciler) listWorkloads(ctx context.Context, ns string) ([]restartpolicy.Workload, error) {
	var out []restartpolicy.Workload
	var ds appsv1.DeploymentList
	if err := r.APIReader.List(ctx, &ds, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Deployments in %s: %w", ns, err)
	}
	for i := range ds.Items {
		out = append(out, fromDeployment(&ds.Items[i]))
	}
	var ss appsv1.StatefulSetList
	if err := r.APIReader.List(ctx, &ss, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing StatefulSets in %s: %w", ns, err)
	}
	for i := range ss.Items {
		out = append(out, fromStatefulSet(&ss.Items[i]))
	}
	var dss appsv1.DaemonSetList
	if err := r.APIReader.List(ctx, &dss, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing DaemonSets in %s: %w", ns, err)
	}
	for i := range dss.Items {
		out = append(out, fromDaemonSet(&dss.Items[i]))
	}
	rollouts, err := r.listRollouts(ctx, ns)
	if err != nil {
		return nil, err
	}
	return append(out, rollouts...), nil
}

// rolloutGVK is Argo Rollouts' Rollout.
var rolloutGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: restartpolicy.KindRollout}

// listRollouts lists the namespace's Argo Rollouts when the API server
// serves them (the CRD is installed); the REST mapper looks the kind up
// again on each call until it is. A Rollout whose pods come from a
// Deployment (spec.workloadRef) has no template of its own and is left
// out: the Deployment restarts.
func (r *Reconciler) listRollouts(ctx context.Context, ns string) ([]restartpolicy.Workload, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(rolloutGVK.GroupVersion().WithKind(rolloutGVK.Kind + "List"))
	err := r.APIReader.List(ctx, list, client.InNamespace(ns))
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		return nil, nil
	}
	if apierrors.IsForbidden(err) {
		// Without the permission (RBAC made by hand), Rollouts are not
		// restarted; the other kinds still are.
		log.FromContext(ctx).V(1).Info("not allowed to list Argo Rollouts; they are not restarted", "namespace", ns)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing Rollouts in %s: %w", ns, err)
	}
	var out []restartpolicy.Workload
	for i := range list.Items {
		if w, ok := fromRollout(&list.Items[i]); ok {
			out = append(out, w)
		}
	}
	return out, nil
}

// getWorkload reads one workload, uncached.
func (r *Reconciler) getWorkload(ctx context.Context, it item) (restartpolicy.Workload, error) {
	key := types.NamespacedName{Namespace: it.Namespace, Name: it.Name}
	switch it.Kind {
	case restartpolicy.KindDeployment:
		var d appsv1.Deployment
		if err := r.APIReader.Get(ctx, key, &d); err != nil {
			return restartpolicy.Workload{}, err
		}
		return fromDeployment(&d), nil
	case restartpolicy.KindStatefulSet:
		var s appsv1.StatefulSet
		if err := r.APIReader.Get(ctx, key, &s); err != nil {
			return restartpolicy.Workload{}, err
		}
		return fromStatefulSet(&s), nil
	case restartpolicy.KindDaemonSet:
		var d appsv1.DaemonSet
		if err := r.APIReader.Get(ctx, key, &d); err != nil {
			return restartpolicy.Workload{}, err
		}
		return fromDaemonSet(&d), nil
	case restartpolicy.KindRollout:
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(rolloutGVK)
		if err := r.APIReader.Get(ctx, key, u); err != nil {
			return restartpolicy.Workload{}, err
		}
		w, ok := fromRollout(u)
		if !ok {
			return restartpolicy.Workload{}, apierrors.NewNotFound(schema.GroupResource{Group: rolloutGVK.Group, Resource: "rollouts"}, it.Name)
		}
		return w, nil
	}
	return restartpolicy.Workload{}, errors.New("unknown workload kind " + it.Kind)
}

// patch restarts the workload ref names.
func (r *Reconciler) patch(ctx context.Context, ref client.Object, restartedAt string) error {
	data, err := restartpolicy.RestartPatch(restartedAt)
	if err != nil {
		return err
	}
	return r.Client.Patch(ctx, ref, client.RawPatch(types.MergePatchType, data), client.FieldOwner("keyferry-restart"))
}

func fromDeployment(d *appsv1.Deployment) restartpolicy.Workload {
	return restartpolicy.Workload{Kind: restartpolicy.KindDeployment, Namespace: d.Namespace, Name: d.Name,
		Annotations: d.Annotations, Template: d.Spec.Template, Paused: d.Spec.Paused, UID: d.UID}
}

func fromStatefulSet(s *appsv1.StatefulSet) restartpolicy.Workload {
	return restartpolicy.Workload{Kind: restartpolicy.KindStatefulSet, Namespace: s.Namespace, Name: s.Name,
		Annotations: s.Annotations, Template: s.Spec.Template, UID: s.UID}
}

func fromDaemonSet(d *appsv1.DaemonSet) restartpolicy.Workload {
	return restartpolicy.Workload{Kind: restartpolicy.KindDaemonSet, Namespace: d.Namespace, Name: d.Name,
		Annotations: d.Annotations, Template: d.Spec.Template, UID: d.UID}
}

// fromRollout reads a Rollout; false for one without a pod template of its
// own (spec.workloadRef) or whose template does not decode.
func fromRollout(u *unstructured.Unstructured) (restartpolicy.Workload, bool) {
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "workloadRef"); found {
		return restartpolicy.Workload{}, false
	}
	w := restartpolicy.Workload{Kind: restartpolicy.KindRollout, Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(),
		Annotations: u.GetAnnotations()}
	w.Paused, _, _ = unstructured.NestedBool(u.Object, "spec", "paused")
	tpl, found, err := unstructured.NestedMap(u.Object, "spec", "template")
	if err != nil || !found {
		return restartpolicy.Workload{}, false
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tpl, &w.Template); err != nil {
		return restartpolicy.Workload{}, false
	}
	return w, true
}

// workloadRef is a typed object naming w, for patches and Events.
func workloadRef(w restartpolicy.Workload) client.Object {
	var o client.Object
	switch w.Kind {
	case restartpolicy.KindRollout:
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(rolloutGVK)
		o = u
	case restartpolicy.KindStatefulSet:
		o = &appsv1.StatefulSet{TypeMeta: typeMeta(w.Kind)}
	case restartpolicy.KindDaemonSet:
		o = &appsv1.DaemonSet{TypeMeta: typeMeta(w.Kind)}
	default:
		o = &appsv1.Deployment{TypeMeta: typeMeta(w.Kind)}
	}
	o.SetNamespace(w.Namespace)
	o.SetName(w.Name)
	o.SetUID(w.UID)
	return o
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: kind}
}

func secretRef(s restartpolicy.Secret) *corev1.Secret {
	o := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	o.Namespace, o.Name = s.Namespace, s.Name
	o.UID = s.UID
	return o
}

// apiMessage is the API server's message of err (no object content).
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}
