// This file resolves a plan's store references into the stores the fetch
// layer builds clients for, one resolver per kind: SecretStore,
// ClusterSecretStore and SecretProviderClass. A resolver reads its object
// and runs the kind's rules as small named checks, in order; the first
// failure's reason and message go straight into the sync's condition.
// request then validates the provider's configuration (CheckProvider) the
// same way for every kind.

package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// StoreResolver resolves a store reference for a plan into the store a
// client is built for. The fetch layer rebuilds the client when the store's
// provider configuration changes.
type StoreResolver func(ctx context.Context, plan Plan, ref StoreRef) (provider.Store, error)

// storeCheck is one rule a resolved store must pass before a plan uses it.
// It returns an *Error whose reason and message the sync reports.
type storeCheck func(ctx context.Context, plan Plan, st provider.Store) error

// resolver returns the resolver of a store kind. A reference without a
// kind names a SecretStore, as in ESO.
func (e *Engine) resolver(kind string) StoreResolver {
	switch kind {
	case esv1.ClusterSecretStoreKind:
		return e.resolveClusterSecretStore
	case provider.ClassKind:
		return e.resolveSecretProviderClass
	default:
		return e.resolveSecretStore
	}
}

// request resolves a store reference for the plan's owner into a fetch
// request: the kind's resolver reads the store and runs its rules, then
// the provider's configuration is checked without I/O.
func (e *Engine) request(ctx context.Context, plan Plan, ref StoreRef) (fetch.Request, error) {
	st, err := e.resolver(ref.Kind)(ctx, plan, ref)
	if err != nil {
		return fetch.Request{}, err
	}
	if err := CheckProvider(e.Registry, st); err != nil {
		return fetch.Request{}, err
	}
	return fetch.Request{Store: st, Namespace: plan.Owner.Namespace, Subscriber: plan.Owner.Subscriber(), MaxAge: plan.MaxAge}, nil
}

// checkStore returns the first failure of checks.
func checkStore(ctx context.Context, plan Plan, st provider.Store, checks ...storeCheck) error {
	for _, check := range checks {
		if err := check(ctx, plan, st); err != nil {
			return err
		}
	}
	return nil
}

// resolveSecretStore reads a SecretStore in the owner's namespace.
func (e *Engine) resolveSecretStore(ctx context.Context, plan Plan, ref StoreRef) (provider.Store, error) {
	ns := plan.Owner.Namespace
	var ss esv1.SecretStore
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &ss); err != nil {
		if apierrors.IsNotFound(err) {
			return provider.Store{}, fail(ReasonStoreNotFound, "SecretStore %q not found in namespace %q", ref.Name, ns)
		}
		return provider.Store{}, fail(ReasonStoreNotFound, "reading SecretStore %q: %v", ref.Name, err)
	}
	st := provider.Store{Kind: esv1.SecretStoreKind, Namespace: ns, Name: ref.Name, Spec: &ss.Spec}
	return st, checkStore(ctx, plan, st, e.storeIsOfOurClass)
}

// resolveClusterSecretStore reads a ClusterSecretStore, unless cluster
// stores are disabled (then it is not read at all).
func (e *Engine) resolveClusterSecretStore(ctx context.Context, plan Plan, ref StoreRef) (provider.Store, error) {
	if e.DisableClusterStores {
		return provider.Store{}, clusterStoresDisabled(ref.Name)
	}
	var css esv1.ClusterSecretStore
	if err := e.Client.Get(ctx, client.ObjectKey{Name: ref.Name}, &css); err != nil {
		if apierrors.IsNotFound(err) {
			return provider.Store{}, fail(ReasonStoreNotFound, "ClusterSecretStore %q not found", ref.Name)
		}
		return provider.Store{}, fail(ReasonStoreNotFound, "reading ClusterSecretStore %q: %v", ref.Name, err)
	}
	st := provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: ref.Name, Spec: &css.Spec}
	return st, checkStore(ctx, plan, st, e.storeIsOfOurClass, e.namespaceIsAllowed)
}

