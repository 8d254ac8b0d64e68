package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/keyferry/keyferry/internal/provider"
)

const (
	// listPageSize bounds one page of a Find's list of Secrets.
	listPageSize = 250
	// requestTimeout bounds one request when the configuration sets no
	// timeout, so a server that stops answering cannot hold a caller whose
	// context has no deadline.
	requestTimeout = time.Minute
)

// Client reads the Secrets of one namespace. It holds one API client, reused
// for every call, and is safe for concurrent use.
type Client struct {
	namespace string
	who       string
	secrets   corev1client.SecretInterface
	reviews   authorizationv1client.SelfSubjectAccessReviewInterface
	http      *http.Client
	stop      context.CancelFunc
}

var (
	_ provider.Client = (*Client)(nil)
	_ provider.Lister = (*Client)(nil)
)

func newClient(conn *connection, namespace string) (*Client, error) {
	stop := conn.stop
	if stop == nil {
		stop = func() {}
	}
	if conn.config.Timeout == 0 {
		conn.config.Timeout = requestTimeout
	}
	hc, err := rest.HTTPClientFor(conn.config)
	if err != nil {
		stop()
		return nil, fmt.Errorf("%w: building the HTTP client for %s: %v", provider.ErrInvalidConfig, conn.who, err)
	}
	cs, err := kubernetes.NewForConfigAndClient(conn.config, hc)
	if err != nil {
		stop()
		return nil, fmt.Errorf("%w: building the API client for %s: %v", provider.ErrInvalidConfig, conn.who, err)
	}
	return &Client{
		namespace: namespace,
		who:       conn.who,
		secrets:   cs.CoreV1().Secrets(namespace),
		reviews:   cs.AuthorizationV1().SelfSubjectAccessReviews(),
		http:      hc,
		stop:      stop,
	}, nil
}

// GetSecret returns the data of the Secret named ref.Key. Secrets have no
// versions, so a ref with a version is refused.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Metadata {
		return c.metadata(ctx, ref)
	}
	if ref.Version != "" {
		return provider.Value{}, fmt.Errorf("%w: secret %q: Kubernetes Secrets have no versions; remove remoteRef.version", provider.ErrNotSupported, ref.Key)
	}
	s, err := c.secrets.Get(ctx, ref.Key, metav1.GetOptions{})
	if err != nil {
		return provider.Value{}, apiError(fmt.Sprintf("getting secret %q from namespace %q (%s)", ref.Key, c.namespace, c.who), err)
	}
	return secretValue(s)
}

// ListSecrets lists the Secrets of the remote namespace whose name starts
// with list.Path and whose labels match list.Tags (a label selector, applied
// by the API server), with their JSON data: a Secret list returns the
// values. Each page is one list call of listPageSize Secrets.
func (c *Client) ListSecrets(_ context.Context, list provider.List) provider.ListPager {
	sel, err := labels.ValidatedSelectorFromSet(list.Tags)
	if err != nil {
		return provider.FailedPages(fmt.Errorf("%w: find.tags are not valid labels: %v", provider.ErrInvalidConfig, err))
	}
	return &secretPages{c: c, path: list.Path, opts: metav1.ListOptions{LabelSelector: sel.String(), Limit: listPageSize}, more: true}
}

// secretPages pages through a Secret list with the continue token.
type secretPages struct {
	c    *Client
	path string
	opts metav1.ListOptions
	more bool
}

func (p *secretPages) More() bool { return p.more }

func (p *secretPages) NextPage(ctx context.Context) ([]provider.Listed, error) {
	list, err := p.c.secrets.List(ctx, p.opts)
	if err != nil {
		return nil, apiError(fmt.Sprintf("listing secrets in namespace %q (%s)", p.c.namespace, p.c.who), err)
	}
	p.opts.Continue, p.more = list.Continue, list.Continue != ""
	var out []provider.Listed
	for i := range list.Items {
		s := &list.Items[i]
		if !strings.HasPrefix(s.Name, p.path) {
			continue
		}
		l := provider.Listed{Name: s.Name, Ref: provider.Ref{Key: s.Name}}
		// A Secret whose data cannot be encoded is read again if selected,
		// so the find fails with GetSecret's error, as for one key.
		if v, err := secretValue(s); err == nil {
			l.Value = &v
		}
		out = append(out, l)
	}
	return out, nil
}

// Validate asks the API server, with a SelfSubjectAccessReview, whether the
// store's identity may get Secrets in the remote namespace. That is one
// small request which authenticates the credentials, checks exactly the
// permission GetSecret needs, reads no Secret data, and needs no permission
// of its own (every authenticated user may review itself).
func (c *Client) Validate(ctx context.Context) error {
	review := &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: c.namespace,
				Verb:      "get",
				Resource:  "secrets",
			},
		},
	}
	what := fmt.Sprintf("checking access to secrets in namespace %q (%s)", c.namespace, c.who)
	res, err := c.reviews.Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return apiError(what, err)
	}
	if !res.Status.Allowed {
		reason := ""
		if res.Status.Reason != "" {
			reason = " (" + res.Status.Reason + ")"
		}
		return fmt.Errorf("%s: %w: the store's identity may not get secrets in namespace %q%s", what, provider.ErrForbidden, c.namespace, reason)
	}
	return nil
}

// Close stops token renewal and drops idle connections.
func (c *Client) Close(context.Context) error {
	c.stop()
	c.http.CloseIdleConnections()
	return nil
}

// secretValue turns a Secret's data into a Value: the exact bytes of each
// key, and a JSON object of them as strings.
func secretValue(s *corev1.Secret) (provider.Value, error) {
	fields := make(map[string][]byte, len(s.Data))
	for k, v := range s.Data {
		fields[k] = v
	}
	data, err := jsonStrings(fields)
	if err != nil {
		return provider.Value{}, fmt.Errorf("%w: encoding secret %q", provider.ErrBadResponse, s.Name)
	}
	return provider.Value{Data: data, Fields: fields}, nil
}

// jsonStrings encodes fields as a JSON object of strings, keys sorted and
// without HTML escaping, byte for byte what ESO produces for a Secret read
// without a property, so that Secrets ESO wrote hash the same.
func jsonStrings(fields map[string][]byte) ([]byte, error) {
	m := make(map[string]string, len(fields))
	for k, v := range fields {
		m[k] = string(v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
