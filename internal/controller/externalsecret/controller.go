package externalsecret

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/changes"
	"github.com/keyferry/keyferry/internal/controller/refresh"
	"github.com/keyferry/keyferry/internal/controller/statuswrite"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/metrics"
)

// Ready condition reasons that are not engine failure reasons (ESO's).
const (
	ReasonSecretSynced  = "SecretSynced"
	ReasonSecretDeleted = "SecretDeleted"
)

// Event reasons for changes.
const (
	EventCreated = "Created"
	EventUpdated = "Updated"
	EventDeleted = "Deleted"
)

// IndexStore indexes ExternalSecrets by the stores they use
// ("SecretStore/<ns>/<name>" or "ClusterSecretStore/<name>").
const IndexStore = "keyferry.io/store"

// Reconciler syncs ExternalSecrets.
type Reconciler struct {
	Client   client.Client
	Engine   *engine.Engine
	Recorder events.EventRecorder
	// SecretMetadata is the operator's shared cache of every Secret's
	// metadata (kube.NewSecretMetadataCache, keeping the adopt
	// annotation); nil makes the controller start one of its own.
	SecretMetadata cache.Cache
	// Concurrency is the number of parallel reconciles.
	Concurrency int
	// StartupSpread bounds how far after a restart the first check of an
	// already-synced ExternalSecret is spread (default 5m).
	StartupSpread time.Duration
	// ProbeInterval caps the wait before a sync that failed because its
	// store is unreachable, throttled or backed off is retried (default
	// refresh.DefaultProbeInterval, and never more than the refresh
	// interval).
	ProbeInterval time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// Metrics counts syncs; nil counts nothing.
	Metrics *metrics.Metrics
	// HeadStart is how many ExternalSecrets are synced at start-up from
	// one page read from the API server, before the cache holds them all
	// (headstart.go): 0 is DefaultHeadStart, a negative number none.
	HeadStart int
	// AllowGenericTargets serves spec.target.manifest (ConfigMap targets;
	// --unsafe-allow-generic-targets); without it they are refused with
	// GenericTargetsDisabled.
	AllowGenericTargets bool
	// configMaps is the metadata cache of manifest targets (manifest.go):
	// ConfigMaps, and each other target kind once used
	// (manifest_watch.go); nil without AllowGenericTargets.
	configMaps cache.Cache
	// targetKinds starts the drift watch of a target kind on first use
	// (manifest_watch.go).
	targetKinds targetKindWatches

	// memory is what this process knows of each ExternalSecret's last
	// sync (refresh.Record: the force-sync annotation it saw as Config,
	// the Secret's resourceVersion after it).
	memory refresh.Memory
	// Namespace, when set, is the only namespace served: the watch of
	// Secrets that wakes refused ExternalSecrets covers it alone.
	Namespace string
	// waiting holds the ExternalSecrets refused until a person changes
	// them or their Secret (waiting.go).
	waiting *waiting
	// waitWatch is the watch of every Secret's metadata that wakes
	// waiting ExternalSecrets, started by the first that waits.
	waitWatch *kube.DeferredSource
	// notifications holds the ExternalSecrets whose values changed in a
	// store (Notify, notify.go).
	notifications changes.Queue
	// statuses writes the statuses syncs decide, behind the syncs
	// (statuswrite): while many objects sync, their Secrets come first.
	statuses *statuswrite.Writer[pendingStatus]
	// headStart syncs the first page of ExternalSecrets at start-up
	// (headstart.go); nil without one.
	headStart *headStart
}

// pendingStatus is a status waiting to be written, the object's UID (a
// status never lands on an object of the same name created since), and
// its resourceVersion the status was decided on (Record.StatusOver once
// written).
type pendingStatus struct {
	status esv1.ExternalSecretStatus
	uid    types.UID
	baseRV string
}

// pendingFresh is the Config of a record whose next sync must fetch fresh
// values: no force-sync annotation equals it (refresh.NotSynced).
const pendingFresh = "\x00pending-fresh"

