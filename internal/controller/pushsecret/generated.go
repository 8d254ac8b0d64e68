package pushsecret

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// A PushSecret whose spec.selector.generatorRef names a generator pushes
// values generated once and kept in its local copy: a Secret of the
// PushSecret's name, in its namespace, that the PushSecret controls (an
// owner reference, so it goes when the PushSecret goes). Every push reads
// the local copy, so a push that failed for one store is retried with the
// values the other stores got, an operator restart generates nothing, and
// the cluster holds what was pushed. The GenerateChecks an ExternalSecret's
// generators use decide when new values are made: no local copy (or one
// whose record or keys are gone), a spec change, a change of the
// force-sync annotation, or the refresh interval elapsed since the last
// generation, which is ESO's rotation. Under updatePolicy IfNotExists the
// values are generated once and never rotated, as ESO documents.

// localCopyCheck is one rule an existing Secret of the PushSecret's name
// must pass to be its local copy; it returns the message of a refusal, or
// "".
type localCopyCheck func(ps *esv1alpha1.PushSecret, s *corev1.Secret) string

// localCopyChecks are the rules, in order.
var localCopyChecks = []localCopyCheck{
	controlledByThePushSecret,
}

// controlledByThePushSecret: the Secret's controller is this PushSecret
// (by UID): keyferry never takes over a Secret it did not create, nor the
// local copy of an earlier PushSecret of the same name (the garbage
// collector deletes that one).
func controlledByThePushSecret(ps *esv1alpha1.PushSecret, s *corev1.Secret) string {
	if c := metav1.GetControllerOf(s); c != nil && c.UID == ps.UID && c.Kind == Kind {
		return ""
	}
	return fmt.Sprintf("Secret %q exists and is not the local copy of this PushSecret: keyferry keeps the values of spec.selector.generatorRef in a Secret of the PushSecret's name and never takes over a Secret it did not create; rename the PushSecret or delete the Secret", s.Name)
}

// localCopyIsOurs runs localCopyChecks.
func localCopyIsOurs(ps *esv1alpha1.PushSecret, s *corev1.Secret) error {
	for _, check := range localCopyChecks {
		if msg := check(ps, s); msg != "" {
			return &engine.Error{Reason: engine.ReasonSecretNotOwned, Err: fmt.Errorf("%s", msg)}
		}
	}
	return nil
}

// generationOf is when a PushSecret's generator makes new values (see
// above): its spec's generation, its force-sync annotation, and its
// refresh interval unless updatePolicy is IfNotExists.
func generationOf(ps *esv1alpha1.PushSecret, spec Spec) engine.Generation {
	g := engine.Generation{Generation: ps.Generation, ForceSync: ps.Annotations[esv1.AnnotationForceSync], Interval: spec.Refresh}
	if spec.UpdatePolicy == esv1alpha1.PushSecretUpdatePolicyIfNotExists {
		g.Interval = 0
	}
	return g
}

// generatedSource returns the local copy to push from, generating new
// values first when the GenerateChecks say so; note then says why, for the
// Ready message. The new values are written to the local copy before
// anything is pushed: a push that fails after is retried with them.
func (r *Reconciler) generatedSource(ctx context.Context, ps *esv1alpha1.PushSecret, spec Spec) (src *corev1.Secret, note string, err error) {
	var cur corev1.Secret
	found := true
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ps.Namespace, Name: ps.Name}, &cur); apierrors.IsNotFound(err) {
		found = false
	} else if err != nil {
		return nil, "", fmt.Errorf("reading the local copy (Secret %q) of the generated values: %w", ps.Name, err)
	}
	in := engine.GenerateInput{Now: r.Now(), Policy: generationOf(ps, spec), Sources: 1, SecretFound: found}
	if found {
		if err := localCopyIsOurs(ps, &cur); err != nil {
			return nil, "", err
		}
		in.SecretData = cur.Data
		if a, ok := cur.Annotations[engine.AnnotationGenerated]; ok {
			in.Record, in.RecordErr = engine.ParseGeneratedRecord(a)
		}
	}
	d := engine.DecideGenerate(in, engine.GenerateChecks)
	log.FromContext(ctx).V(1).Info("generators", "generated", d.Generate, "reason", d.Reason)
	if !d.Generate {
		return &cur, "", nil
	}
	values, err := r.Engine.Generate(ctx, ps.Namespace, *spec.Generator)
	if err != nil {
		return nil, "", err
	}
	rec := engine.GeneratedRecord{
		Generation: ps.Generation,
		ForceSync:  engine.ForceSyncDigest(ps.Annotations[esv1.AnnotationForceSync]),
		At:         in.Now.UTC(),
		Keys:       [][]string{slices.Sorted(maps.Keys(values))},
	}
	next := localCopy(ps, &cur, found, values, rec)
	if found {
		err = r.Client.Update(ctx, next)
	} else {
		err = r.Client.Create(ctx, next)
	}
	if err != nil {
		// The values just made are dropped: nothing was pushed yet.
		return nil, "", &engine.Error{Reason: engine.ReasonWriteFailed,
			Err: fmt.Errorf("writing the local copy (Secret %q) of the generated values: %s", ps.Name, engine.APIMessage(err))}
	}
	return next, fmt.Sprintf("New values generated: %s.", localCopyWording.Replace(d.Message)), nil
}

// localCopyWording names, in the generate decision's messages (written for
// an ExternalSecret's target), the local copy.
var localCopyWording = strings.NewReplacer("the target Secret", "the local copy", "the Secret", "the local copy")

// localCopy is the local copy holding values: cur's labels and
// annotations are kept (found), the data is replaced.
func localCopy(ps *esv1alpha1.PushSecret, cur *corev1.Secret, found bool, values map[string][]byte, rec engine.GeneratedRecord) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ps.Name, Namespace: ps.Namespace},
		Type:       corev1.SecretTypeOpaque,
	}
	if found {
		s = cur.DeepCopy()
	} else {
		s.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: esv1alpha1.GroupVersion.String(),
			Kind:       Kind,
			Name:       ps.Name,
			UID:        ps.UID,
			Controller: ptr.To(true),
		}}
	}
	s.Data = values
	metav1.SetMetaDataAnnotation(&s.ObjectMeta, engine.AnnotationGenerated, rec.String())
	return s
}
