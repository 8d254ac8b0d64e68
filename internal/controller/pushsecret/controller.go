package pushsecret

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/changes"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/provider"
)

// Finalizer is ESO's finalizer of a PushSecret with deletionPolicy Delete:
// it holds the PushSecret until what it pushed is deleted.
const Finalizer = "pushsecret.externalsecrets.io/finalizer"

// IndexSource indexes PushSecrets by the name of their source Secret (for
// a generatorRef, their local copy's).
const IndexSource = "keyferry.io/pushsecret-source"

// retryAfterFailure is how soon a push that failed for a reason that may
// pass (a store down, a conflict) is tried again.
const retryAfterFailure = 30 * time.Second

// Reconciler pushes PushSecrets.
type Reconciler struct {
	// Client reads PushSecrets and stores (cached) and writes their status
	// and finalizer.
	Client client.Client
	// APIReader reads source Secrets, which the cache does not hold.
	APIReader client.Reader
	Engine    *engine.Engine
	Recorder  events.EventRecorder
	// Namespace, when set, is the only namespace served.
	Namespace   string
	Concurrency int
	// SecretMetadata is the operator's shared cache of every Secret's
	// metadata (kube.NewSecretMetadataCache); nil makes the controller
	// start one of its own.
	SecretMetadata cache.Cache
	// Now is the clock (tests).
	Now func() time.Time

	// notifications queues the PushSecrets whose store answers again
	// (Notify).
	notifications changes.Queue
	// sourceWatch is the watch of every Secret's metadata that wakes the
	// PushSecrets of a source that changed, started by the first
	// PushSecret reconciled.
	sourceWatch *kube.DeferredSource
}

// SetupWithManager registers the controller: it watches PushSecrets, and
// the metadata of Secrets so that a changed source is pushed at once.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	gvk := esv1alpha1.GroupVersion.WithKind(Kind)
	if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
		if meta.IsNoMatchError(err) {
			// An install without the CRD (the chart's
			// crds.createPushSecret=false): nothing to watch.
			mgr.GetLogger().Info("PushSecret controller is off: the PushSecret CRD is not installed")
			return nil
		}
		return fmt.Errorf("looking up %s: %w", gvk, err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &esv1alpha1.PushSecret{}, IndexSource, func(o client.Object) []string {
		ps := o.(*esv1alpha1.PushSecret)
		switch s := ps.Spec.Selector.Secret; {
		case ps.Spec.Selector.GeneratorRef != nil:
			// Its local copy (generated.go): a change or deletion
			// pushes again, or generates anew.
			return []string{ps.Name}
		case s == nil:
			return nil
		case s.Name != "":
			return []string{s.Name}
		case s.Selector != nil:
			return []string{anySecret}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing PushSecrets by source Secret: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &esv1alpha1.PushSecret{}, IndexStore, func(o client.Object) []string {
		return storeKeys(o.(*esv1alpha1.PushSecret))
	}); err != nil {
		return fmt.Errorf("indexing PushSecrets by store: %w", err)
	}
	sources, err := r.watchSources(mgr)
	if err != nil {
		return err
	}
	r.sourceWatch = sources
	// A store that appears or changes its spec or labels (a labelSelector
	// may select it) wakes the PushSecrets that name or select it (a
	// refused one waits for such a change); its status does not.
	storeChanged := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("pushsecret").
		For(&esv1alpha1.PushSecret{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(sources).
		WatchesRawSource(r.notifications.Source(&handler.EnqueueRequestForObject{})).
		Watches(&esv1.SecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf), storeChanged).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)})
	if !r.Engine.DisableClusterStores {
		b = b.Watches(&esv1.ClusterSecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf), storeChanged)
	}
	return b.Complete(r)
}

// IndexStore indexes PushSecrets by the stores they name
// ("SecretStore/<ns>/<name>" or "ClusterSecretStore/<name>").
const IndexStore = "keyferry.io/pushsecret-store"

