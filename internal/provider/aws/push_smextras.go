package aws

// This file is what a Secrets Manager push manages beside the value, from
// ESO's PushSecretMetadata (pushmetadata.go): the secret's resource policy
// (resourcePolicy) and the regions it is replicated to
// (replicationLocations), with ESO's meaning. Both are only ever changed on
// a secret keyferry manages (Push refuses any other before it gets here).
//
// The policy document comes from a ConfigMap or Secret key in the
// PushSecret's namespace (provider.PushValue.Sources); it may be
// sensitive, so no error or log line quotes it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyferry/keyferry/internal/provider"
)

// smPolicy is the resource policy a push wants: none (the one the secret
// has, if any, is deleted), or doc.
type smPolicy struct {
	set bool
	// doc is the policy JSON as read from its source.
	doc string
	// blockPublic is resourcePolicy.blockPublicPolicy; nil leaves it to AWS.
	blockPublic *bool
	// secret says the document came from a Secret: AWS's messages about
	// it are not shown.
	secret bool
}

// resolvePolicy reads the policy the metadata's resourcePolicy names, as
// ESO does: none without resourcePolicy or when the referenced key is empty
// (ESO then deletes the secret's policy). A document that is not a JSON
// object is refused before anything is written.
func resolvePolicy(ctx context.Context, meta *smPushMetadata, sources provider.PushSources) (smPolicy, error) {
	if meta == nil || meta.ResourcePolicy == nil || meta.ResourcePolicy.PolicySourceRef == nil {
		return smPolicy{}, nil
	}
	ref := meta.ResourcePolicy.PolicySourceRef
	if sources == nil {
		return smPolicy{}, errors.New("metadata spec.resourcePolicy.policySourceRef cannot be resolved: no source reader was given")
	}
	raw, err := sources.ReadKey(ctx, ref.Kind, ref.Name, ref.Key)
	if err != nil {
		return smPolicy{}, fmt.Errorf("reading metadata spec.resourcePolicy.policySourceRef: %w", err)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return smPolicy{}, nil
	}
	if _, err := policyObject(string(raw)); err != nil {
		return smPolicy{}, fmt.Errorf("%w: key %q of %s %q (metadata spec.resourcePolicy.policySourceRef) is not a JSON object, as a resource policy is", provider.ErrInvalidPush, ref.Key, ref.Kind, ref.Name)
	}
	return smPolicy{set: true, doc: string(raw), blockPublic: meta.ResourcePolicy.BlockPublicPolicy, secret: ref.Kind == policySourceSecret}, nil
}

// policyObject parses a policy document; nil for none.
func policyObject(doc string) (map[string]any, error) {
	if doc == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// checkReplicaRegions refuses replicating to the store's own region,
// which AWS refuses too.
func checkReplicaRegions(meta *smPushMetadata, own string) error {
	if meta == nil || own == "" {
		return nil
	}
	if i := slices.Index(meta.ReplicationLocations, own); i >= 0 {
		return fmt.Errorf("%w: metadata spec.replicationLocations[%d] is the store's own region; a secret is replicated to other regions", provider.ErrInvalidPush, i)
	}
	return nil
}

// replicaRegions is regions as CreateSecret and ReplicateSecretToRegions
// take them, each with kmsKeyID (nil: AWS's default key of the region),
// as ESO sends them (one key for every replica); nil without regions.
func replicaRegions(regions []string, kmsKeyID *string) []smtypes.ReplicaRegionType {
	if len(regions) == 0 {
		return nil
	}
	out := make([]smtypes.ReplicaRegionType, 0, len(regions))
	for _, r := range regions {
		out = append(out, smtypes.ReplicaRegionType{Region: aws.String(r), KmsKeyId: kmsKeyID})
	}
	return out
}

// metaKMSKey is the metadata's kmsKeyId; nil for AWS's default.
func metaKMSKey(meta *smPushMetadata) *string {
	if meta == nil || meta.KMSKeyID == "" {
		return nil
	}
	return aws.String(meta.KMSKeyID)
}

// syncExtras makes an existing secret's tags, resource policy and replica
// regions what the metadata says, in ESO's order, on every push (whether
// or not the value changes). It returns whether it changed anything.
func (c *secretsManager) syncExtras(ctx context.Context, id, op string, meta *smPushMetadata, policy smPolicy) (bool, error) {
	var d *secretsmanager.DescribeSecretOutput
	if meta != nil && (len(meta.Tags) > 0 || meta.ReplicationLocations != nil) {
		var err error
		if d, err = c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)}); err != nil {
			if err = classify(err); isNotFound(err) {
				return false, conflict(op, "it was deleted meanwhile")
			}
			return false, fmt.Errorf("%s: reading its tags and replication: %w", op, err)
		}
	}
	retagged, err := c.retag(ctx, id, op, meta, d)
	if err != nil {
		return false, err
	}
	putPolicy, err := c.syncPolicy(ctx, id, op, policy)
	if err != nil {
		return false, err
	}
	replicated, err := c.syncReplication(ctx, id, op, meta, d)
	if err != nil {
		return false, err
	}
	return retagged || putPolicy || replicated, nil
}

