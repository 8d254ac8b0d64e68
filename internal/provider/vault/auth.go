package vault

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	vaultapi "github.com/hashicorp/vault/api"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// serviceAccountTokenFile is where a pod's own ServiceAccount token is
// mounted; Kubernetes auth without a secretRef or serviceAccountRef uses it.
const serviceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// saTokenExpiry is the lifetime of the ServiceAccount tokens requested for
// Kubernetes and JWT auth when the store does not say.
const saTokenExpiry = 10 * time.Minute

// grant is what a login returns.
type grant struct {
	token string
	// ttl is the token's lifetime; 0 means it does not expire (or that it
	// is not known, for a token read from a Secret).
	ttl       time.Duration
	renewable bool
}

// loginFunc obtains a token.
type loginFunc func(ctx context.Context) (grant, error)

// session holds the token of one client: obtained on first use, renewed (or
// replaced by a new login) once two thirds of its lifetime have passed, and
// replaced when Vault says it is no longer valid.
type session struct {
	api *vaultapi.Client
	// method names the auth method in messages and logs.
	method string
	// login is nil when the store has no auth (Vault Agent in front).
	login loginFunc
	// static says the token comes from a Secret: it is neither renewed nor
	// revoked, only read again when Vault refuses it. source names it.
	static bool
	source string
	now    func() time.Time
	log    logr.Logger

	mu        sync.Mutex
	token     string
	issued    time.Time
	ttl       time.Duration
	loginTTL  time.Duration
	renewable bool
}

// ensure makes sure the client holds a token that is not about to expire.
func (s *session) ensure(ctx context.Context) error {
	if s.login == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" {
		if s.ttl == 0 || s.now().Before(s.issued.Add(s.ttl*2/3)) {
			return nil
		}
		if s.renewable && s.now().Before(s.issued.Add(s.ttl)) && s.renew(ctx) {
			return nil
		}
	}
	return s.loginLocked(ctx)
}

// renew extends the token; it reports false when a new login is needed
// instead (renewal refused, or capped well below the login's lifetime).
func (s *session) renew(ctx context.Context) bool {
	sec, err := s.api.Auth().Token().RenewSelfWithContext(ctx, int(s.loginTTL/time.Second))
	if err != nil || sec == nil || sec.Auth == nil {
		s.log.V(1).Info("renewing the vault token failed; logging in again", "method", s.method, "error", classify("renewing the vault token", nil, err, false))
		return false
	}
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	if ttl < s.loginTTL/2 {
		// Close to its max TTL: a fresh login lasts longer.
		return false
	}
	s.issued, s.ttl, s.renewable = s.now(), ttl, sec.Auth.Renewable
	s.log.V(1).Info("renewed the vault token", "method", s.method, "ttl", ttl)
	return true
}

func (s *session) loginLocked(ctx context.Context) error {
	g, err := s.login(ctx)
	if err != nil {
		return err
	}
	s.set(g)
	return nil
}

func (s *session) set(g grant) {
	s.token, s.issued, s.ttl, s.loginTTL, s.renewable = g.token, s.now(), g.ttl, g.ttl, g.renewable
	s.api.SetToken(g.token)
	if !s.static {
		s.log.V(1).Info("logged in to vault", "method", s.method, "ttl", g.ttl, "renewable", g.renewable)
	}
}

// current returns the token in use.
func (s *session) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// canRefresh says whether a token Vault refuses can be replaced.
func (s *session) canRefresh() bool { return s.login != nil }

// refresh replaces bad, a token Vault no longer accepts, unless another
// request already did.
func (s *session) refresh(ctx context.Context, bad string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != bad {
		return nil
	}
	g, err := s.login(ctx)
	if err != nil {
		return err
	}
	if s.static && g.token == bad {
		return fmt.Errorf("%w: the vault token in %s is invalid or expired", provider.ErrUnauthenticated, s.source)
	}
	s.set(g)
	return nil
}

// close revokes a token the session logged in for.
func (s *session) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" || s.static || s.login == nil {
		return nil
	}
	batch := strings.HasPrefix(s.token, "hvb.")
	defer func() {
		s.token = ""
		s.api.ClearToken()
	}()
	if batch {
		// Batch tokens cannot be revoked; they expire on their own.
		return nil
	}
	err := s.api.Auth().Token().RevokeSelfWithContext(ctx, "")
	if err != nil && !isStatus(err, http.StatusForbidden) && !isStatus(err, http.StatusBadRequest) {
		return classify("revoking the vault token", nil, err, false)
	}
	return nil
}

// authenticator builds the login of the store's auth method. The first
// method set wins, in ESO's order.
type authenticator struct {
	opts  provider.Options
	login *vaultapi.Client
	// tokenFile is the operator's own ServiceAccount token.
	tokenFile string
}

