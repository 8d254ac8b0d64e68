package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/keyferry/keyferry/internal/provider"
)

// psBatchSize is the most names GetParameters takes.
const psBatchSize = 10

// parameterStore reads AWS Systems Manager Parameter Store.
type parameterStore struct {
	base
	api   *ssm.Client
	batch *batcher
}

var (
	_ provider.Client      = (*parameterStore)(nil)
	_ provider.BatchGetter = (*parameterStore)(nil)
)

func newParameterStore(b base, api *ssm.Client) *parameterStore {
	c := &parameterStore{base: b, api: api}
	c.batch = &batcher{
		size:   psBatchSize,
		call:   "ssm:GetParameters",
		batch:  c.batchGet,
		single: c.get,
		log:    b.log,
	}
	return c
}

// GetSecret reads the parameter prefix+key, decrypted. A version is a
// version number or a label (name:version, as AWS selects them).
func (c *parameterStore) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return c.get(ctx, c.name(ref))
}

func (c *parameterStore) name(ref provider.Ref) string {
	if ref.Version == "" {
		return c.prefix + ref.Key
	}
	return c.prefix + ref.Key + ":" + ref.Version
}

func (c *parameterStore) get(ctx context.Context, name string) (provider.Value, error) {
	out, err := c.api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading parameter %q from AWS Parameter Store: %w", name, classify(err))
	}
	if out.Parameter == nil {
		return provider.Value{}, fmt.Errorf("%w: parameter %q: GetParameter returned no parameter", provider.ErrBadResponse, name)
	}
	return parameterValue(name, *out.Parameter)
}

// GetSecrets reads many parameters with GetParameters, 10 per call.
// Versioned refs are read one by one: the answers to name:version
// selectors cannot always be told apart.
func (c *parameterStore) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	return getRefs(ctx, refs, c.batch, func(ref provider.Ref) (string, bool) {
		return c.name(ref), ref.Version == ""
	}, c.GetSecret)
}

// batchGet is one GetParameters call for up to 10 unversioned names.
func (c *parameterStore) batchGet(ctx context.Context, names []string) (map[string]provider.Value, map[string]error, error) {
	out, err := c.api.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, nil, fmt.Errorf("reading %d parameters from AWS Parameter Store: %w", len(names), classify(err))
	}
	values := map[string]provider.Value{}
	errs := map[string]error{}
	for _, p := range out.Parameters {
		name := aws.ToString(p.Name)
		if !slices.Contains(names, name) || aws.ToString(p.Selector) != "" {
			continue
		}
		v, err := parameterValue(name, p)
		if err != nil {
			errs[name] = err
			continue
		}
		values[name] = v
	}
	for _, name := range out.InvalidParameters {
		if slices.Contains(names, name) {
			errs[name] = fmt.Errorf("reading parameter %q from AWS Parameter Store: %w", name,
				classify(&smithy.GenericAPIError{Code: "ParameterNotFound", Message: "the parameter does not exist"}))
		}
	}
	return values, errs, nil
}

// Find returns the parameters under Path (recursively) whose names match
// Name and that carry every tag in Tags, decrypted. The store's prefix does
// not apply (as in ESO).
func (c *parameterStore) Find(ctx context.Context, f provider.Find) (map[string][]byte, error) {
	re, err := regexp.Compile(f.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: find.name: %v", provider.ErrInvalidConfig, err)
	}
	if f.Path != "" && len(f.Tags) == 0 {
		out, err := c.findByPath(ctx, f.Path, re)
		// Like ESO, fall back to DescribeParameters when the credentials
		// may not call GetParametersByPath.
		if !errors.Is(err, provider.ErrForbidden) || isCredentialsError(err) {
			return out, err
		}
		c.log.Info("GetParametersByPath is not allowed; listing with DescribeParameters (grant ssm:GetParametersByPath to save API calls)", "path", f.Path)
	}
	return c.findByDescribe(ctx, f, re)
}

func (c *parameterStore) findByPath(ctx context.Context, path string, re *regexp.Regexp) (map[string][]byte, error) {
	out := map[string][]byte{}
	pages := ssm.NewGetParametersByPathPaginator(c.api, &ssm.GetParametersByPathInput{
		Path:           aws.String(path),
		Recursive:      aws.Bool(true),
		WithDecryption: aws.Bool(true),
		MaxResults:     aws.Int32(10),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading parameters under %q from AWS Parameter Store: %w", path, classify(err))
		}
		for _, p := range page.Parameters {
			name := aws.ToString(p.Name)
			if p.Value == nil || !re.MatchString(name) {
				continue
			}
			out[name] = []byte(*p.Value)
		}
	}
	return out, nil
}

// findByDescribe lists parameter names with DescribeParameters (which
// filters by tags and path) and reads the matching ones in batches.
func (c *parameterStore) findByDescribe(ctx context.Context, f provider.Find, re *regexp.Regexp) (map[string][]byte, error) {
	var filters []ssmtypes.ParameterStringFilter
	for _, k := range slices.Sorted(maps.Keys(f.Tags)) {
		filters = append(filters, ssmtypes.ParameterStringFilter{
			Key: aws.String("tag:" + k), Option: aws.String("Equals"), Values: []string{f.Tags[k]},
		})
	}
	if f.Path != "" {
		filters = append(filters, ssmtypes.ParameterStringFilter{
			Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{f.Path},
		})
	}
	var names []string
	seen := map[string]struct{}{}
	pages := ssm.NewDescribeParametersPaginator(c.api, &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: aws.Int32(50)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing parameters in AWS Parameter Store: %w", classify(err))
		}
		for _, p := range page.Parameters {
			name := aws.ToString(p.Name)
			if _, dup := seen[name]; dup || !re.MatchString(name) {
				continue
			}
			seen[name] = struct{}{}
			names = append(names, name)
		}
	}
	values, errs := c.batch.fetch(ctx, names)
	for _, name := range names {
		if err, failed := errs[name]; failed && !isNotFound(err) {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(values))
	for name, v := range values {
		out[name] = v.Data
	}
	return out, nil
}

func parameterValue(name string, p ssmtypes.Parameter) (provider.Value, error) {
	if p.Value == nil {
		return provider.Value{}, fmt.Errorf("%w: parameter %q has no value", provider.ErrBadResponse, name)
	}
	return provider.Value{Data: []byte(*p.Value), Version: strconv.FormatInt(p.Version, 10)}, nil
}
