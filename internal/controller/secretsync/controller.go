package secretsync

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/changes"
	"github.com/keyferry/keyferry/internal/controller/refresh"
	"github.com/keyferry/keyferry/internal/engine"
)

// DefaultRotationPollInterval is how often a synchronized Secret is checked
// against the vault, as the Secret Store extension's default
// (rotationPollIntervalInSeconds: 3600).
const DefaultRotationPollInterval = time.Hour

// ownershipRetry is how soon a SecretSync blocked by a Secret it does not own
// looks again (a deletion of that Secret is not watched: keyferry caches only
// the Secrets it manages).
const ownershipRetry = time.Minute

// retryMaxAge is the age of cached values a retry after a failure accepts.
const retryMaxAge = time.Minute

// IndexSecretProviderClass indexes SecretSyncs by the SecretProviderClass
// they name.
const IndexSecretProviderClass = "keyferry.io/secretproviderclass"

// Reconciler syncs SecretSyncs.
type Reconciler struct {
	Client client.Client
	// APIReader reads Secrets the cache does not hold (those keyferry does
	// not manage yet).
	APIReader client.Reader
	Engine    *engine.Engine
	Recorder  events.EventRecorder
	// Concurrency is the number of parallel reconciles.
	Concurrency int
	// RotationPollInterval is how often a synchronized Secret is checked
	// against the vault (default 1h), spread by up to +10%.
	RotationPollInterval time.Duration
	// StartupSpread bounds how far after a restart the first check of an
	// already-synchronized SecretSync is spread (default 5m).
	StartupSpread time.Duration
	// ProbeInterval caps the wait before a sync that failed because the
	// vault is unreachable, throttled or backed off is retried (default
	// refresh.DefaultProbeInterval, and never more than
	// RotationPollInterval).
	ProbeInterval time.Duration
	// ControllerName, when set, restricts the controller to SecretSyncs whose
	// spec.secretSyncControllerName is empty or equal to it.
	ControllerName string
	// Now is the clock (tests).
	Now func() time.Time

	// memory is what this process knows of each SecretSync's last sync
	// (refresh.Record, with the fingerprint as Config) and which were woken
	// by a change notification.
	memory refresh.Memory
	// notifications holds the SecretSyncs whose values changed in the
	// vault (Notify, notify.go).
	notifications changes.Queue
}

// SetupWithManager registers the controller and its index.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.RotationPollInterval <= 0 {
		r.RotationPollInterval = DefaultRotationPollInterval
	}
	if r.StartupSpread <= 0 {
		r.StartupSpread = 5 * time.Minute
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &ssv1.SecretSync{}, IndexSecretProviderClass, func(o client.Object) []string {
		return []string{o.(*ssv1.SecretSync).Spec.SecretProviderClassName}
	}); err != nil {
		return fmt.Errorf("indexing SecretSyncs by SecretProviderClass: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("secretsync").
		For(&ssv1.SecretSync{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(secretOwner)).
		Watches(&spcv1.SecretProviderClass{}, handler.EnqueueRequestsFromMapFunc(r.usersOf)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Concurrency, 1)})
	// Values that changed in the vault (Notify).
	b = b.WatchesRawSource(r.notifications.Source(handler.Funcs{
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			key := client.ObjectKeyFromObject(e.Object)
			r.memory.Wake(key)
			q.Add(reconcile.Request{NamespacedName: key})
		},
	}))
	return b.Complete(r)
}

// secretOwner maps a managed Secret to the SecretSync that writes it.
func secretOwner(_ context.Context, o client.Object) []reconcile.Request {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == Kind && strings.HasPrefix(ref.APIVersion, ssv1.GroupVersion.Group+"/") {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}}}
		}
	}
	return nil
}