func storeKeys(ps *esv1alpha1.PushSecret) []string {
	var out []string
	for _, sr := range ps.Spec.SecretStoreRefs {
		name := sr.Name
		if sr.LabelSelector != nil {
			// Any store of the kind may come to match.
			name = anyStore
		}
		if name == "" {
			continue
		}
		if st := storeRef(sr); st.Kind == esv1.ClusterSecretStoreKind {
			out = append(out, "ClusterSecretStore/"+name)
		} else {
			out = append(out, "SecretStore/"+ps.Namespace+"/"+name)
		}
	}
	return out
}

// anyStore stands, in IndexStore, for every store of a kind: a
// PushSecret that selects stores by label is woken by any of them.
const anyStore = "*"

// usersOf maps a store to the PushSecrets that name it or select stores
// of its kind by label.
func (r *Reconciler) usersOf(ctx context.Context, o client.Object) []reconcile.Request {
	prefix := "ClusterSecretStore/"
	var opts []client.ListOption
	if o.GetNamespace() != "" {
		prefix = "SecretStore/" + o.GetNamespace() + "/"
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	var out []reconcile.Request
	for _, key := range []string{prefix + o.GetName(), prefix + anyStore} {
		var list esv1alpha1.PushSecretList
		if err := r.Client.List(ctx, &list, append(opts, client.MatchingFields{IndexStore: key})...); err != nil {
			log.FromContext(ctx).Error(err, "listing the PushSecrets of a store", "store", key)
			return nil
		}
		for _, ps := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ps.Namespace, Name: ps.Name}})
		}
	}
	return out
}

// Reconcile pushes one PushSecret, or cleans up after it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ps esv1alpha1.PushSecret
	if err := r.Client.Get(ctx, req.NamespacedName, &ps); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	refs := make([]engine.StoreRef, 0, len(ps.Spec.SecretStoreRefs))
	for _, sr := range ps.Spec.SecretStoreRefs {
		// A store a labelSelector selects is left out when it belongs to
		// another class (targets); a named one makes keyferry skip the
		// whole PushSecret, as ESO.
		if sr.Name != "" && sr.LabelSelector == nil {
			refs = append(refs, storeRef(sr))
		}
	}
	if ref, other, err := r.Engine.StoreOfAnotherController(ctx, ps.Namespace, refs); err != nil {
		return ctrl.Result{}, err
	} else if other {
		log.FromContext(ctx).V(1).Info("skipping PushSecret: a store belongs to another controller class", "store", StoreKey(ref))
		return ctrl.Result{}, nil
	}
	if !ps.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, &ps)
	}
	if started, err := r.sourceWatch.Activate(); err != nil {
		return ctrl.Result{}, fmt.Errorf("watching Secrets for the PushSecrets' sources: %w", err)
	} else if started {
		log.FromContext(ctx).Info(kube.SecretWatchStartedLog, "reason", "a PushSecret pushes Secrets")
	}
	spec, err := Compile(&ps)
	if err != nil {
		return r.failed(ctx, &ps, ps.Status.SyncedPushSecrets, err)
	}
	if err := r.keepFinalizer(ctx, &ps, spec.DeletionPolicy); err != nil {
		return ctrl.Result{}, err
	}
	return r.push(ctx, &ps, spec)
}

// keepFinalizer adds ESO's finalizer under deletionPolicy Delete, before
// anything is pushed, and removes it under None. The update changes no
// generation, so the push goes on in the same reconcile.
func (r *Reconciler) keepFinalizer(ctx context.Context, ps *esv1alpha1.PushSecret, policy esv1alpha1.PushSecretDeletionPolicy) error {
	want := policy == esv1alpha1.PushSecretDeletionPolicyDelete
	if want == controllerutil.ContainsFinalizer(ps, Finalizer) {
		return nil
	}
	if want {
		controllerutil.AddFinalizer(ps, Finalizer)
	} else {
		controllerutil.RemoveFinalizer(ps, Finalizer)
	}
	if err := r.Client.Update(ctx, ps); err != nil {
		return fmt.Errorf("updating the finalizers of PushSecret %s/%s: %w", ps.Namespace, ps.Name, err)
	}
	return nil
}

