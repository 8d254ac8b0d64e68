package unsupported

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/kube"
)

// Options configure the controller of Setup.
type Options struct {
	// Client reads stores (cached) and writes the objects' status.
	// Objects of the unsupported kinds are read live (unstructured
	// objects are not cached); only their metadata is watched.
	Client   client.Client
	Recorder events.EventRecorder
	// Namespace, when set, leaves the cluster-scoped kinds alone (the
	// cache then sees only that namespace).
	Namespace string
	// ControllerClass is this keyferry's --controller-class.
	ControllerClass string
	// DisableClusterStores: ClusterSecretStores are not watched, so a
	// PushSecret naming one is reported whatever that store's class.
	DisableClusterStores bool
	// Kinds overrides the kinds (tests); nil means Kinds() and
	// Implemented().
	Kinds []Kind
	// Access asks the API server what the operator may do
	// (SelfSubjectAccessReview); nil skips the check.
	Access client.Client
	Log    logr.Logger
}

// Setup registers one controller for the kinds of opts.Kinds. A kind whose CRD
// the API server does not serve (an install that left it out, such as the
// chart's crds.createPushSecret=false), and a kind the operator may not
// list and watch (RBAC written before keyferry served it, such as a
// hand-written Role for --namespace), is skipped with a log line, so the
// operator never waits on a watch that cannot start and every other kind
// keeps syncing.
func Setup(mgr ctrl.Manager, opts Options) error {
	kinds := opts.Kinds
	if kinds == nil {
		kinds = append(Kinds(), Implemented()...)
	}
	logger := opts.Log.WithName("unsupported")
	type candidate struct {
		kind     Kind
		resource schema.GroupResource
		allowed  bool
	}
	var cands []*candidate
	for _, k := range kinds {
		if !k.Namespaced && opts.Namespace != "" {
			logger.Info("not watching a cluster-scoped kind: --namespace serves one namespace", "kind", k.Kind, "namespace", opts.Namespace)
			continue
		}
		mapping, err := mgr.GetRESTMapper().RESTMapping(k.GroupKind(), k.Version)
		if err != nil {
			if meta.IsNoMatchError(err) {
				logger.Info("not watching a kind whose CRD is not installed", "kind", k.Kind, "group", k.Group)
				continue
			}
			return fmt.Errorf("looking up %s: %w", k.GroupVersionKind, err)
		}
		cands = append(cands, &candidate{kind: k, resource: mapping.Resource.GroupResource(), allowed: true})
	}
	if opts.Access != nil {
		// Two access reviews per kind: asked together, not one after the
		// other, so that start-up does not wait for each round trip.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var (
			wg   sync.WaitGroup
			slot = make(chan struct{}, accessReviewsInFlight)
			errs = make([]error, len(cands))
		)
		for i, c := range cands {
			wg.Go(func() {
				slot <- struct{}{}
				defer func() { <-slot }()
				ok, err := kube.MayListWatch(ctx, opts.Access, c.resource.Group, c.resource.Resource, opts.Namespace)
				if err != nil {
					errs[i] = fmt.Errorf("checking access to %s: %w", c.kind.GroupVersionKind, err)
				}
				c.allowed = ok
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	r := &Reconciler{Client: opts.Client, Recorder: opts.Recorder, Kinds: map[schema.GroupVersionKind]Kind{},
		ControllerClass: opts.ControllerClass, DisableClusterStores: opts.DisableClusterStores}
	for _, c := range cands {
		k := c.kind
		if !c.allowed {
			logger.Info("not watching a kind the operator may not list and watch (grant it to report its objects Unsupported)", "kind", k.Kind, "group", k.Group, "namespace", opts.Namespace)
			continue
		}
		r.Kinds[k.GroupVersionKind] = k
	}
	if len(r.Kinds) == 0 {
		return nil
	}
	return r.SetupWithManager(mgr)
}

// accessReviewsInFlight bounds the access reviews Setup asks at once.
const accessReviewsInFlight = 8

// ControllerName names the one controller of every kind Setup watches (the
// controller label of controller-runtime's metrics).
const ControllerName = "unsupported"

// Request names one object of one of the kinds the controller watches.
type Request struct {
	schema.GroupVersionKind
	types.NamespacedName
}

// Reconciler reports the objects of the kinds it watches Unsupported, or,
// for a kind keyferry implements (Kind.Implemented, a ClusterGenerator of
// such a kind), removes that condition. One controller serves every kind:
// most clusters hold no object of most of them, and a controller per kind
// cost each its own queue and workers.
type Reconciler struct {
	Client client.Client
	// Recorder emits the Unsupported Events.
	Recorder events.EventRecorder
	// Kinds are the kinds watched.
	Kinds                map[schema.GroupVersionKind]Kind
	ControllerClass      string
	DisableClusterStores bool
	Now                  func() time.Time
}

// SetupWithManager registers the controller: a metadata-only watch of each
// kind, woken by creation and by spec changes (generation).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	b := builder.TypedControllerManagedBy[Request](mgr).Named(ControllerName)
	for gvk := range r.Kinds {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		enqueue := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o *metav1.PartialObjectMetadata) []Request {
			return []Request{{GroupVersionKind: gvk, NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}}
		})
		b = b.WatchesRawSource(source.TypedKind(mgr.GetCache(), obj, enqueue, predicate.TypedGenerationChangedPredicate[*metav1.PartialObjectMetadata]{}))
	}
	return b.Complete(r)
}

