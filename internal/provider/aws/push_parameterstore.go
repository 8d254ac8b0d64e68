package aws

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Pusher = (*parameterStore)(nil)

// Inspect reads the state of a parameter: GetParameter (decrypted only
// when ref names a property, to look it up) for its Version, the
// check-and-set token, and ListTagsForResource for ESO's managed-by:
// external-secrets tag.
func (c *parameterStore) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	p, err := c.parameter(ctx, c.id(ref.RemoteKey), ref.Property != "")
	if err != nil || p == nil {
		return provider.RemoteState{}, err
	}
	managed, err := c.managed(ctx, aws.ToString(p.Name))
	if err != nil {
		return provider.RemoteState{}, err
	}
	st := provider.RemoteState{Exists: true, Managed: managed, Version: strconv.FormatInt(p.Version, 10)}
	if ref.Property != "" {
		st.PropertyExists = hasProperty([]byte(aws.ToString(p.Value)), ref.Property)
	}
	return st, nil
}

// Push writes a parameter with ESO's meaning: the value (the whole Secret
// as a JSON object of base64 values, ESO's default without
// encodeAsDecoded), or with a property the parameter's JSON object with
// that key set (ESO ignores property for Parameter Store; keyferry writes
// the key, as Secrets Manager does, so that reads of the property find
// it). A new parameter is a String, ESO's default secretType, created with
// ESO's tag managed-by: external-secrets and description, and without
// Overwrite, so a name taken meanwhile fails; the push's metadata sets
// its type, KMS key, tier, description, tags and encodeAsDecoded as ESO
// does (pushmetadata.go). An existing one is written only when its value
// changes, keeping its type (a SecureString stays one) unless the
// metadata sets one, after checking that its Version is still the one
// Inspect saw; then, with metadata, its tags become the metadata's, as
// ESO does.
// Parameter Store has no conditional write: a write by someone else
// between that read and PutParameter is overwritten.
func (c *parameterStore) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	name := c.id(ref.RemoteKey)
	op := fmt.Sprintf("pushing to parameter %q in AWS Parameter Store", name)
	if err := checkProperty(ref); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if want.Exists && !want.Managed {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	meta, err := parsePSPushMetadata(v.Metadata)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	value, err := pushedBytes(v, meta == nil || !meta.EncodeAsDecoded)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if !want.Exists {
		final, err := finalValue(ref, nil, value)
		if err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
		_, err = c.api.PutParameter(ctx, psCreateInput(name, final, meta))
		if hasCode(err, "ParameterAlreadyExists") {
			return false, conflict(op, "it was created meanwhile")
		}
		if err != nil {
			return false, writeError(op, err, final, value)
		}
		return true, nil
	}
	p, err := c.parameter(ctx, name, true)
	switch {
	case err != nil:
		return false, err
	case p == nil:
		return false, conflict(op, "it was deleted meanwhile")
	case strconv.FormatInt(p.Version, 10) != want.Version:
		return false, conflict(op, "its version changed")
	}
	cur := []byte(aws.ToString(p.Value))
	final, err := finalValue(ref, cur, value)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if bytes.Equal(cur, final) {
		return false, nil
	}
	if err := c.overwrite(ctx, op, p, meta, final, value); err != nil {
		return false, err
	}
	if meta != nil {
		if err := c.retag(ctx, op, name, meta); err != nil {
			return false, err
		}
	}
	return true, nil
}

// overwrite writes value over the existing parameter p, keeping its type
// unless the push's metadata sets one (and then its description, KMS key
// and tier, as ESO does; psOverwriteInput).
func (c *parameterStore) overwrite(ctx context.Context, op string, p *ssmtypes.Parameter, meta *psPushMetadata, value []byte, secrets ...[]byte) error {
	_, err := c.api.PutParameter(ctx, psOverwriteInput(p, value, meta))
	if err != nil {
		return writeError(op, err, append(secrets, value)...)
	}
	return nil
}

// Delete removes what keyferry pushed: with a property, that key of the
// parameter's JSON object, and the parameter when it was the last key;
// without, the parameter (DeleteParameter, as ESO). A missing parameter,
// or one without ESO's managed-by tag, is left alone.
func (c *parameterStore) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	name := c.id(ref.RemoteKey)
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || !st.Managed {
		return err
	}
	if ref.Property != "" {
		if !st.PropertyExists {
			return nil
		}
		op := fmt.Sprintf("deleting property %q of parameter %q in AWS Parameter Store", ref.Property, name)
		p, err := c.parameter(ctx, name, true)
		switch {
		case err != nil:
			return err
		case p == nil:
			return nil
		case strconv.FormatInt(p.Version, 10) != st.Version:
			return conflict(op, "its version changed")
		}
		rest, empty, err := withoutProperty(ref, []byte(aws.ToString(p.Value)))
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if !empty {
			return c.overwrite(ctx, op, p, nil, rest)
		}
	}
	if _, err := c.api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		if err = classify(err); !isNotFound(err) {
			return fmt.Errorf("deleting parameter %q in AWS Parameter Store: %w", name, err)
		}
	}
	return nil
}

// parameter reads a parameter; nil when it does not exist.
func (c *parameterStore) parameter(ctx context.Context, name string, decrypt bool) (*ssmtypes.Parameter, error) {
	out, err := c.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
	if err != nil {
		if err = classify(err); isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading parameter %q from AWS Parameter Store: %w", name, err)
	}
	if out.Parameter == nil {
		return nil, fmt.Errorf("%w: parameter %q: GetParameter returned no parameter", provider.ErrBadResponse, name)
	}
	return out.Parameter, nil
}

// managed says whether a parameter carries ESO's managed-by tag.
func (c *parameterStore) managed(ctx context.Context, name string) (bool, error) {
	out, err := c.api.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
		ResourceId:   aws.String(name),
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
	})
	if err != nil {
		return false, fmt.Errorf("reading the tags of parameter %q from AWS Parameter Store: %w", name, classify(err))
	}
	for _, t := range out.TagList {
		if aws.ToString(t.Key) == provider.ManagedByKey && aws.ToString(t.Value) == provider.ManagedByValue {
			return true, nil
		}
	}
	return false, nil
}