// push pushes every value of spec, then (deletionPolicy Delete) deletes
// what an earlier push wrote and spec no longer names. Every push is
// listed (templates rendered, dataTo expanded, for every source Secret and
// store) before the first is written, so a spec that turns out invalid
// for the Secrets' keys pushes nothing.
func (r *Reconciler) push(ctx context.Context, ps *esv1alpha1.PushSecret, spec Spec) (ctrl.Result, error) {
	owner := ownerOf(ps)
	var (
		sources []corev1.Secret
		note    string
		err     error
	)
	if spec.Generator != nil {
		var src *corev1.Secret
		if src, note, err = r.generatedSource(ctx, ps, spec); err != nil {
			return r.failed(ctx, ps, ps.Status.SyncedPushSecrets, err)
		}
		sources = []corev1.Secret{*src}
	} else {
		sources, err = r.sources(ctx, ps.Namespace, spec)
	}
	if apierrors.IsNotFound(err) {
		if spec.DeletionPolicy == esv1alpha1.PushSecretDeletionPolicyDelete && len(ps.Status.SyncedPushSecrets) > 0 {
			left, err := r.deleteAll(ctx, owner, ps.Status.SyncedPushSecrets, nil)
			if err != nil {
				return r.failed(ctx, ps, left, err)
			}
			return r.succeeded(ctx, ps, nil, ReasonSourceDeleted, fmt.Sprintf("source Secret %q was deleted; what was pushed was deleted (deletionPolicy Delete)", spec.Source), true, spec.Refresh)
		}
		return r.failed(ctx, ps, ps.Status.SyncedPushSecrets, &engine.Error{Reason: ReasonSourceNotFound,
			Err: fmt.Errorf("source Secret %q does not exist in namespace %q", spec.Source, ps.Namespace)})
	} else if err != nil {
		return ctrl.Result{}, err
	}
	targets, err := r.targets(ctx, ps.Namespace, spec)
	if err != nil {
		return r.failed(ctx, ps, ps.Status.SyncedPushSecrets, err)
	}
	if len(targets) == 0 {
		// Every store a labelSelector selected belongs to another
		// controller class: as ESO, the PushSecret is left alone.
		log.FromContext(ctx).V(1).Info("skipping PushSecret: every selected store belongs to another controller class")
		return ctrl.Result{}, nil
	}
	if err := dataToSelectorsMatch(spec, targets); err != nil {
		return r.failed(ctx, ps, ps.Status.SyncedPushSecrets, err)
	}
	work, err := r.plan(ctx, ps.Namespace, spec, sources, targets)
	if err != nil {
		return r.failed(ctx, ps, ps.Status.SyncedPushSecrets, err)
	}

	synced := esv1alpha1.SyncedPushSecretsMap{}
	wrote, skipped := 0, 0
	for _, t := range targets {
		req, err := r.Engine.PushRequest(ctx, owner, t.Store)
		if err != nil {
			return r.failed(ctx, ps, merge(synced, ps.Status.SyncedPushSecrets), err)
		}
		for _, w := range work {
			if w.push.Store != t.Store {
				continue
			}
			p := w.push
			v, err := valueOf(w.src, p)
			if err != nil {
				return r.failed(ctx, ps, merge(synced, ps.Status.SyncedPushSecrets), err)
			}
			v.Sources = namespacedSources{reader: r.APIReader, namespace: ps.Namespace}
			state, err := r.Engine.Fetch.Inspect(ctx, req, p.Ref)
			if err != nil {
				return r.failed(ctx, ps, merge(synced, ps.Status.SyncedPushSecrets), pushError(p, err))
			}
			d := decide(spec.UpdatePolicy, p.Ref, state)
			switch d.Action {
			case ActionRefuse:
				return r.failed(ctx, ps, merge(synced, ps.Status.SyncedPushSecrets), &engine.Error{Reason: d.Reason,
					Err: fmt.Errorf("%s %q: %s", t.Store.Kind, t.Store.Name, d.Message)})
			case ActionSkip:
				skipped++
				if pushedBefore(state, ps.Status.SyncedPushSecrets, p) {
					// Still what keyferry pushed: deletionPolicy Delete
					// must find it.
					record(synced, p)
				}
				continue
			}
			changed, err := r.Engine.Fetch.Push(ctx, req, p.Ref, v, state)
			if err != nil {
				return r.failed(ctx, ps, merge(synced, ps.Status.SyncedPushSecrets), pushError(p, err))
			}
			if changed {
				wrote++
			}
			record(synced, p)
		}
	}
	if spec.DeletionPolicy == esv1alpha1.PushSecretDeletionPolicyDelete {
		if left, err := r.deleteAll(ctx, owner, ps.Status.SyncedPushSecrets, synced); err != nil {
			return r.failed(ctx, ps, merge(synced, left), err)
		}
	}
	notes := []string{"PushSecret synced successfully."}
	if skipped > 0 {
		notes = append(notes, "Existing secrets in providers unchanged.")
	}
	if spec.Source == "" && spec.Generator == nil && len(sources) == 0 {
		notes = append(notes, "spec.selector.secret.selector selects no Secret.")
	}
	if note != "" {
		notes = append(notes, note)
	}
	msg := strings.Join(notes, " ")
	if len(notes) == 1 {
		msg = strings.TrimSuffix(msg, ".") // ESO's message
	}
	return r.succeeded(ctx, ps, synced, ReasonSynced, msg, wrote > 0 || note != "", spec.Refresh)
}

