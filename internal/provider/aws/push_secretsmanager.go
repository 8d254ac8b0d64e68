package aws

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// smInitialVersion is the VersionId ESO gives the first version of a
	// secret it creates; keyferry does the same.
	smInitialVersion = "00000000-0000-0000-0000-000000000001"
)

var _ provider.Pusher = (*secretsManager)(nil)

// Inspect reads the state of a Secrets Manager secret with DescribeSecret
// (no value): its tags (ESO's managed-by: external-secrets) and the
// VersionId that holds AWSCURRENT, the check-and-set token. A secret
// scheduled for deletion does not exist, as for reads. The property is
// looked up in the current value (GetSecretValue) only when ref names one.
func (c *secretsManager) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	st, _, err := c.inspect(ctx, ref)
	return st, err
}

// inspect is Inspect and the DescribeSecret it read (nil when the secret
// does not exist).
func (c *secretsManager) inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, *secretsmanager.DescribeSecretOutput, error) {
	id := c.id(ref.RemoteKey)
	d, err := c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		err = classify(err)
		if isNotFound(err) {
			return provider.RemoteState{}, nil, nil
		}
		return provider.RemoteState{}, nil, fmt.Errorf("inspecting secret %q in AWS Secrets Manager: %w", id, err)
	}
	if d.DeletedDate != nil {
		return provider.RemoteState{}, nil, nil
	}
	st := provider.RemoteState{Exists: true, Managed: smManaged(d.Tags), Version: currentVersion(d.VersionIdsToStages)}
	if ref.Property != "" && st.Version != "" {
		cur, _, err := c.current(ctx, id)
		if err != nil {
			return provider.RemoteState{}, nil, err
		}
		st.PropertyExists = hasProperty(cur, ref.Property)
	}
	return st, d, nil
}

// Push writes a Secrets Manager secret with ESO's meaning: the value (or,
// with a property, the secret's JSON object with that key set) as
// SecretBinary, ESO's default secretPushFormat, or as SecretString with
// the push's metadata secretPushFormat: string (pushmetadata.go). A new
// secret is created with ESO's tag managed-by: external-secrets (and the
// metadata's tags, description and kmsKeyId), description and first
// VersionId; an existing one gets the metadata's tags, when it sets any,
// as ESO does (tags it does not list are removed, the managed-by mark
// kept). On every push it also makes the secret's resource policy and
// replica regions what the metadata's resourcePolicy and
// replicationLocations say (push_smextras.go). CreateSecret fails when the
// name is taken meanwhile, so creating is a check-and-set. An existing secret is written only when its
// value changes, and only if its current VersionId, read again right
// before PutSecretValue, is still the one Inspect saw. PutSecretValue has
// no condition: a write by someone else between that read and the write
// is overwritten (it stays as AWSPREVIOUS).
func (c *secretsManager) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	id := c.id(ref.RemoteKey)
	op := fmt.Sprintf("pushing to secret %q in AWS Secrets Manager", id)
	if err := checkProperty(ref); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if want.Exists && !want.Managed {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	meta, err := parseSMPushMetadata(v.Metadata)
	if err == nil {
		err = checkReplicaRegions(meta, c.cfg.Region)
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	// The policy is read before anything is written: a missing or bad
	// one leaves the remote as it was.
	policy, err := resolvePolicy(ctx, meta, v.Sources)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	value, err := pushedBytes(v, false)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if !want.Exists {
		return c.create(ctx, id, op, ref, value, meta, policy)
	}
	var cur []byte
	if want.Version != "" {
		var version string
		if cur, version, err = c.current(ctx, id); isNotFound(err) {
			return false, conflict(op, "the secret or its current version is gone")
		} else if err != nil {
			return false, err
		}
		if version != want.Version {
			return false, conflict(op, "its current version changed")
		}
	}
	final, err := finalValue(ref, cur, value)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	extras, err := c.syncExtras(ctx, id, op, meta, policy)
	if err != nil {
		return false, err
	}
	if want.Version != "" && bytes.Equal(cur, final) {
		return extras, nil
	}
	if err := c.putCurrent(ctx, id, op, meta.stringFormat(), final, value); err != nil {
		return false, err
	}
	return true, nil
}

// create creates the secret, tagged as ESO tags what it creates. A name
// taken by a secret of keyferry's that is scheduled for deletion (a
// deletionPolicy Delete earlier) is restored and written; any other taken
// name is a conflict, or not keyferry's.
func (c *secretsManager) create(ctx context.Context, id, op string, ref provider.PushRef, value []byte, meta *smPushMetadata, policy smPolicy) (bool, error) {
	final, err := finalValue(ref, nil, value)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	in := &secretsmanager.CreateSecretInput{
		Name:               aws.String(id),
		SecretBinary:       final,
		Description:        aws.String(meta.description()),
		ClientRequestToken: aws.String(smInitialVersion),
		Tags:               smTags(withManagedBy(smMetaTags(meta))),
	}
	if meta.stringFormat() {
		in.SecretBinary, in.SecretString = nil, aws.String(string(final))
	}
	in.KmsKeyId = metaKMSKey(meta)
	if meta != nil {
		// Replicas get the secret's key, as ESO sends them.
		in.AddReplicaRegions = replicaRegions(meta.ReplicationLocations, in.KmsKeyId)
	}
	_, err = c.api.CreateSecret(ctx, in)
	if err == nil {
		if policy.set {
			// A failure leaves the secret without its policy; the next
			// push, finding the secret keyferry's, puts it.
			if err := c.putPolicy(ctx, id, op, policy); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if !hasCode(err, "ResourceExistsException", "InvalidRequestException") {
		return false, writeError(op, err, final, value)
	}
	// The name is taken: by a secret created meanwhile, or by one
	// scheduled for deletion.
	d, derr := c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	switch {
	case derr != nil:
		return false, writeError(op, err, final, value)
	case d.DeletedDate == nil:
		return false, conflict(op, "it was created meanwhile")
	case !smManaged(d.Tags):
		return false, fmt.Errorf("%s: %w (it is scheduled for deletion)", op, provider.ErrNotManaged)
	}
	if _, err := c.api.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(id)}); err != nil {
		return false, fmt.Errorf("%s: restoring it from its scheduled deletion: %w", op, classify(err))
	}
	c.log.Info("restored a secret keyferry pushed before from its scheduled deletion, to push it again", "secret", id)
	if _, err := c.syncExtras(ctx, id, op, meta, policy); err != nil {
		return false, err
	}
	if err := c.putCurrent(ctx, id, op, meta.stringFormat(), final, value); err != nil {
		return false, err
	}
	return true, nil
}

// putCurrent writes value as the secret's new current version
// (PutSecretValue; the SDK sets a fresh ClientRequestToken, so a retried
// call does not write twice). secrets are the strings an error must not
// quote. asString writes it as SecretString (ESO's secretPushFormat
// string) rather than SecretBinary.
func (c *secretsManager) putCurrent(ctx context.Context, id, op string, asString bool, value []byte, secrets ...[]byte) error {
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretBinary: value}
	if asString {
		in.SecretBinary, in.SecretString = nil, aws.String(string(value))
	}
	_, err := c.api.PutSecretValue(ctx, in)
	switch {
	case err == nil:
		return nil
	case isNotFound(classify(err)):
		// Deleted, or scheduled for deletion, since it was read.
		return conflict(op, "it was deleted meanwhile")
	default:
		return writeError(op, err, append(secrets, value)...)
	}
}

