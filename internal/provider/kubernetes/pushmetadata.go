package kubernetes

// This file is the metadata of a push to a Kubernetes Secret: ESO's
// PushSecretMetadata (data[].metadata, dataTo[].metadata) with ESO's
// kubernetes spec, read as ESO v2.9.0 reads it:
//
//	apiVersion: kubernetes.external-secrets.io/v1alpha1
//	kind: PushSecretMetadata
//	spec:
//	  sourceMergePolicy: Merge  # or Replace: labels/annotations below
//	                            # instead of the source Secret's
//	  targetMergePolicy: Merge  # or Replace: the remote Secret's become
//	                            # those; Ignore: the remote's are left alone
//	  labels: {...}
//	  annotations: {...}
//	  remoteNamespace: ...      # ClusterSecretStore only, in ESO
//
// As in ESO, a push (with or without metadata) carries the source Secret's
// labels and annotations to the remote Secret: the source's, with the
// spec's over them (sourceMergePolicy Merge, the default) or the spec's
// alone (Replace), merged into the remote Secret's (targetMergePolicy Merge,
// the default), replacing them (Replace), or not at all (Ignore).
//
// keyferry's mark, the label keyferry.io/pushed, always stays: labels
// cannot set it (refused by name), a source Secret's copy of it is not
// carried, and Replace keeps it. Nor is the source's kubectl
// last-applied-configuration annotation carried: it holds the source
// Secret's data (ESO carries it). keyferry refuses remoteNamespace by name
// rather than push to the store's namespace instead: the remote Secret is
// inspected before the push, in the store's namespace. Field names are matched exactly (ESO's decoder would also take
// "Labels"; keyferry refuses it as unknown), and so are apiVersion and kind,
// and label and annotation keys and label values must be valid. Errors name
// the field and keys, never a value.

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.MetadataPusher = (*Client)(nil)

// ESO's merge policies.
const (
	mergePolicyMerge   = "Merge"
	mergePolicyReplace = "Replace"
	mergePolicyIgnore  = "Ignore"
)

// pushMetadata is the spec of a parsed PushSecretMetadata for Kubernetes.
type pushMetadata struct {
	SourceMergePolicy string
	TargetMergePolicy string
	Labels            map[string]string
	Annotations       map[string]string
	RemoteNamespace   string
}

// CheckPushMetadata implements provider.MetadataPusher: raw must be ESO's
// PushSecretMetadata for Kubernetes.
func (c *Client) CheckPushMetadata(raw []byte) error {
	_, err := pushMetadataOf(raw)
	return err
}