// syncPolicy gives the secret the policy wanted, as ESO does: without one,
// DeleteResourcePolicy (a secret without a policy is left as it is; so is
// one whose policy the credentials may not delete, since nothing asks for
// a policy); with one, PutResourcePolicy (with blockPublicPolicy as set)
// unless GetResourcePolicy already returns the same JSON. It returns
// whether it put one.
func (c *secretsManager) syncPolicy(ctx context.Context, id, op string, p smPolicy) (bool, error) {
	if !p.set {
		_, err := c.api.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(id)})
		switch err = classify(err); {
		case err == nil, isNotFound(err):
			return false, nil
		case errors.Is(err, provider.ErrForbidden):
			c.log.V(1).Info("the credentials may not delete the resource policy of a secret whose push sets none; left as it is", "secret", id)
			return false, nil
		default:
			return false, fmt.Errorf("%s: deleting its resource policy (its metadata sets no resourcePolicy): %w", op, err)
		}
	}
	cur, err := c.api.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(id)})
	if err != nil {
		if err = classify(err); isNotFound(err) {
			return false, conflict(op, "it was deleted meanwhile")
		}
		return false, fmt.Errorf("%s: reading its resource policy: %w", op, err)
	}
	if have, err := policyObject(aws.ToString(cur.ResourcePolicy)); err == nil && have != nil {
		if want, _ := policyObject(p.doc); reflect.DeepEqual(have, want) {
			return false, nil
		}
	}
	return true, c.putPolicy(ctx, id, op, p)
}

// putPolicy puts the secret's resource policy.
func (c *secretsManager) putPolicy(ctx context.Context, id, op string, p smPolicy) error {
	_, err := c.api.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId:          aws.String(id),
		ResourcePolicy:    aws.String(p.doc),
		BlockPublicPolicy: p.blockPublic,
	})
	if err == nil {
		return nil
	}
	op += ": putting its resource policy"
	if hasCode(err, "MalformedPolicyDocumentException", "PublicPolicyException") {
		// Fixing the policy (or blockPublicPolicy) lifts it. AWS's message
		// says why; it is shown only for a policy from a ConfigMap, and
		// only when it does not quote the policy.
		code, msg := errorCode(err)
		if p.secret || msg == "" || strings.Contains(msg, p.doc) {
			return fmt.Errorf("%s: %w: AWS refused the policy with %s", op, provider.ErrInvalidPush, code)
		}
		return fmt.Errorf("%s: %w: AWS refused the policy with %s: %s", op, provider.ErrInvalidPush, code, msg)
	}
	if p.secret {
		code, _ := errorCode(err)
		redacted := fmt.Errorf("AWS refused the call with %s; its message is not shown, as the policy comes from a Secret", codeOrUnknown(code))
		if kind := kindOf(err); kind != nil {
			return fmt.Errorf("%s: %w: %w", op, kind, redacted)
		}
		return fmt.Errorf("%s: %w", op, redacted)
	}
	return writeError(op, err, []byte(p.doc))
}

// syncReplication makes the secret's replica regions exactly the
// metadata's replicationLocations, as ESO does: regions it is replicated
// to but not listed are removed (RemoveRegionsFromReplication), listed
// ones it is not replicated to are added (ReplicateSecretToRegions, with
// the secret's KMS key; an existing secret of that name in the region is
// never overwritten). Without replicationLocations replication is left
// alone. It returns whether it changed the replicas.
func (c *secretsManager) syncReplication(ctx context.Context, id, op string, meta *smPushMetadata, d *secretsmanager.DescribeSecretOutput) (bool, error) {
	if meta == nil || meta.ReplicationLocations == nil || d == nil {
		return false, nil
	}
	have := make([]string, 0, len(d.ReplicationStatus))
	for _, s := range d.ReplicationStatus {
		have = append(have, aws.ToString(s.Region))
		if s.Status == smtypes.StatusTypeFailed {
			c.log.Info("replicating a secret keyferry pushed failed in a region", "secret", id, "region", aws.ToString(s.Region), "reason", aws.ToString(s.StatusMessage))
		}
	}
	remove, add := regionChanges(have, meta.ReplicationLocations)
	if len(remove) > 0 {
		if _, err := c.api.RemoveRegionsFromReplication(ctx, &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: aws.String(id), RemoveReplicaRegions: remove}); err != nil {
			return false, fmt.Errorf("%s: removing the replica regions its metadata does not list: %w", op, classify(err))
		}
	}
	if len(add) > 0 {
		if _, err := c.api.ReplicateSecretToRegions(ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String(id), AddReplicaRegions: replicaRegions(add, d.KmsKeyId)}); err != nil {
			return false, fmt.Errorf("%s: replicating it to the regions its metadata lists: %w", op, classify(err))
		}
	}
	return len(remove) > 0 || len(add) > 0, nil
}

// regionChanges is what makes the regions have into want: the regions to
// remove (in have's order) and to add (in want's order).
func regionChanges(have, want []string) (remove, add []string) {
	for _, r := range have {
		if !slices.Contains(want, r) {
			remove = append(remove, r)
		}
	}
	for _, r := range want {
		if !slices.Contains(have, r) {
			add = append(add, r)
		}
	}
	return remove, add
}

// unreplicate removes every replica of a secret about to be deleted: AWS
// refuses to delete a secret that still has replicas (ESO does the same).
func (c *secretsManager) unreplicate(ctx context.Context, id string, d *secretsmanager.DescribeSecretOutput) error {
	if d == nil || len(d.ReplicationStatus) == 0 {
		return nil
	}
	regions := make([]string, 0, len(d.ReplicationStatus))
	for _, s := range d.ReplicationStatus {
		regions = append(regions, aws.ToString(s.Region))
	}
	if _, err := c.api.RemoveRegionsFromReplication(ctx, &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: aws.String(id), RemoveReplicaRegions: regions}); err != nil {
		if err = classify(err); !isNotFound(err) {
			return fmt.Errorf("deleting secret %q in AWS Secrets Manager: removing its replica regions first: %w", id, err)
		}
	}
	return nil
}