// usersOf maps a SecretProviderClass to the SecretSyncs that name it.
func (r *Reconciler) usersOf(ctx context.Context, o client.Object) []reconcile.Request {
	var list ssv1.SecretSyncList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexSecretProviderClass: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing the SecretSyncs of a SecretProviderClass", "secretProviderClass", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// Reconcile syncs one SecretSync.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var ss ssv1.SecretSync
	if err := r.Client.Get(ctx, req.NamespacedName, &ss); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !ss.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if r.ControllerName != "" && ss.Spec.SecretSyncControllerName != "" && ss.Spec.SecretSyncControllerName != r.ControllerName {
		return reconcile.Result{}, nil
	}
	now := r.Now()
	ph := phaseOf(&ss)

	var spc spcv1.SecretProviderClass
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}, &spc); err != nil {
		if apierrors.IsNotFound(err) {
			return r.failed(ctx, &ss, ph, failf(kindSPC, "SecretProviderClass %q not found in namespace %q", ss.Spec.SecretProviderClassName, ss.Namespace), false)
		}
		return reconcile.Result{}, err
	}
	plan, err := Compile(&ss, &spc, r.Engine.Registry)
	if err != nil {
		// Fixed by editing the SecretSync or the SecretProviderClass, both
		// watched.
		return r.failed(ctx, &ss, ph, err, false)
	}
	secret, err := r.targetSecret(ctx, &ss)
	if err != nil {
		return r.failed(ctx, &ss, ph, failf(kindInternal, "reading Secret %q: %s", ss.Name, apiReason(err)), true)
	}
	d := r.due(&ss, &spc, secret, now)
	logger.V(1).Info("refresh decision", "sync", d.Sync, "reason", d.Reason, "detail", d.Message)
	if !d.Sync {
		return d.Result(), nil
	}
	if secret != nil {
		if err := checkOwnership(secret, &ss); err != nil {
			err.Err = fmt.Errorf("%w.%s", err.Err, msgRetryOwnership)
			res, _ := r.failed(ctx, &ss, ph, err, false)
			res.RequeueAfter = min(ownershipRetry, r.RotationPollInterval)
			return res, nil
		}
		if !claimed(secret, &ss) {
			if err := claim(ctx, r.Client, secret, &ss); err != nil {
				return r.failed(ctx, &ss, ph, &Error{Kind: kindPatch, Err: err}, true)
			}
		}
	}

	r.attempted(&ss, &spc, now)
	plan.MaxAge = d.MaxAge
	res, err := r.Engine.Execute(ctx, plan)
	if err != nil {
		return r.failed(ctx, &ss, ph, err, true)
	}
	r.remember(ctx, &ss, &spc, now)

	hash := syncHash(res.Hash, &ss, &spc)
	next := ss.DeepCopy()
	switch {
	case ph == phaseCreate:
		setCondition(&next.Status, ss.Generation, ssv1.ConditionTypeCreate, metav1.ConditionTrue, ssv1.ReasonCreateSucceeded, msgCreated)
		switch {
		case res.Created:
			r.Recorder.Eventf(&ss, nil, corev1.EventTypeNormal, ssv1.ReasonCreateSucceeded, "Sync", "Created Secret %s with keys %s", res.SecretName, strings.Join(res.Keys, ", "))
		case res.Updated:
			r.Recorder.Eventf(&ss, nil, corev1.EventTypeNormal, ssv1.ReasonCreateSucceeded, "Sync", "Took over Secret %s and wrote keys %s", res.SecretName, strings.Join(res.Keys, ", "))
		}
	case d.Restore && !res.Changed() && hash == ss.Status.SyncHash:
		// A look at the Secret after an event, with nothing to do: the
		// status stays as the last check left it.
		logger.V(1).Info("secret is up to date", "secret", res.SecretName)
		return refresh.Requeue(r.memory.Wait(req.NamespacedName, now, r.RotationPollInterval)), nil
	case res.Changed() || hash != ss.Status.SyncHash:
		setCondition(&next.Status, ss.Generation, ssv1.ConditionTypeUpdate, metav1.ConditionTrue, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded, msgValueOrForced)
		if res.Changed() {
			r.Recorder.Eventf(&ss, nil, corev1.EventTypeNormal, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded, "Sync", "Updated Secret %s (keys %s)", res.SecretName, strings.Join(res.Keys, ", "))
		}
	default:
		setCondition(&next.Status, ss.Generation, ssv1.ConditionTypeUpdate, metav1.ConditionTrue, ssv1.ReasonUpdateNoValueChangeSucceeded, msgNoValueChange)
	}
	next.Status.SyncHash = hash
	next.Status.LastSuccessfulSyncTime = &metav1.Time{Time: now}
	if _, err := r.patchStatus(ctx, &ss, next); err != nil {
		return reconcile.Result{}, err
	}
	logger.V(1).Info("synced", "secret", res.SecretName, "changed", res.Changed(), "keys", len(res.Keys))
	return refresh.Requeue(r.memory.Wait(req.NamespacedName, now, r.RotationPollInterval)), nil
}

// fingerprint identifies what a SecretSync is synced from: a change of the
// SecretSync's spec (forceSynchronization included) or of its
// SecretProviderClass changes it.
func fingerprint(ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass) string {
	return fmt.Sprintf("%s/%d|%s", ss.UID, ss.Generation, spcFingerprint(spc))
}