// pushMetadataOf parses a push's metadata: nil without one.
func pushMetadataOf(raw []byte) (*pushMetadata, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	m, err := parsePushMetadata(raw)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// parsePushMetadata parses a push's metadata as written (JSON) into its
// spec. Each refusal wraps provider.ErrInvalidPush and names the field.
func parsePushMetadata(raw []byte) (pushMetadata, error) {
	var m pushMetadata
	if err := provider.DecodePushMetadata(raw, "for Kubernetes",
		provider.PushMetadataField{Name: "sourceMergePolicy", Into: &m.SourceMergePolicy, What: "a string"},
		provider.PushMetadataField{Name: "targetMergePolicy", Into: &m.TargetMergePolicy, What: "a string"},
		provider.PushMetadataField{Name: "labels", Into: &m.Labels, What: "an object of strings"},
		provider.PushMetadataField{Name: "annotations", Into: &m.Annotations, What: "an object of strings"},
		provider.PushMetadataField{Name: "remoteNamespace", Into: &m.RemoteNamespace, What: "a string"},
	); err != nil {
		return m, err
	}
	for _, check := range pushMetadataChecks {
		if err := check(m); err != nil {
			return m, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
		}
	}
	return m, nil
}

// pushMetadataChecks are the rules a parsed spec must follow, in order;
// each names the field it refuses.
var pushMetadataChecks = []func(pushMetadata) error{
	sourceMergePolicyIsKnown,
	targetMergePolicyIsKnown,
	remoteNamespaceIsNotSupported,
	pushedLabelIsNotSet,
	labelsAreValid,
	annotationsAreValid,
}

// sourceMergePolicyIsKnown: Merge, Replace or unset (Merge).
func sourceMergePolicyIsKnown(m pushMetadata) error {
	switch m.SourceMergePolicy {
	case "", mergePolicyMerge, mergePolicyReplace:
		return nil
	}
	return fmt.Errorf("metadata.spec.sourceMergePolicy must be %s or %s", mergePolicyMerge, mergePolicyReplace)
}

// targetMergePolicyIsKnown: Merge, Replace, Ignore or unset (Merge).
func targetMergePolicyIsKnown(m pushMetadata) error {
	switch m.TargetMergePolicy {
	case "", mergePolicyMerge, mergePolicyReplace, mergePolicyIgnore:
		return nil
	}
	return fmt.Errorf("metadata.spec.targetMergePolicy must be %s, %s or %s", mergePolicyMerge, mergePolicyReplace, mergePolicyIgnore)
}

// remoteNamespaceIsNotSupported: keyferry inspects and writes the remote
// Secret in the store's namespace only.
func remoteNamespaceIsNotSupported(m pushMetadata) error {
	if m.RemoteNamespace != "" {
		return fmt.Errorf("metadata.spec.remoteNamespace is not supported by keyferry yet: the remote Secret goes to the store's remoteNamespace; use a store for that namespace")
	}
	return nil
}

// pushedLabelIsNotSet: LabelPushed is keyferry's mark of what it pushed.
func pushedLabelIsNotSet(m pushMetadata) error {
	if _, ok := m.Labels[LabelPushed]; ok {
		return fmt.Errorf("metadata.spec.labels cannot set %s: it is the mark keyferry sets on every Secret it pushes; remove it", LabelPushed)
	}
	return nil
}

// labelsAreValid: label keys are qualified names and values label values,
// as the API server requires.
func labelsAreValid(m pushMetadata) error {
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		if len(validation.IsQualifiedName(k)) > 0 {
			return fmt.Errorf("metadata.spec.labels has an invalid key %q: a label key is an optional DNS subdomain prefix and a name of at most 63 characters", k)
		}
		if len(validation.IsValidLabelValue(m.Labels[k])) > 0 {
			return fmt.Errorf("metadata.spec.labels.%s is not a valid label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric", k)
		}
	}
	return nil
}

// annotationsAreValid: annotation keys are qualified names (the API server
// also bounds their total size, and refuses the write beyond it).
func annotationsAreValid(m pushMetadata) error {
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		if len(validation.IsQualifiedName(strings.ToLower(k))) > 0 {
			return fmt.Errorf("metadata.spec.annotations has an invalid key %q: an annotation key is an optional DNS subdomain prefix and a name of at most 63 characters", k)
		}
	}
	return nil
}

// sourceMetadata is the labels and annotations a push carries: the source
// Secret's with m's over them (sourceMergePolicy Merge) or m's alone
// (Replace). The source's copy of keyferry's mark is not carried, nor is
// kubectl's last-applied-configuration annotation, which holds the source
// Secret's data (ESO carries it).
func sourceMetadata(v provider.PushValue, m *pushMetadata) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	if m == nil || m.SourceMergePolicy != mergePolicyReplace {
		maps.Copy(labels, v.Labels)
		maps.Copy(annotations, v.Annotations)
		delete(annotations, lastApplied)
	}
	if m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	delete(labels, LabelPushed)
	return labels, annotations
}

// setMetadata gives the remote Secret s the labels and annotations of a
// push of v with metadata m: the carried ones (sourceMetadata) merged into
// s's (targetMergePolicy Merge), replacing them (Replace) or not at all
// (Ignore); always with keyferry's mark.
func setMetadata(s *corev1.Secret, v provider.PushValue, m *pushMetadata) {
	labels, annotations := sourceMetadata(v, m)
	policy := ""
	if m != nil {
		policy = m.TargetMergePolicy
	}
	switch policy {
	case mergePolicyIgnore:
	case mergePolicyReplace:
		s.Labels, s.Annotations = labels, annotations
	default:
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		maps.Copy(s.Labels, labels)
		maps.Copy(s.Annotations, annotations)
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[LabelPushed] = "true"
	if len(s.Annotations) == 0 {
		s.Annotations = nil
	}
}

// sameMetadata compares two Secrets' labels and annotations, an empty map
// equal to none.
func sameMetadata(a, b *corev1.Secret) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations)
}
