package vault

import (
	"context"
	"fmt"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// fakeClock is the session's clock in these tests: Vault's own clock does
// not move, so the token stays valid on the server while the client believes
// its renewal time has come.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func appRoleClient(t *testing.T, e *env, role map[string]any) (*client, *fakeClock) {
	t.Helper()
	roleID, secretID := appRole(t, e, role)
	e.secret("approle", map[string]string{"secret-id": secretID})
	c := e.client(e.spec(&esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", RoleID: roleID,
		SecretRef: esv1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}))
	clock := &fakeClock{t: time.Now()}
	c.session.now = clock.now
	return c, clock
}

func (e *env) token(c *client) string {
	tok := c.session.current()
	if tok != "" {
		e.secrets = append(e.secrets, tok)
	}
	return tok
}

func TestTokenIsKeptAndRenewedBeforeExpiry(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": "x"})
	c, clock := appRoleClient(t, e, nil)

	e.get(c, "app")
	first := e.token(c)
	if first == "" {
		t.Fatal("no token after the first read")
	}
	e.get(c, "app")
	if e.token(c) != first {
		t.Fatal("a second read logged in again instead of reusing the token")
	}

	// Two thirds of the hour gone: the token is renewed, not replaced.
	clock.advance(41 * time.Minute)
	e.get(c, "app")
	if e.token(c) != first {
		t.Fatal("a renewable token was replaced instead of renewed")
	}
	lookup := e.vault.Write(t, "auth/token/lookup", map[string]any{"token": first})
	if lookup.Data["last_renewal_time"] == nil {
		t.Fatal("Vault has no renewal of the token")
	}
	if !c.session.issued.Equal(clock.now()) {
		t.Errorf("the session did not restart the token's lifetime at the renewal")
	}
}

func TestNonRenewableTokenIsReplacedBeforeExpiry(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": "x"})
	c, clock := appRoleClient(t, e, map[string]any{"token_type": "batch"})

	e.get(c, "app")
	first := e.token(c)
	clock.advance(30 * time.Minute)
	e.get(c, "app")
	if e.token(c) != first {
		t.Fatal("the token was replaced before two thirds of its lifetime")
	}
	clock.advance(11 * time.Minute)
	e.get(c, "app")
	if second := e.token(c); second == first || second == "" {
		t.Fatal("a batch token near its expiry was not replaced by a new login")
	}
}

func TestRevokedTokenLogsInAgain(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	c, _ := appRoleClient(t, e, nil)

	e.get(c, "app")
	first := e.token(c)
	revokeToken(t, e, first)
	if got := string(e.get(c, "app").Fields["v"]); got != val {
		t.Fatalf("after revocation: got %q", got)
	}
	if e.token(c) == first {
		t.Fatal("the revoked token is still in use")
	}

	// A path the policy does not grant stays forbidden with a valid token.
	e.vault.EnableKV(t, "other", 2)
	e.vault.PutKV(t, "other", 2, "app", map[string]any{"v": e.canary()})
	tok := e.token(c)
	c.paths = kvPaths{mount: "other", v2: true}
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
	e.wantErr(err, provider.ErrForbidden)
	if e.token(c) != tok {
		t.Error("a forbidden path made the client log in again")
	}
}

func TestCloseRevokesTheLoginToken(t *testing.T) {
	e := newEnv(t)
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": "x"})
	c, _ := appRoleClient(t, e, nil)
	e.get(c, "app")
	tok := e.token(c)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := e.vault.Client(t).Logical().Write("auth/token/lookup", map[string]any{"token": tok})
	if err == nil {
		t.Fatal("the token still exists after Close")
	}
}

func TestConcurrentReadsShareOneLogin(t *testing.T) {
	e := newEnv(t)
	val := e.canary()
	e.vault.PutKV(t, "secret", 2, "app", map[string]any{"v": val})
	c, _ := appRoleClient(t, e, nil)

	const readers = 16
	errs := make(chan error, readers)
	tokens := make(chan string, readers)
	for range readers {
		go func() {
			v, err := c.GetSecret(context.Background(), provider.Ref{Key: "app"})
			if err == nil && string(v.Fields["v"]) != val {
				err = fmt.Errorf("got %q", v.Fields["v"])
			}
			errs <- err
			tokens <- c.session.current()
		}()
	}
	seen := map[string]bool{}
	for range readers {
		if err := <-errs; err != nil {
			e.noLeak(err)
			t.Error(err)
		}
		seen[<-tokens] = true
	}
	if len(seen) != 1 {
		t.Errorf("%d concurrent reads used %d tokens, want one login", readers, len(seen))
	}
}