// finalize deletes what the PushSecret pushed (it has ESO's finalizer only
// under deletionPolicy Delete), then lets it go.
func (r *Reconciler) finalize(ctx context.Context, ps *esv1alpha1.PushSecret) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(ps, Finalizer) {
		return ctrl.Result{}, nil
	}
	if left, err := r.deleteAll(ctx, ownerOf(ps), ps.Status.SyncedPushSecrets, nil); err != nil {
		return r.failed(ctx, ps, left, err)
	}
	controllerutil.RemoveFinalizer(ps, Finalizer)
	if err := r.Client.Update(ctx, ps); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer of PushSecret %s/%s: %w", ps.Namespace, ps.Name, err)
	}
	return ctrl.Result{}, nil
}

// deleteAll deletes every value of old that keep does not hold, store by
// store; it returns what is left of old when a deletion fails.
func (r *Reconciler) deleteAll(ctx context.Context, owner engine.Owner, old, keep esv1alpha1.SyncedPushSecretsMap) (esv1alpha1.SyncedPushSecretsMap, error) {
	left := esv1alpha1.SyncedPushSecretsMap{}
	for k, m := range old {
		left[k] = maps.Clone(m)
	}
	for storeKey, entries := range old {
		kind, name, ok := strings.Cut(storeKey, "/")
		if !ok {
			delete(left, storeKey)
			continue
		}
		st := engine.StoreRef{Kind: kind, Name: name}
		var req *fetchRequest
		for remote, d := range entries {
			if _, kept := keep[storeKey][remote]; kept {
				continue
			}
			if req == nil {
				rq, err := r.Engine.PushRequest(ctx, owner, st)
				if err != nil {
					return left, err
				}
				req = &fetchRequest{rq}
			}
			ref := provider.PushRef{RemoteKey: d.Match.RemoteRef.RemoteKey, Property: d.Match.RemoteRef.Property}
			if err := r.Engine.Fetch.DeleteRemote(ctx, req.Request, ref, provider.RemoteState{}); err != nil {
				return left, pushError(Push{Store: st, Ref: ref}, err)
			}
			delete(left[storeKey], remote)
		}
		if len(left[storeKey]) == 0 {
			delete(left, storeKey)
		}
	}
	return left, nil
}

// valueOf is what a push writes from its source Secret (its data after
// the template).
func valueOf(src *corev1.Secret, p Push) (provider.PushValue, error) {
	v := provider.PushValue{SecretKey: p.SecretKey, Type: string(src.Type), Metadata: p.Metadata, Labels: src.Labels, Annotations: src.Annotations}
	data, err := convertKeys(p.Conversion, src.Data)
	if err != nil {
		return v, invalidPush("Secret %q, conversionStrategy %s: %v", src.Name, p.Conversion, err)
	}
	if p.SecretKey == "" {
		if p.Only != nil {
			only := make(map[string][]byte, len(p.Only))
			for _, k := range p.Only {
				if b, ok := data[k]; ok {
					only[k] = b
				}
			}
			data = only
		}
		v.Secret = data
		return v, nil
	}
	b, ok := data[p.SecretKey]
	if !ok {
		return v, &engine.Error{Reason: ReasonSourceKeyNotFound,
			Err: fmt.Errorf("source Secret %q has no key %q", src.Name, p.SecretKey)}
	}
	v.Value = b
	return v, nil
}

