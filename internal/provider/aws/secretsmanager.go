package aws

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// smBatchSize is the most ids BatchGetSecretValue takes.
	smBatchSize = 20
	// stageCurrent is the stage Secrets Manager reads without a version.
	stageCurrent = "AWSCURRENT"
	// versionIDPrefix marks a version that is a VersionId, not a stage (ESO).
	versionIDPrefix = "uuid/"
)

// secretsManager reads AWS Secrets Manager.
type secretsManager struct {
	base
	api   *secretsmanager.Client
	batch *batcher
}

var (
	_ provider.Client      = (*secretsManager)(nil)
	_ provider.BatchGetter = (*secretsManager)(nil)
)

func newSecretsManager(b base, api *secretsmanager.Client) *secretsManager {
	c := &secretsManager{base: b, api: api}
	c.batch = &batcher{
		size:   smBatchSize,
		call:   "secretsmanager:BatchGetSecretValue",
		batch:  c.batchGet,
		single: func(ctx context.Context, id string) (provider.Value, error) { return c.get(ctx, id, "") },
		log:    b.log,
	}
	return c
}

// GetSecret reads the secret prefix+key. A version starting with "uuid/" is
// a VersionId, any other a staging label (AWSCURRENT, AWSPREVIOUS, ...);
// none reads AWSCURRENT.
func (c *secretsManager) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return c.get(ctx, c.prefix+ref.Key, ref.Version)
}

func (c *secretsManager) get(ctx context.Context, id, version string) (provider.Value, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if vid, ok := strings.CutPrefix(version, versionIDPrefix); ok {
		in.VersionId = aws.String(vid)
	} else if version != "" {
		in.VersionStage = aws.String(version)
	}
	out, err := c.api.GetSecretValue(ctx, in)
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading secret %s from AWS Secrets Manager: %w", describe(id, version), classify(err))
	}
	return secretValue(id, out.SecretString, out.SecretBinary, out.VersionId)
}

// GetSecrets reads the current versions of many secrets with
// BatchGetSecretValue, 20 per call; refs to other versions are read one by
// one, as the batch call reads current versions only.
func (c *secretsManager) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	return getRefs(ctx, refs, c.batch, func(ref provider.Ref) (string, bool) {
		return c.prefix + ref.Key, ref.Version == "" || ref.Version == stageCurrent
	}, c.GetSecret)
}

// batchGet is one BatchGetSecretValue call for up to 20 ids (names or
// ARNs). Its results are matched back to ids by name or ARN.
func (c *secretsManager) batchGet(ctx context.Context, ids []string) (map[string]provider.Value, map[string]error, error) {
	values := map[string]provider.Value{}
	errs := map[string]error{}
	wanted := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		wanted[id] = struct{}{}
	}
	in := &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}
	for {
		out, err := c.api.BatchGetSecretValue(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %d secrets from AWS Secrets Manager: %w", len(ids), classify(err))
		}
		for _, e := range out.SecretValues {
			id, ok := matchID(wanted, aws.ToString(e.Name), aws.ToString(e.ARN))
			if !ok {
				continue
			}
			v, err := secretValue(id, e.SecretString, e.SecretBinary, e.VersionId)
			if err != nil {
				errs[id] = err
				continue
			}
			values[id] = v
		}
		for _, e := range out.Errors {
			id := aws.ToString(e.SecretId)
			if _, ok := wanted[id]; !ok {
				continue
			}
			apiErr := &smithy.GenericAPIError{Code: aws.ToString(e.ErrorCode), Message: aws.ToString(e.Message)}
			errs[id] = fmt.Errorf("reading secret %q from AWS Secrets Manager: %w", id, classify(apiErr))
		}
		if aws.ToString(out.NextToken) == "" {
			return values, errs, nil
		}
		in.NextToken = out.NextToken
	}
}

// matchID finds which requested id a result answers: its name, its ARN, or
// a partial ARN (without the random suffix AWS appends).
func matchID(wanted map[string]struct{}, name, arn string) (string, bool) {
	if _, ok := wanted[name]; ok {
		return name, true
	}
	if _, ok := wanted[arn]; ok {
		return arn, true
	}
	for id := range wanted {
		if strings.HasPrefix(id, "arn:") && strings.HasPrefix(arn, id+"-") {
			return id, true
		}
	}
	return "", false
}

// Find lists the secrets under Path whose names match Name and that carry
// every tag in Tags, and reads their current values in batches. The
// store's prefix does not apply (as in ESO). Secrets without a current value
// (or deleted since listing) are left out.
func (c *secretsManager) Find(ctx context.Context, f provider.Find) (map[string][]byte, error) {
	re, err := regexp.Compile(f.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: find.name: %v", provider.ErrInvalidConfig, err)
	}
	// Secrets Manager's filters match prefixes of words, case-insensitively:
	// they narrow the listing, and the exact checks happen below.
	var filters []smtypes.Filter
	if f.Path != "" {
		filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeName, Values: []string{f.Path}})
	}
	if len(f.Tags) > 0 {
		k := slices.Min(slices.Collect(maps.Keys(f.Tags)))
		filters = append(filters,
			smtypes.Filter{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{k}},
			smtypes.Filter{Key: smtypes.FilterNameStringTypeTagValue, Values: []string{f.Tags[k]}})
	}
	var ids []string
	nameOf := map[string]string{}
	pages := secretsmanager.NewListSecretsPaginator(c.api, &secretsmanager.ListSecretsInput{Filters: filters, MaxResults: aws.Int32(100)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing secrets in AWS Secrets Manager: %w", classify(err))
		}
		for _, s := range page.SecretList {
			name := aws.ToString(s.Name)
			if !strings.HasPrefix(name, f.Path) || !re.MatchString(name) || !hasTags(s.Tags, f.Tags) {
				continue
			}
			id := aws.ToString(s.ARN)
			if id == "" {
				id = name
			}
			if _, dup := nameOf[id]; !dup {
				ids = append(ids, id)
				nameOf[id] = name
			}
		}
	}
	values, errs := c.batch.fetch(ctx, ids)
	for _, id := range ids {
		if err, failed := errs[id]; failed && !isNotFound(err) {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(values))
	for id, v := range values {
		out[nameOf[id]] = v.Data
	}
	return out, nil
}

func hasTags(have []smtypes.Tag, want map[string]string) bool {
	for k, v := range want {
		if !slices.ContainsFunc(have, func(t smtypes.Tag) bool { return aws.ToString(t.Key) == k && aws.ToString(t.Value) == v }) {
			return false
		}
	}
	return true
}

// secretValue is a secret's string, or its binary as raw bytes.
func secretValue(id string, s *string, b []byte, version *string) (provider.Value, error) {
	var data []byte
	switch {
	case s != nil:
		data = []byte(*s)
	case b != nil:
		data = b
	default:
		return provider.Value{}, fmt.Errorf("%w: secret %q has neither SecretString nor SecretBinary", provider.ErrBadResponse, id)
	}
	return provider.Value{Data: data, Version: aws.ToString(version)}, nil
}

// describe names a key and its version in errors.
func describe(key, version string) string {
	if version == "" {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q version %q", key, version)
}