// Reconcile sets Ready=False/Unsupported on one object, once.
func (r *Reconciler) Reconcile(ctx context.Context, req Request) (reconcile.Result, error) {
	k, ok := r.Kinds[req.GroupVersionKind]
	if !ok {
		return reconcile.Result{}, nil
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(k.GroupVersionKind)
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if obj.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	if k.Implemented || implementedGenerator(obj) {
		return reconcile.Result{}, r.clear(ctx, obj)
	}
	why, err := r.anotherController(ctx, k, obj)
	if err != nil {
		return reconcile.Result{}, err
	}
	if why != "" {
		log.FromContext(ctx).V(1).Info("leaving an object of another controller class alone", "kind", k.Kind, "why", why)
		return reconcile.Result{}, nil
	}
	msg := Message(k)
	if !setUnsupported(obj, msg, r.Now()) {
		return reconcile.Result{}, nil
	}
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("updating the status of %s %s: %w", k.Kind, req.NamespacedName, err)
	}
	r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, ReasonUnsupported, "Check", "%s", msg)
	return reconcile.Result{}, nil
}

// clear removes the Unsupported condition of an object keyferry now
// implements; it writes nothing when there is none.
func (r *Reconciler) clear(ctx context.Context, obj *unstructured.Unstructured) error {
	if !clearUnsupported(obj) {
		return nil
	}
	if err := r.Client.Status().Update(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("removing the Unsupported condition of %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	log.FromContext(ctx).Info("removed the Unsupported condition of a kind keyferry implements", "kind", obj.GetKind())
	return nil
}

// anotherController returns why obj belongs to another controller class,
// or "" when this keyferry reports it.
func (r *Reconciler) anotherController(ctx context.Context, k Kind, obj *unstructured.Unstructured) (string, error) {
	if why := generatorOfAnotherClass(obj, r.ControllerClass); why != "" {
		return why, nil
	}
	if k.Group != esv1alpha1.GroupVersion.Group {
		return "", nil
	}
	refs, ok := pushSecretStores(obj)
	if !ok {
		return "", nil
	}
	for i := range refs {
		found, class, err := r.storeClass(ctx, obj.GetNamespace(), refs[i])
		if err != nil {
			return "", err
		}
		refs[i].Found, refs[i].Class = found, class
	}
	return storesOfAnotherClass(refs, r.ControllerClass), nil
}

// storeClass reads a store's spec.controller.
func (r *Reconciler) storeClass(ctx context.Context, namespace string, ref storeRef) (bool, string, error) {
	var store client.Object
	var spec *esv1.SecretStoreSpec
	key := client.ObjectKey{Name: ref.Name}
	switch ref.Kind {
	case esv1.ClusterSecretStoreKind:
		if r.DisableClusterStores {
			return false, "", nil
		}
		css := &esv1.ClusterSecretStore{}
		store, spec = css, &css.Spec
	default:
		ss := &esv1.SecretStore{}
		store, spec, key.Namespace = ss, &ss.Spec, namespace
	}
	if err := r.Client.Get(ctx, key, store); err != nil {
		if apierrors.IsNotFound(err) {
			return false, "", nil
		}
		return false, "", fmt.Errorf("reading %s %q: %w", ref.Kind, ref.Name, err)
	}
	return true, spec.Controller, nil
}
