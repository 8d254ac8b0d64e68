package externalsecret

import (
	"fmt"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// generatorSource compiles spec.dataFrom[i].sourceRef.generatorRef. A
// namespaced generator is read in the ExternalSecret's namespace (the ref
// has no namespace); a ClusterGenerator is cluster-scoped. Whether the
// kind is one keyferry runs is decided at sync time, where the reason is
// GeneratorNotSupported rather than InvalidSpec.
func generatorSource(i int, df esv1.ExternalSecretDataFromRemoteRef, rws []engine.Rewrite) (*engine.GeneratorSource, error) {
	field := fmt.Sprintf("spec.dataFrom[%d].sourceRef.generatorRef", i)
	g := df.SourceRef.GeneratorRef
	switch {
	case df.Extract != nil || df.Find != nil:
		return nil, invalid("spec.dataFrom[%d] sets sourceRef.generatorRef with extract or find: a generator entry takes neither", i)
	case df.SourceRef.SecretStoreRef.Name != "":
		return nil, invalid("%s: sourceRef sets both storeRef and generatorRef: set one", field)
	case g.APIVersion != "" && g.APIVersion != genv1alpha1.GroupVersion.String():
		return nil, invalid("%s.apiVersion %q: use %s", field, g.APIVersion, genv1alpha1.GroupVersion.String())
	case g.Kind == "":
		return nil, invalid("%s.kind is empty", field)
	case g.Name == "":
		return nil, invalid("%s.name is empty", field)
	}
	return &engine.GeneratorSource{Field: field, Kind: g.Kind, Name: g.Name, Rewrite: rws}, nil
}

// generation is when the ExternalSecret's generators make new values: at
// a spec change (metadata.generation, so a label or annotation does not
// count), a change of the force-sync annotation, and once the refresh
// interval elapsed since the last generation. A refreshInterval of 0
// generates once, as in ESO; so do refreshPolicy OnChange and CreatedOnce,
// which never refresh on a timer.
func generation(es *esv1.ExternalSecret) engine.Generation {
	g := engine.Generation{Generation: es.Generation, ForceSync: es.Annotations[esv1.AnnotationForceSync]}
	if es.Spec.RefreshPolicy == "" || es.Spec.RefreshPolicy == esv1.RefreshPolicyPeriodic {
		g.Interval = RefreshInterval(es)
	}
	return g
}
