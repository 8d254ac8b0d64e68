package operator

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/kube"
)

// internAs is kube.Intern for a string type.
func internAs[T ~string](s T) T { return T(kube.Intern(string(s))) }

// compactedAfter returns strip followed, for the objects it knows, by the
// interning of the strings that repeat across them, so that thousands of
// cached objects keep one copy of each namespace, label, kind, policy and
// condition instead of one per object; a Secret's values are replaced by
// their digest (kube.DigestSecretData).
func compactedAfter(strip toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		obj, err := strip(obj)
		if err != nil {
			return obj, err
		}
		switch o := obj.(type) {
		case *corev1.Secret:
			// Only the Secrets keyferry manages are cached in full; their
			// values are kept as a digest (engine.apply reads them when it
			// writes).
			kube.DigestSecretData(o)
			kube.InternSecret(o)
		case *esv1.ExternalSecret:
			internExternalSecret(o)
		}
		return obj, nil
	}
}

// internExternalSecret interns es's apiVersion and kind (each item of a
// JSON list carries them), its metadata (kube.InternMeta), its store
// references, policies, the strategies of its references and its
// conditions. Names of its own (target, keys, binding) stay as they are:
// interning a string nobody shares costs more than it saves. Its slices
// are moved to arrays of their length (exact).
func internExternalSecret(es *esv1.ExternalSecret) {
	es.APIVersion, es.Kind = kube.Intern(es.APIVersion), kube.Intern(es.Kind)
	kube.InternMeta(&es.ObjectMeta)
	s := &es.Spec
	internStoreRef(&s.SecretStoreRef)
	s.RefreshPolicy = internAs(s.RefreshPolicy)
	s.Target.CreationPolicy = internAs(s.Target.CreationPolicy)
	s.Target.DeletionPolicy = internAs(s.Target.DeletionPolicy)
	for i := range s.Data {
		d := &s.Data[i]
		internRemoteRef(&d.RemoteRef)
		internSourceRef(d.SourceRef)
	}
	for i := range s.DataFrom {
		d := &s.DataFrom[i]
		if d.Extract != nil {
			internRemoteRef(d.Extract)
		}
		if d.Find != nil {
			d.Find.ConversionStrategy = internAs(d.Find.ConversionStrategy)
			d.Find.DecodingStrategy = internAs(d.Find.DecodingStrategy)
		}
		internSourceRef(d.SourceRef)
	}
	s.Data, s.DataFrom = exact(s.Data), exact(s.DataFrom)
	es.Status.Conditions = exact(es.Status.Conditions)
	for i := range es.Status.Conditions {
		c := &es.Status.Conditions[i]
		c.Type, c.Status = internAs(c.Type), internAs(c.Status)
		c.Reason, c.Message = kube.Intern(c.Reason), kube.Intern(c.Message)
	}
}

// exact returns s in an array of its length: the JSON decoder grows a
// slice by doubling, so three data entries (136 bytes each) sit in room
// for four, 160 bytes more per cached ExternalSecret than needed.
func exact[S ~[]E, E any](s S) S {
	if len(s) == 0 || cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}

func internStoreRef(r *esv1.SecretStoreRef) {
	r.Name, r.Kind = kube.Intern(r.Name), kube.Intern(r.Kind)
}

func internSourceRef(r *esv1.StoreSourceRef) {
	if r == nil {
		return
	}
	internStoreRef(&r.SecretStoreRef)
	if g := r.GeneratorRef; g != nil {
		g.APIVersion, g.Kind = kube.Intern(g.APIVersion), kube.Intern(g.Kind)
	}
}

func internRemoteRef(r *esv1.ExternalSecretDataRemoteRef) {
	r.MetadataPolicy = internAs(r.MetadataPolicy)
	r.ConversionStrategy = internAs(r.ConversionStrategy)
	r.DecodingStrategy = internAs(r.DecodingStrategy)
	r.NullBytePolicy = internAs(r.NullBytePolicy)
}
