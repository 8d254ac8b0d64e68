package gcpsm

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/auth"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyferry/keyferry/internal/provider"
)

const latest = "latest"

// Client reads one store's secrets. It is safe for concurrent use.
type Client struct {
	sm *secretmanager.Client
	// creds is nil with application default credentials.
	creds *auth.Credentials
	// parent is projects/P or projects/P/locations/L.
	parent string
	policy string
	// pageSize is how many secrets a listing call asks for; 0 lets Secret
	// Manager decide (as before listing was paged by the fetch layer).
	pageSize int32
}

var (
	_ provider.Client = (*Client)(nil)
	_ provider.Lister = (*Client)(nil)
)

// readRetry replaces the SDK's own retries (up to a minute of backoff on
// Unavailable and ResourceExhausted): the engine retries with its own
// backoff and rate limits, and needs the error to do so. Only a call whose
// connection dropped under it is repeated, at once and at most
// provider.TransportRetries times (droppedRetryer); every call is a read.
func readRetry() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer { return &droppedRetryer{left: provider.TransportRetries} })
}

// GetSecret reads one version of a secret: ref.Version, or "latest". With
// secretVersionSelectionPolicy LatestOrFetch, a reference without a version
// whose latest version is disabled or destroyed reads the newest enabled
// version instead.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return c.metadata(ctx, ref)
	}
	if err := checkName("key", ref.Key); err != nil {
		return provider.Value{}, err
	}
	version := ref.Version
	if version == "" {
		version = latest
	} else if err := checkName("version", version); err != nil {
		return provider.Value{}, err
	}
	resp, err := c.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{
		Name: c.secretName(ref.Key) + "/versions/" + version,
	}, readRetry())
	if err != nil && ref.Version == "" && isDisabledOrDestroyed(err) {
		if c.policy != PolicyLatestOrFetch {
			return provider.Value{}, fmt.Errorf("reading secret %s: its latest version is disabled or destroyed (secretVersionSelectionPolicy %s reads the newest enabled version instead): %w",
				ref, PolicyLatestOrFetch, mapError(err))
		}
		resp, err = c.accessNewestEnabled(ctx, ref.Key)
	}
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading secret %s: %w", ref, mapError(err))
	}
	if err := checkPayload(resp.GetPayload()); err != nil {
		return provider.Value{}, fmt.Errorf("reading secret %s: %w", ref, err)
	}
	return provider.Value{Data: resp.GetPayload().GetData(), Version: versionID(resp.GetName())}, nil
}

// accessNewestEnabled reads the enabled version of key created last.
func (c *Client) accessNewestEnabled(ctx context.Context, key string) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	it := c.sm.ListSecretVersions(ctx, &secretmanagerpb.ListSecretVersionsRequest{
		Parent: c.secretName(key),
		Filter: "state:ENABLED",
	}, readRetry())
	var versions []*secretmanagerpb.SecretVersion
	for {
		v, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing the versions of %s: %w", key, err)
		}
		versions = append(versions, v)
	}
	name := newestEnabled(versions)
	if name == "" {
		return nil, status.Errorf(codes.NotFound, "secret %s has no enabled version", key)
	}
	return c.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name}, readRetry())
}

// newestEnabled returns the name of the enabled version created last (the
// higher version number on a tie), or "" when none is enabled. The state is
// checked here too: a list filter is not relied on.
func newestEnabled(versions []*secretmanagerpb.SecretVersion) string {
	var best *secretmanagerpb.SecretVersion
	for _, v := range versions {
		if v.GetState() != secretmanagerpb.SecretVersion_ENABLED {
			continue
		}
		if best == nil || newer(v, best) {
			best = v
		}
	}
	if best == nil {
		return ""
	}
	return best.GetName()
}

func newer(a, b *secretmanagerpb.SecretVersion) bool {
	ta, tb := a.GetCreateTime().AsTime(), b.GetCreateTime().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	na, _ := strconv.ParseInt(versionID(a.GetName()), 10, 64)
	nb, _ := strconv.ParseInt(versionID(b.GetName()), 10, 64)
	return na > nb
}

// ListSecrets lists the store's secrets whose ID starts with list.Path and
// that carry every list.Tags entry as a label. A list filter narrows the
// listing on GCP; the match is always checked here as well. Keys of the
// listing are secret IDs, read at their latest version; secrets without
// any version (or deleted since the listing) are left out when read.
func (c *Client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	return &secretPages{c: c, list: list, more: true, req: &secretmanagerpb.ListSecretsRequest{
		Parent:   c.parent,
		Filter:   listFilter(list),
		PageSize: c.pageSize,
	}}
}

// secretPages pages through a listing, one ListSecrets call a page.
type secretPages struct {
	c    *Client
	list provider.List
	req  *secretmanagerpb.ListSecretsRequest
	more bool
}

func (p *secretPages) More() bool { return p.more }