// StoreKeys returns the index values of the stores an ExternalSecret uses.
func StoreKeys(es *esv1.ExternalSecret) []string {
	keys := map[string]struct{}{}
	add := func(r esv1.SecretStoreRef) {
		if r.Name == "" {
			return
		}
		if r.Kind == esv1.ClusterSecretStoreKind {
			keys["ClusterSecretStore/"+r.Name] = struct{}{}
		} else {
			keys["SecretStore/"+es.Namespace+"/"+r.Name] = struct{}{}
		}
	}
	add(es.Spec.SecretStoreRef)
	for _, d := range es.Spec.Data {
		if d.SourceRef != nil {
			add(d.SourceRef.SecretStoreRef)
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.SourceRef != nil {
			add(d.SourceRef.SecretStoreRef)
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SetupWithManager registers the controller and its index.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.StartupSpread == 0 {
		r.StartupSpread = 5 * time.Minute
	}
	if r.Metrics == nil {
		r.Metrics = metrics.New(nil)
	}
	r.waiting = newWaiting()
	pending := r.Metrics.StatusesPending.WithLabelValues(Kind)
	r.statuses = statuswrite.New(statuswrite.Options[pendingStatus]{
		Name: "externalsecret-status", Write: r.writeStatus, Concurrency: r.Concurrency,
		OnPending: func(n int) { pending.Set(float64(n)) },
	})
	if err := mgr.Add(r.statuses); err != nil {
		return fmt.Errorf("adding the ExternalSecret status writer: %w", err)
	}
	if r.HeadStart >= 0 {
		r.headStart = newHeadStart(r, cmp.Or(r.HeadStart, DefaultHeadStart), mgr.GetLogger().WithValues("controller", "externalsecret", "headStart", true),
			func(ctx context.Context, key types.NamespacedName) {
				r.notifications.Send(ctx, &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
			})
		if err := mgr.Add(r.headStart); err != nil {
			return fmt.Errorf("adding the ExternalSecret head start: %w", err)
		}
	}
	secretChanges, err := r.watchSecretMetadata(mgr)
	if err != nil {
		return err
	}
	r.waitWatch = secretChanges
	if err := mgr.GetFieldIndexer().IndexField(ctx, &esv1.ExternalSecret{}, IndexStore, func(o client.Object) []string {
		return StoreKeys(o.(*esv1.ExternalSecret))
	}); err != nil {
		return fmt.Errorf("indexing ExternalSecrets by store: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("externalsecret").
		For(&esv1.ExternalSecret{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Secret{}, r.secretChanges()).
		Watches(&esv1.SecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf)).
		WatchesRawSource(secretChanges).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)})
	if !r.Engine.DisableClusterStores {
		// With cluster stores disabled the kind is not watched at all (and
		// needs no RBAC).
		b = b.Watches(&esv1.ClusterSecretStore{}, handler.EnqueueRequestsFromMapFunc(r.usersOf))
	}
	// Values that changed in a store (Notify).
	b = b.WatchesRawSource(r.notifications.Source(&handler.EnqueueRequestForObject{}))
	if r.AllowGenericTargets {
		// ConfigMap targets: drift and adoption (manifest.go).
		configMapChanges, err := r.watchConfigMapMetadata(mgr)
		if err != nil {
			return err
		}
		b = b.WatchesRawSource(configMapChanges)
	}
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	r.targetKinds.controller = c
	return nil
}

// secretOwner maps a managed Secret to the ExternalSecret that writes it.
func secretOwner(_ context.Context, o client.Object) []reconcile.Request {
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == Kind && strings.HasPrefix(ref.APIVersion, esv1.GroupVersion.Group+"/") {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}}}
	}
	if owner, err := engine.ParseManagedBy(o.GetNamespace(), o.GetAnnotations()[engine.AnnotationOwner]); err == nil && owner.Kind == Kind {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: owner.Namespace, Name: owner.Name}}}
	}
	return nil
}

// secretChanges wakes the ExternalSecret that writes a managed Secret when
// the Secret is created, changed or deleted by someone else: a create or
// update event carrying the resourceVersion of this process's own last
// write of that Secret is news to nobody, and waking the ExternalSecret for
// it would run a sync that finds nothing to do (on a first sync of
// thousands, one such sync per Secret).
func (r *Reconciler) secretChanges() handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object, unlessOwnWrite bool) {
		for _, req := range secretOwner(context.Background(), o) {
			if unlessOwnWrite && ownWrite(r.memory.Get(req.NamespacedName), o.GetResourceVersion()) {
				continue
			}
			q.Add(req)
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, true)
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectNew, true)
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, false)
		},
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, false)
		},
	}
}

