// This file is the metadata of a push to GCP Secret Manager: ESO's
// PushSecretMetadata (data[].metadata, dataTo[].metadata) with ESO's GCP
// spec, read as ESO v2.9.0 reads it:
//
//	apiVersion: kubernetes.external-secrets.io/v1alpha1
//	kind: PushSecretMetadata
//	spec:
//	  labels: {...}            # the secret's labels
//	  annotations: {...}       # the secret's annotations
//	  mergePolicy: Replace     # or Merge: keep the secret's other labels
//	  topics: [...]            # Pub/Sub topics, set when the secret is created
//	  replicationLocations: [...] # user-managed replication, on create
//	  replicationLocation: ... # deprecated: one location
//	  cmekKeyName: ...         # customer-managed encryption key, on create
//
// Field names are matched exactly (ESO's decoder also takes "Labels" for
// "labels"; keyferry refuses it as unknown), and so are apiVersion and kind.
// Beyond ESO, keyferry refuses a managed-by label (its mark, which it sets
// itself), a mergePolicy other than Replace or Merge (ESO takes any other
// word for Replace), empty topics and locations, and replication locations
// in a store with a location (ESO drops them silently: a regional secret has
// no replication). A cmekKeyName in such a store becomes the regional
// secret's customer-managed encryption (ESO drops it too). Label and
// annotation syntax is left to Secret Manager, which refuses what it does
// not take.
//
// Errors name the field, never its value: a metadata object is user input
// that may carry anything.

package gcpsm