func (p *secretPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	it := p.c.sm.ListSecrets(ctx, p.req, readRetry())
	var out []provider.Listed
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing secrets in %s: %w", p.c.parent, mapError(err))
		}
		if id := secretID(s.GetName()); matches(p.list, id, s.GetLabels()) {
			out = append(out, provider.Listed{Name: id, Ref: provider.Ref{Key: id}})
		}
		if it.PageInfo().Remaining() == 0 {
			break // the page is read: the next call is the next page
		}
	}
	p.req.PageToken = it.PageInfo().Token
	p.more = p.req.PageToken != ""
	return out, nil
}

// labelToken is what a label key or value may hold on GCP and pathToken what
// a secret ID may; only such values are put in a list filter.
var (
	labelToken = regexp.MustCompile(`^[a-z0-9_-]+$`)
	pathToken  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// listFilter narrows a listing on GCP (labels.K=V for each tag, name:PATH);
// terms that cannot be written safely are left to the client-side match.
func listFilter(find provider.List) string {
	var terms []string
	for _, k := range slices.Sorted(maps.Keys(find.Tags)) {
		if labelToken.MatchString(k) && labelToken.MatchString(find.Tags[k]) {
			terms = append(terms, "labels."+k+"="+find.Tags[k])
		}
	}
	if find.Path != "" && pathToken.MatchString(find.Path) {
		terms = append(terms, "name:"+find.Path)
	}
	return strings.Join(terms, " AND ")
}

// matches is the client-side match of one listed secret.
func matches(list provider.List, id string, labels map[string]string) bool {
	if list.Path != "" && !strings.HasPrefix(id, list.Path) {
		return false
	}
	for k, want := range list.Tags {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// Validate checks that the store's credentials yield a token; with
// application default credentials it does nothing (there is no call every
// role may make).
func (c *Client) Validate(ctx context.Context) error {
	if c.creds == nil {
		return nil
	}
	if _, err := c.creds.Token(ctx); err != nil {
		var authErr *auth.Error
		var netErr net.Error
		switch {
		case errors.As(err, &authErr):
			return fmt.Errorf("%w: getting a GCP access token: %w", provider.ErrUnauthenticated, err)
		case errors.As(err, &netErr):
			return fmt.Errorf("%w: getting a GCP access token: %w", provider.ErrUnreachable, err)
		default:
			return fmt.Errorf("getting a GCP access token: %w", err)
		}
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close(context.Context) error {
	if err := c.sm.Close(); err != nil {
		return fmt.Errorf("closing the Secret Manager client: %w", err)
	}
	return nil
}

func (c *Client) secretName(key string) string { return c.parent + "/secrets/" + key }

// checkName rejects a key or version that would change the resource path.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is empty", what)
	}
	if strings.Contains(s, "/") {
		return fmt.Errorf("%s %q: a secret %s has no '/'", what, s, what)
	}
	return nil
}

// secretID is the last segment of projects/P[/locations/L]/secrets/ID.
func secretID(name string) string {
	if i := strings.LastIndex(name, "/secrets/"); i >= 0 {
		return name[i+len("/secrets/"):]
	}
	return name
}

// versionID is the last segment of .../versions/V.
func versionID(name string) string {
	if i := strings.LastIndex(name, "/versions/"); i >= 0 {
		return name[i+len("/versions/"):]
	}
	return ""
}

// castagnoli is the CRC32C table Secret Manager's checksums use.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkPayload verifies the payload's CRC32C when the server sent one.
func checkPayload(p *secretmanagerpb.SecretPayload) error {
	if p == nil {
		return fmt.Errorf("%w: no payload", provider.ErrBadResponse)
	}
	if p.DataCrc32C != nil && int64(crc32.Checksum(p.GetData(), castagnoli)) != p.GetDataCrc32C() {
		return fmt.Errorf("%w: payload checksum mismatch", provider.ErrBadResponse)
	}
	return nil
}

// isDisabledOrDestroyed says whether err is Secret Manager refusing a
// version because it is disabled or destroyed.
func isDisabledOrDestroyed(err error) bool {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.FailedPrecondition {
		return false
	}
	return strings.Contains(s.Message(), "DISABLED") || strings.Contains(s.Message(), "DESTROYED")
}

// mapError wraps err with the sentinel for its status code, so the engine
// can pick a status reason; the message of err is kept.
func mapError(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w: %w", provider.ErrNotFound, err)
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %w", provider.ErrForbidden, err)
	case codes.Unauthenticated:
		return fmt.Errorf("%w: %w", provider.ErrUnauthenticated, err)
	case codes.Unavailable:
		return fmt.Errorf("%w: %w", provider.ErrUnreachable, err)
	case codes.ResourceExhausted:
		t := &provider.ThrottledError{Err: err}
		if ae, ok := apierror.FromError(err); ok {
			if ri := ae.Details().RetryInfo; ri != nil && ri.GetRetryDelay() != nil {
				t.RetryAfter = ri.GetRetryDelay().AsDuration()
			}
		}
		return t
	default:
		return err
	}
}