func (a authenticator) build(auth *esv1.VaultAuth) (method string, login loginFunc, static bool, err error) {
	method = authMethod(auth)
	switch method {
	case "tokenSecretRef":
		return method, a.token(*auth.TokenSecretRef), true, nil
	case "appRole":
		return method, a.appRole(auth.AppRole), false, nil
	case "kubernetes":
		return method, a.kubernetes(auth.Kubernetes), false, nil
	case "ldap":
		return method, a.password("ldap", orDefault(auth.Ldap.Path, "ldap"), auth.Ldap.Username, auth.Ldap.SecretRef), false, nil
	case "userPass":
		return method, a.password("userPass", orDefault(auth.UserPass.Path, "userpass"), auth.UserPass.Username, auth.UserPass.SecretRef), false, nil
	case "jwt":
		return method, a.jwt(auth.Jwt), false, nil
	case "cert":
		return method, a.cert(auth.Cert), false, nil
	case "iam":
		return "", nil, false, errIAM
	case "gcp":
		return "", nil, false, errGCP
	}
	return method, nil, false, nil
}

// authMethod names the auth method a store uses: the first one set, in
// the order ESO tries them; "none" without any.
func authMethod(auth *esv1.VaultAuth) string {
	switch {
	case auth == nil:
		return "none"
	case auth.TokenSecretRef != nil:
		return "tokenSecretRef"
	case auth.AppRole != nil:
		return "appRole"
	case auth.Kubernetes != nil:
		return "kubernetes"
	case auth.Ldap != nil:
		return "ldap"
	case auth.UserPass != nil:
		return "userPass"
	case auth.Jwt != nil:
		return "jwt"
	case auth.Cert != nil:
		return "cert"
	case auth.Iam != nil:
		return "iam"
	case auth.GCP != nil:
		return "gcp"
	}
	return "none"
}

var (
	errIAM = fmt.Errorf("%w: vault auth.iam (AWS IAM) is not supported by keyferry; use kubernetes, jwt, appRole or cert auth", provider.ErrNotSupported)
	errGCP = fmt.Errorf("%w: vault auth.gcp is not supported by keyferry; use kubernetes, jwt, appRole or cert auth", provider.ErrNotSupported)
)

func (a authenticator) token(ref esv1.SecretKeySelector) loginFunc {
	return func(ctx context.Context) (grant, error) {
		tok, err := a.opts.SecretKey(ctx, ref)
		if err != nil {
			return grant{}, fmt.Errorf("reading auth.tokenSecretRef: %w", err)
		}
		t := strings.TrimSpace(string(tok))
		if t == "" {
			return grant{}, fmt.Errorf("%w: auth.tokenSecretRef %s holds an empty token", provider.ErrInvalidConfig, ref.Name)
		}
		return grant{token: t}, nil
	}
}

func (a authenticator) appRole(r *esv1.VaultAppRole) loginFunc {
	return func(ctx context.Context) (grant, error) {
		roleID := r.RoleID
		if roleID == "" {
			if r.RoleRef == nil {
				return grant{}, fmt.Errorf("%w: auth.appRole needs roleId or roleRef", provider.ErrInvalidConfig)
			}
			b, err := a.opts.SecretKey(ctx, *r.RoleRef)
			if err != nil {
				return grant{}, fmt.Errorf("reading auth.appRole.roleRef: %w", err)
			}
			roleID = strings.TrimSpace(string(b))
		}
		secretID, err := a.opts.SecretKey(ctx, r.SecretRef)
		if err != nil {
			return grant{}, fmt.Errorf("reading auth.appRole.secretRef: %w", err)
		}
		sid := strings.TrimSpace(string(secretID))
		return a.do(ctx, loginPath(r.Path, "approle"), map[string]any{"role_id": roleID, "secret_id": sid}, sid)
	}
}

func (a authenticator) kubernetes(k *esv1.VaultKubernetesAuth) loginFunc {
	return func(ctx context.Context) (grant, error) {
		var jwt string
		switch {
		case k.ServiceAccountRef != nil:
			t, err := a.serviceAccountToken(ctx, *k.ServiceAccountRef, nil, saTokenExpiry)
			if err != nil {
				return grant{}, err
			}
			jwt = t
		case k.SecretRef != nil:
			ref := *k.SecretRef
			if ref.Key == "" {
				ref.Key = "token"
			}
			b, err := a.opts.SecretKey(ctx, ref)
			if err != nil {
				return grant{}, fmt.Errorf("reading auth.kubernetes.secretRef: %w", err)
			}
			jwt = strings.TrimSpace(string(b))
		default:
			// The operator's own identity: the fetch layer admits only
			// ClusterSecretStores here (OperatorIdentities, Admit).
			b, err := os.ReadFile(a.tokenFile)
			if err != nil {
				return grant{}, fmt.Errorf("%w: auth.kubernetes has no serviceAccountRef or secretRef, and the operator's own ServiceAccount token cannot be read: %v", provider.ErrInvalidConfig, err)
			}
			jwt = strings.TrimSpace(string(b))
		}
		return a.do(ctx, loginPath(k.Path, "kubernetes"), map[string]any{"role": k.Role, "jwt": jwt}, jwt)
	}
}