// ownWrite says a Secret at resourceVersion rv is as this process's last
// sync left it (rec, the owner's record; nil when there is none).
func ownWrite(rec *refresh.Record, rv string) bool {
	return rec != nil && rv != "" && rec.SecretRV == rv
}

// usersOf maps a store to the ExternalSecrets that use it.
func (r *Reconciler) usersOf(ctx context.Context, o client.Object) []reconcile.Request {
	key := "ClusterSecretStore/" + o.GetName()
	var opts []client.ListOption
	if o.GetNamespace() != "" {
		key = "SecretStore/" + o.GetNamespace() + "/" + o.GetName()
		opts = append(opts, client.InNamespace(o.GetNamespace()))
	}
	var list esv1.ExternalSecretList
	if err := r.Client.List(ctx, &list, append(opts, client.MatchingFields{IndexStore: key})...); err != nil {
		log.FromContext(ctx).Error(err, "listing ExternalSecrets of a store", "store", key)
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// Version identifies the spec and metadata an ExternalSecret was synced
// at: "<generation>-<hash of labels and annotations>", as ESO reports it.
func Version(es *esv1.ExternalSecret) string {
	h := sha256.New()
	for _, m := range []map[string]string{es.Labels, es.Annotations} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h.Write([]byte(k + "=" + m[k] + "\n"))
		}
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%d-%s", es.Generation, hex.EncodeToString(h.Sum(nil))[:16])
}

// Reconcile syncs one ExternalSecret.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	// The head start syncs its objects alone, and queues them again once
	// done (headstart.go).
	if r.headStart != nil {
		if held, err := r.headStart.holds(ctx, req.NamespacedName); err != nil || held {
			return reconcile.Result{}, err
		}
	}
	var es esv1.ExternalSecret
	if err := r.Client.Get(ctx, req.NamespacedName, &es); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	return r.sync(ctx, &es)
}