// pushError gives a failed push its reason and names the store and ref.
func pushError(p Push, err error) error {
	var reason string
	switch {
	case errors.Is(err, provider.ErrNotManaged):
		reason = ReasonRemoteNotManaged
	case errors.Is(err, provider.ErrConflict):
		reason = ReasonRemoteChanged
	case errors.Is(err, provider.ErrInvalidPush):
		reason = ReasonInvalidPush
	default:
		reason = engine.Classify(err).Reason
	}
	return &engine.Error{Reason: reason, Err: fmt.Errorf("%s %q, remote %s: %w", p.Store.Kind, p.Store.Name, p.Ref, err)}
}

// pushedBefore says whether a remote value left as it is (IfNotExists)
// is keyferry's: it carries the managed-by mark, or, where the provider
// has no mark (RemoteState.Unmarked), this PushSecret recorded pushing it.
func pushedBefore(state provider.RemoteState, old esv1alpha1.SyncedPushSecretsMap, p Push) bool {
	if !state.Managed {
		return false
	}
	if !state.Unmarked {
		return true
	}
	_, ok := old[StoreKey(p.Store)][RemoteKey(p.Ref)]
	return ok
}

func record(m esv1alpha1.SyncedPushSecretsMap, p Push) {
	k := StoreKey(p.Store)
	if m[k] == nil {
		m[k] = map[string]esv1alpha1.PushSecretData{}
	}
	m[k][RemoteKey(p.Ref)] = p.Data
}

// merge is synced plus what old holds that synced does not (values pushed
// before, kept in status so that a later deletion finds them).
func merge(synced, old esv1alpha1.SyncedPushSecretsMap) esv1alpha1.SyncedPushSecretsMap {
	out := esv1alpha1.SyncedPushSecretsMap{}
	for _, m := range []esv1alpha1.SyncedPushSecretsMap{old, synced} {
		for k, entries := range m {
			if out[k] == nil {
				out[k] = map[string]esv1alpha1.PushSecretData{}
			}
			maps.Copy(out[k], entries)
		}
	}
	return out
}

func ownerOf(ps *esv1alpha1.PushSecret) engine.Owner {
	return engine.Owner{APIVersion: esv1alpha1.GroupVersion.String(), Kind: Kind, Namespace: ps.Namespace, Name: ps.Name, UID: ps.UID}
}

// refusals are reasons only a person can lift: retrying does not help.
func refusal(reason string) bool {
	switch reason {
	case engine.ReasonInvalidSpec, ReasonRemoteNotManaged, ReasonInvalidPush, ReasonSourceKeyNotFound, ReasonSourceNotFound,
		engine.ReasonStoreNotFound, engine.ReasonStoreNotAllowed, engine.ReasonUnsupportedProvider, engine.ReasonClusterStoreDisabled:
		return true
	}
	return false
}

