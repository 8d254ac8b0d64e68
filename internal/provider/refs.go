package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// SelectedName returns the name of the one provider set in p (its JSON field
// name), or an error when none or several are set.
func SelectedName(p *esv1.SecretStoreProvider) (string, error) {
	if p == nil {
		return "", fmt.Errorf("spec.provider is empty: set exactly one provider")
	}
	v := reflect.ValueOf(p).Elem()
	t := v.Type()
	var set []string
	for i := 0; i < t.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			set = append(set, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
		}
	}
	switch len(set) {
	case 0:
		return "", fmt.Errorf("spec.provider is empty: set exactly one provider")
	case 1:
		return set[0], nil
	default:
		return "", fmt.Errorf("spec.provider sets %d providers (%s): set exactly one", len(set), strings.Join(set, ", "))
	}
}

// namespaceFor resolves the namespace of a reference: a SecretStore always
// uses its own namespace; a ClusterSecretStore uses the reference's namespace
// or, without one, the namespace of the object using the store.
func (o Options) namespaceFor(ns *string) string {
	if o.Store.IsCluster() && ns != nil && *ns != "" {
		return *ns
	}
	return o.Namespace
}

// NamespaceFor is namespaceFor for callers outside this package.
func (o Options) NamespaceFor(ns *string) string { return o.namespaceFor(ns) }

// SecretKey reads the value a SecretKeySelector names. Errors name the Secret
// and key, never the value.
func (o Options) SecretKey(ctx context.Context, sel esv1.SecretKeySelector) ([]byte, error) {
	if sel.Name == "" || sel.Key == "" {
		return nil, fmt.Errorf("%w: secret reference needs name and key", ErrInvalidConfig)
	}
	ns := o.namespaceFor(sel.Namespace)
	var s corev1.Secret
	if err := o.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: sel.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: credential secret %s/%s not found", ErrInvalidConfig, ns, sel.Name)
		}
		return nil, fmt.Errorf("reading credential secret %s/%s: %w", ns, sel.Name, err)
	}
	v, ok := s.Data[sel.Key]
	if !ok {
		return nil, fmt.Errorf("%w: credential secret %s/%s has no key %q", ErrInvalidConfig, ns, sel.Name, sel.Key)
	}
	return v, nil
}

// CAPool builds a certificate pool from an inline bundle and/or a CAProvider.
// It returns nil (use the system roots) when neither is set.
func (o Options) CAPool(ctx context.Context, bundle []byte, ca *esv1.CAProvider) (*x509.CertPool, error) {
	if len(bundle) == 0 && ca == nil {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if len(bundle) > 0 && !pool.AppendCertsFromPEM(bundle) {
		return nil, fmt.Errorf("%w: caBundle holds no PEM certificate", ErrInvalidConfig)
	}
	if ca != nil {
		pem, err := o.caFromProvider(ctx, ca)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: caProvider %s %s key %q holds no PEM certificate", ErrInvalidConfig, ca.Type, ca.Name, ca.Key)
		}
	}
	return pool, nil
}

func (o Options) caFromProvider(ctx context.Context, ca *esv1.CAProvider) ([]byte, error) {
	ns := o.namespaceFor(ca.Namespace)
	key := client.ObjectKey{Namespace: ns, Name: ca.Name}
	switch ca.Type {
	case esv1.CAProviderTypeSecret:
		var s corev1.Secret
		if err := o.Kube.Get(ctx, key, &s); err != nil {
			return nil, fmt.Errorf("reading caProvider secret %s/%s: %w", ns, ca.Name, err)
		}
		if v, ok := s.Data[ca.Key]; ok {
			return v, nil
		}
	case esv1.CAProviderTypeConfigMap:
		var cm corev1.ConfigMap
		if err := o.Kube.Get(ctx, key, &cm); err != nil {
			return nil, fmt.Errorf("reading caProvider configmap %s/%s: %w", ns, ca.Name, err)
		}
		if v, ok := cm.Data[ca.Key]; ok {
			return []byte(v), nil
		}
	default:
		return nil, fmt.Errorf("%w: caProvider type %q is not Secret or ConfigMap", ErrInvalidConfig, ca.Type)
	}
	return nil, fmt.Errorf("%w: caProvider %s %s/%s has no key %q", ErrInvalidConfig, ca.Type, ns, ca.Name, ca.Key)
}

// ServiceAccountToken requests a token for the ServiceAccount sel names, with
// the given default audiences when sel lists none.
func (o Options) ServiceAccountToken(ctx context.Context, sel esv1.ServiceAccountSelector, defaultAudiences ...string) (string, error) {
	if o.Tokens == nil {
		return "", fmt.Errorf("%w: service account tokens are not available", ErrInvalidConfig)
	}
	aud := sel.Audiences
	if len(aud) == 0 {
		aud = defaultAudiences
	}
	ns := o.namespaceFor(sel.Namespace)
	tok, _, err := o.Tokens.ServiceAccountToken(ctx, ns, sel.Name, aud, 0)
	if err != nil {
		return "", fmt.Errorf("requesting a token for service account %s/%s: %w", ns, sel.Name, err)
	}
	return tok, nil
}