// sync decides whether es is due and syncs it: the reconcile of an
// ExternalSecret read from the cache, or from the API server by the head
// start.
func (r *Reconciler) sync(ctx context.Context, es *esv1.ExternalSecret) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	defer r.statuses.Busy()()
	key := client.ObjectKeyFromObject(es)
	// A status decided but not yet written is the object's status: the
	// cache cannot show it.
	pending := false
	if p, ok := r.statuses.Pending(key); ok && p.uid == es.UID {
		es.Status, pending = p.status, true
	}
	if !es.DeletionTimestamp.IsZero() {
		r.forget(key)
		return reconcile.Result{}, nil
	}
	// A store of another controller class: that controller syncs this
	// ExternalSecret; keyferry writes nothing, not even a status.
	if ref, other, err := r.Engine.StoreOfAnotherController(ctx, es.Namespace, engine.ExternalSecretStores(es)); err != nil {
		return reconcile.Result{}, err
	} else if other {
		logger.V(1).Info("skipping: a store belongs to another controller class", "store", ref.Kind+"/"+ref.Name)
		r.forget(key)
		return reconcile.Result{}, nil
	}
	observe := true // ESO's sync count and duration, unless skipped below
	defer func(start time.Time) {
		if observe {
			r.Metrics.ESO.ObserveReconcile(metrics.KindExternalSecret, es.Namespace, es.Name, start)
		}
	}(time.Now())
	r.observeCondition(es, &es.Status)
	now := r.Now()
	version := Version(es)
	interval := RefreshInterval(es)

	plan, err := CompileWith(es, CompileOptions{AllowGenericTargets: r.AllowGenericTargets})
	if err != nil {
		return r.failed(ctx, es, version, err)
	}

	d := r.due(ctx, es, plan, version, interval, now, pending)
	logger.V(1).Info("refresh decision", "sync", d.Sync, "reason", d.Reason, "detail", d.Message)
	if !d.Sync {
		return d.Result(), nil
	}
	plan.MaxAge = d.MaxAge
	res, err := r.Engine.Execute(ctx, plan)
	r.watchTargetKind(ctx, plan, err) // manifest_watch.go
	if errors.Is(err, engine.ErrStoreOfAnotherController) {
		// The store changed class since the check above.
		observe = false
		r.forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		result, rerr := r.failed(ctx, es, version, err)
		if d.MaxAge == 0 {
			// A fresh fetch (force-sync) failed: its retries must fetch fresh
			// too, or an older cached value would hide the failure.
			r.memory.Put(key, refresh.Record{Config: pendingFresh})
		}
		return result, rerr
	}
	r.remember(ctx, es, plan, res.SecretRV)
	r.waiting.done(key)

	kind := plan.Target.Kind()
	switch {
	case res.Created:
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, EventCreated, "Sync", "Created %s %s with keys %s", kind, res.SecretName, strings.Join(res.Keys, ", "))
	case res.Updated:
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, EventUpdated, "Sync", "Updated %s %s (keys %s)", kind, res.SecretName, strings.Join(res.Keys, ", "))
	case res.Deleted:
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, EventDeleted, "Sync", "Deleted %s %s: every remote value is gone and deletionPolicy is Delete", kind, res.SecretName)
	}
	r.Metrics.Syncs.WithLabelValues("ExternalSecret", "success", "").Inc()
	reason, msg := ReasonSecretSynced, "Secret was synced"
	if plan.Target.Manifest != nil {
		reason, msg = ReasonResourceSynced, kind+" was synced"
	}
	if res.Gone {
		reason, msg = ReasonSecretDeleted, kind+" was deleted: every remote value is gone and deletionPolicy is Delete"
		if plan.Target.Manifest != nil {
			reason = ReasonResourceDeleted
		}
	}
	if plan.Target.CreationPolicy == esv1.CreatePolicyNone {
		msg = "values were fetched; creationPolicy None writes no " + kind
	}
	r.setStatus(es, metav1.ConditionTrue, reason, msg, version, res.Changed())
	logger.V(1).Info("synced", "secret", res.SecretName, "changed", res.Changed(), "keys", len(res.Keys))
	if res.GenerateReason != "" {
		logger.V(1).Info("generators", "generated", res.Generated, "reason", res.GenerateReason)
	}
	if interval == 0 || es.Spec.RefreshPolicy == esv1.RefreshPolicyOnChange || es.Spec.RefreshPolicy == esv1.RefreshPolicyCreatedOnce {
		return reconcile.Result{}, nil
	}
	if wait := res.RegenerateAt.Sub(r.Now()); !res.RegenerateAt.IsZero() && wait < interval {
		// Generated values are due before the next periodic refresh.
		return refresh.Requeue(max(wait, time.Second)), nil
	}
	return refresh.Periodic(interval), nil
}

// due decides whether to sync now with refresh.ExternalSecretChecks, from
// the status (pending: a status not yet written), the target Secret and
// this process's record.
func (r *Reconciler) due(ctx context.Context, es *esv1.ExternalSecret, plan engine.Plan, version string, interval time.Duration, now time.Time, pending bool) refresh.Decision {
	key := client.ObjectKeyFromObject(es)
	exists, targetRV := r.targetVersion(ctx, es.Namespace, plan)
	rec := r.memory.Get(key)
	in := refresh.Input{
		Now: now, Interval: interval, Policy: refreshPolicy(es), StartupSpread: r.StartupSpread,
		Synced:       isReady(es) && es.Status.SyncedResourceVersion == version,
		StatusBehind: !pending && rec != nil && rec.StatusOver != "" && rec.StatusOver == es.ResourceVersion,
		LastSync:     es.Status.RefreshTime.Time.Time,
		Config:       es.Annotations[esv1.AnnotationForceSync],
		Record:       rec,
		// Every wake-up of a synced ExternalSecret (its requeue, a change
		// notification, a store change) is a refresh, as in ESO: values
		// fetched within the interval are reused, so it costs no call.
		Woken:        true,
		SecretExists: exists || plan.Target.CreationPolicy == esv1.CreatePolicyNone,
		SecretRV:     targetRV,
	}
	d := refresh.Decide(in, refresh.ExternalSecretChecks)
	if d.Remember != nil {
		r.memory.Put(key, *d.Remember)
	}
	return d
}