// failed records a failure: the condition and a Warning Event with its
// reason, the values pushed so far in status; the remote values are as
// they were.
func (r *Reconciler) failed(ctx context.Context, ps *esv1alpha1.PushSecret, synced esv1alpha1.SyncedPushSecretsMap, err error) (ctrl.Result, error) {
	ee := engine.Classify(err)
	r.Recorder.Eventf(ps, nil, corev1.EventTypeWarning, ee.Reason, "Push", "%s", ee.Error())
	next := ps.DeepCopy()
	next.Status.SyncedPushSecrets = synced
	setReady(&next.Status, corev1.ConditionFalse, ee.Reason, ee.Error(), r.Now())
	if serr := r.patchStatus(ctx, ps, next); serr != nil {
		return ctrl.Result{}, serr
	}
	if refusal(ee.Reason) {
		// A change to the PushSecret, its source (watched) or a store
		// wakes it; the refresh interval tries again anyway.
		return ctrl.Result{RequeueAfter: refreshOf(ps)}, nil
	}
	after := retryAfterFailure
	if ee.Reason == ReasonRemoteChanged {
		after = time.Second
	}
	if ee.RetryAfter > after {
		after = ee.RetryAfter
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// succeeded records a sync: status, Ready=True (or SourceDeleted) and a
// Normal Event when something was written.
func (r *Reconciler) succeeded(ctx context.Context, ps *esv1alpha1.PushSecret, synced esv1alpha1.SyncedPushSecretsMap, reason, msg string, changed bool, refresh time.Duration) (ctrl.Result, error) {
	status := corev1.ConditionTrue
	if reason == ReasonSourceDeleted {
		status = corev1.ConditionFalse
	}
	next := ps.DeepCopy()
	if len(synced) == 0 {
		synced = nil
	}
	next.Status.SyncedPushSecrets = synced
	next.Status.RefreshTime = esv1.NewTime(r.Now())
	next.Status.SyncedResourceVersion = fmt.Sprintf("%d", ps.Generation)
	setReady(&next.Status, status, reason, msg, r.Now())
	if changed || readyReason(ps) != reason {
		r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, reason, "Push", "%s", msg)
	}
	if err := r.patchStatus(ctx, ps, next); err != nil {
		return ctrl.Result{}, err
	}
	if refresh <= 0 {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: refresh}, nil
}

// patchStatus writes next's status as a merge patch from ps, the
// PushSecret as the cache held it. The patch carries ps's resourceVersion:
// a merge patch holds only what differs from ps, so computed from a copy
// older than the stored status (another reconcile's write the cache has not
// shown yet) it would leave that write in place, such as a failure
// condition after this push succeeded. Such a patch conflicts instead, and
// the reconcile is retried on a fresher copy.
func (r *Reconciler) patchStatus(ctx context.Context, ps, next *esv1alpha1.PushSecret) error {
	patch := client.MergeFromWithOptions(ps, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Status().Patch(ctx, next, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("updating the status of PushSecret %s/%s: %w", ps.Namespace, ps.Name, err)
	}
	return nil
}

func setReady(st *esv1alpha1.PushSecretStatus, status corev1.ConditionStatus, reason, msg string, now time.Time) {
	c := esv1alpha1.PushSecretStatusCondition{Type: esv1alpha1.PushSecretReady, Status: status, Reason: reason, Message: msg}
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

func readyReason(ps *esv1alpha1.PushSecret) string {
	for _, c := range ps.Status.Conditions {
		if c.Type == esv1alpha1.PushSecretReady {
			return c.Reason
		}
	}
	return ""
}

func refreshOf(ps *esv1alpha1.PushSecret) time.Duration {
	if ps.Spec.RefreshInterval != nil && ps.Spec.RefreshInterval.Err() == nil {
		if ps.Spec.RefreshInterval.Duration == 0 {
			return 0
		}
		return ps.Spec.RefreshInterval.Duration
	}
	return DefaultRefreshInterval
}

// anySecret stands, in IndexSource, for the PushSecrets that select their
// Secrets by label ("*" is in no Secret's name).
const anySecret = "*"

// requestsFor maps a Secret to the PushSecrets that push it: those that
// name it, and those whose spec.selector.secret.selector matches its
// labels.
func (r *Reconciler) requestsFor(ctx context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, key := range []string{o.GetName(), anySecret} {
		var list esv1alpha1.PushSecretList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexSource: key}); err != nil {
			log.FromContext(ctx).Error(err, "listing the PushSecrets of a Secret", "secret", o.GetNamespace()+"/"+o.GetName())
			return nil
		}
		for _, ps := range list.Items {
			if key == anySecret {
				sel, err := metav1.LabelSelectorAsSelector(ps.Spec.Selector.Secret.Selector)
				if err != nil || !sel.Matches(labels.Set(o.GetLabels())) {
					continue
				}
			}
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ps.Namespace, Name: ps.Name}})
		}
	}
	return out
}
