package aws

import (
	"context"
	"fmt"
	"maps"
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
	_ provider.BatchSizer  = (*secretsManager)(nil)
	_ provider.Lister      = (*secretsManager)(nil)
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

// GetSecret reads the secret prefix+key (or the secret a key that is an ARN
// names). A version starting with "uuid/" is
// a VersionId, any other a staging label (AWSCURRENT, AWSPREVIOUS, ...);
// none reads AWSCURRENT.
func (c *secretsManager) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return c.tags(ctx, ref)
	}
	return c.get(ctx, c.id(ref.Key), ref.Version)
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
		// Metadata refs read tags (DescribeSecret), one by one.
		return c.id(ref.Key), !ref.Metadata && (ref.Version == "" || ref.Version == stageCurrent)
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

// BatchSize is the most ids BatchGetSecretValue takes.
func (c *secretsManager) BatchSize() int { return smBatchSize }

// ListSecrets lists the secrets under list.Path that carry every tag in
// list.Tags, 100 a call. The store's prefix does not apply (as in ESO):
// names outside it are read by ARN. Values are read by the fetch layer,
// batched (BatchGetSecretValue).
func (c *secretsManager) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	// Secrets Manager's filters match prefixes of words, case-insensitively:
	// they narrow the listing, and the exact checks happen in NextPage.
	var filters []smtypes.Filter
	if list.Path != "" {
		filters = append(filters, smtypes.Filter{Key: smtypes.FilterNameStringTypeName, Values: []string{list.Path}})
	}
	if len(list.Tags) > 0 {
		k := slices.Min(slices.Collect(maps.Keys(list.Tags)))
		filters = append(filters,
			smtypes.Filter{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{k}},
			smtypes.Filter{Key: smtypes.FilterNameStringTypeTagValue, Values: []string{list.Tags[k]}})
	}
	return &smPages{c: c, list: list,
		pages: secretsmanager.NewListSecretsPaginator(c.api, &secretsmanager.ListSecretsInput{Filters: filters, MaxResults: aws.Int32(100)})}
}

// smPages is a ListSecrets listing, one call a page.
type smPages struct {
	c     *secretsManager
	list  provider.List
	pages *secretsmanager.ListSecretsPaginator
}

func (p *smPages) More() bool { return p.pages.HasMorePages() }

func (p *smPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	page, err := p.pages.NextPage(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing secrets in AWS Secrets Manager: %w", classify(err))
	}
	var out []provider.Listed
	for _, s := range page.SecretList {
		name := aws.ToString(s.Name)
		if !strings.HasPrefix(name, p.list.Path) || !hasTags(s.Tags, p.list.Tags) {
			continue
		}
		ref, ok := p.c.listedRef(name, aws.ToString(s.ARN))
		if !ok {
			continue
		}
		out = append(out, provider.Listed{Name: name, Ref: ref})
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
