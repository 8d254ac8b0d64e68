package aws

// This file is ESO's PushSecretMetadata for AWS: the data[].metadata (or
// dataTo[].metadata) of a push, parsed as ESO's Secrets Manager and
// Parameter Store providers parse it, and the tag changes a push with
// metadata makes. The pushes that use it are in push_secretsmanager.go and
// push_parameterstore.go.
//
// ESO decodes the object strictly (an unknown field is an error) with Go's
// encoding/json rules, so field names match case-insensitively
// ("kmsKeyID" is Secrets Manager's kmsKeyId, as in ESO's own example);
// keyferry decodes it the same way. Errors name fields, never values.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// pushMetadataAPIVersion and pushMetadataKind are what ESO requires of
	// a PushSecretMetadata object.
	pushMetadataAPIVersion = "kubernetes.external-secrets.io/v1alpha1"
	pushMetadataKind       = "PushSecretMetadata"

	// Secrets Manager's secretPushFormat values; binary is ESO's default.
	smFormatString = "string"
	smFormatBinary = "binary"

	// psTierAdvanced is the only tier ESO sends to Parameter Store; any
	// other leaves the tier to AWS (Standard for a new parameter).
	psTierAdvanced = "Advanced"
)

// psSecretTypes and psTiers are the values Parameter Store takes.
var (
	psSecretTypes = []string{"String", "StringList", "SecureString"}
	psTiers       = []string{"Standard", psTierAdvanced, "Intelligent-Tiering"}
)

// smPushMetadata is the spec of ESO's PushSecretMetadata for AWS Secrets
// Manager.
type smPushMetadata struct {
	Tags             map[string]string `json:"tags,omitempty"`
	Description      string            `json:"description,omitempty"`
	SecretPushFormat string            `json:"secretPushFormat,omitempty"`
	KMSKeyID         string            `json:"kmsKeyId,omitempty"`
	// ResourcePolicy is the resource policy the secret has
	// (push_smextras.go); nil: none (one it has is deleted, as ESO does).
	ResourcePolicy *smResourcePolicy `json:"resourcePolicy,omitempty"`
	// ReplicationLocations are the regions the secret is replicated to,
	// exactly; nil (omitted): replication is left alone, as in ESO; empty:
	// replicated nowhere.
	ReplicationLocations []string `json:"replicationLocations,omitempty"`
}

// smResourcePolicy is ESO's resourcePolicy: where the policy document is
// and whether AWS must refuse one granting public access.
type smResourcePolicy struct {
	// BlockPublicPolicy is sent as set; nil leaves it to AWS.
	BlockPublicPolicy *bool              `json:"blockPublicPolicy,omitempty"`
	PolicySourceRef   *smPolicySourceRef `json:"policySourceRef,omitempty"`
}

// smPolicySourceRef is ESO's policySourceRef: a key of a ConfigMap or
// Secret in the PushSecret's namespace holding the policy JSON.
type smPolicySourceRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Kinds a policySourceRef may name, as in ESO.
const (
	policySourceConfigMap = "ConfigMap"
	policySourceSecret    = "Secret"
)

// awsRegion is the shape of an AWS region name (us-east-1, us-gov-west-1,
// eusc-de-east-1); Secrets Manager refuses any other replica region.
var awsRegion = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

// stringFormat says whether the value is written as SecretString.
func (m *smPushMetadata) stringFormat() bool { return m != nil && m.SecretPushFormat == smFormatString }

// description is the description a created secret gets: the metadata's,
// else ESO's default.
func (m *smPushMetadata) description() string {
	if m == nil || m.Description == "" {
		return pushDescription
	}
	return m.Description
}

// psTier is the tier of ESO's Parameter Store metadata.
type psTier struct {
	Type     string          `json:"type"`
	Policies json.RawMessage `json:"policies"`
}

