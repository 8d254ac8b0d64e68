package provider

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// This file holds what the providers' SecretProviderClass clients share:
// the refs of a class's files and the checks every class store passes.

// ClassPartCert and ClassPartKey mark, in Ref.Version, the refs of a class
// file's tls.crt and tls.key parts (see ClassObject); a file's own ref sets
// no Version.
const (
	ClassPartCert = "tls.crt"
	ClassPartKey  = "tls.key"
)

// ClassFileObjects returns the ClassObjects of the files named, sorted by
// name: a file's Ref is its name, and its parts' refs add the Version
// ClassPartCert or ClassPartKey. Names must be unique.
func ClassFileObjects(names iter.Seq[string]) []ClassObject {
	var out []ClassObject
	for name := range names {
		out = append(out, ClassObject{
			File:    name,
			Ref:     Ref{Key: name},
			CertRef: Ref{Key: name, Version: ClassPartCert},
			KeyRef:  Ref{Key: name, Version: ClassPartKey},
		})
	}
	slices.SortFunc(out, func(a, b ClassObject) int { return strings.Compare(a.File, b.File) })
	if out == nil {
		out = []ClassObject{}
	}
	return out
}

// CheckClassProvider is the first check of a class store's ValidateSpec:
// the SecretProviderClass's spec.provider is class, the one the provider
// serves. Its error wraps ErrInvalidConfig.
func CheckClassProvider(store Store, class string) error {
	if store.Class.Provider != class {
		return fmt.Errorf("%w: SecretProviderClass provider %q is not %s", ErrInvalidConfig, store.Class.Provider, class)
	}
	return nil
}

// GetFromBatch implements Client.GetSecret for a client whose reads are
// batched: it reads ref through b.GetSecrets. A ref the batch neither
// returns nor fails is ErrNotFound.
func GetFromBatch(ctx context.Context, b BatchGetter, ref Ref) (Value, error) {
	vals, errs := b.GetSecrets(ctx, []Ref{ref})
	if err, ok := errs[ref]; ok {
		return Value{}, err
	}
	if v, ok := vals[ref]; ok {
		return v, nil
	}
	return Value{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// ClassFiles maps each object's file name to the object. As when the CSI
// driver writes them as files, a later object with the same file name
// replaces an earlier one.
func ClassFiles[T any](objs []T, file func(T) string) map[string]T {
	out := make(map[string]T, len(objs))
	for _, o := range objs {
		out[file(o)] = o
	}
	return out
}

// LookupClassFile resolves a ref ClassFileObjects returned to the object of
// its file in files. A ref of no file, or with a Version other than a part,
// is refused with an error that wraps ErrInvalidConfig and names the
// SecretProviderClass class.
func LookupClassFile[T any](files map[string]T, class string, r Ref) (T, error) {
	o, ok := files[r.Key]
	if !ok || (r.Version != "" && r.Version != ClassPartCert && r.Version != ClassPartKey) {
		var zero T
		return zero, fmt.Errorf("%w: %q is not an object of SecretProviderClass %s", ErrInvalidConfig, r.Key, class)
	}
	return o, nil
}

// ClassPart returns the part of a file's content b that a ref's Version
// asks for: all of it (""), its certificates (ClassPartCert) or its private
// key (ClassPartKey), as PEM blocks taken as they are.
func ClassPart(b []byte, part string) ([]byte, error) {
	switch part {
	case ClassPartCert:
		return PEMCertificates(b)
	case ClassPartKey:
		return PEMPrivateKey(b)
	}
	return b, nil
}

// ClassServiceAccount reads the ServiceAccount a class store's client
// authenticates as (opts.Store.Class.ServiceAccount, in the store's
// namespace) through opts.Kube. A missing ServiceAccount, or no Kubernetes
// client, is an error that wraps ErrInvalidConfig.
func ClassServiceAccount(ctx context.Context, opts Options) (*corev1.ServiceAccount, error) {
	ns, name := opts.Store.Namespace, opts.Store.Class.ServiceAccount
	if opts.Kube == nil {
		return nil, fmt.Errorf("%w: reading service account %s/%s: no Kubernetes client", ErrInvalidConfig, ns, name)
	}
	var sa corev1.ServiceAccount
	if err := opts.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: service account %s/%s not found", ErrInvalidConfig, ns, name)
		}
		return nil, fmt.Errorf("reading service account %s/%s: %w", ns, name, err)
	}
	return &sa, nil
}