// Delete removes what keyferry pushed: with a property, that key of the
// secret's JSON object (after the same version check as Push), and the secret
// when it was the last key; without, the secret. A secret is deleted as
// ESO deletes it: DeleteSecret with the store's
// spec.provider.aws.secretsManager (forceDeleteWithoutRecovery or
// recoveryWindowInDays), else AWS's default recovery window of 30 days. A
// missing secret, or one without ESO's managed-by tag, is left alone.
func (c *secretsManager) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	id := c.id(ref.RemoteKey)
	st, d, err := c.inspect(ctx, ref)
	if err != nil || !st.Exists || !st.Managed {
		return err
	}
	if ref.Property != "" {
		if !st.PropertyExists {
			return nil
		}
		op := fmt.Sprintf("deleting property %q of secret %q in AWS Secrets Manager", ref.Property, id)
		cur, version, asString, err := c.currentWithFormat(ctx, id)
		if err != nil {
			return err
		}
		if version != st.Version {
			return conflict(op, "its current version changed")
		}
		rest, empty, err := withoutProperty(ref, cur)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if !empty {
			// The rest keeps the format the secret was pushed in.
			return c.putCurrent(ctx, id, op, asString, rest)
		}
	}
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(id)}
	if o := c.deletion; o != nil {
		if o.ForceDeleteWithoutRecovery && o.RecoveryWindowInDays > 0 {
			return fmt.Errorf("deleting secret %q in AWS Secrets Manager: %w: spec.provider.aws.secretsManager sets both forceDeleteWithoutRecovery and recoveryWindowInDays", id, provider.ErrInvalidConfig)
		}
		if o.ForceDeleteWithoutRecovery {
			in.ForceDeleteWithoutRecovery = aws.Bool(true)
		}
		if o.RecoveryWindowInDays > 0 {
			in.RecoveryWindowInDays = aws.Int64(o.RecoveryWindowInDays)
		}
	}
	if err := c.unreplicate(ctx, id, d); err != nil {
		return err
	}
	if _, err := c.api.DeleteSecret(ctx, in); err != nil {
		if err = classify(err); !isNotFound(err) {
			return fmt.Errorf("deleting secret %q in AWS Secrets Manager: %w", id, err)
		}
	}
	return nil
}

// current reads the secret's AWSCURRENT value (SecretString or
// SecretBinary) and its VersionId.
func (c *secretsManager) current(ctx context.Context, id string) ([]byte, string, error) {
	data, version, _, err := c.currentWithFormat(ctx, id)
	return data, version, err
}

// currentWithFormat is current and whether the value is a SecretString.
func (c *secretsManager) currentWithFormat(ctx context.Context, id string) ([]byte, string, bool, error) {
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, "", false, fmt.Errorf("reading secret %q from AWS Secrets Manager: %w", id, classify(err))
	}
	v, err := secretValue(id, out.SecretString, out.SecretBinary, out.VersionId)
	if err != nil {
		return nil, "", false, err
	}
	return v.Data, v.Version, out.SecretString != nil, nil
}

// currentVersion is the VersionId that holds AWSCURRENT; "" when the
// secret has no version.
func currentVersion(stages map[string][]string) string {
	for id, labels := range stages {
		for _, l := range labels {
			if l == stageCurrent {
				return id
			}
		}
	}
	return ""
}

// smManaged says whether a secret carries ESO's managed-by tag.
func smManaged(tags []smtypes.Tag) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == provider.ManagedByKey && aws.ToString(t.Value) == provider.ManagedByValue {
			return true
		}
	}
	return false
}