// psPushMetadata is the spec of ESO's PushSecretMetadata for AWS Parameter
// Store.
type psPushMetadata struct {
	SecretType      string            `json:"secretType,omitempty"`
	KMSKeyID        string            `json:"kmsKeyID,omitempty"`
	Tier            psTier            `json:"tier,omitempty"`
	EncodeAsDecoded bool              `json:"encodeAsDecoded,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Description     string            `json:"description,omitempty"`
}

// description is the description a written parameter gets: the
// metadata's, else ESO's default.
func (m *psPushMetadata) description() string {
	if m == nil || m.Description == "" {
		return pushDescription
	}
	return m.Description
}

// policies is the tier's policies as the JSON text PutParameter takes;
// "" when the tier is not Advanced (ESO sends them only with it).
func (m *psPushMetadata) policies() string {
	if m == nil || m.Tier.Type != psTierAdvanced || len(m.Tier.Policies) == 0 || isNull(m.Tier.Policies) {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m.Tier.Policies); err != nil {
		return ""
	}
	return buf.String()
}

// pushMetadataObject is ESO's PushSecretMetadata object around a spec.
type pushMetadataObject[T any] struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       T      `json:"spec,omitempty"`
}

// CheckPushMetadata implements provider.MetadataPusher with ESO's
// PushSecretMetadata for Secrets Manager.
func (c *secretsManager) CheckPushMetadata(raw []byte) error {
	meta, err := parseSMPushMetadata(raw)
	if err != nil {
		return err
	}
	return checkReplicaRegions(meta, c.cfg.Region)
}

// CheckPushMetadata implements provider.MetadataPusher with ESO's
// PushSecretMetadata for Parameter Store.
func (c *parameterStore) CheckPushMetadata(raw []byte) error {
	_, err := parsePSPushMetadata(raw)
	return err
}

var (
	_ provider.MetadataPusher = (*secretsManager)(nil)
	_ provider.MetadataPusher = (*parameterStore)(nil)
)

// parseSMPushMetadata parses a push's metadata for Secrets Manager; nil
// without metadata. Errors wrap provider.ErrInvalidPush.
func parseSMPushMetadata(raw []byte) (*smPushMetadata, error) {
	spec, err := decodePushMetadata[smPushMetadata](raw, "AWS Secrets Manager")
	if err != nil || spec == nil {
		return nil, err
	}
	if err := firstFailure(
		func() error { return checkSMFormat(spec.SecretPushFormat) },
		func() error { return checkTags(spec.Tags) },
		func() error { return checkResourcePolicy(spec.ResourcePolicy) },
		func() error { return checkReplicationLocations(spec.ReplicationLocations) },
	); err != nil {
		return nil, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
	}
	return spec, nil
}

// parsePSPushMetadata parses a push's metadata for Parameter Store; nil
// without metadata. Errors wrap provider.ErrInvalidPush.
func parsePSPushMetadata(raw []byte) (*psPushMetadata, error) {
	spec, err := decodePushMetadata[psPushMetadata](raw, "AWS Parameter Store")
	if err != nil || spec == nil {
		return nil, err
	}
	if err := firstFailure(
		func() error { return checkOneOf("spec.secretType", spec.SecretType, psSecretTypes) },
		func() error { return checkOneOf("spec.tier.type", spec.Tier.Type, psTiers) },
		func() error { return checkPolicies(spec.Tier.Policies) },
		func() error { return checkTags(spec.Tags) },
	); err != nil {
		return nil, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
	}
	return spec, nil
}

// firstFailure runs checks in order and returns the first error.
func firstFailure(checks ...func() error) error {
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// decodePushMetadata decodes raw as ESO's PushSecretMetadata object with
// spec T, strictly, and checks its apiVersion and kind; nil when raw is
// empty or null (no metadata).
func decodePushMetadata[T any](raw []byte, service string) (*T, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || isNull(t) {
		return nil, nil
	}
	var obj pushMetadataObject[T]
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%w: metadata is not ESO's PushSecretMetadata for %s: %s", provider.ErrInvalidPush, service, decodeProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: metadata is not ESO's PushSecretMetadata for %s: it holds more than one JSON value", provider.ErrInvalidPush, service)
	}
	if err := firstFailure(
		func() error { return checkEqual("apiVersion", obj.APIVersion, pushMetadataAPIVersion) },
		func() error { return checkEqual("kind", obj.Kind, pushMetadataKind) },
	); err != nil {
		return nil, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
	}
	return &obj.Spec, nil
}

// decodeProblem says what is wrong in a decoding error without quoting
// the input: the unknown field's name, the field of the wrong type, or
// where the JSON breaks.
func decodeProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Sprintf("it is not an object (want %s)", jsonKind(typeErr.Type))
		}
		return fmt.Sprintf("field %q must be %s", field, jsonKind(typeErr.Type))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("it is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it is not valid JSON (it ends early)"
	}
	// encoding/json reports an unknown field only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s (ESO refuses it too)", name)
	}
	return "it cannot be decoded"
}

// jsonKind names the JSON a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "another JSON type"
	}
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// checkEqual refuses a field that is not the one value ESO takes.
func checkEqual(field, got, want string) error {
	if got != want {
		return fmt.Errorf("metadata %s must be %s", field, want)
	}
	return nil
}

// checkOneOf refuses a field set to a value the service does not take.
func checkOneOf(field, got string, allowed []string) error {
	if got == "" || slices.Contains(allowed, got) {
		return nil
	}
	return fmt.Errorf("metadata %s must be one of %s", field, strings.Join(allowed, ", "))
}

// checkSMFormat refuses a secretPushFormat ESO refuses.
func checkSMFormat(format string) error {
	return checkOneOf("spec.secretPushFormat", format, []string{smFormatString, smFormatBinary})
}

// checkTags refuses the managed-by tag: it is keyferry's (ESO's) mark of
// what it created, which metadata may not set (ESO refuses it too).
func checkTags(tags map[string]string) error {
	if _, ok := tags[provider.ManagedByKey]; ok {
		return fmt.Errorf("metadata spec.tags cannot set the tag %q: it is the mark of what keyferry (and ESO) created", provider.ManagedByKey)
	}
	return nil
}

// checkResourcePolicy refuses a resourcePolicy ESO cannot resolve: one
// without policySourceRef, a kind other than ConfigMap or Secret, a name
// that is no object name or a key that is no data key.
func checkResourcePolicy(p *smResourcePolicy) error {
	if p == nil {
		return nil
	}
	ref := p.PolicySourceRef
	if ref == nil {
		return errors.New("metadata spec.resourcePolicy.policySourceRef is required: the ConfigMap or Secret key that holds the policy")
	}
	return firstFailure(
		func() error {
			if ref.Kind != policySourceConfigMap && ref.Kind != policySourceSecret {
				return errors.New("metadata spec.resourcePolicy.policySourceRef.kind must be ConfigMap or Secret")
			}
			return nil
		},
		func() error {
			if len(validation.IsDNS1123Subdomain(ref.Name)) > 0 {
				return errors.New("metadata spec.resourcePolicy.policySourceRef.name must be the name of a ConfigMap or Secret")
			}
			return nil
		},
		func() error {
			if len(validation.IsConfigMapKey(ref.Key)) > 0 {
				return errors.New("metadata spec.resourcePolicy.policySourceRef.key must be a key of the ConfigMap's or Secret's data")
			}
			return nil
		},
	)
}

// checkReplicationLocations refuses replica regions that are not AWS
// region names, or listed twice.
func checkReplicationLocations(regions []string) error {
	seen := make(map[string]bool, len(regions))
	for i, r := range regions {
		if !awsRegion.MatchString(r) {
			return fmt.Errorf("metadata spec.replicationLocations[%d] is not an AWS region name (such as eu-west-2)", i)
		}
		if seen[r] {
			return fmt.Errorf("metadata spec.replicationLocations[%d] lists a region again", i)
		}
		seen[r] = true
	}
	return nil
}

// checkPolicies refuses Parameter Store tier policies that are not a JSON
// array (of AWS parameter policies), which PutParameter would refuse.
func checkPolicies(raw json.RawMessage) error {
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	var policies []json.RawMessage
	if err := json.Unmarshal(raw, &policies); err != nil {
		return errors.New("metadata spec.tier.policies must be an array of parameter policies")
	}
	return nil
}

// withManagedBy is tags and keyferry's managed-by mark, as a created
// secret or parameter is tagged.
func withManagedBy(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	maps.Copy(out, tags)
	out[provider.ManagedByKey] = provider.ManagedByValue
	return out
}

// tagChanges is what makes the tags have into want plus the managed-by
// mark, as ESO does: the keys to remove (every tag not wanted; never the
// mark) and the tags to add or change, both sorted.
func tagChanges(have, want map[string]string) (remove []string, set []string) {
	target := withManagedBy(want)
	for k := range have {
		if _, ok := target[k]; !ok {
			remove = append(remove, k)
		}
	}
	for k, v := range target {
		if cur, ok := have[k]; !ok || cur != v {
			set = append(set, k)
		}
	}
	slices.Sort(remove)
	slices.Sort(set)
	return remove, set
}

// smMetaTags is the metadata's tags; nil without metadata.
func smMetaTags(m *smPushMetadata) map[string]string {
	if m == nil {
		return nil
	}
	return m.Tags
}

// smTags is tags as Secrets Manager takes them, sorted by key.
func smTags(tags map[string]string) []smtypes.Tag {
	out := make([]smtypes.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// retag makes an existing secret's tags the metadata's tags plus the
// managed-by mark, as ESO does on every push whose metadata sets tags
// (UntagResource for the tags not listed, TagResource for the ones added
// or changed); metadata without tags leaves them alone. d is the secret's
// DescribeSecret, read whenever the metadata sets tags. It returns whether
// it changed a tag.
func (c *secretsManager) retag(ctx context.Context, id, op string, meta *smPushMetadata, d *secretsmanager.DescribeSecretOutput) (bool, error) {
	if meta == nil || len(meta.Tags) == 0 || d == nil {
		return false, nil
	}
	have := make(map[string]string, len(d.Tags))
	for _, t := range d.Tags {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	remove, set := tagChanges(have, meta.Tags)
	if len(remove) > 0 {
		if _, err := c.api.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(id), TagKeys: remove}); err != nil {
			return false, fmt.Errorf("%s: removing the tags its metadata does not list: %w", op, classify(err))
		}
	}
	if len(set) > 0 {
		want := withManagedBy(meta.Tags)
		tags := make(map[string]string, len(set))
		for _, k := range set {
			tags[k] = want[k]
		}
		if _, err := c.api.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(id), Tags: smTags(tags)}); err != nil {
			return false, fmt.Errorf("%s: tagging it with its metadata's tags: %w", op, classify(err))
		}
	}
	return len(remove) > 0 || len(set) > 0, nil
}

// psCreateInput is the PutParameter call that creates a parameter: a
// String with ESO's description and managed-by tag by default; the
// metadata's type, description and tags, its KMS key for a SecureString,
// and its tier (with policies) when Advanced, as ESO sends them.
func psCreateInput(name string, value []byte, meta *psPushMetadata) *ssm.PutParameterInput {
	in := &ssm.PutParameterInput{
		Name:        aws.String(name),
		Value:       aws.String(string(value)),
		Type:        ssmtypes.ParameterTypeString,
		Overwrite:   aws.Bool(false),
		Description: aws.String(meta.description()),
	}
	var tags map[string]string
	if meta != nil {
		tags = meta.Tags
		if meta.SecretType != "" {
			in.Type = ssmtypes.ParameterType(meta.SecretType)
		}
	}
	all := withManagedBy(tags)
	for _, k := range slices.Sorted(maps.Keys(all)) {
		in.Tags = append(in.Tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(all[k])})
	}
	psApplyKeyAndTier(in, meta)
	return in
}

// psOverwriteInput is the PutParameter call that writes value over p: its
// type kept; with metadata, the metadata's type when it sets one, its
// description (or ESO's default), KMS key and tier as on create.
func psOverwriteInput(p *ssmtypes.Parameter, value []byte, meta *psPushMetadata) *ssm.PutParameterInput {
	in := &ssm.PutParameterInput{
		Name:      p.Name,
		Value:     aws.String(string(value)),
		Type:      p.Type,
		Overwrite: aws.Bool(true),
	}
	if in.Type == "" {
		in.Type = ssmtypes.ParameterTypeString
	}
	if meta != nil {
		if meta.SecretType != "" {
			in.Type = ssmtypes.ParameterType(meta.SecretType)
		}
		in.Description = aws.String(meta.description())
		psApplyKeyAndTier(in, meta)
	}
	return in
}

// psApplyKeyAndTier sets the metadata's KMS key (only for a SecureString,
// as ESO) and its tier and policies (only Advanced, as ESO).
func psApplyKeyAndTier(in *ssm.PutParameterInput, meta *psPushMetadata) {
	if meta == nil {
		return
	}
	if in.Type == ssmtypes.ParameterTypeSecureString && meta.KMSKeyID != "" {
		in.KeyId = aws.String(meta.KMSKeyID)
	}
	if meta.Tier.Type == psTierAdvanced {
		in.Tier = ssmtypes.ParameterTierAdvanced
		if pol := meta.policies(); pol != "" {
			in.Policies = aws.String(pol)
		}
	}
}

// retag makes a parameter's tags the metadata's tags plus the managed-by
// mark, as ESO does after writing a parameter whose push has metadata
// (RemoveTagsFromResource for the tags not listed, AddTagsToResource for
// the ones added or changed).
func (c *parameterStore) retag(ctx context.Context, op, name string, meta *psPushMetadata) error {
	out, err := c.api.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
		ResourceId:   aws.String(name),
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
	})
	if err != nil {
		return fmt.Errorf("%s: reading its tags: %w", op, classify(err))
	}
	have := make(map[string]string, len(out.TagList))
	for _, t := range out.TagList {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	remove, set := tagChanges(have, meta.Tags)
	if len(remove) > 0 {
		_, err := c.api.RemoveTagsFromResource(ctx, &ssm.RemoveTagsFromResourceInput{
			ResourceId: aws.String(name), ResourceType: ssmtypes.ResourceTypeForTaggingParameter, TagKeys: remove,
		})
		if err != nil {
			return fmt.Errorf("%s: removing the tags its metadata does not list: %w", op, classify(err))
		}
	}
	if len(set) > 0 {
		want := withManagedBy(meta.Tags)
		tags := make([]ssmtypes.Tag, 0, len(set))
		for _, k := range set {
			tags = append(tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(want[k])})
		}
		_, err := c.api.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
			ResourceId: aws.String(name), ResourceType: ssmtypes.ResourceTypeForTaggingParameter, Tags: tags,
		})
		if err != nil {
			return fmt.Errorf("%s: tagging it with its metadata's tags: %w", op, classify(err))
		}
	}
	return nil
}