func (a authenticator) jwt(j *esv1.VaultJwtAuth) loginFunc {
	return func(ctx context.Context) (grant, error) {
		var jwt string
		switch {
		case j.SecretRef != nil:
			b, err := a.opts.SecretKey(ctx, *j.SecretRef)
			if err != nil {
				return grant{}, fmt.Errorf("reading auth.jwt.secretRef: %w", err)
			}
			jwt = strings.TrimSpace(string(b))
		case j.KubernetesServiceAccountToken != nil:
			sa := j.KubernetesServiceAccountToken
			extra := []string{"vault"}
			if sa.Audiences != nil {
				extra = *sa.Audiences
			}
			expiry := saTokenExpiry
			if sa.ExpirationSeconds != nil && *sa.ExpirationSeconds > 0 {
				expiry = time.Duration(*sa.ExpirationSeconds) * time.Second
			}
			t, err := a.serviceAccountToken(ctx, sa.ServiceAccountRef, extra, expiry)
			if err != nil {
				return grant{}, err
			}
			jwt = t
		default:
			return grant{}, fmt.Errorf("%w: auth.jwt needs secretRef or kubernetesServiceAccountToken", provider.ErrInvalidConfig)
		}
		return a.do(ctx, loginPath(j.Path, "jwt"), map[string]any{"role": strings.TrimSpace(j.Role), "jwt": jwt}, jwt)
	}
}

func (a authenticator) password(field, path, username string, ref esv1.SecretKeySelector) loginFunc {
	return func(ctx context.Context) (grant, error) {
		b, err := a.opts.SecretKey(ctx, ref)
		if err != nil {
			return grant{}, fmt.Errorf("reading auth.%s.secretRef: %w", field, err)
		}
		// A password is used as it is: spaces may be part of it.
		pw := string(b)
		return a.do(ctx, loginPath(path, "")+"/"+url.PathEscape(username), map[string]any{"password": pw}, pw)
	}
}

// cert logs in with the client certificate the transport presents (set up
// by NewClient from auth.cert or tls).
func (a authenticator) cert(c *esv1.VaultCertAuth) loginFunc {
	return func(ctx context.Context) (grant, error) {
		var data map[string]any
		if c.VaultRole != "" {
			data = map[string]any{"name": c.VaultRole}
		}
		return a.do(ctx, loginPath(c.Path, "cert"), data)
	}
}

// serviceAccountToken requests a token for sel with sel's audiences plus
// extra.
func (a authenticator) serviceAccountToken(ctx context.Context, sel esv1.ServiceAccountSelector, extra []string, expiry time.Duration) (string, error) {
	if a.opts.Tokens == nil {
		return "", fmt.Errorf("%w: service account tokens are not available to the vault provider", provider.ErrInvalidConfig)
	}
	aud := append(append([]string{}, sel.Audiences...), extra...)
	ns := a.opts.NamespaceFor(sel.Namespace)
	tok, _, err := a.opts.Tokens.ServiceAccountToken(ctx, ns, sel.Name, aud, expiry)
	if err != nil {
		return "", fmt.Errorf("requesting a token for service account %s/%s: %w", ns, sel.Name, err)
	}
	return tok, nil
}

// loginPath is auth/<mount>/login, with def as the mount when mount is
// empty.
func loginPath(mount, def string) string {
	return "auth/" + orDefault(mount, def) + "/login"
}

// do posts data to a login endpoint. secrets are the credentials sent,
// removed from any error text.
func (a authenticator) do(ctx context.Context, endpoint string, data map[string]any, secrets ...string) (grant, error) {
	op := "logging in to vault at " + endpoint
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	sec, err := a.login.Logical().WriteWithContext(ctx, endpoint, data)
	if err != nil {
		return grant{}, classify(op, nil, err, true, secrets...)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return grant{}, fmt.Errorf("%s: %w: no token in the answer", op, provider.ErrUnauthenticated)
	}
	return grant{
		token:     sec.Auth.ClientToken,
		ttl:       time.Duration(sec.Auth.LeaseDuration) * time.Second,
		renewable: sec.Auth.Renewable,
	}, nil
}

func orDefault(s, def string) string {
	if s = strings.Trim(s, "/"); s != "" {
		return s
	}
	return def
}