// refreshPolicy maps spec.refreshPolicy to the scheduler's policy.
func refreshPolicy(es *esv1.ExternalSecret) refresh.Policy {
	switch es.Spec.RefreshPolicy {
	case esv1.RefreshPolicyOnChange:
		return refresh.PolicyOnChange
	case esv1.RefreshPolicyCreatedOnce:
		return refresh.PolicyCreatedOnce
	}
	return refresh.PolicyPeriodic
}

// remember records a successful sync: the configuration synced and the
// target's resourceVersion after it (rv, as the write answered; read from
// the cache for targets the engine does not report it for).
func (r *Reconciler) remember(ctx context.Context, es *esv1.ExternalSecret, plan engine.Plan, rv string) {
	if rv == "" {
		_, rv = r.targetVersion(ctx, es.Namespace, plan)
	}
	r.memory.Put(client.ObjectKeyFromObject(es), refresh.Record{Config: es.Annotations[esv1.AnnotationForceSync], SecretRV: rv})
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.memory.Forget(key)
	r.statuses.Forget(key)
	r.waiting.done(key)
	r.Engine.Fetch.Unsubscribe(engine.ObjectRef{Kind: Kind, Namespace: key.Namespace, Name: key.Name}.String())
	r.Metrics.ESO.Forget(metrics.KindExternalSecret, key.Namespace, key.Name)
}

// failed reports a failed sync; the existing Secret is left untouched.
func (r *Reconciler) failed(ctx context.Context, es *esv1.ExternalSecret, version string, err error) (reconcile.Result, error) {
	if ctx.Err() != nil {
		// Shutting down: the sync was interrupted, not failed.
		return reconcile.Result{}, ctx.Err()
	}
	var ee *engine.Error
	if !errors.As(err, &ee) {
		ee = &engine.Error{Reason: engine.ReasonProviderError, Err: err}
	}
	r.Metrics.Syncs.WithLabelValues("ExternalSecret", "error", ee.Reason).Inc()
	r.Metrics.ESO.SyncFailed(es.Namespace, es.Name)
	r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, ee.Reason, "Sync", "%s", ee.Error())
	r.memory.Drop(client.ObjectKeyFromObject(es))
	r.setStatus(es, metav1.ConditionFalse, ee.Reason, ee.Error(), es.Status.SyncedResourceVersion, false)
	if ee.Reason == engine.ReasonInvalidSpec || ee.Reason == engine.ReasonClusterStoreDisabled || ee.Reason == engine.ReasonGenericTargetsDisabled {
		return reconcile.Result{}, nil // waits for the user to edit the spec
	}
	if engine.WaitsForChange(ee.Reason) {
		// Retrying cannot help: wait for a person to change the
		// ExternalSecret or its Secret (waiting.go wakes it).
		r.waiting.wait(es)
		if started, err := r.waitWatch.Activate(); err != nil {
			return reconcile.Result{}, fmt.Errorf("watching Secrets for the ExternalSecrets that wait: %w", err)
		} else if started {
			log.FromContext(ctx).Info(kube.SecretWatchStartedLog, "reason", "an ExternalSecret waits for a change to a Secret it may not write")
		}
		log.FromContext(ctx).Info("sync refused; waiting for a change to the ExternalSecret or its Secret", "reason", ee.Reason, "secret", targetName(es))
		return reconcile.Result{}, nil
	}
	if res, ok := refresh.Retry(ee, RefreshInterval(es), r.ProbeInterval); ok {
		// The store is unreachable, throttled or backed off: retry within
		// the probe interval rather than after controller-runtime's
		// per-item backoff, which climbs to many minutes (the fetch layer
		// also wakes the object the moment the store answers again); or the
		// engine said when to retry.
		if refresh.Transient(ee) {
			log.FromContext(ctx).V(1).Info("sync failed; retrying within the store probe interval", "reason", ee.Reason, "retryIn", res.RequeueAfter.String())
		}
		return res, nil
	}
	return reconcile.Result{}, ee
}