// due decides whether to sync now with refresh.SecretSyncChecks, from the
// status, the Secret (nil: none), the SecretProviderClass and this
// process's record.
func (r *Reconciler) due(ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass, secret *corev1.Secret, now time.Time) refresh.Decision {
	key := client.ObjectKeyFromObject(ss)
	in := refresh.Input{
		Now: now, Interval: r.RotationPollInterval, StartupSpread: r.StartupSpread, RetryMaxAge: retryMaxAge,
		Synced: upToDate(ss),
		Config: fingerprint(ss, spc),
		Record: r.memory.Get(key),
		// A change notification: another SecretSync saw a value change.
		Woken:        r.memory.TakeWoken(key),
		SecretExists: secret != nil,
		Source:       spcFingerprint(spc),
	}
	if t := ss.Status.LastSuccessfulSyncTime; t != nil {
		in.LastSync = t.Time
	}
	if secret != nil {
		in.SecretRV, in.SecretSource = secret.ResourceVersion, secret.Annotations[AnnotationSecretProviderClass]
	}
	d := refresh.Decide(in, refresh.SecretSyncChecks)
	if d.Remember != nil {
		r.memory.Put(key, *d.Remember)
	}
	return d
}

// remember records a successful sync, scheduling the next check.
func (r *Reconciler) remember(ctx context.Context, ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass, now time.Time) {
	key := client.ObjectKeyFromObject(ss)
	rv := ""
	var s corev1.Secret
	if err := r.Client.Get(ctx, key, &s); err == nil {
		rv = s.ResourceVersion
	}
	r.memory.Synced(key, fingerprint(ss, spc), rv, now, r.RotationPollInterval)
}

// attempted records the configuration a sync is attempted for, so that a
// retry after a failure knows it retries the same configuration.
func (r *Reconciler) attempted(ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass, now time.Time) {
	r.memory.Attempted(client.ObjectKeyFromObject(ss), fingerprint(ss, spc), now)
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.memory.Forget(key)
	r.Engine.Fetch.Unsubscribe(engine.ObjectRef{Kind: Kind, Namespace: key.Namespace, Name: key.Name}.String())
}

// targetSecret reads the Secret a SecretSync writes: from the cache
// (keyferry's Secrets), then from the API server; nil when there is none.
func (r *Reconciler) targetSecret(ctx context.Context, ss *ssv1.SecretSync) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: ss.Namespace, Name: ss.Name}
	var s corev1.Secret
	err := r.Client.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, &s)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &s, nil
}

// failed reports a failed sync in the phase's condition and a Warning
// Event; the existing Secret is left untouched. retry returns the error so
// the sync is retried with backoff (or after the store's Retry-After);
// otherwise the SecretSync waits for an edit of itself or its class.
func (r *Reconciler) failed(ctx context.Context, ss *ssv1.SecretSync, ph phase, err error, retry bool) (reconcile.Result, error) {
	kind := kindOf(err)
	reason, status := reasonFor(kind, ph)
	msg := err.Error()
	next := ss.DeepCopy()
	setCondition(&next.Status, ss.Generation, ph.conditionType(), status, reason, msg)
	changed, serr := r.patchStatus(ctx, ss, next)
	if serr != nil {
		return reconcile.Result{}, serr
	}
	if changed {
		// One Event per new failure, not one per retry.
		r.Recorder.Eventf(ss, nil, corev1.EventTypeWarning, reason, "Sync", "%s", truncate(msg, 1024))
	}
	if !retry {
		return reconcile.Result{}, nil
	}
	if res, ok := refresh.Retry(err, r.RotationPollInterval, r.ProbeInterval); ok {
		// The vault is unreachable, throttled or backed off: retry within
		// the probe interval rather than after controller-runtime's
		// per-item backoff, which climbs to many minutes; or the engine said
		// when to retry.
		if refresh.Transient(err) {
			log.FromContext(ctx).V(1).Info("sync failed; retrying within the store probe interval", "reason", reason, "retryIn", res.RequeueAfter.String())
		}
		return res, nil
	}
	return reconcile.Result{}, err
}

// patchStatus writes the status when it changed, and says whether it did.
func (r *Reconciler) patchStatus(ctx context.Context, old, next *ssv1.SecretSync) (bool, error) {
	sort.SliceStable(next.Status.Conditions, func(i, j int) bool {
		return conditionOrder(next.Status.Conditions[i].Type) < conditionOrder(next.Status.Conditions[j].Type)
	})
	if equality.Semantic.DeepEqual(old.Status, next.Status) {
		return false, nil
	}
	if err := r.Client.Status().Patch(ctx, next, client.MergeFrom(old)); err != nil {
		return false, fmt.Errorf("updating SecretSync status: %w", err)
	}
	return true, nil
}

func conditionOrder(t string) int {
	switch t {
	case ssv1.ConditionTypeCreate:
		return 0
	case ssv1.ConditionTypeUpdate:
		return 1
	default:
		return 2
	}
}
