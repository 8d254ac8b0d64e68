package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/keyferry/keyferry/internal/provider"
)

// Metadata (remoteRef.metadataPolicy Fetch) is a secret's or parameter's
// tags, as ESO reads them: a JSON object of tag names to values, one field
// per tag. Tags belong to the secret, not to a version, so ref.Version is
// not used. Neither call returns the value.

// tags reads the tags of a Secrets Manager secret with DescribeSecret.
func (c *secretsManager) tags(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	id := c.id(ref.Key)
	out, err := c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading the tags of secret %q from AWS Secrets Manager: %w", id, classify(err))
	}
	m := make(map[string]string, len(out.Tags))
	for _, t := range out.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return provider.MetadataValue(m)
}

// tags reads the tags of a parameter with ListTagsForResource.
func (c *parameterStore) tags(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	name := c.id(ref.Key)
	out, err := c.api.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
		ResourceId:   aws.String(name),
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidResourceId" {
		// ListTagsForResource's answer for a parameter that does not exist.
		return provider.Value{}, fmt.Errorf("reading the tags of parameter %q from AWS Parameter Store: %w", name, provider.ErrNotFound)
	}
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading the tags of parameter %q from AWS Parameter Store: %w", name, classify(err))
	}
	m := make(map[string]string, len(out.TagList))
	for _, t := range out.TagList {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return provider.MetadataValue(m)
}