// setStatus hands the status writer the Ready condition (and, on success,
// the sync fields) when they differ from the status es shows.
func (r *Reconciler) setStatus(es *esv1.ExternalSecret, status metav1.ConditionStatus, reason, msg, version string, changed bool) {
	next := es.DeepCopy()
	setCondition(&next.Status, esv1.ExternalSecretStatusCondition{Type: esv1.ExternalSecretReady, Status: status, Reason: reason, Message: msg}, r.Now())
	if status == metav1.ConditionTrue {
		next.Status.SyncedResourceVersion = version
		next.Status.Binding.Name = es.Spec.Target.Name
		if next.Status.Binding.Name == "" {
			next.Status.Binding.Name = es.Name
		}
		if changed || next.Status.RefreshTime.IsZero() || !isReady(es) || es.Status.SyncedResourceVersion != version {
			next.Status.RefreshTime = esv1.NewTime(r.Now())
		}
	}
	r.observeCondition(es, &next.Status)
	if statusEqual(es.Status, next.Status) {
		return
	}
	r.statuses.Set(client.ObjectKeyFromObject(es), pendingStatus{status: next.Status, uid: es.UID, baseRV: es.ResourceVersion})
}

// writeStatus writes a status the status writer holds: a JSON patch that
// sets the whole status (keyferry writes every field of it), so a cache
// behind this process's earlier writes cannot leave a field out. Its first
// operation tests the object's UID: when the object was deleted and
// created again under the same name since, the API server refuses the
// patch as Invalid and the status is dropped.
func (r *Reconciler) writeStatus(ctx context.Context, key types.NamespacedName, p pendingStatus) error {
	type operation struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	body, err := json.Marshal([]operation{
		{Op: "test", Path: "/metadata/uid", Value: p.uid},
		{Op: "add", Path: "/status", Value: p.status},
	})
	if err != nil {
		return fmt.Errorf("encoding ExternalSecret status: %w", err)
	}
	es := &esv1.ExternalSecret{}
	es.Namespace, es.Name = key.Namespace, key.Name
	if err := r.Client.Status().Patch(ctx, es, client.RawPatch(types.JSONPatchType, body)); err != nil {
		if apierrors.IsInvalid(err) {
			// Another object of the same name (or a status the schema
			// refuses, which no retry would change).
			log.FromContext(ctx).Info("dropping a status the API server refused", "externalSecret", key.String(), "error", err.Error())
			return nil
		}
		return fmt.Errorf("updating ExternalSecret status: %w", err)
	}
	// A patch the API server found to change nothing (times are stored to
	// the second) keeps the resourceVersion: nothing was written. Otherwise,
	// until the cache shows this write, the status read back is stale
	// (refresh.StatusCaughtUp).
	if es.ResourceVersion != p.baseRV {
		r.memory.SetStatusOver(key, p.baseRV)
	}
	return nil
}

func setCondition(st *esv1.ExternalSecretStatus, c esv1.ExternalSecretStatusCondition, now time.Time) {
	for i, old := range st.Conditions {
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = esv1.NewTime(now)
		}
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = esv1.NewTime(now)
	st.Conditions = append(st.Conditions, c)
}

func statusEqual(a, b esv1.ExternalSecretStatus) bool {
	if !a.RefreshTime.Equal(&b.RefreshTime) || a.SyncedResourceVersion != b.SyncedResourceVersion || a.Binding != b.Binding || len(a.Conditions) != len(b.Conditions) {
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

// observeCondition records the Ready condition in ESO's
// externalsecret_status_condition.
func (r *Reconciler) observeCondition(es *esv1.ExternalSecret, st *esv1.ExternalSecretStatus) {
	for _, c := range st.Conditions {
		if c.Type == esv1.ExternalSecretReady {
			r.Metrics.ESO.SetCondition(metrics.KindExternalSecret, es.Namespace, es.Name, string(c.Type), string(c.Status))
		}
	}
}

func isReady(es *esv1.ExternalSecret) bool {
	for _, c := range es.Status.Conditions {
		if c.Type == esv1.ExternalSecretReady {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}