// resolveSecretProviderClass reads a SecretProviderClass in the owner's
// namespace into a class store, read as the reference's ServiceAccount.
// Controller classes do not apply to it.
func (e *Engine) resolveSecretProviderClass(ctx context.Context, plan Plan, ref StoreRef) (provider.Store, error) {
	ns := plan.Owner.Namespace
	var spc spcv1.SecretProviderClass
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &spc); err != nil {
		if apierrors.IsNotFound(err) {
			return provider.Store{}, fail(ReasonStoreNotFound, "SecretProviderClass %q not found in namespace %q", ref.Name, ns)
		}
		return provider.Store{}, fail(ReasonStoreNotFound, "reading SecretProviderClass %q: %v", ref.Name, err)
	}
	st := provider.Store{Kind: provider.ClassKind, Namespace: ns, Name: ref.Name, Class: &provider.Class{
		Provider:       strings.TrimSpace(string(spc.Spec.Provider)),
		Parameters:     spc.Spec.Parameters,
		ServiceAccount: ref.ServiceAccount,
	}}
	return st, checkStore(ctx, plan, st, classHasServiceAccount)
}

// storeIsOfOurClass: a store whose spec.controller names another
// controller class is not used (HandlesStore), even if it changed class
// after the front-end's check.
func (e *Engine) storeIsOfOurClass(_ context.Context, _ Plan, st provider.Store) error {
	return e.checkStoreClass(st.Kind, st.Name, st.Spec)
}

// namespaceIsAllowed: a ClusterSecretStore serves only the namespaces its
// conditions allow.
func (e *Engine) namespaceIsAllowed(ctx context.Context, plan Plan, st provider.Store) error {
	if err := e.namespaceAllowed(ctx, plan.Owner.Namespace, st.Spec.Conditions); err != nil {
		return fail(ReasonStoreNotAllowed, "%s %q does not allow namespace %q: %v", st.Kind, st.Name, plan.Owner.Namespace, err)
	}
	return nil
}

// classHasServiceAccount: a SecretProviderClass is read with the identity
// of a ServiceAccount, never with none.
func classHasServiceAccount(_ context.Context, _ Plan, st provider.Store) error {
	if st.Class.ServiceAccount == "" {
		return fail(ReasonInvalidStoreConfig, "%s %q is used without a ServiceAccount to read it as", st.Kind, st.Name)
	}
	return nil
}

// CheckProvider validates a store's provider selection and configuration
// without I/O: the provider of its spec.provider, or for a
// SecretProviderClass the provider of its spec.provider and parameters.
func CheckProvider(reg *provider.Registry, st provider.Store) error {
	if st.Class != nil {
		_, p, ok := reg.Class(st.Class.Provider)
		if !ok {
			return &Error{Reason: ReasonUnsupportedProvider, Err: reg.UnsupportedClass(st.Name, st.Class.Provider)}
		}
		if err := p.ValidateSpec(st); err != nil {
			return fail(ReasonInvalidStoreConfig, "%s %q: %v", st.Kind, st.Name, err)
		}
		return nil
	}
	if err := st.Spec.FieldErrors(); err != nil {
		return fail(ReasonInvalidStoreConfig, "%s %q: %v", st.Kind, st.Name, err)
	}
	name, err := provider.SelectedName(st.Spec.Provider)
	if err != nil {
		return fail(ReasonInvalidStoreConfig, "%s %q: %v", st.Kind, st.Name, err)
	}
	p, ok := reg.Get(name)
	if !ok {
		return fail(ReasonUnsupportedProvider, "%s %q uses provider %q, which keyferry does not support", st.Kind, st.Name, name)
	}
	if err := p.ValidateSpec(st); err != nil {
		return fail(ReasonInvalidStoreConfig, "%s %q: %v", st.Kind, st.Name, err)
	}
	return nil
}

// namespaceAllowed enforces a ClusterSecretStore's conditions: the
// namespace must match at least one condition (by name, regexp or label
// selector); no conditions allow all.
func (e *Engine) namespaceAllowed(ctx context.Context, ns string, conds []esv1.ClusterSecretStoreCondition) error {
	if len(conds) == 0 {
		return nil
	}
	var nsObj *corev1.Namespace
	for _, c := range conds {
		for _, n := range c.Namespaces {
			if n == ns {
				return nil
			}
		}
		for _, expr := range c.NamespaceRegexes {
			re, err := regexp.Compile(expr)
			if err != nil {
				return fmt.Errorf("invalid namespaceRegexes entry %q: %v", expr, err)
			}
			if re.MatchString(ns) {
				return nil
			}
		}
		if c.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
			if err != nil {
				return fmt.Errorf("invalid namespaceSelector: %v", err)
			}
			if nsObj == nil {
				nsObj = &corev1.Namespace{}
				if err := e.Client.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
					return fmt.Errorf("reading namespace: %v", err)
				}
			}
			if sel.Matches(labels.Set(nsObj.Labels)) {
				return nil
			}
		}
	}
	return errors.New("no condition matches")
}