import (
	"fmt"
	"maps"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.MetadataPusher = (*Client)(nil)

// ESO's mergePolicy values: Replace (the default) sets the secret's labels
// to the spec's; Merge keeps the secret's other labels.
const (
	mergePolicyReplace = "Replace"
	mergePolicyMerge   = "Merge"
)

// pushMetadata is the spec of a parsed PushSecretMetadata.
type pushMetadata struct {
	Labels      map[string]string
	Annotations map[string]string
	MergePolicy string
	Topics      []string
	CMEKKeyName string
	// Locations are the user-managed replication locations:
	// replicationLocations, else the deprecated replicationLocation (ESO:
	// the list wins when both are set).
	Locations []string
}

// CheckPushMetadata implements provider.MetadataPusher: raw must be ESO's
// PushSecretMetadata for GCP, and what it asks must be possible in this
// store.
func (c *Client) CheckPushMetadata(raw []byte) error {
	m, err := parsePushMetadata(raw)
	if err != nil {
		return err
	}
	return checkMetadataForStore(m, c.regional())
}

// checkMetadataForStore refuses what a store cannot honour: replication in
// a store with a location (its secrets are regional, without replication).
func checkMetadataForStore(m pushMetadata, regional bool) error {
	if regional && len(m.Locations) > 0 {
		return fmt.Errorf("%w: metadata.spec.replicationLocations: the store has a location, so its secrets are regional and have no replication; remove the field or the store's location",
			provider.ErrInvalidPush)
	}
	return nil
}

// parsePushMetadata parses a push's metadata as written (JSON) into its
// spec. Each refusal wraps provider.ErrInvalidPush and names the field.
func parsePushMetadata(raw []byte) (pushMetadata, error) {
	var m pushMetadata
	var location string
	if err := provider.DecodePushMetadata(raw, "for GCP",
		provider.PushMetadataField{Name: "labels", Into: &m.Labels, What: "an object of strings"},
		provider.PushMetadataField{Name: "annotations", Into: &m.Annotations, What: "an object of strings"},
		provider.PushMetadataField{Name: "mergePolicy", Into: &m.MergePolicy, What: "a string"},
		provider.PushMetadataField{Name: "topics", Into: &m.Topics, What: "a list of strings"},
		provider.PushMetadataField{Name: "cmekKeyName", Into: &m.CMEKKeyName, What: "a string"},
		provider.PushMetadataField{Name: "replicationLocation", Into: &location, What: "a string"},
		provider.PushMetadataField{Name: "replicationLocations", Into: &m.Locations, What: "a list of strings"},
	); err != nil {
		return m, err
	}
	if len(m.Locations) == 0 && location != "" {
		m.Locations = []string{location}
	}
	for _, check := range metadataChecks {
		if err := check(m); err != nil {
			return m, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
		}
	}
	return m, nil
}

// metadataChecks are the rules a parsed spec must follow, in order; each
// names the field it refuses.
var metadataChecks = []func(pushMetadata) error{
	managedByIsNotALabel,
	mergePolicyIsKnown,
	noEmptyEntries("topics", func(m pushMetadata) []string { return m.Topics }),
	noEmptyEntries("replicationLocations", func(m pushMetadata) []string { return m.Locations }),
}

// managedByIsNotALabel: managed-by is keyferry's (ESO's) mark, which it sets
// on every secret it pushes and must stay.
func managedByIsNotALabel(m pushMetadata) error {
	if _, ok := m.Labels[provider.ManagedByKey]; ok {
		return fmt.Errorf("metadata.spec.labels cannot set %s: it is the mark keyferry sets on every secret it pushes; remove it", provider.ManagedByKey)
	}
	return nil
}

// mergePolicyIsKnown: Replace, Merge or unset (Replace).
func mergePolicyIsKnown(m pushMetadata) error {
	switch m.MergePolicy {
	case "", mergePolicyReplace, mergePolicyMerge:
		return nil
	}
	return fmt.Errorf("metadata.spec.mergePolicy must be %s or %s", mergePolicyReplace, mergePolicyMerge)
}

// noEmptyEntries: every entry of a list field names something.
func noEmptyEntries(field string, list func(pushMetadata) []string) func(pushMetadata) error {
	return func(m pushMetadata) error {
		for i, s := range list(m) {
			if s == "" {
				return fmt.Errorf("metadata.spec.%s[%d] is empty", field, i)
			}
		}
		return nil
	}
}

// newSecret is the secret a push creates: ESO's managed-by label over the
// metadata's labels, its annotations and topics, and its replication:
// user-managed in its locations, or automatic, with its CMEK key on every
// replica. A regional secret (regional) has no replication; its CMEK key is
// the secret's own.
func newSecret(m *pushMetadata, regional bool) *secretmanagerpb.Secret {
	if m == nil {
		m = &pushMetadata{}
	}
	sec := &secretmanagerpb.Secret{
		Labels:      withManagedBy(m.Labels),
		Annotations: maps.Clone(m.Annotations),
	}
	for _, t := range m.Topics {
		sec.Topics = append(sec.Topics, &secretmanagerpb.Topic{Name: t})
	}
	var cmek *secretmanagerpb.CustomerManagedEncryption
	if m.CMEKKeyName != "" {
		cmek = &secretmanagerpb.CustomerManagedEncryption{KmsKeyName: m.CMEKKeyName}
	}
	if regional {
		sec.CustomerManagedEncryption = cmek
		return sec
	}
	if len(m.Locations) == 0 {
		sec.Replication = &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{
			Automatic: &secretmanagerpb.Replication_Automatic{CustomerManagedEncryption: cmek},
		}}
		return sec
	}
	replicas := make([]*secretmanagerpb.Replication_UserManaged_Replica, 0, len(m.Locations))
	for _, loc := range m.Locations {
		replicas = append(replicas, &secretmanagerpb.Replication_UserManaged_Replica{Location: loc, CustomerManagedEncryption: cmek})
	}
	sec.Replication = &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_UserManaged_{
		UserManaged: &secretmanagerpb.Replication_UserManaged{Replicas: replicas},
	}}
	return sec
}

// wantMetadata is what an existing secret's labels and annotations become
// on a push with metadata m, as ESO: the annotations are m's; the labels
// are m's, with Merge the secret's current labels over them (a label the
// secret already has keeps its value), and always ESO's managed-by mark.
func wantMetadata(m pushMetadata, current map[string]string) (labels, annotations map[string]string) {
	labels = maps.Clone(m.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if m.MergePolicy == mergePolicyMerge {
		maps.Copy(labels, current)
	}
	labels[provider.ManagedByKey] = provider.ManagedByValue
	return labels, maps.Clone(m.Annotations)
}

// withManagedBy returns labels with ESO's managed-by mark added.
func withManagedBy(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[provider.ManagedByKey] = provider.ManagedByValue
	return out
}
