package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

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
	_ provider.BatchSizer  = (*parameterStore)(nil)
	_ provider.Lister      = (*parameterStore)(nil)
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
	if ref.Metadata {
		return c.tags(ctx, ref)
	}
	return c.get(ctx, c.name(ref))
}

func (c *parameterStore) name(ref provider.Ref) string {
	if ref.Version == "" {
		return c.id(ref.Key)
	}
	return c.id(ref.Key) + ":" + ref.Version
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
		// GetParameters answers an ARN with the parameter's name: ARNs (of
		// names a find listed outside the prefix) are read one by one.
		// Metadata refs read tags (ListTagsForResource), one by one.
		return c.name(ref), !ref.Metadata && ref.Version == "" && !strings.HasPrefix(ref.Key, "arn:")
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

// BatchSize is the most names GetParameters takes.
func (c *parameterStore) BatchSize() int { return psBatchSize }

// ListSecrets lists the parameters under list.Path (recursively) that carry
// every tag in list.Tags. The store's prefix does not apply (as in ESO):
// names outside it are read by ARN. With a path and no tags the listing is
// GetParametersByPath, which returns the values decrypted, 10 a call; like
// ESO, it falls back to DescribeParameters when the credentials may not
// call GetParametersByPath. DescribeParameters (which filters by tags and
// path) lists names only: the fetch layer reads their values, batched
// (GetParameters).
func (c *parameterStore) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	p := &psPages{c: c, list: list}
	if list.Path != "" && len(list.Tags) == 0 {
		p.byPath = ssm.NewGetParametersByPathPaginator(c.api, &ssm.GetParametersByPathInput{
			Path:           aws.String(list.Path),
			Recursive:      aws.Bool(true),
			WithDecryption: aws.Bool(true),
			MaxResults:     aws.Int32(10),
		})
	} else {
		p.describe = c.describeParameters(list)
	}
	return p
}

func (c *parameterStore) describeParameters(list provider.List) *ssm.DescribeParametersPaginator {
	var filters []ssmtypes.ParameterStringFilter
	for _, k := range slices.Sorted(maps.Keys(list.Tags)) {
		filters = append(filters, ssmtypes.ParameterStringFilter{
			Key: aws.String("tag:" + k), Option: aws.String("Equals"), Values: []string{list.Tags[k]},
		})
	}
	if list.Path != "" {
		filters = append(filters, ssmtypes.ParameterStringFilter{
			Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{list.Path},
		})
	}
	return ssm.NewDescribeParametersPaginator(c.api, &ssm.DescribeParametersInput{ParameterFilters: filters, MaxResults: aws.Int32(50)})
}

// psPages is a listing by path (with values) or, without a path, with tags
// or when by path is forbidden, by DescribeParameters; one call a page.
type psPages struct {
	c        *parameterStore
	list     provider.List
	byPath   *ssm.GetParametersByPathPaginator
	describe *ssm.DescribeParametersPaginator
}

func (p *psPages) More() bool {
	if p.byPath != nil {
		return p.byPath.HasMorePages()
	}
	return p.describe.HasMorePages()
}

func (p *psPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	if p.byPath != nil {
		return p.nextByPath(ctx)
	}
	page, err := p.describe.NextPage(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing parameters in AWS Parameter Store: %w", classify(err))
	}
	var out []provider.Listed
	var unaddressed []string
	for _, m := range page.Parameters {
		name := aws.ToString(m.Name)
		if ref, ok := p.c.listedRef(name, aws.ToString(m.ARN)); ok {
			out = append(out, provider.Listed{Name: name, Ref: ref})
		} else {
			unaddressed = append(unaddressed, name)
		}
	}
	if len(unaddressed) == 0 {
		return out, nil
	}
	// Names outside the prefix listed without an ARN (older endpoints)
	// have no ref GetSecret reads: their values are read here, by name.
	values, errs := p.c.batch.fetch(ctx, unaddressed)
	for _, name := range unaddressed {
		if err, failed := errs[name]; failed {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		v := values[name]
		out = append(out, provider.Listed{Name: name, Value: &v})
	}
	return out, nil
}

func (p *psPages) nextByPath(ctx context.Context) ([]provider.Listed, error) {
	page, err := p.byPath.NextPage(ctx)
	if err != nil {
		err = fmt.Errorf("reading parameters under %q from AWS Parameter Store: %w", p.list.Path, classify(err))
		if !errors.Is(err, provider.ErrForbidden) || isCredentialsError(err) {
			return nil, err
		}
		p.c.log.Info("GetParametersByPath is not allowed; listing with DescribeParameters (grant ssm:GetParametersByPath to save API calls)", "path", p.list.Path)
		p.byPath, p.describe = nil, p.c.describeParameters(p.list)
		return nil, nil
	}
	var out []provider.Listed
	for _, param := range page.Parameters {
		name := aws.ToString(param.Name)
		v, err := parameterValue(name, param)
		if err != nil {
			continue // no value
		}
		if ref, ok := p.c.listedRef(name, aws.ToString(param.ARN)); ok {
			out = append(out, provider.Listed{Name: name, Ref: ref, Value: &v})
		}
	}
	return out, nil
}

func parameterValue(name string, p ssmtypes.Parameter) (provider.Value, error) {
	if p.Value == nil {
		return provider.Value{}, fmt.Errorf("%w: parameter %q has no value", provider.ErrBadResponse, name)
	}
	return provider.Value{Data: []byte(*p.Value), Version: strconv.FormatInt(p.Version, 10)}, nil
}
