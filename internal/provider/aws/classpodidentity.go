// This file gets EKS Pod Identity credentials for the ServiceAccount of a
// SecretSync whose SecretProviderClass sets usePodIdentity: a token of that
// ServiceAccount for the audience pods.eks.amazonaws.com, sent to the node's
// EKS Pod Identity agent, which answers with the credentials of the role the
// ServiceAccount's pod identity association names.

package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// The EKS Pod Identity agent's credentials endpoints, on every node, and the
// audience of the tokens it takes.
const (
	PodIdentityAgentIPv4 = "http://169.254.170.23/v1/credentials"
	PodIdentityAgentIPv6 = "http://[fd00:ec2::23]/v1/credentials"
	podIdentityAudience  = "pods.eks.amazonaws.com"
	// maxAgentAnswer bounds the agent's answer keyferry reads.
	maxAgentAnswer = 64 << 10
	// agentTimeout bounds one request to the agent, which answers from
	// the node.
	agentTimeout = 10 * time.Second
)

// podIdentity is the Pod Identity credentials of the class's ServiceAccount,
// cached until they expire.
func (p *Provider) podIdentity(opts provider.Options, ipv6 bool) aws.CredentialsProvider {
	endpoint := p.PodIdentityAgent
	switch {
	case endpoint != "":
	case ipv6:
		endpoint = PodIdentityAgentIPv6
	default:
		endpoint = PodIdentityAgentIPv4
	}
	// The agent is on the node, not AWS (HTTPClient): never through a
	// proxy of the environment.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	hc := &http.Client{Transport: transport, Timeout: agentTimeout}
	opts.Namespace = opts.Store.Namespace
	sel := esv1.ServiceAccountSelector{Name: opts.Store.Class.ServiceAccount, Audiences: []string{podIdentityAudience}}
	return aws.NewCredentialsCache(&podIdentityProvider{
		endpoint: endpoint,
		http:     hc,
		account:  opts.Store.Namespace + "/" + sel.Name,
		token:    func(ctx context.Context) (string, error) { return opts.ServiceAccountToken(ctx, sel) },
	})
}

// podIdentityProvider asks the Pod Identity agent for credentials with a
// ServiceAccount token.
type podIdentityProvider struct {
	endpoint string
	http     aws.HTTPClient
	// account names the ServiceAccount in errors.
	account string
	token   func(context.Context) (string, error)
}

// agentCredentials is the agent's answer (the container credentials
// format).
type agentCredentials struct {
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	Token           string    `json:"Token"`
	Expiration      time.Time `json:"Expiration"`
}

func (p *podIdentityProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	token, err := p.token(ctx)
	if err != nil {
		return aws.Credentials{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.endpoint, nil)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w: EKS Pod Identity agent endpoint: %v", provider.ErrInvalidConfig, err)
	}
	req.Header.Set("Authorization", token)
	resp, err := p.http.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w: asking the EKS Pod Identity agent for the credentials of service account %s (is keyferry running on an EKS node with the eks-pod-identity-agent add-on?): %v",
			provider.ErrUnreachable, p.account, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentAnswer))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w: reading the EKS Pod Identity agent's answer: %v", provider.ErrUnreachable, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest:
		// The agent refuses a ServiceAccount without a pod identity
		// association. Its body is not quoted: keep errors free of anything
		// the agent echoes.
		return aws.Credentials{}, fmt.Errorf("%w: the EKS Pod Identity agent refused service account %s (HTTP %d): create a pod identity association for it",
			provider.ErrUnauthenticated, p.account, resp.StatusCode)
	default:
		return aws.Credentials{}, fmt.Errorf("%w: the EKS Pod Identity agent answered HTTP %d for service account %s", provider.ErrUnreachable, resp.StatusCode, p.account)
	}
	var c agentCredentials
	if err := json.Unmarshal(body, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("%w: the EKS Pod Identity agent's answer for service account %s holds no credentials", provider.ErrBadResponse, p.account)
	}
	creds := aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token,
		Source: "keyferry:EKSPodIdentity",
	}
	if !c.Expiration.IsZero() {
		creds.CanExpire, creds.Expires = true, c.Expiration
	}
	return creds, nil
}
