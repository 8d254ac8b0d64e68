package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
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

// refTypes are the types of the references to Kubernetes objects that a
// store's provider configuration holds; each has a Namespace field (string
// or *string).
var refTypes = map[reflect.Type]bool{
	reflect.TypeFor[esv1.SecretKeySelector]():      true,
	reflect.TypeFor[esv1.ServiceAccountSelector](): true,
	reflect.TypeFor[esv1.CAProvider]():             true,
	reflect.TypeFor[esv1.ConfigMapReference]():     true,
	reflect.TypeFor[esv1.SecretObjectRef]():        true,
}

// ReferencesStayInNamespace refuses a namespaced store any reference to a
// Secret, ConfigMap or ServiceAccount with a namespace other than its own:
// everything a SecretStore names resolves in its namespace (a namespace equal
// to the store's own is accepted, as ESO does). It is the one rule for every
// provider: it walks the whole spec.provider and finds every reference,
// whatever the provider, so none can forget it.
func ReferencesStayInNamespace(store Store) error {
	if store.IsCluster() || store.Spec == nil || store.Spec.Provider == nil {
		return nil
	}
	return walkRefs(reflect.ValueOf(store.Spec.Provider), "spec.provider", func(path, ns string) error {
		if ns == "" || ns == store.Namespace {
			return nil
		}
		return fmt.Errorf("%w: %s.namespace %q: a %s may only reference its own namespace %q; remove the field, or use a ClusterSecretStore",
			ErrInvalidConfig, path, ns, store.Kind, store.Namespace)
	})
}

// walkRefs calls visit with the JSON path and namespace of every reference
// (refTypes) under v, in field order, and stops at the first error.
func walkRefs(v reflect.Value, path string, visit func(path, namespace string) error) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walkRefs(v.Elem(), path, visit)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			if err := walkRefs(iter.Value(), fmt.Sprintf("%s[%v]", path, iter.Key()), visit); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		if refTypes[t] {
			ns := v.FieldByName("Namespace")
			if ns.Kind() == reflect.Pointer {
				if ns.IsNil() {
					return nil
				}
				ns = ns.Elem()
			}
			return visit(path, ns.String())
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			p := path
			switch {
			case name == "-":
				continue
			case name != "":
				p = path + "." + name
			case !f.Anonymous:
				p = path + "." + f.Name
			}
			if err := walkRefs(v.Field(i), p, visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckInsecureHTTP refuses to send credentials to a plain http:// server,
// unless the server is a loopback address (a sidecar on the operator's own
// pod, or a test server) or the operator allows it (--allow-insecure-http).
// field names the URL's field in messages. https:// and other schemes pass.
func (o Options) CheckInsecureHTTP(field string, u *url.URL) error {
	if u == nil || !strings.EqualFold(u.Scheme, "http") || o.Policy.AllowInsecureHTTP || isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s %q is plain http://, and keyferry would send credentials over it unencrypted; use https://, or ask the platform team to run keyferry with --allow-insecure-http",
		ErrInvalidConfig, field, u.Redacted())
}

// isLoopback says whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
